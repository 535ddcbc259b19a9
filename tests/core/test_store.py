"""The storage contract, run against every backend: memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta
from itertools import count
from typing import cast
from uuid import UUID, uuid4

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.backends import stored_task_count
from tests.conftest import StoreFactory
from tests.listing import expected_order, walk
from tests.values import ALICE, BOB, EPOCH_2024, RFC3339_UTC, VALID_CHARACTERS, SteppingClock
from todo_core import (
    InvalidCursor,
    ListQuery,
    MemoryTaskStore,
    PreconditionFailed,
    SortOrder,
    Task,
    TaskCreate,
    TaskNotFound,
    TaskPatch,
    TaskReplace,
    TaskStore,
)
from todo_core.listing import SORTS

ALL_SORTS: list[SortOrder] = list(SORTS)
ONE_SECOND = timedelta(seconds=1)
WRITES = ["replace", "patch", "delete"]


def ids(tasks: list[Task]) -> list[UUID]:
    return [task.id for task in tasks]


async def write(
    store: TaskStore,
    operation: str,
    user_id: str,
    task_id: UUID,
    expected_version: int | None = None,
) -> Task:
    """Run one of replace, patch, delete (or get) with a fixed change."""
    if operation == "get":
        return await store.get(user_id, task_id)
    if operation == "replace":
        return await store.replace(
            user_id, task_id, TaskReplace(title="replaced"), expected_version=expected_version
        )
    if operation == "patch":
        return await store.patch(
            user_id, task_id, TaskPatch(completed=True), expected_version=expected_version
        )
    assert operation == "delete"
    return await store.delete(user_id, task_id, expected_version=expected_version)


class TestCreate:
    async def test_is_a_task_store(self, store: TaskStore) -> None:
        """Every backend satisfies the TaskStore protocol."""
        assert isinstance(store, TaskStore)

    async def test_returns_version_1_with_equal_aware_utc_timestamps(
        self, store: TaskStore
    ) -> None:
        """A new task is version 1, created_at equals updated_at, both aware UTC."""
        task = await store.create(ALICE, TaskCreate(title=" Buy milk "))
        assert (task.user_id, task.title, task.description, task.completed, task.version) == (
            ALICE,
            "Buy milk",
            None,
            False,
            1,
        )
        assert task.created_at == task.updated_at
        assert task.created_at.utcoffset() == timedelta(0)

    async def test_get_returns_what_create_returned(self, store: TaskStore) -> None:
        """Reading a task back gives exactly the task create returned."""
        created = await store.create(ALICE, TaskCreate(title="t", description="d", completed=True))
        fetched = await store.get(ALICE, created.id)
        assert fetched == created
        assert fetched.created_at.utcoffset() == timedelta(0)
        assert fetched.model_dump_json() == created.model_dump_json()

    async def test_keeps_microseconds(self, store_factory: StoreFactory) -> None:
        """Timestamps keep microsecond precision through the database."""
        async with store_factory(clock=SteppingClock(EPOCH_2024)) as store:
            created = await store.create(ALICE, TaskCreate(title="t"))
            fetched = await store.get(ALICE, created.id)
        assert fetched.created_at == fetched.updated_at == EPOCH_2024
        assert fetched.created_at.microsecond == 123456

    async def test_serialised_timestamps_are_rfc3339_utc(self, store: TaskStore) -> None:
        """Stored timestamps serialise as RFC 3339 UTC ending in Z, on every backend."""
        created = await store.create(ALICE, TaskCreate(title="t"))
        data = (await store.get(ALICE, created.id)).model_dump(mode="json")
        assert RFC3339_UTC.match(data["created_at"])
        assert RFC3339_UTC.match(data["updated_at"])

    async def test_assigns_a_new_id_each_time(self, store: TaskStore) -> None:
        """Identical creates make distinct tasks."""
        first = await store.create(ALICE, TaskCreate(title="same"))
        second = await store.create(ALICE, TaskCreate(title="same"))
        assert first.id != second.id
        assert {task.id for task in await walk(store, ALICE)} == {first.id, second.id}

    async def test_listing_is_per_user(self, store: TaskStore) -> None:
        """Each user's listing contains only that user's tasks."""
        mine = await store.create(ALICE, TaskCreate(title="mine"))
        theirs = await store.create(BOB, TaskCreate(title="theirs"))
        assert ids(await walk(store, ALICE)) == [mine.id]
        assert ids(await walk(store, BOB)) == [theirs.id]


class TestNotFound:
    @pytest.mark.parametrize("operation", ["get", *WRITES])
    async def test_unknown_id(self, store: TaskStore, operation: str) -> None:
        """An id that was never created raises TaskNotFound naming it."""
        missing = uuid4()
        await store.create(ALICE, TaskCreate(title="other"))
        with pytest.raises(TaskNotFound) as info:
            await write(store, operation, ALICE, missing)
        assert info.value.task_id == missing

    @pytest.mark.parametrize("operation", ["get", *WRITES])
    async def test_another_users_task_is_invisible(self, store: TaskStore, operation: str) -> None:
        """Another user's task raises TaskNotFound (never PreconditionFailed, whatever the
        expected_version) and is unchanged."""
        task = await store.create(ALICE, TaskCreate(title="private", description="d"))
        for expected_version in (None, 1, 2):
            with pytest.raises(TaskNotFound):
                await write(store, operation, BOB, task.id, expected_version)
        assert await store.get(ALICE, task.id) == task
        assert (await store.list(BOB)).items == []


class TestReplace:
    async def test_resets_omitted_fields(self, store: TaskStore) -> None:
        """Omitted description becomes None and omitted completed becomes False."""
        task = await store.create(ALICE, TaskCreate(title="t", description="d", completed=True))
        replaced = await store.replace(ALICE, task.id, TaskReplace(title=" new "))
        assert (replaced.title, replaced.description, replaced.completed) == ("new", None, False)
        assert (replaced.id, replaced.user_id, replaced.created_at) == (
            task.id,
            ALICE,
            task.created_at,
        )
        assert replaced.version == 2
        assert await store.get(ALICE, task.id) == replaced

    async def test_sets_every_field(self, store: TaskStore) -> None:
        """A full replacement stores all three fields as given."""
        task = await store.create(ALICE, TaskCreate(title="t"))
        replaced = await store.replace(
            ALICE, task.id, TaskReplace(title="x", description="", completed=True)
        )
        assert (replaced.title, replaced.description, replaced.completed) == ("x", "", True)
        assert await store.get(ALICE, task.id) == replaced


class TestPatch:
    @pytest.mark.parametrize(
        ("patch", "changed"),
        [
            (TaskPatch(title=" new "), {"title": "new"}),
            (TaskPatch(description="new"), {"description": "new"}),
            (TaskPatch(description=None), {"description": None}),
            (TaskPatch(description=""), {"description": ""}),
            (TaskPatch(completed=False), {"completed": False, "completed_at": None}),
            (
                TaskPatch(title="a", completed=False),
                {"title": "a", "completed": False, "completed_at": None},
            ),
        ],
    )
    async def test_changes_only_the_given_fields(
        self, store: TaskStore, patch: TaskPatch, changed: dict[str, object]
    ) -> None:
        """Fields not in the patch keep their values; null clears the description."""
        task = await store.create(ALICE, TaskCreate(title="t", description="d", completed=True))
        patched = await store.patch(ALICE, task.id, patch)
        before = task.model_dump(exclude={"updated_at", "version"})
        after = patched.model_dump(exclude={"updated_at", "version"})
        assert after == before | changed
        assert patched.version == 2
        assert await store.get(ALICE, task.id) == patched


class TestWriteStamps:
    async def _assert_every_write_advances(self, store: TaskStore) -> None:
        task = await store.create(ALICE, TaskCreate(title="t"))
        previous = task
        for round_ in range(6):
            if round_ % 2:
                current = await store.patch(ALICE, task.id, TaskPatch(completed=bool(round_ % 4)))
            else:
                current = await store.replace(ALICE, task.id, TaskReplace(title=f"t{round_}"))
            assert current.updated_at > previous.updated_at
            assert current.version == previous.version + 1
            assert current.created_at == task.created_at
            assert await store.get(ALICE, task.id) == current
            previous = current

    async def test_real_clock(self, store: TaskStore) -> None:
        """Every write makes updated_at strictly later and version one higher."""
        await self._assert_every_write_advances(store)

    async def test_stalled_clock(self, store_factory: StoreFactory) -> None:
        """updated_at still strictly increases when the clock returns the same instant."""
        async with store_factory(clock=SteppingClock(EPOCH_2024)) as store:
            await self._assert_every_write_advances(store)

    async def test_backwards_clock(self, store_factory: StoreFactory) -> None:
        """updated_at still strictly increases when the clock goes backwards."""
        async with store_factory(clock=SteppingClock(EPOCH_2024, -ONE_SECOND)) as store:
            await self._assert_every_write_advances(store)

    async def test_updates_take_the_clock_time_when_it_advances(
        self, store_factory: StoreFactory
    ) -> None:
        """With a clock that moves forward, updated_at is the time of the write."""
        clock = SteppingClock(EPOCH_2024, ONE_SECOND)
        async with store_factory(clock=clock) as store:
            task = await store.create(ALICE, TaskCreate(title="t"))
            patched = await store.patch(ALICE, task.id, TaskPatch(title="u"))
        assert task.created_at == EPOCH_2024
        assert patched.updated_at == EPOCH_2024 + ONE_SECOND


class TestExpectedVersion:
    @pytest.mark.parametrize("operation", WRITES)
    async def test_stale_version_changes_nothing(self, store: TaskStore, operation: str) -> None:
        """A stale (past or future) expected_version raises PreconditionFailed and leaves
        the task as it was."""
        task = await store.create(ALICE, TaskCreate(title="t"))
        task = await store.patch(ALICE, task.id, TaskPatch(description="v2"))
        for stale in (0, 1, 3):
            with pytest.raises(PreconditionFailed) as info:
                await write(store, operation, ALICE, task.id, expected_version=stale)
            assert (info.value.task_id, info.value.expected_version) == (task.id, stale)
            assert await store.get(ALICE, task.id) == task

    @pytest.mark.parametrize("operation", WRITES)
    async def test_current_version_succeeds(self, store: TaskStore, operation: str) -> None:
        """The current version as expected_version lets the write through."""
        task = await store.create(ALICE, TaskCreate(title="t"))
        task = await store.patch(ALICE, task.id, TaskPatch(description="v2"))
        result = await write(store, operation, ALICE, task.id, expected_version=2)
        if operation == "delete":
            assert result == task
            with pytest.raises(TaskNotFound):
                await store.get(ALICE, task.id)
        else:
            assert result.version == 3
            assert await store.get(ALICE, task.id) == result

    @pytest.mark.parametrize("operation", WRITES)
    async def test_missing_task_is_not_found_before_precondition(
        self, store: TaskStore, operation: str
    ) -> None:
        """A missing or deleted task raises TaskNotFound even with an expected_version."""
        gone = await store.create(ALICE, TaskCreate(title="gone"))
        await store.delete(ALICE, gone.id)
        for task_id in (gone.id, uuid4()):
            for version in (1, 2):
                with pytest.raises(TaskNotFound):
                    await write(store, operation, ALICE, task_id, expected_version=version)


class TestDelete:
    async def test_returns_the_deleted_task_and_removes_it(self, store: TaskStore) -> None:
        """Delete returns the task as it was; afterwards it is gone everywhere."""
        keep = await store.create(ALICE, TaskCreate(title="keep"))
        task = await store.create(ALICE, TaskCreate(title="t", description="d"))
        task = await store.patch(ALICE, task.id, TaskPatch(completed=True))
        assert await store.delete(ALICE, task.id) == task
        with pytest.raises(TaskNotFound):
            await store.get(ALICE, task.id)
        with pytest.raises(TaskNotFound):
            await store.delete(ALICE, task.id)
        with pytest.raises(TaskNotFound):
            await store.patch(ALICE, task.id, TaskPatch(completed=False))
        assert ids(await walk(store, ALICE)) == [keep.id]


UNICODE_TEXTS = {
    "emoji": "\U0001f600 \U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469\u200d\U0001f467 \U0001f1e9\U0001f1ea",  # noqa: E501
    "arabic": "مرحبا بالعالم",
    "hebrew": "שלום עולם",
    "bidi-controls": "abc \u202eRTL\u202c \u200f\u061c!",
    "combining": "Z\u0351\u036b\u0343\u036a\u0302a\u0306\u0301",
    "nfc": "caf\u00e9",
    "nfd": "cafe\u0301",
    "hangul-jamo": "\u1100\u1161\u11a8",
    "controls": "a\x01\x02\x07\x08\x1b\x7f\x80\x9f\x1cb",
    "noncharacters": "\uffff\ufffe\U0010ffff\ufdd0",
    "invisible": "\ufeffa\u200db\u200b",
    "astral-cjk": "\U0002070e\U00020731\U00020779",
    "separators": "a\u2028b\u2029c\x85d",
}


class TestUnicode:
    async def test_round_trips_byte_identical(self, store: TaskStore) -> None:
        """Title and description come back exactly as sent, through get and list."""
        sent = {}
        for name, text in UNICODE_TEXTS.items():
            assert text == text.strip(), name
            description = f"  {text}\n\t "
            task = await store.create(ALICE, TaskCreate(title=text, description=description))
            sent[task.id] = (name, text, description)
        listed = await walk(store, ALICE)
        fetched = [await store.get(ALICE, task_id) for task_id in sent]
        assert len(listed) == len(sent)
        for task in (*listed, *fetched):
            name, text, description = sent[task.id]
            assert task.title.encode() == text.encode(), name
            assert task.description is not None
            assert task.description.encode() == description.encode(), name

    async def test_keeps_nfc_and_nfd_distinct(self, store: TaskStore) -> None:
        """Composed and decomposed spellings stay distinct: stored, listed and searched."""
        nfc = await store.create(ALICE, TaskCreate(title=UNICODE_TEXTS["nfc"]))
        nfd = await store.create(ALICE, TaskCreate(title=UNICODE_TEXTS["nfd"]))
        assert (await store.get(ALICE, nfc.id)).title == "caf\u00e9"
        assert (await store.get(ALICE, nfd.id)).title == "cafe\u0301"
        assert ids(await walk(store, ALICE, ListQuery(q="\u00e9"))) == [nfc.id]
        assert ids(await walk(store, ALICE, ListQuery(q="e\u0301"))) == [nfd.id]
        assert ids(await walk(store, ALICE, ListQuery(sort="title"))) == [nfd.id, nfc.id]

    @settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        title=st.text(VALID_CHARACTERS, min_size=1, max_size=200).map(str.strip).filter(bool),
        description=st.none() | st.text(VALID_CHARACTERS, max_size=1000),
    )
    async def test_any_valid_text_round_trips(
        self, store: TaskStore, title: str, description: str | None
    ) -> None:
        """Any text the models accept is stored and read back unchanged."""
        task = await store.create(ALICE, TaskCreate(title=title, description=description))
        fetched = await store.get(ALICE, task.id)
        assert (fetched.title, fetched.description) == (title, description)


BAD_USER_IDS: list[object] = ["", "x" * 65, "a/b", "é", "\x00", "a b", None, 5]


class TestInvalidUserId:
    @pytest.mark.parametrize("operation", ["create", "list", "get", *WRITES])
    async def test_raises_validation_error_and_changes_nothing(
        self, store: TaskStore, operation: str
    ) -> None:
        """Every method rejects a malformed user_id with ValidationError; nothing changes."""
        task = await store.create(ALICE, TaskCreate(title="t"))
        for user_id in BAD_USER_IDS:
            bad = cast(str, user_id)
            call: Awaitable[object]
            if operation == "create":
                call = store.create(bad, TaskCreate(title="t"))
            elif operation == "list":
                call = store.list(bad)
            else:
                call = write(store, operation, bad, task.id, expected_version=1)
            with pytest.raises(ValidationError):
                await call
        assert await store.get(ALICE, task.id) == task
        assert await stored_task_count(store) == 1


class TestSorts:
    async def test_titles_sort_by_code_point(self, store: TaskStore) -> None:
        """Titles sort by code point, case-sensitively: "B" < "a" < "é" < "😀"."""
        for title in ("\U0001f600", "a", "\u00e9", "B"):
            await store.create(ALICE, TaskCreate(title=title))
        ascending = [task.title for task in await walk(store, ALICE, ListQuery(sort="title"))]
        descending = [task.title for task in await walk(store, ALICE, ListQuery(sort="-title"))]
        assert ascending == ["B", "a", "\u00e9", "\U0001f600"]
        assert descending == ascending[::-1]

    async def test_time_sorts_follow_creation_and_update_order(
        self, store_factory: StoreFactory
    ) -> None:
        """created_at lists in creation order; updated_at lists the last written last."""
        async with store_factory(clock=SteppingClock(EPOCH_2024, ONE_SECOND)) as store:
            first, second, third = [
                await store.create(ALICE, TaskCreate(title=title)) for title in "abc"
            ]
            await store.patch(ALICE, first.id, TaskPatch(completed=True))

            async def order(sort: SortOrder) -> list[UUID]:
                return ids(await walk(store, ALICE, ListQuery(sort=sort)))

            assert await order("created_at") == [first.id, second.id, third.id]
            assert await order("-created_at") == [third.id, second.id, first.id]
            assert await order("updated_at") == [second.id, third.id, first.id]
            assert await order("-updated_at") == [first.id, third.id, second.id]
            assert await order("title") == [first.id, second.id, third.id]
            assert await order("-title") == [third.id, second.id, first.id]

    @pytest.mark.parametrize("sort", ALL_SORTS)
    async def test_orders_by_key_then_id(
        self, store_factory: StoreFactory, sort: SortOrder
    ) -> None:
        """Each sort lists by its key with ties broken by id in the same direction."""
        clock = SteppingClock(EPOCH_2024, ONE_SECOND)
        async with store_factory(clock=clock) as store:
            created = []
            for index, title in enumerate(["b", "a", "b", "B", "\u00e9", "a", "\U0001f600", "b"]):
                clock.step = ONE_SECOND if index % 3 else timedelta(0)  # some equal times
                created.append(await store.create(ALICE, TaskCreate(title=title)))
            for task in created[::-2]:
                await store.patch(ALICE, task.id, TaskPatch(completed=True))
            current = [await store.get(ALICE, task.id) for task in created]
            page = await store.list(ALICE, ListQuery(sort=sort, limit=500))
        assert page.items == expected_order(current, sort)
        assert page.next_cursor is None

    @pytest.mark.parametrize("sort", ALL_SORTS)
    async def test_ties_are_broken_by_id_in_the_sorts_direction(
        self, store_factory: StoreFactory, sort: SortOrder
    ) -> None:
        """Tasks equal in title and timestamps list in id order, ascending or descending,
        on one page or across pages."""
        async with store_factory(clock=SteppingClock(EPOCH_2024)) as store:
            created = [await store.create(ALICE, TaskCreate(title="same")) for _ in range(6)]
            by_id = sorted(ids(created))
            for limit in (1, 2, 6, 500):
                listed = await walk(store, ALICE, ListQuery(sort=sort, limit=limit))
                assert ids(listed) == (by_id[::-1] if sort.startswith("-") else by_id), limit


def matches(task: Task, q: str) -> bool:
    """The contract's q: a substring of title or description after str.lower()."""
    needle = q.lower()
    return needle in task.title.lower() or (
        task.description is not None and needle in task.description.lower()
    )


SEARCHABLE = [
    ("Straße fegen", None),
    ("STRASSE kehren", None),
    ("strasse", "im Hof"),
    ("100% done", None),
    ("snake_case", None),
    ("back\\slash", None),
    ("axb", "a-b and aXb"),
    ("\u0130stanbul", None),
    ("ΣΑΣ", "ΌΣΟΣ"),
    ("ǅemal", None),
    ("plain", "Needle in the DESCRIPTION"),
    ("K for Kelvin \u212a", None),
]


QUERIES = [
    "STRASSE",
    "straße",
    "strasse",
    "%",
    "_",
    "\\",
    "a%b",
    "a_b",
    "a-b",
    "\u0130",
    "i\u0307",
    "i",
    "σας",
    "ΣΑΣ",
    "όσος",
    "ǆ",
    "ǅ",
    "\u212a",
    "k for",
    "needle",
    "nothing matches this",
]


class TestFilters:
    async def test_completed_filter(self, store: TaskStore) -> None:
        """completed=True and completed=False each list exactly the tasks in that state."""
        done = [await store.create(ALICE, TaskCreate(title=f"d{i}", completed=True)) for i in "12"]
        open_ = [await store.create(ALICE, TaskCreate(title=f"o{i}")) for i in "123"]
        assert set(ids(await walk(store, ALICE, ListQuery(completed=True)))) == set(ids(done))
        assert set(ids(await walk(store, ALICE, ListQuery(completed=False)))) == set(ids(open_))
        assert len(await walk(store, ALICE)) == 5

    async def test_q_matches_python_lower_case_substrings(self, store: TaskStore) -> None:
        """q selects tasks whose lower-cased title or description contains lower-cased q;
        LIKE wildcards and backslash are literal."""
        created = [
            await store.create(ALICE, TaskCreate(title=title, description=description))
            for title, description in SEARCHABLE
        ]
        for q in QUERIES:
            expected = {task.title for task in created if matches(task, q)}
            listed = await walk(store, ALICE, ListQuery(q=q, sort="created_at", limit=3))
            assert {task.title for task in listed} == expected, q

    async def test_q_examples(self, store: TaskStore) -> None:
        """Concrete cases: STRASSE finds strasse but not Straße; % and _ match themselves."""
        for title, description in SEARCHABLE:
            await store.create(ALICE, TaskCreate(title=title, description=description))

        async def titles(q: str) -> set[str]:
            return {task.title for task in await walk(store, ALICE, ListQuery(q=q))}

        assert await titles("STRASSE") == {"STRASSE kehren", "strasse"}
        assert await titles("straße") == {"Straße fegen"}
        assert await titles("%") == {"100% done"}
        assert await titles("_") == {"snake_case"}
        assert await titles("a_b") == set()
        assert await titles("\\") == {"back\\slash"}
        assert await titles("needle in the description") == {"plain"}
        assert await titles("nothing matches this") == set()

    async def test_q_and_completed_combine(self, store: TaskStore) -> None:
        """Both filters apply together."""
        hit = await store.create(ALICE, TaskCreate(title="Milk", completed=True))
        await store.create(ALICE, TaskCreate(title="milk"))
        await store.create(ALICE, TaskCreate(title="bread", completed=True))
        listed = await walk(store, ALICE, ListQuery(q="MILK", completed=True))
        assert ids(listed) == [hit.id]

    async def test_empty_q_is_no_filter(self, store: TaskStore) -> None:
        """An empty q lists every task."""
        for title in "abc":
            await store.create(ALICE, TaskCreate(title=title))
        assert len(await walk(store, ALICE, ListQuery(q=""))) == 3

    async def test_no_match_is_an_empty_last_page(self, store: TaskStore) -> None:
        """A filter matching nothing gives no items and no next cursor."""
        await store.create(ALICE, TaskCreate(title="a"))
        page = await store.list(ALICE, ListQuery(q="zzz"))
        assert (page.items, page.next_cursor) == ([], None)


class TestLimit:
    async def test_a_user_without_tasks_has_one_empty_page(self, store: TaskStore) -> None:
        """Listing a user with no tasks gives no items and no cursor."""
        page = await store.list("nobody")
        assert (page.items, page.next_cursor) == ([], None)

    @pytest.mark.parametrize(
        ("tasks", "limit", "more"), [(3, 1, True), (3, 2, True), (3, 3, False), (3, 500, False)]
    )
    async def test_pages_hold_at_most_limit_items(
        self, store: TaskStore, tasks: int, limit: int, more: bool
    ) -> None:
        """A page has min(limit, remaining) items and a cursor only if more remain."""
        for index in range(tasks):
            await store.create(ALICE, TaskCreate(title=str(index)))
        page = await store.list(ALICE, ListQuery(limit=limit))
        assert len(page.items) == min(limit, tasks)
        assert (page.next_cursor is not None) is more

    async def test_default_limit_is_100(self, store: TaskStore) -> None:
        """Without a query, a page holds 100 tasks, newest first."""
        for index in range(101):
            await store.create(ALICE, TaskCreate(title=str(index)))
        page = await store.list(ALICE)
        assert len(page.items) == 100
        assert page.next_cursor is not None
        assert page.items == expected_order(page.items, "-created_at")


class TestPagination:
    async def _tasks(self, store: TaskStore, clock: SteppingClock) -> list[Task]:
        titles = ["b", "a", "b", "B", "\u00e9", "a", "\U0001f600", "b", "c", "a", "Z"]
        for index, title in enumerate(titles):
            clock.step = ONE_SECOND if index % 4 == 3 else timedelta(0)
            await store.create(ALICE, TaskCreate(title=title, completed=index % 3 == 0))
            await store.create(BOB, TaskCreate(title=title))
        listed = await walk(store, ALICE, ListQuery(limit=500))
        for task in listed[::3]:
            await store.patch(ALICE, task.id, TaskPatch(description="b"))
        return [await store.get(ALICE, task.id) for task in listed]

    @pytest.mark.parametrize("sort", ALL_SORTS)
    async def test_walks_return_every_task_once_in_order(
        self, store_factory: StoreFactory, sort: SortOrder
    ) -> None:
        """For several limits and filters, walking all pages lists each match once, in order."""
        clock = SteppingClock(EPOCH_2024)
        async with store_factory(clock=clock) as store:
            tasks = await self._tasks(store, clock)
            filters: list[dict[str, object]] = [{}, {"completed": False}, {"q": "B"}]
            for selection in filters:
                query = ListQuery.model_validate({"sort": sort, **selection})
                wanted = [
                    task
                    for task in tasks
                    if (query.completed is None or task.completed is query.completed)
                    and (query.q is None or matches(task, query.q))
                ]
                for limit in (1, 2, 3, len(wanted), len(wanted) + 1):
                    listed = await walk(store, ALICE, query.model_copy(update={"limit": limit}))
                    assert ids(listed) == ids(expected_order(wanted, sort)), (selection, limit)

    async def test_limit_may_change_during_a_walk(self, store: TaskStore) -> None:
        """A cursor stays valid for the same query with another limit."""
        for index in range(10):
            await store.create(ALICE, TaskCreate(title=f"{index}"))
        everything = await walk(store, ALICE, ListQuery(sort="title", limit=500))
        listed: list[Task] = []
        query = ListQuery(sort="title", limit=1)
        for limit in count(2):
            page = await store.list(ALICE, query)
            listed.extend(page.items)
            if page.next_cursor is None:
                break
            query = ListQuery(sort="title", limit=limit, cursor=page.next_cursor)
        assert listed == everything

    async def test_cursor_survives_deletion_of_its_last_task(self, store: TaskStore) -> None:
        """Deleting the task a cursor ends at does not break the walk."""
        for title in "abcde":
            await store.create(ALICE, TaskCreate(title=title))
        first = await store.list(ALICE, ListQuery(sort="title", limit=2))
        await store.delete(ALICE, first.items[-1].id)
        rest = await walk(store, ALICE, ListQuery(sort="title", limit=2, cursor=first.next_cursor))
        assert [task.title for task in rest] == ["c", "d", "e"]

    @pytest.mark.parametrize("sort", ALL_SORTS)
    async def test_walk_while_tasks_are_created_and_deleted(
        self, store_factory: StoreFactory, sort: SortOrder
    ) -> None:
        """During a walk, a new task appears iff it sorts after the last returned one,
        a task deleted before its turn never appears, and nothing appears twice."""
        spec = SORTS[sort]

        def after(task: Task, last: Task) -> bool:
            mine = (getattr(task, spec.field), task.id)
            theirs = (getattr(last, spec.field), last.id)
            return mine < theirs if spec.descending else mine > theirs

        async with store_factory(clock=SteppingClock(EPOCH_2024, ONE_SECOND)) as store:
            initial = [await store.create(ALICE, TaskCreate(title=f"m{i}")) for i in range(8)]
            returned: list[Task] = []
            created: list[tuple[Task, Task]] = []  # (new task, last returned when created)
            deleted: set[UUID] = set()
            query = ListQuery(sort=sort, limit=2)
            for round_ in count():
                assert round_ < 50
                page = await store.list(ALICE, query)
                returned.extend(page.items)
                if page.next_cursor is None:
                    break
                # "0" sorts before every "m…" title, "~" after.
                title = f"0 early {round_}" if round_ % 2 else f"~ late {round_}"
                created.append((await store.create(ALICE, TaskCreate(title=title)), returned[-1]))
                seen = set(ids(returned))
                unseen = [t for t in expected_order(initial, sort) if t.id not in seen | deleted]
                if unseen:
                    victim = unseen[-1] if round_ % 2 else unseen[0]
                    await store.delete(ALICE, victim.id)
                    deleted.add(victim.id)
                query = query.model_copy(update={"cursor": page.next_cursor})
        returned_ids = ids(returned)
        assert len(returned_ids) == len(set(returned_ids))
        assert returned == expected_order(returned, sort)
        assert deleted
        for task in initial:
            assert (task.id in returned_ids) is (task.id not in deleted)
        for task, last in created:
            assert (task.id in returned_ids) is after(task, last), task.title


GARBAGE_CURSORS = [
    "",
    ".",
    "..",
    "garbage",
    "a.b",
    "a.b.c",
    "%%%.%%%",
    "\U0001f600",
    "eyJhIjoxfQ.AAAAAAAAAAAAAAAAAAAAAA",
    "W10.AAAAAAAAAAAAAAAAAAAAAA",
    "x" * 5000,
    "null",
    " ",
]


def flipped(cursor: str) -> list[str]:
    """Every cursor that differs from ``cursor`` in exactly one character's low bit,
    plus one with each character replaced by a character outside the alphabet."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    variants = []
    for index, character in enumerate(cursor):
        replacement = alphabet[alphabet.index(character) ^ 1] if character in alphabet else "A"
        variants.append(cursor[:index] + replacement + cursor[index + 1 :])
        variants.append(cursor[:index] + "!" + cursor[index + 1 :])
    return variants


# (query that issued a cursor, query it is then used with, user it is used by)
FOREIGN_USES: list[tuple[dict[str, object], dict[str, object], str]] = [
    ({}, {}, BOB),
    ({"sort": "title"}, {"sort": "-title"}, ALICE),
    ({"sort": "created_at"}, {"sort": "updated_at"}, ALICE),
    ({"sort": "-created_at"}, {"sort": "title"}, ALICE),
    ({"q": "x"}, {"q": "y"}, ALICE),
    ({"q": "x"}, {}, ALICE),
    ({}, {"q": "x"}, ALICE),
    ({"completed": False}, {"completed": True}, ALICE),
    ({"completed": False}, {}, ALICE),
    ({}, {"completed": False}, ALICE),
]


class TestCursors:
    async def _cursor(self, store: TaskStore, query: ListQuery) -> str:
        for title in "abcde":
            await store.create(ALICE, TaskCreate(title=title, description="x y"))
            await store.create(BOB, TaskCreate(title=title, description="x y"))
        page = await store.list(ALICE, query)
        assert page.next_cursor is not None
        return page.next_cursor

    async def test_a_valid_cursor_continues_the_walk(self, store: TaskStore) -> None:
        """The cursor of page one, passed back with the same query, gives page two."""
        cursor = await self._cursor(store, ListQuery(sort="title", limit=2))
        page = await store.list(ALICE, ListQuery(sort="title", limit=2, cursor=cursor))
        assert [task.title for task in page.items] == ["c", "d"]

    async def test_tampered_cursor(self, store: TaskStore) -> None:
        """Changing any single character of a cursor makes it invalid."""
        query = ListQuery(sort="title", limit=2)
        cursor = await self._cursor(store, query)
        for variant in flipped(cursor):
            with pytest.raises(InvalidCursor):
                await store.list(ALICE, query.model_copy(update={"cursor": variant}))

    async def test_garbage_cursor(self, store: TaskStore) -> None:
        """Strings a store never issued are InvalidCursor, not a crash."""
        await store.create(ALICE, TaskCreate(title="t"))
        for garbage in GARBAGE_CURSORS:
            for sort in ALL_SORTS:
                with pytest.raises(InvalidCursor):
                    await store.list(ALICE, ListQuery(sort=sort, cursor=garbage))

    async def test_truncated_or_extended_cursor(self, store: TaskStore) -> None:
        """A cursor cut short, padded or with a part missing is invalid."""
        query = ListQuery(limit=2)
        cursor = await self._cursor(store, query)
        payload, mac = cursor.split(".")
        for variant in (
            cursor[:-1],
            cursor[: len(cursor) // 2],
            payload,
            f"{payload}.",
            f".{mac}",
            f"{cursor}=",
            f"{cursor}==",
            f"{payload}=.{mac}",
            f"{cursor}A",
            f"{cursor}.{mac}",
            f" {cursor}",
            f"{cursor}\n",
        ):
            with pytest.raises(InvalidCursor):
                await store.list(ALICE, query.model_copy(update={"cursor": variant}))

    async def test_foreign_cursor(self, store: TaskStore) -> None:
        """A cursor is bound to its user, sort, q and completed filter."""
        await self._cursor(store, ListQuery(limit=1))
        for issued, used, user in FOREIGN_USES:
            page = await store.list(ALICE, ListQuery.model_validate({"limit": 1, **issued}))
            assert page.next_cursor is not None
            query = ListQuery.model_validate({"cursor": page.next_cursor, **used})
            with pytest.raises(InvalidCursor):
                await store.list(user, query)

    async def test_shared_secret_shares_cursors(self, store_factory: StoreFactory) -> None:
        """Two stores given the same cursor_secret (bytes or str) accept each other's cursors."""
        async with (
            store_factory(cursor_secret=b"s" * 32) as first,
            store_factory(cursor_secret="s" * 32) as second,
        ):
            query = ListQuery(sort="title", limit=2)
            cursor = await self._cursor(first, query)
            follow = query.model_copy(update={"cursor": cursor})
            expected = await first.list(ALICE, follow)
            page = await second.list(ALICE, follow)
        if isinstance(first, MemoryTaskStore):
            assert page.items == []  # a separate memory store has none of the tasks
        else:
            assert page == expected

    async def test_different_secrets_reject_each_others_cursors(
        self, store_factory: StoreFactory
    ) -> None:
        """A cursor signed with one secret is invalid for a store with another."""
        async with (
            store_factory(cursor_secret=b"a" * 32) as first,
            store_factory(cursor_secret=b"b" * 32) as second,
        ):
            query = ListQuery(limit=1)
            cursor = await self._cursor(first, query)
            with pytest.raises(InvalidCursor):
                await second.list(ALICE, query.model_copy(update={"cursor": cursor}))

    async def test_explicit_secret_replaces_the_default_one(
        self, store_factory: StoreFactory
    ) -> None:
        """A store given a cursor_secret rejects cursors signed with the default secret."""
        async with store_factory() as default, store_factory(cursor_secret=b"e" * 32) as explicit:
            query = ListQuery(limit=1)
            cursor = await self._cursor(default, query)
            with pytest.raises(InvalidCursor):
                await explicit.list(ALICE, query.model_copy(update={"cursor": cursor}))

    async def test_stores_on_one_database_share_cursors(
        self, backend: str, store_factory: StoreFactory
    ) -> None:
        """Without a configured secret, SQL stores on one database (several processes,
        or a restart) accept each other's cursors: the secret is kept in the database."""
        if backend == "memory":
            pytest.skip("a memory store has no database to keep its secret in")
        async with store_factory() as first, store_factory() as second:
            query = ListQuery(sort="-title", limit=2)
            cursor = await self._cursor(first, query)
            follow = query.model_copy(update={"cursor": cursor})
            assert await second.list(ALICE, follow) == await first.list(ALICE, follow)
            assert [task.title for task in (await second.list(ALICE, follow)).items] == ["c", "b"]

    async def test_secret_shorter_than_16_bytes_is_refused(
        self, store_factory: StoreFactory
    ) -> None:
        """A cursor secret too short to be safe is a ValueError when the store opens."""
        with pytest.raises(ValueError, match="16 bytes"):
            async with store_factory(cursor_secret=b"short"):
                pass  # pragma: no cover


async def test_task_ids_are_plain_uuids(store: TaskStore) -> None:
    """Ids come back as ``uuid.UUID`` itself, not a driver's subclass, so any JSON
    encoder that knows UUIDs (orjson included) can serialise a task."""
    created = await store.create(ALICE, TaskCreate(title="t"))
    for task in (await store.get(ALICE, created.id), (await store.list(ALICE)).items[0]):
        assert type(task.id) is UUID
        assert orjson.loads(orjson.dumps(task.model_dump()))["id"] == str(created.id)


async def test_list_fields_are_fresh_plain_values(store: TaskStore) -> None:
    """``list_fields`` gives each task's fields by name: a UUID id (a driver's subclass
    may do), aware timestamps, equal to the ``Task``; each dict is the caller's own, so
    changing it changes nothing stored."""
    created = await store.create(ALICE, TaskCreate(title="t", description="d"))
    (fields,), cursor = await store.list_fields(ALICE)
    assert cursor is None
    assert isinstance(fields["id"], UUID)
    assert fields["created_at"].utcoffset() == timedelta(0)
    assert Task.model_validate(fields) == created
    # Plain str names: orjson, which serializes pages over HTTP, refuses str subclasses
    # as keys, whatever its default does with values (such as a driver's UUID).
    assert {type(name) for name in fields} == {str}
    assert orjson.loads(orjson.dumps(fields, default=str))["title"] == "t"
    fields["title"] = "changed"
    del fields["version"]
    assert (await store.list_fields(ALICE)).items[0] == created.model_dump()
    assert await store.get(ALICE, created.id) == created
