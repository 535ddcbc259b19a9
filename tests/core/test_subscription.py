"""``todo_core.subscribe``: following a user's feed as it moves, on every backend.

What a subscriber relies on: every change after its token arrives once, in feed order,
each with a token that resumes after it; changes made while it waits wake it; a bad
or expired token is refused when the subscription opens; waiting with a timeout and
closing never lose anything.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.backends import BACKENDS
from tests.conftest import StoreFactory
from tests.listing import walk
from tests.values import ALICE, BOB, SteppingClock
from todo_core import (
    MemoryTaskStore,
    StoreUnavailable,
    Task,
    TaskCreate,
    TaskPatch,
    TaskStore,
    subscribe,
)
from todo_core.errors import InvalidSyncToken, SyncTokenExpired
from todo_core.feed import Change, ChangePage, Deleted, Upserted

# Long enough for a wake-up through any backend, short enough to keep the suite quick.
WAKE_SECONDS = 2.0


def applied(replica: dict[UUID, Task], change: Change) -> None:
    """A client's copy after ``change``: upserts by id, deletes remove."""
    if isinstance(change, Upserted):
        replica[change.task.id] = change.task
    else:
        replica.pop(change.task_id, None)


async def test_every_change_after_the_token_arrives_then_each_new_one(store: TaskStore) -> None:
    before = await store.create(ALICE, TaskCreate(title="before"))
    token = (await store.changes(ALICE)).next_since
    first = await store.create(ALICE, TaskCreate(title="first"))
    await store.create(BOB, TaskCreate(title="not alice's"))
    second = await store.patch(ALICE, before.id, TaskPatch(title="renamed"))
    async with subscribe(store, ALICE, token) as changes:
        got = [await changes.next(WAKE_SECONDS), await changes.next(WAKE_SECONDS)]
        assert [c.task.id for c in got if isinstance(c, Upserted)] == [first.id, second.id]
        assert isinstance(got[1], Upserted)
        assert got[1].task == second
        gone = await store.delete(ALICE, first.id)
        deleted = await changes.next(WAKE_SECONDS)
        assert isinstance(deleted, Deleted)
        assert deleted.task_id == gone.id


async def test_without_a_token_it_starts_now(store: TaskStore) -> None:
    await store.create(ALICE, TaskCreate(title="old news"))
    async with subscribe(store, ALICE) as changes:
        assert await changes.next(0.1) is None
        new = await store.create(ALICE, TaskCreate(title="news"))
        change = await changes.next(WAKE_SECONDS)
    assert isinstance(change, Upserted)
    assert change.task == new


async def test_a_write_while_waiting_wakes_the_subscriber(store: TaskStore) -> None:
    async with subscribe(store, ALICE) as changes:
        waiting = asyncio.create_task(changes.next(None))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        task = await store.create(ALICE, TaskCreate(title="wake up"))
        change = await asyncio.wait_for(waiting, WAKE_SECONDS)
    assert isinstance(change, Upserted)
    assert change.task.id == task.id


@pytest.mark.parametrize("token", ["", "not a token", "x" * 300])
async def test_a_malformed_token_is_refused_at_once(store: TaskStore, token: str) -> None:
    with pytest.raises(InvalidSyncToken):
        async with subscribe(store, ALICE, token):
            pytest.fail("opened")
    assert ALICE not in store.signal.watched()


async def test_another_users_token_is_refused(store: TaskStore) -> None:
    token = (await store.changes(BOB)).next_since
    with pytest.raises(InvalidSyncToken):
        async with subscribe(store, ALICE, token):
            pytest.fail("opened")


async def test_an_expired_token_is_refused_at_once(store_factory: StoreFactory) -> None:
    clock = SteppingClock()
    async with store_factory(clock=clock, retention=timedelta(days=1)) as store:
        token = (await store.changes(ALICE)).next_since
        clock.now += timedelta(days=1, seconds=1)
        with pytest.raises(SyncTokenExpired):
            async with subscribe(store, ALICE, token):
                pytest.fail("opened")


async def test_a_quiet_subscription_outlives_the_retention_window(
    store_factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing changes for longer than the window; the first change after it arrives."""
    monkeypatch.setattr("todo_core.events.REFRESH_SECONDS", 0.01)
    clock = SteppingClock()
    async with (
        store_factory(clock=clock, retention=timedelta(days=1)) as store,
        subscribe(store, ALICE) as changes,
    ):
        for _ in range(3):  # a day and a half in all, each stretch read through
            clock.now += timedelta(hours=12)
            assert await changes.next(0.1) is None
        task = await store.create(ALICE, TaskCreate(title="after a quiet spell"))
        change = await changes.next(WAKE_SECONDS)
    assert isinstance(change, Upserted)
    assert change.task == task


async def test_a_timeout_loses_nothing(store: TaskStore) -> None:
    async with subscribe(store, ALICE) as changes:
        for _ in range(3):
            assert await changes.next(0.02) is None
        task = await store.create(ALICE, TaskCreate(title="after the timeouts"))
        change = await changes.next(WAKE_SECONDS)
    assert isinstance(change, Upserted)
    assert change.task == task


async def test_a_backlog_longer_than_a_read_arrives_whole_and_in_order(store: TaskStore) -> None:
    token = (await store.changes(ALICE)).next_since
    created = [await store.create(ALICE, TaskCreate(title=f"t{n}")) for n in range(7)]
    async with subscribe(store, ALICE, token, limit=2) as changes:
        got = [await changes.next(WAKE_SECONDS) for _ in created]
        assert await changes.next(0.05) is None
    assert [c.task.id for c in got if isinstance(c, Upserted)] == [t.id for t in created]


async def test_position_resumes_without_loss_or_repeat(store: TaskStore) -> None:
    token = (await store.changes(ALICE)).next_since
    created = [await store.create(ALICE, TaskCreate(title=f"t{n}")) for n in range(5)]
    async with subscribe(store, ALICE, token, limit=3) as changes:
        first = [await changes.next(WAKE_SECONDS) for _ in range(2)]
        position = changes.position
        assert first[-1] is not None
        assert position == first[-1].token
    async with subscribe(store, ALICE, position) as resumed:
        rest = [await resumed.next(WAKE_SECONDS) for _ in range(3)]
        assert await resumed.next(0.05) is None
    ids = [c.task.id for c in [*first, *rest] if isinstance(c, Upserted)]
    assert ids == [t.id for t in created]


async def test_each_changes_token_resumes_after_it(store: TaskStore) -> None:
    token = (await store.changes(ALICE)).next_since
    created = [await store.create(ALICE, TaskCreate(title=f"t{n}")) for n in range(3)]
    async with subscribe(store, ALICE, token) as changes:
        got = [await changes.next(WAKE_SECONDS) for _ in created]
    middle = got[1]
    assert middle is not None
    async with subscribe(store, ALICE, middle.token) as resumed:
        after = await resumed.next(WAKE_SECONDS)
        assert await resumed.next(0.05) is None
    assert isinstance(after, Upserted)
    assert after.task.id == created[2].id


async def test_close_ends_a_waiting_next_and_the_iteration(store: TaskStore) -> None:
    async with subscribe(store, ALICE) as changes:
        waiting = asyncio.create_task(changes.next(None))
        await asyncio.sleep(0.05)
        changes.close()
        assert await asyncio.wait_for(waiting, 1) is None
        assert changes.closed
        assert [change async for change in changes] == []


async def test_iteration_yields_changes_until_closed(store: TaskStore) -> None:
    token = (await store.changes(ALICE)).next_since
    created = [await store.create(ALICE, TaskCreate(title=f"t{n}")) for n in range(3)]
    seen: list[UUID] = []
    async with subscribe(store, ALICE, token) as changes:
        async for change in changes:
            assert isinstance(change, Upserted)
            seen.append(change.task.id)
            if len(seen) == len(created):
                changes.close()
    assert seen == [t.id for t in created]


async def test_the_watch_ends_with_the_block(store: TaskStore) -> None:
    async with subscribe(store, ALICE):
        assert ALICE in store.signal.watched()
    assert ALICE not in store.signal.watched()


async def test_a_failed_read_raises_and_the_next_call_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryTaskStore()
    async with subscribe(store, ALICE) as changes:
        task = await store.create(ALICE, TaskCreate(title="kept"))
        real = store.changes
        calls = 0

        async def failing_once(
            user_id: str, since: str | None = None, *, limit: int = 100
        ) -> ChangePage:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise StoreUnavailable("away")
            return await real(user_id, since, limit=limit)

        monkeypatch.setattr(store, "changes", failing_once)
        with pytest.raises(StoreUnavailable):
            await changes.next(WAKE_SECONDS)
        change = await changes.next(WAKE_SECONDS)
    assert isinstance(change, Upserted)
    assert change.task == task


async def test_concurrent_writers_leave_the_replica_equal_to_the_tasks(store: TaskStore) -> None:
    """Writers of every kind race a subscriber; once they stop, the subscriber's copy
    equals the user's tasks exactly."""
    replica: dict[UUID, Task] = {}
    done = asyncio.Event()

    async def writer(number: int) -> None:
        for step in range(8):
            task = await store.create(ALICE, TaskCreate(title=f"w{number}-{step}"))
            await store.patch(ALICE, task.id, TaskPatch(completed=True))
            if step % 3 == 0:
                await store.delete(ALICE, task.id)
            if step % 6 == 0:
                await store.restore(ALICE, task.id)
            await asyncio.sleep(0)

    async with subscribe(store, ALICE) as changes:

        async def follow() -> None:
            while not done.is_set():
                change = await changes.next(0.05)
                if change is not None:
                    applied(replica, change)

        follower = asyncio.create_task(follow())
        await asyncio.gather(*(writer(n) for n in range(4)))
        done.set()
        await asyncio.wait_for(follower, 30)
        while (change := await changes.next(0.2)) is not None:
            applied(replica, change)
    assert replica == {task.id: task for task in await walk(store, ALICE)}


Operation = tuple[str, int]
OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["create", "patch", "delete", "restore", "read"]), st.integers(0, 5)),
    max_size=30,
)


@given(OPERATIONS)
async def test_any_interleaving_of_writes_and_reads_leaves_an_equal_replica(
    operations: list[Operation],
) -> None:
    """The memory store (the oracle) under every order of writes and partial reads."""
    store = MemoryTaskStore()
    live: list[UUID] = []
    trashed: list[UUID] = []
    replica: dict[UUID, Task] = {}
    async with subscribe(store, ALICE) as changes:
        for kind, pick in operations:
            if kind == "create":
                live.append((await store.create(ALICE, TaskCreate(title=f"t{pick}"))).id)
            elif kind == "patch" and live:
                await store.patch(ALICE, live[pick % len(live)], TaskPatch(title=f"p{pick}"))
            elif kind == "delete" and live:
                task_id = live.pop(pick % len(live))
                await store.delete(ALICE, task_id)
                trashed.append(task_id)
            elif kind == "restore" and trashed:
                task_id = trashed.pop(pick % len(trashed))
                await store.restore(ALICE, task_id)
                live.append(task_id)
            elif kind == "read":
                for _ in range(pick):
                    change = await changes.next(0)
                    if change is not None:
                        applied(replica, change)
        while (change := await changes.next(0)) is not None:
            applied(replica, change)
    assert replica == {task.id: task for task in await walk(store, ALICE)}


# Another store object on the same database: its writes reach this store's signal only
# through the database (LISTEN or the polled feed heads), as another process's would.
@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "memory"], indirect=True)
async def test_a_write_through_another_store_arrives_within_a_second(
    store_factory: StoreFactory,
) -> None:
    async with (
        store_factory() as store,
        store_factory() as other,
        subscribe(store, ALICE) as changes,
    ):
        for title in ("first", "second", "third"):
            started = time.monotonic()
            task = await other.create(ALICE, TaskCreate(title=title))
            change = await changes.next(WAKE_SECONDS)
            assert isinstance(change, Upserted)
            assert change.task == task
            assert time.monotonic() - started < 1.0
