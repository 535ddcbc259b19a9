"""Listings as a client sees them: every page of one, and the order the contract gives."""

from __future__ import annotations

from todo_core import ListQuery, SortOrder, Task, TaskStore
from todo_core.listing import SORTS


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


def expected_order(tasks: list[Task], sort: SortOrder) -> list[Task]:
    """``tasks`` in the order the contract gives ``sort``: key, then id, same direction."""
    spec = SORTS[sort]
    return sorted(
        tasks,
        key=lambda task: (getattr(task, spec.field), task.id),
        reverse=spec.descending,
    )
