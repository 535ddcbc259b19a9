"""The change feed ("Sync: the change feed" in the contract) through the library, on
every backend: what moves it, what each page holds and in which order, its tokens, and
the promise that a client following it ends with exactly the server's tasks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.backends import BACKEND_OPTIONS, backend_url
from tests.conftest import StoreFactory
from tests.replica import Replica
from tests.values import ALICE, BOB, DUE_INSTANTS, EPOCH_2024, SteppingClock
from todo_core import ListQuery, TaskCreate, TaskPatch, TaskReplace, TaskStore, open_store
from todo_core.errors import InvalidSyncToken, SyncTokenExpired, TaskNotFound
from todo_core.feed import Change, Deleted, Upserted

DAY = timedelta(days=1)


def kinds(items: list[Change]) -> list[tuple[str, Any]]:
    """A page as ("upsert", title) and ("delete", id) pairs, in its order."""
    return [
        ("upsert", change.task.title)
        if isinstance(change, Upserted)
        else ("delete", change.task_id)
        for change in items
    ]


class TestWithoutSince:
    async def test_a_token_for_now_and_nothing_else(self, store: TaskStore) -> None:
        """Without ``since``: no items, nothing more, and a token from which the feed
        holds exactly what was written after it."""
        before = await store.create(ALICE, TaskCreate(title="before"))
        page = await store.changes(ALICE)
        assert (page.items, page.has_more) == ([], False)
        assert (await store.changes(ALICE, page.next_since)).items == []
        after = await store.create(ALICE, TaskCreate(title="after"))
        items = (await store.changes(ALICE, page.next_since)).items
        assert [change.task_id for change in items] == [after.id]
        assert before.id != after.id

    async def test_a_user_without_tasks_has_a_feed(self, store: TaskStore) -> None:
        page = await store.changes("nobody-yet")
        task = await store.create("nobody-yet", TaskCreate(title="first"))
        assert [c.task_id for c in (await store.changes("nobody-yet", page.next_since)).items] == [
            task.id
        ]


class TestWhatMovesTheFeed:
    async def test_every_write_is_reported_with_its_outcome(self, store: TaskStore) -> None:
        """create, keyed create, replace, patch, delete and restore each put the task at
        the end of the feed, as the write left it."""
        token = (await store.changes(ALICE)).next_since
        first = await store.create(ALICE, TaskCreate(title="created"))
        keyed = (await store.create_once(ALICE, TaskCreate(title="keyed"), key="k1")).task
        page = await store.changes(ALICE, token)
        assert kinds(page.items) == [("upsert", "created"), ("upsert", "keyed")]
        replaced = await store.replace(ALICE, first.id, TaskReplace(title="replaced"))
        page = await store.changes(ALICE, token)
        assert kinds(page.items) == [("upsert", "keyed"), ("upsert", "replaced")]
        assert page.items[-1] == Upserted(replaced, page.items[-1].token)
        patched = await store.patch(ALICE, keyed.id, TaskPatch(title="patched"))
        assert kinds((await store.changes(ALICE, token)).items) == [
            ("upsert", "replaced"),
            ("upsert", "patched"),
        ]
        gone = await store.delete(ALICE, replaced.id)
        page = await store.changes(ALICE, token)
        assert kinds(page.items) == [("upsert", "patched"), ("delete", gone.id)]
        deleted = page.items[-1]
        assert isinstance(deleted, Deleted)
        (trashed,) = (await store.trash(ALICE)).items
        assert deleted.deleted_at == trashed.deleted_at
        restored = await store.restore(ALICE, gone.id)
        page = await store.changes(ALICE, token)
        assert kinds(page.items) == [("upsert", "patched"), ("upsert", "replaced")]
        assert [c.task for c in page.items if isinstance(c, Upserted)] == [patched, restored]

    async def test_a_keyed_replay_writes_nothing(self, store: TaskStore) -> None:
        await store.create_once(ALICE, TaskCreate(title="once"), key="k")
        token = (await store.changes(ALICE)).next_since
        assert (await store.create_once(ALICE, TaskCreate(title="once"), key="k")).replayed
        assert (await store.changes(ALICE, token)).items == []

    async def test_a_completed_recurring_task_comes_before_its_successor(
        self, store: TaskStore
    ) -> None:
        """Completing a recurring task reports the task, then the successor its write
        created, both as stored."""
        task = await store.create(
            ALICE, TaskCreate(title="water", recurrence="weekly", due_at=DUE_INSTANTS[0])
        )
        token = (await store.changes(ALICE)).next_since
        done = await store.patch(ALICE, task.id, TaskPatch(completed=True))
        assert done.next_occurrence_id is not None
        successor = await store.get(ALICE, done.next_occurrence_id)
        items = (await store.changes(ALICE, token)).items
        assert [c.task for c in items if isinstance(c, Upserted)] == [done, successor]
        assert len(items) == 2

    async def test_a_purge_is_not_a_change(self, store: TaskStore) -> None:
        """The feed reported the deletion when the task was trashed; purging it, one by
        one or by emptying the trash, adds nothing after that."""
        one = await store.create(ALICE, TaskCreate(title="one"))
        two = await store.create(ALICE, TaskCreate(title="two"))
        await store.delete(ALICE, one.id)
        await store.delete(ALICE, two.id)
        token = (await store.changes(ALICE)).next_since
        await store.purge(ALICE, one.id)
        assert await store.empty_trash(ALICE) == 1
        assert (await store.changes(ALICE, token)).items == []

    async def test_failed_writes_move_nothing(self, store: TaskStore) -> None:
        task = await store.create(ALICE, TaskCreate(title="kept"))
        token = (await store.changes(ALICE)).next_since
        with pytest.raises(Exception, match="version"):
            await store.patch(ALICE, task.id, TaskPatch(title="x"), expected_version=7)
        with pytest.raises(TaskNotFound):
            await store.restore(ALICE, task.id)
        assert (await store.changes(ALICE, token)).items == []


class TestPages:
    async def test_each_task_once_at_its_latest_change(self, store: TaskStore) -> None:
        """A task written several times appears once, at the place of its latest
        write, with its latest state."""
        token = (await store.changes(ALICE)).next_since
        a = await store.create(ALICE, TaskCreate(title="a"))
        await store.create(ALICE, TaskCreate(title="b"))
        await store.patch(ALICE, a.id, TaskPatch(title="a2"))
        c = await store.create(ALICE, TaskCreate(title="c"))
        await store.patch(ALICE, c.id, TaskPatch(description="more"))
        page = await store.changes(ALICE, token)
        assert kinds(page.items) == [("upsert", "b"), ("upsert", "a2"), ("upsert", "c")]
        assert page.items[-1] == Upserted(await store.get(ALICE, c.id), page.items[-1].token)

    async def test_pages_continue_where_the_last_ended(self, store: TaskStore) -> None:
        """``limit`` pages the feed: ``has_more`` while more is there, ``next_since``
        the last item's token then; a task reappears only if it changed again."""
        token = (await store.changes(ALICE)).next_since
        tasks = [await store.create(ALICE, TaskCreate(title=f"t{n}")) for n in range(5)]
        first = await store.changes(ALICE, token, limit=2)
        assert (kinds(first.items), first.has_more) == ([("upsert", "t0"), ("upsert", "t1")], True)
        assert first.next_since == first.items[-1].token
        await store.patch(ALICE, tasks[0].id, TaskPatch(title="t0 again"))
        rest = await store.changes(ALICE, first.next_since, limit=500)
        assert kinds(rest.items) == [
            ("upsert", "t2"),
            ("upsert", "t3"),
            ("upsert", "t4"),
            ("upsert", "t0 again"),
        ]
        assert rest.has_more is False
        assert (await store.changes(ALICE, rest.next_since)).items == []

    async def test_each_item_token_resumes_after_it(self, store: TaskStore) -> None:
        token = (await store.changes(ALICE)).next_since
        for n in range(4):
            await store.create(ALICE, TaskCreate(title=f"t{n}"))
        items = (await store.changes(ALICE, token)).items
        for index, change in enumerate(items):
            after = (await store.changes(ALICE, change.token)).items
            assert after == items[index + 1 :]

    @pytest.mark.parametrize("limit", [0, 501, -1])
    async def test_a_limit_outside_1_to_500_is_refused(self, store: TaskStore, limit: int) -> None:
        token = (await store.changes(ALICE)).next_since
        with pytest.raises(ValidationError):
            await store.changes(ALICE, token, limit=limit)

    async def test_users_have_feeds_of_their_own(self, store: TaskStore) -> None:
        alice_token = (await store.changes(ALICE)).next_since
        bob_token = (await store.changes(BOB)).next_since
        mine = await store.create(ALICE, TaskCreate(title="mine"))
        await store.delete(ALICE, mine.id)
        assert (await store.changes(BOB, bob_token)).items == []
        theirs = await store.create(BOB, TaskCreate(title="theirs"))
        items = (await store.changes(ALICE, alice_token)).items
        assert [c.task_id for c in items] == [mine.id]
        assert [c.task_id for c in (await store.changes(BOB, bob_token)).items] == [theirs.id]


class TestTokens:
    async def test_another_users_token_is_refused(self, store: TaskStore) -> None:
        token = (await store.changes(ALICE)).next_since
        with pytest.raises(InvalidSyncToken):
            await store.changes(BOB, token)

    async def test_a_tampered_token_is_refused(self, store: TaskStore) -> None:
        await store.create(ALICE, TaskCreate(title="x"))
        token = (await store.changes(ALICE)).next_since
        payload, mac = token.split(".")
        flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
        for bad in (flipped + "." + mac, token + "x", "", "not a token", token.replace(".", "")):
            with pytest.raises(InvalidSyncToken):
                await store.changes(ALICE, bad)

    async def test_a_list_cursor_is_not_a_token(self, store: TaskStore) -> None:
        for n in range(2):
            await store.create(ALICE, TaskCreate(title=f"t{n}"))
        cursor = (await store.list(ALICE, ListQuery(limit=1))).next_cursor
        assert cursor is not None
        with pytest.raises(InvalidSyncToken):
            await store.changes(ALICE, cursor)

    async def test_tokens_outlive_the_store(
        self, store_factory: StoreFactory, backend: str, tmp_path: Path
    ) -> None:
        """A token stays valid for the same database opened again (another worker, a
        restart)."""
        if backend == "memory":
            pytest.skip("a memory store keeps nothing across opening it again")
        async with store_factory() as store:
            token = (await store.changes(ALICE)).next_since
            task = await store.create(ALICE, TaskCreate(title="written"))
        options: Any = BACKEND_OPTIONS.get(backend, {})
        async with open_store(backend_url(backend, tmp_path), **options) as store:
            assert [c.task_id for c in (await store.changes(ALICE, token)).items] == [task.id]


class TestExpiry:
    async def test_a_position_older_than_the_window_expires(
        self, store_factory: StoreFactory
    ) -> None:
        """A token is refused with SyncTokenExpired once its position is older than
        the retention window: by the position's age, not the token's."""
        clock = SteppingClock(EPOCH_2024)
        async with store_factory(clock=clock, retention=30 * DAY) as store:
            start = (await store.changes(ALICE)).next_since
            await store.create(ALICE, TaskCreate(title="old"))
            clock.now += 20 * DAY
            page = await store.changes(ALICE, start)  # handed out now, for a change 20 days old
            (item,) = page.items
            clock.now += 10 * DAY + timedelta(microseconds=1)
            for expired in (start, item.token):
                with pytest.raises(SyncTokenExpired):
                    await store.changes(ALICE, expired)
            # The end of the feed as read 10 days ago is a younger position.
            assert (await store.changes(ALICE, page.next_since)).items == []

    async def test_exactly_at_the_window_a_token_still_serves(
        self, store_factory: StoreFactory
    ) -> None:
        clock = SteppingClock(EPOCH_2024)
        async with store_factory(clock=clock, retention=DAY) as store:
            token = (await store.changes(ALICE)).next_since
            clock.now += DAY
            assert (await store.changes(ALICE, token)).items == []
            clock.now += timedelta(microseconds=1)
            with pytest.raises(SyncTokenExpired):
                await store.changes(ALICE, token)


class TestDeletionsAreReported:
    async def test_a_purged_task_is_still_reported_deleted(self, store: TaskStore) -> None:
        """To every token from before its deletion, a task trashed then purged (or its
        trash emptied) is reported deleted, at the time it was trashed."""
        token = (await store.changes(ALICE)).next_since
        one = await store.create(ALICE, TaskCreate(title="one"))
        two = await store.create(ALICE, TaskCreate(title="two"))
        await store.delete(ALICE, one.id)
        await store.delete(ALICE, two.id)
        trashed = {task.id: task.deleted_at for task in (await store.trash(ALICE)).items}
        await store.purge(ALICE, one.id)
        await store.empty_trash(ALICE)
        items = (await store.changes(ALICE, token)).items
        assert [(c.task_id, getattr(c, "deleted_at", None)) for c in items] == [
            (one.id, trashed[one.id]),
            (two.id, trashed[two.id]),
        ]
        assert all(isinstance(change, Deleted) for change in items)

    async def test_a_task_created_and_deleted_between_reads(self, store: TaskStore) -> None:
        replica = await Replica.start(store, ALICE)
        task = await store.create(ALICE, TaskCreate(title="brief"))
        await store.delete(ALICE, task.id)
        page = await replica.read(store)
        assert kinds(page.items) == [("delete", task.id)]
        await replica.matches(store)

    async def test_past_the_window_the_deletion_is_forgotten(
        self, store_factory: StoreFactory
    ) -> None:
        """purge_expired forgets tasks trashed before the window, purged or not; those
        trashed within it stay, in the trash and in the feed."""
        clock = SteppingClock(EPOCH_2024)
        async with store_factory(clock=clock, retention=30 * DAY) as store:
            old = [await store.create(ALICE, TaskCreate(title=f"old {n}")) for n in range(3)]
            for task in old:
                await store.delete(ALICE, task.id)
            await store.purge(ALICE, old[0].id)
            clock.now += 20 * DAY
            token = (await store.changes(ALICE)).next_since
            young = await store.create(ALICE, TaskCreate(title="young"))
            await store.delete(ALICE, young.id)
            clock.now += 10 * DAY + timedelta(microseconds=1)
            assert await store.purge_expired(limit=2) == 2
            assert await store.purge_expired() == 1
            assert await store.purge_expired() == 0
            assert [task.id for task in (await store.trash(ALICE)).items] == [young.id]
            with pytest.raises(TaskNotFound):
                await store.restore(ALICE, old[1].id)
            assert [c.task_id for c in (await store.changes(ALICE, token)).items] == [young.id]


# A step of a client's session: which write, on which of the tasks.
OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["create", "patch", "complete", "delete", "restore", "purge", "read"]),
        st.integers(min_value=0, max_value=7),
        st.integers(min_value=1, max_value=4),
    ),
    max_size=30,
)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=OPERATIONS)
async def test_a_follower_ends_with_the_tasks(
    store_factory: StoreFactory, steps: list[Any]
) -> None:
    """Any sequence of writes, with reads of the feed between them in pages of any size:
    once drained, the follower's copy equals the user's tasks, every field. Bob's
    writes in between never reach Alice's copy."""
    async with store_factory() as store:
        await store.create(ALICE, TaskCreate(title="before the token"))
        replica = await Replica.start(store, ALICE)
        for operation, pick, limit in steps:
            await apply_step(store, replica, operation, pick, limit)
            await store.create(BOB, TaskCreate(title="noise"))
        await replica.drain(store, limit=3)
        await replica.matches(store)


async def apply_step(
    store: TaskStore, replica: Replica, operation: str, pick: int, limit: int
) -> None:
    live = sorted((await store.list(ALICE, ListQuery(limit=100))).items, key=lambda t: t.id)
    trashed = sorted((await store.trash(ALICE)).items, key=lambda t: t.id)
    if operation == "read":
        await replica.read(store, limit)
    elif operation == "create" or (operation in ("patch", "complete", "delete") and not live):
        await store.create(
            ALICE, TaskCreate(title=f"t{pick}", recurrence="daily", due_at=DUE_INSTANTS[1])
        )
    elif operation == "patch":
        await store.patch(ALICE, live[pick % len(live)].id, TaskPatch(title=f"p{pick}"))
    elif operation == "complete":
        task = live[pick % len(live)]
        await store.patch(ALICE, task.id, TaskPatch(completed=not task.completed))
    elif operation == "delete":
        await store.delete(ALICE, live[pick % len(live)].id)
    elif trashed and operation == "restore":
        await store.restore(ALICE, trashed[pick % len(trashed)].id)
    elif trashed:
        await store.purge(ALICE, trashed[pick % len(trashed)].id)
