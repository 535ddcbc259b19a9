"""Listings as a client sees them: every page of one, and the order the contract gives."""

from __future__ import annotations

from typing import Any, Final, get_args

from todo_core import ListQuery, SortOrder, Task, TaskStore
from todo_core.models import PRIORITIES

SORTS: Final[tuple[SortOrder, ...]] = get_args(SortOrder)
"""Every ``sort`` the listing takes (the contract's list; test_organize_listing checks it)."""


async def walk(store: TaskStore, user_id: str, query: ListQuery | None = None) -> list[Task]:
    """Every task of one listing, following ``next_cursor`` to the last page.

    Each page is also asked for as field values (``list_fields``), which must be the
    same page: the same fields of the same tasks, and the same cursor.
    """
    query = query or ListQuery()
    items: list[Task] = []
    for _ in range(10_000):  # a cursor that never ends is a bug, not a long walk
        page = await store.list(user_id, query)
        assert await store.list_fields(user_id, query) == (
            [task.model_dump() for task in page.items],
            page.next_cursor,
        )
        assert len(page.items) <= query.limit
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        assert page.items, "a page with a next_cursor must not be empty"
        query = query.model_copy(update={"cursor": page.next_cursor})
    raise AssertionError("the walk did not end")


def kept_by(task: Task, query: ListQuery) -> bool:
    """Whether ``query``'s filters keep ``task``, written out plainly from the contract.

    ``query`` holds its tags normalised already (``ListQuery`` does that on input).
    """
    if query.completed is not None and task.completed is not query.completed:
        return False
    if query.q and not (
        query.q.lower() in task.title.lower()
        or (task.description is not None and query.q.lower() in task.description.lower())
    ):
        return False
    if query.priority is not None and task.priority not in query.priority:
        return False
    if query.tag is not None and not set(query.tag) <= set(task.tags):
        return False
    # A task without due_at matches neither bound.
    if query.due_min is not None and (task.due_at is None or task.due_at < query.due_min):
        return False
    return query.due_max is None or (task.due_at is not None and task.due_at < query.due_max)


def _key(task: Task, field: str) -> Any:
    value = getattr(task, field)
    # Priorities rank none < low < medium < high, not alphabetically.
    return PRIORITIES.index(value) if field == "priority" else value


def expected_order(tasks: list[Task], sort: SortOrder) -> list[Task]:
    """``tasks`` in the order the contract gives ``sort``: key, then id, same direction;
    tasks without the key (``due_at`` null) last in both directions, by id likewise.

    Written from the contract, not from ``todo_core.listing``, so that it checks it.
    """
    field, descending = sort.removeprefix("-"), sort.startswith("-")
    keyed = [task for task in tasks if getattr(task, field) is not None]
    keyless = [task for task in tasks if getattr(task, field) is None]
    keyed.sort(key=lambda task: (_key(task, field), task.id), reverse=descending)
    keyless.sort(key=lambda task: task.id, reverse=descending)
    return keyed + keyless
