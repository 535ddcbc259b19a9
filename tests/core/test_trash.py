"""The trash ("Trash" in the contract) through the library, on every backend: a
deleted task is absent everywhere but the trash, which lists, restores and purges it;
and on PostgreSQL, the retention purge runs one at a time and never waits for a
request."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import uuid4

import asyncpg
import pytest

from tests.backends import postgres_url
from tests.conftest import StoreFactory
from tests.values import ALICE, BOB, EPOCH_2024, SteppingClock
from todo_core import (
    InvalidCursor,
    ListQuery,
    TagQuery,
    TaskCreate,
    TaskNotFound,
    TaskPatch,
    TaskReplace,
    TaskStore,
)
from todo_core.feed import TrashQuery


async def trashed_ids(store: TaskStore, user_id: str = ALICE, limit: int = 100) -> list[object]:
    """The ids of the user's whole trash in its order, page by page."""
    ids: list[object] = []
    query = TrashQuery(limit=limit)
    while True:
        page = await store.trash(user_id, query)
        assert len(page.items) <= limit
        ids += [task.id for task in page.items]
        if page.next_cursor is None:
            return ids
        query = TrashQuery(limit=limit, cursor=page.next_cursor)


class TestDelete:
    async def test_answers_the_task_as_it_was(self, store: TaskStore) -> None:
        """DELETE answers as in v1: the task as it was, same updated_at and version,
        without deleted_at."""
        task = await store.create(ALICE, TaskCreate(title="going", tags=["home"]))
        gone = await store.delete(ALICE, task.id)
        assert gone == task
        assert "deleted_at" not in gone.model_dump()

    async def test_the_task_is_absent_everywhere_but_the_trash(self, store: TaskStore) -> None:
        task = await store.create(ALICE, TaskCreate(title="going", tags=["home"]))
        kept = await store.create(ALICE, TaskCreate(title="kept", tags=["work"]))
        await store.delete(ALICE, task.id)
        with pytest.raises(TaskNotFound):
            await store.get(ALICE, task.id)
        for write in (
            store.patch(ALICE, task.id, TaskPatch(title="x")),
            store.patch(ALICE, task.id, TaskPatch(completed=True), expected_version=1),
            store.replace(ALICE, task.id, TaskReplace(title="x")),
            store.delete(ALICE, task.id),
            store.delete(ALICE, task.id, expected_version=1),
        ):
            with pytest.raises(TaskNotFound):
                await write
        assert [t.id for t in (await store.list(ALICE)).items] == [kept.id]
        assert [t.id for t in (await store.list(ALICE, ListQuery(tag=("home",)))).items] == []
        assert [(c.tag, c.count) for c in (await store.list_tags(ALICE, TagQuery())).items] == [
            ("work", 1)
        ]
        (trashed,) = (await store.trash(ALICE)).items
        assert trashed.model_dump(exclude={"deleted_at"}) == task.model_dump()

    async def test_a_keyed_create_still_replays_after_its_task_is_deleted(
        self, store: TaskStore
    ) -> None:
        created = await store.create_once(ALICE, TaskCreate(title="once"), key="k")
        await store.delete(ALICE, created.task.id)
        again = await store.create_once(ALICE, TaskCreate(title="once"), key="k")
        assert (again.task, again.replayed) == (created.task, True)
        assert (await store.list(ALICE)).items == []


class TestListing:
    async def test_most_recently_deleted_first(self, store_factory: StoreFactory) -> None:
        clock = SteppingClock(EPOCH_2024, timedelta(seconds=1))
        async with store_factory(clock=clock) as store:
            tasks = [await store.create(ALICE, TaskCreate(title=f"t{n}")) for n in range(4)]
            for task in (tasks[2], tasks[0], tasks[3]):
                await store.delete(ALICE, task.id)
            page = await store.trash(ALICE)
            assert [t.id for t in page.items] == [tasks[3].id, tasks[0].id, tasks[2].id]
            times = [t.deleted_at for t in page.items]
            assert times == sorted(times, reverse=True)
            assert len(set(times)) == 3

    async def test_equal_times_by_id_descending_across_pages(
        self, store_factory: StoreFactory
    ) -> None:
        """A stalled clock deletes at one instant: the ids decide, descending, and
        pages of any size walk them once each."""
        clock = SteppingClock(EPOCH_2024)
        async with store_factory(clock=clock) as store:
            tasks = [await store.create(ALICE, TaskCreate(title=f"t{n}")) for n in range(5)]
            for task in tasks:
                await store.delete(ALICE, task.id)
            later = await store.create(ALICE, TaskCreate(title="later"))
            clock.now += timedelta(seconds=1)
            await store.delete(ALICE, later.id)
            expected = [later.id, *sorted((t.id for t in tasks), reverse=True)]
            for limit in (1, 2, 3, 100):
                assert await trashed_ids(store, limit=limit) == expected

    async def test_users_have_trashes_of_their_own(self, store: TaskStore) -> None:
        mine = await store.create(ALICE, TaskCreate(title="mine"))
        await store.delete(ALICE, mine.id)
        assert (await store.trash(BOB)).items == []
        for call in (store.restore(BOB, mine.id), store.purge(BOB, mine.id)):
            with pytest.raises(TaskNotFound):
                await call
        assert await store.empty_trash(BOB) == 0
        assert await trashed_ids(store) == [mine.id]

    async def test_a_cursor_serves_its_user_only(self, store: TaskStore) -> None:
        for n in range(2):
            task = await store.create(ALICE, TaskCreate(title=f"t{n}"))
            await store.delete(ALICE, task.id)
        cursor = (await store.trash(ALICE, TrashQuery(limit=1))).next_cursor
        assert cursor is not None
        with pytest.raises(InvalidCursor):
            await store.trash(BOB, TrashQuery(cursor=cursor))
        with pytest.raises(InvalidCursor):
            await store.trash(ALICE, TrashQuery(cursor=cursor[:-2]))


class TestRestore:
    async def test_same_id_later_updated_at(self, store: TaskStore) -> None:
        task = await store.create(ALICE, TaskCreate(title="back", tags=["home"]))
        await store.delete(ALICE, task.id)
        restored = await store.restore(ALICE, task.id)
        assert restored.id == task.id
        assert restored.updated_at > task.updated_at
        assert restored.version > task.version
        assert restored.model_dump(exclude={"updated_at", "version"}) == task.model_dump(
            exclude={"updated_at", "version"}
        )
        assert await store.get(ALICE, task.id) == restored
        assert (await store.trash(ALICE)).items == []
        assert [(c.tag, c.count) for c in (await store.list_tags(ALICE)).items] == [("home", 1)]

    async def test_only_a_trashed_task_can_be_restored(self, store: TaskStore) -> None:
        live = await store.create(ALICE, TaskCreate(title="live"))
        gone = await store.create(ALICE, TaskCreate(title="gone"))
        await store.delete(ALICE, gone.id)
        await store.purge(ALICE, gone.id)
        for task_id in (live.id, gone.id, uuid4()):
            with pytest.raises(TaskNotFound):
                await store.restore(ALICE, task_id)
        assert await store.get(ALICE, live.id) == live

    async def test_a_restored_task_can_be_deleted_again(self, store: TaskStore) -> None:
        task = await store.create(ALICE, TaskCreate(title="again"))
        await store.delete(ALICE, task.id)
        restored = await store.restore(ALICE, task.id)
        assert await store.delete(ALICE, task.id, expected_version=restored.version) == restored
        (trashed,) = (await store.trash(ALICE)).items
        assert trashed.model_dump(exclude={"deleted_at"}) == restored.model_dump()


class TestPurge:
    async def test_answers_the_task_as_the_trash_showed_it(self, store: TaskStore) -> None:
        task = await store.create(ALICE, TaskCreate(title="secret", description="words"))
        await store.delete(ALICE, task.id)
        (shown,) = (await store.trash(ALICE)).items
        assert await store.purge(ALICE, task.id) == shown
        assert (await store.trash(ALICE)).items == []
        for call in (store.purge(ALICE, task.id), store.restore(ALICE, task.id)):
            with pytest.raises(TaskNotFound):
                await call
        with pytest.raises(TaskNotFound):
            await store.get(ALICE, task.id)

    async def test_a_live_task_cannot_be_purged(self, store: TaskStore) -> None:
        task = await store.create(ALICE, TaskCreate(title="live"))
        with pytest.raises(TaskNotFound):
            await store.purge(ALICE, task.id)
        assert await store.get(ALICE, task.id) == task

    async def test_empty_trash_purges_every_trashed_task(self, store: TaskStore) -> None:
        tasks = [await store.create(ALICE, TaskCreate(title=f"t{n}")) for n in range(3)]
        for task in tasks[:2]:
            await store.delete(ALICE, task.id)
        theirs = await store.create(BOB, TaskCreate(title="theirs"))
        await store.delete(BOB, theirs.id)
        assert await store.empty_trash(ALICE) == 2
        assert await store.empty_trash(ALICE) == 0
        assert (await store.trash(ALICE)).items == []
        assert [t.id for t in (await store.list(ALICE)).items] == [tasks[2].id]
        assert await trashed_ids(store, BOB) == [theirs.id]


@pytest.mark.postgres
class TestRetentionPurgeOnPostgres:
    """The retention purge beside requests and other workers, on PostgreSQL."""

    @pytest.fixture
    def backend(self) -> str:
        return "postgres"

    async def test_one_purge_at_a_time(self, store_factory: StoreFactory) -> None:
        """While another worker's purge holds the purge lock, a purge deletes nothing
        and returns at once; after it, the purge does the work."""
        clock = SteppingClock(EPOCH_2024)
        async with store_factory(clock=clock, retention=timedelta(days=1)) as store:
            task = await store.create(ALICE, TaskCreate(title="old"))
            await store.delete(ALICE, task.id)
            clock.now += timedelta(days=2)
            other = await asyncpg.connect(postgres_url())
            try:
                async with other.transaction():
                    await other.execute("SELECT pg_advisory_xact_lock(28880, 1)")
                    assert await asyncio.wait_for(store.purge_expired(), 2) == 0
                assert await store.purge_expired() == 1
            finally:
                await other.close()

    async def test_rows_a_request_holds_are_skipped_not_waited_for(
        self, store_factory: StoreFactory
    ) -> None:
        clock = SteppingClock(EPOCH_2024)
        async with store_factory(clock=clock, retention=timedelta(days=1)) as store:
            held, free = [await store.create(ALICE, TaskCreate(title=t)) for t in ("held", "free")]
            for task in (held, free):
                await store.delete(ALICE, task.id)
            clock.now += timedelta(days=2)
            other = await asyncpg.connect(postgres_url())
            try:
                async with other.transaction():
                    await other.execute("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", held.id)
                    assert await asyncio.wait_for(store.purge_expired(), 2) == 1
                assert await store.purge_expired() == 1
            finally:
                await other.close()
