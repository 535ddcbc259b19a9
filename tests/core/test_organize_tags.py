"""A user's tags with their counts (``list_tags``), through every store: code point
order, counts that follow writes, pages and their cursors, and users kept apart."""

from __future__ import annotations

from collections import Counter
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.values import ALICE, BOB, TAG_LISTS, normalized_tags
from todo_core import (
    InvalidCursor,
    ListQuery,
    TagCount,
    TagPage,
    TagQuery,
    TaskCreate,
    TaskPatch,
    TaskReplace,
    TaskStore,
)


def fresh_user() -> str:
    """A user of its own for each example, so that examples sharing a store stay apart."""
    return uuid4().hex


async def every_tag(store: TaskStore, user_id: str, limit: int = 100) -> list[TagCount]:
    """Every page of ``user_id``'s tags, following ``next_cursor``."""
    query = TagQuery(limit=limit)
    tags: list[TagCount] = []
    for _ in range(1000):
        page = await store.list_tags(user_id, query)
        assert len(page.items) <= limit
        tags.extend(page.items)
        if page.next_cursor is None:
            return tags
        assert page.items, "a page with a next_cursor must not be empty"
        query = TagQuery(limit=limit, cursor=page.next_cursor)
    raise AssertionError("the walk did not end")


class TestListTags:
    async def test_no_tasks_no_tags(self, store: TaskStore) -> None:
        assert await store.list_tags(ALICE) == TagPage([], None)

    async def test_counts_in_code_point_order(self, store: TaskStore) -> None:
        """Upper-case and padded input counts under its normalised tag; non-ASCII sorts
        by code point, after ASCII."""
        for tags in (["Work", "home"], [" WORK", "été"], ["zed", "Été", "😀"], ["Zed"], []):
            await store.create(ALICE, TaskCreate(title="t", tags=tags))
        assert await every_tag(store, ALICE) == [
            TagCount("home", 1),
            TagCount("work", 2),
            TagCount("zed", 2),
            TagCount("été", 2),
            TagCount("😀", 1),
        ]

    async def test_counts_follow_writes(self, store: TaskStore) -> None:
        first = await store.create(ALICE, TaskCreate(title="t", tags=["a", "b"]))
        second = await store.create(ALICE, TaskCreate(title="t", tags=["b"]))
        await store.patch(ALICE, first.id, TaskPatch(tags=["c"]))
        assert await every_tag(store, ALICE) == [TagCount("b", 1), TagCount("c", 1)]
        await store.replace(ALICE, second.id, TaskReplace(title="t"))
        assert await every_tag(store, ALICE) == [TagCount("c", 1)]
        await store.delete(ALICE, first.id)
        assert await every_tag(store, ALICE) == []

    async def test_completed_tasks_count(self, store: TaskStore) -> None:
        await store.create(ALICE, TaskCreate(title="t", tags=["a"], completed=True))
        assert await every_tag(store, ALICE) == [TagCount("a", 1)]

    async def test_another_users_tags_are_invisible(self, store: TaskStore) -> None:
        await store.create(ALICE, TaskCreate(title="t", tags=["mine", "shared"]))
        await store.create(BOB, TaskCreate(title="t", tags=["shared", "theirs"]))
        assert await every_tag(store, ALICE) == [TagCount("mine", 1), TagCount("shared", 1)]
        assert await every_tag(store, BOB) == [TagCount("shared", 1), TagCount("theirs", 1)]

    @pytest.mark.parametrize("limit", [1, 2, 3])
    async def test_pages(self, store: TaskStore, limit: int) -> None:
        await store.create(ALICE, TaskCreate(title="t", tags=["d", "c", "b", "a", "e"]))
        first = await store.list_tags(ALICE, TagQuery(limit=limit))
        assert [item.tag for item in first.items] == ["a", "b", "c", "d", "e"][:limit]
        assert first.next_cursor is not None
        assert [item.tag for item in await every_tag(store, ALICE, limit)] == list("abcde")

    async def test_a_full_last_page_has_no_cursor(self, store: TaskStore) -> None:
        await store.create(ALICE, TaskCreate(title="t", tags=["a", "b"]))
        assert (await store.list_tags(ALICE, TagQuery(limit=2))).next_cursor is None

    @settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(tag_lists=st.lists(TAG_LISTS, max_size=8), limit=st.integers(1, 4))
    async def test_counts_every_task_once(
        self, store: TaskStore, tag_lists: list[list[str]], limit: int
    ) -> None:
        user_id = fresh_user()
        for tags in tag_lists:
            await store.create(user_id, TaskCreate(title="t", tags=tags))
        counts = Counter(tag for tags in tag_lists for tag in normalized_tags(tags))
        expected = [TagCount(tag, counts[tag]) for tag in sorted(counts)]
        assert await every_tag(store, user_id, limit) == expected


class TestTagCursors:
    async def cursor(self, store: TaskStore) -> str:
        await store.create(ALICE, TaskCreate(title="t", tags=["a", "b", "c"]))
        await store.create(BOB, TaskCreate(title="t", tags=["a", "b", "c"]))
        page = await store.list_tags(ALICE, TagQuery(limit=1))
        assert page.next_cursor is not None
        return page.next_cursor

    async def test_another_users_cursor_is_refused(self, store: TaskStore) -> None:
        cursor = await self.cursor(store)
        with pytest.raises(InvalidCursor):
            await store.list_tags(BOB, TagQuery(cursor=cursor))

    async def test_a_task_cursor_is_refused(self, store: TaskStore) -> None:
        """A cursor of a task listing is not a tag cursor, nor the other way round."""
        tag_cursor = await self.cursor(store)
        await store.create(ALICE, TaskCreate(title="u"))
        task_cursor = (await store.list(ALICE, ListQuery(limit=1))).next_cursor
        assert task_cursor is not None
        with pytest.raises(InvalidCursor):
            await store.list_tags(ALICE, TagQuery(cursor=task_cursor))
        with pytest.raises(InvalidCursor):
            await store.list(ALICE, ListQuery(cursor=tag_cursor))

    @pytest.mark.parametrize("mangle", ["garbage", "flipped", "empty"])
    async def test_forged_cursors_are_refused(self, store: TaskStore, mangle: str) -> None:
        cursor = await self.cursor(store)
        forged = {
            "garbage": "not-a-cursor",
            "flipped": ("B" if cursor[0] == "A" else "A") + cursor[1:],
            "empty": "",
        }[mangle]
        with pytest.raises(InvalidCursor):
            await store.list_tags(ALICE, TagQuery(cursor=forged))

    async def test_a_cursor_survives_a_deleted_tag(self, store: TaskStore) -> None:
        """The cursor names a position, not a row: the walk goes on after its tag goes."""
        task = await store.create(ALICE, TaskCreate(title="t", tags=["a", "b", "c"]))
        page = await store.list_tags(ALICE, TagQuery(limit=1))
        assert page.next_cursor is not None
        await store.patch(ALICE, task.id, TaskPatch(tags=["b", "c"]))
        rest = await store.list_tags(ALICE, TagQuery(cursor=page.next_cursor))
        assert rest == TagPage([TagCount("b", 1), TagCount("c", 1)], None)
