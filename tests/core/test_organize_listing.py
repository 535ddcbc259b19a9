"""Listing by the organizing fields, through every store: the priority, tag and due
filters, the due_at and priority sorts, and cursors bound to all of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.listing import SORTS, expected_order, kept_by, walk
from tests.values import (
    ALICE,
    DUE_INSTANTS,
    OPTIONAL_DUE_ATS,
    PRIORITY_LEVELS,
    TAG_LISTS,
)
from todo_core import InvalidCursor, ListQuery, SortOrder, Task, TaskCreate, TaskStore

TASKS = st.lists(
    st.fixed_dictionaries(
        {
            "title": st.sampled_from(["a", "b"]),
            "due_at": OPTIONAL_DUE_ATS,
            "priority": PRIORITY_LEVELS,
            "tags": TAG_LISTS,
        }
    ),
    max_size=12,
)
BOUNDS = st.one_of(
    st.none(),
    st.sampled_from(DUE_INSTANTS),
    st.sampled_from(DUE_INSTANTS).map(lambda moment: moment + timedelta(microseconds=1)),
    OPTIONAL_DUE_ATS,
)
FILTERS = st.fixed_dictionaries(
    {
        "priority": st.one_of(st.none(), st.lists(PRIORITY_LEVELS, min_size=1, unique=True)),
        "tag": st.one_of(st.none(), TAG_LISTS.filter(bool)),
        "due_min": BOUNDS,
        "due_max": BOUNDS,
    }
)


def fresh_user() -> str:
    """A user of its own for each example, so that examples sharing a store stay apart."""
    return uuid4().hex


def query_of(filters: dict[str, Any], **more: Any) -> ListQuery:
    values = {name: value for name, value in filters.items() if value is not None}
    for name in ("priority", "tag"):
        if name in values:
            values[name] = tuple(values[name])
    return ListQuery.model_validate(values | more)


async def create_all(store: TaskStore, user_id: str, tasks: list[dict[str, Any]]) -> list[Task]:
    return [await store.create(user_id, TaskCreate.model_validate(task)) for task in tasks]


class TestFiltersAndSorts:
    @settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        tasks=TASKS,
        filters=FILTERS,
        sort=st.sampled_from(SORTS),
        limit=st.integers(1, 4),
    )
    async def test_every_page_as_the_contract_says(
        self,
        store: TaskStore,
        tasks: list[dict[str, Any]],
        filters: dict[str, Any],
        sort: SortOrder,
        limit: int,
    ) -> None:
        """Walking every page gives the tasks the filters keep, in the sort's order:
        due_at nulls last both ways, priority by rank, ties by id in the sort's direction."""
        user_id = fresh_user()
        created = await create_all(store, user_id, tasks)
        query = query_of(filters, sort=sort, limit=limit)
        listed = await walk(store, user_id, query)
        expected = expected_order([task for task in created if kept_by(task, query)], sort)
        assert [task.id for task in listed] == [task.id for task in expected]
        assert listed == expected

    @pytest.mark.parametrize("sort", ["due_at", "-due_at"])
    async def test_tasks_without_due_at_come_last(self, store: TaskStore, sort: SortOrder) -> None:
        early, late = DUE_INSTANTS[0], DUE_INSTANTS[1]
        created = await create_all(
            store,
            ALICE,
            [
                {"title": "n1"},
                {"title": "e", "due_at": early},
                {"title": "n2"},
                {"title": "l", "due_at": late},
            ],
        )
        listed = await walk(store, ALICE, ListQuery(sort=sort, limit=1))
        titles = [task.title for task in listed]
        assert titles[:2] == (["e", "l"] if sort == "due_at" else ["l", "e"])
        nulls = sorted((task for task in created if task.due_at is None), key=lambda t: t.id)
        expected_nulls = nulls[::-1] if sort.startswith("-") else nulls
        assert [task.id for task in listed[2:]] == [task.id for task in expected_nulls]

    async def test_priority_ranks(self, store: TaskStore) -> None:
        await create_all(
            store,
            ALICE,
            [{"title": level, "priority": level} for level in ("high", "none", "medium", "low")],
        )
        listed = await walk(store, ALICE, ListQuery(sort="priority"))
        assert [task.priority for task in listed] == ["none", "low", "medium", "high"]
        listed = await walk(store, ALICE, ListQuery(sort="-priority"))
        assert [task.priority for task in listed] == ["high", "medium", "low", "none"]

    @pytest.mark.parametrize(
        ("due_min", "due_max"),
        [(DUE_INSTANTS[1], DUE_INSTANTS[1]), (DUE_INSTANTS[2], DUE_INSTANTS[0])],
        ids=["equal", "reversed"],
    )
    async def test_an_empty_range_gives_an_empty_page(
        self, store: TaskStore, due_min: datetime, due_max: datetime
    ) -> None:
        await create_all(
            store, ALICE, [{"title": "t", "due_at": moment} for moment in DUE_INSTANTS]
        )
        page = await store.list(ALICE, ListQuery(due_min=due_min, due_max=due_max))
        assert (page.items, page.next_cursor) == ([], None)

    async def test_due_bounds_include_min_exclude_max(self, store: TaskStore) -> None:
        due = DUE_INSTANTS[1]
        [task] = await create_all(store, ALICE, [{"title": "t", "due_at": due}])
        one = timedelta(microseconds=1)
        assert await walk(store, ALICE, ListQuery(due_min=due, due_max=due + one)) == [task]
        assert await walk(store, ALICE, ListQuery(due_min=due + one)) == []
        assert await walk(store, ALICE, ListQuery(due_max=due)) == []

    async def test_tag_filter_ignores_case_order_and_padding(self, store: TaskStore) -> None:
        both, work, _ = await create_all(
            store,
            ALICE,
            [
                {"title": "both", "tags": ["Work", "home"]},
                {"title": "work", "tags": ["work"]},
                {"title": "none"},
            ],
        )
        for tags in (("WORK", " Home"), ("home", "work"), ("work", "home", "WORK")):
            assert await walk(store, ALICE, ListQuery(tag=tags)) == [both]
        assert {task.id for task in await walk(store, ALICE, ListQuery(tag=("Work",)))} == {
            both.id,
            work.id,
        }


class TestCursors:
    async def two_pages(self, store: TaskStore, **filters: Any) -> str:
        """A cursor of a one-task first page of ``filters``, over tasks they all keep."""
        await create_all(
            store,
            ALICE,
            [
                {
                    "title": title,
                    "priority": priority,
                    "tags": ["home", "work"],
                    "due_at": DUE_INSTANTS[1],
                }
                for title, priority in (("a", "high"), ("b", "low"), ("c", "high"))
            ],
        )
        page = await store.list(ALICE, ListQuery(limit=1, **filters))
        assert page.next_cursor is not None
        return page.next_cursor

    @pytest.mark.parametrize(
        ("first", "changed"),
        [
            ({"priority": ("high", "low")}, {"priority": ("high",)}),
            ({"priority": ("high", "low")}, {}),
            ({"tag": ("home",)}, {"tag": ("home", "work")}),
            ({"tag": ("home",)}, {}),
            ({"due_min": DUE_INSTANTS[0]}, {"due_min": DUE_INSTANTS[1]}),
            ({"due_max": DUE_INSTANTS[2]}, {}),
            ({}, {"due_max": DUE_INSTANTS[2]}),
            ({"sort": "due_at"}, {"sort": "-due_at"}),
            ({"sort": "priority"}, {"sort": "due_at"}),
        ],
    )
    async def test_bound_to_filters_and_sort(
        self, store: TaskStore, first: dict[str, Any], changed: dict[str, Any]
    ) -> None:
        """A cursor used with another filter or sort is refused, not misread."""
        cursor = await self.two_pages(store, **first)
        with pytest.raises(InvalidCursor):
            await store.list(ALICE, ListQuery(limit=1, cursor=cursor, **changed))

    @pytest.mark.parametrize(
        ("first", "again"),
        [
            ({"priority": ("high", "low")}, {"priority": ("low", "high")}),
            ({"tag": ("work", "home")}, {"tag": ("Home", "WORK ", "home")}),
        ],
    )
    async def test_shared_by_spellings(
        self, store: TaskStore, first: dict[str, Any], again: dict[str, Any]
    ) -> None:
        """The order or spelling of a list's members does not matter."""
        cursor = await self.two_pages(store, **first, sort="title")
        same = await store.list(ALICE, ListQuery(limit=1, cursor=cursor, sort="title", **first))
        other = await store.list(ALICE, ListQuery(limit=1, cursor=cursor, sort="title", **again))
        assert other == same
        assert [task.title for task in other.items] == ["b"]

    @pytest.mark.parametrize("sort", ["due_at", "-due_at", "priority", "-priority"])
    async def test_walks_through_nulls_and_ties(self, store: TaskStore, sort: SortOrder) -> None:
        """Keyset walks one task per page through equal keys and missing due dates."""
        created = await create_all(
            store,
            ALICE,
            [
                {"title": "t", "priority": priority, "due_at": due}
                for priority in ("low", "high")
                for due in (None, DUE_INSTANTS[0], DUE_INSTANTS[0], None)
            ],
        )
        assert await walk(store, ALICE, ListQuery(sort=sort, limit=1)) == expected_order(
            created, sort
        )
        start = datetime(2000, 1, 1, tzinfo=UTC)
        in_range = [task for task in created if task.due_at is not None]
        listed = await walk(store, ALICE, ListQuery(sort=sort, limit=1, due_min=start))
        assert listed == expected_order(in_range, sort)


def test_the_listing_takes_exactly_the_contracts_sorts() -> None:
    fields = ("created_at", "updated_at", "title", "due_at", "priority")
    assert sorted(SORTS) == sorted([*fields, *(f"-{field}" for field in fields)])
