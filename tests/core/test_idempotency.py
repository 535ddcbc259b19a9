"""Exactly-once creates (``TaskStore.create_once``) on every backend.

The stateful machine (test_stateful.py) mixes keyed and unkeyed creates against a model;
these pin the edges one at a time: spelling, expiry to the microsecond, purging,
refused keys, concurrency inside one process and across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from tests.backends import POSTGRES_BACKENDS, backend_url, open_backend, run_sql, stored_task_count
from tests.conftest import StoreFactory
from tests.listing import walk
from tests.values import ALICE, BOB, EPOCH_2024, SteppingClock
from todo_core import (
    Created,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    StoreError,
    TaskCreate,
    TaskPatch,
    TaskStore,
)
from todo_core.idempotency import IDEMPOTENCY_TTL, fingerprint
from todo_core.schema import idempotency_keys, settings
from todo_core.sql import SqlTaskStore
from todo_core.sqlite import SqliteDatabase

MICROSECOND = timedelta(microseconds=1)
BUY_MILK = TaskCreate(title="Buy milk", description="2 litres")


async def key_count(store: TaskStore) -> int:
    if isinstance(store, SqlTaskStore):
        rows = await run_sql(store, sa.select(sa.func.count()).select_from(idempotency_keys))
        return int(rows[0][0])
    return len(store._keys)  # type: ignore[attr-defined]


def outcome(result: Created | BaseException) -> str:
    if isinstance(result, Created):
        return "replayed" if result.replayed else "created"
    if isinstance(result, IdempotencyKeyInUse):
        return "in use"
    raise result


class TestReplays:
    async def test_first_call_creates_and_a_retry_replays(self, store: TaskStore) -> None:
        first = await store.create_once(ALICE, BUY_MILK, key="k-1")
        again = await store.create_once(ALICE, BUY_MILK, key="k-1")
        assert not first.replayed
        assert again.replayed
        assert again.task == first.task
        assert await store.get(ALICE, first.task.id) == first.task
        assert await walk(store, ALICE) == [first.task]

    async def test_the_same_request_spelled_otherwise_replays(self, store: TaskStore) -> None:
        """The fingerprint is of the validated request, not of its bytes."""
        first = await store.create_once(ALICE, TaskCreate(title="Buy milk"), key="k")
        spelled = TaskCreate.model_validate(
            {"completed": False, "title": "  Buy milk\t", "description": None}
        )
        assert (await store.create_once(ALICE, spelled, key="k")) == Created(first.task, True)
        assert await stored_task_count(store) == 1

    async def test_replays_the_task_as_it_was_created(self, store: TaskStore) -> None:
        """A retry answers what the lost answer said, even after the task changed."""
        first = await store.create_once(ALICE, BUY_MILK, key="k")
        await store.patch(ALICE, first.task.id, TaskPatch(completed=True))
        assert (await store.create_once(ALICE, BUY_MILK, key="k")).task == first.task
        await store.delete(ALICE, first.task.id)
        replay = await store.create_once(ALICE, BUY_MILK, key="k")
        assert replay == Created(first.task, replayed=True)
        assert await walk(store, ALICE) == [], "a replay never brings a task back"

    async def test_replays_every_field_as_created(self, store: TaskStore) -> None:
        """A replay answers the v2 fields too: due date, priority, tags, recurrence,
        time zone, and completed_at (the creation time of a task created completed)."""
        request = TaskCreate(
            title="Pay rent",
            completed=True,
            due_at=EPOCH_2024,
            priority="high",
            tags=["home", "money"],
            recurrence="monthly",
            time_zone="Europe/Paris",
        )
        first = await store.create_once(ALICE, request, key="k")
        assert first.task.completed_at == first.task.created_at
        await store.patch(ALICE, first.task.id, TaskPatch(completed=False))
        replay = await store.create_once(ALICE, request, key="k")
        assert replay == Created(first.task, replayed=True)

    async def test_another_request_with_the_key_is_refused(self, store: TaskStore) -> None:
        first = await store.create_once(ALICE, BUY_MILK, key="k")
        for other in (
            TaskCreate(title="Buy milk"),  # description left out
            TaskCreate(title="Buy milk", description="2 litres", completed=True),
            TaskCreate(title="Buy oat milk", description="2 litres"),
        ):
            with pytest.raises(IdempotencyKeyReused) as refused:
                await store.create_once(ALICE, other, key="k")
            assert refused.value.key == "k"
        assert await walk(store, ALICE) == [first.task]

    async def test_keys_are_per_user(self, store: TaskStore) -> None:
        alices = await store.create_once(ALICE, BUY_MILK, key="k")
        bobs = await store.create_once(BOB, TaskCreate(title="other"), key="k")
        assert not bobs.replayed
        assert bobs.task.user_id == BOB
        assert await walk(store, ALICE) == [alices.task]
        assert await walk(store, BOB) == [bobs.task]

    async def test_unkeyed_creates_are_not_deduplicated(self, store: TaskStore) -> None:
        await store.create(ALICE, BUY_MILK)
        await store.create(ALICE, BUY_MILK)
        assert not (await store.create_once(ALICE, BUY_MILK, key="k")).replayed
        assert await stored_task_count(store) == 3


class TestKeys:
    @pytest.mark.parametrize(
        "key", ["k", "x" * 255, "ключ 🔑", "  spaced  ", "a:b/c=d", "\t"], ids=repr
    )
    async def test_accepts_1_to_255_characters(self, store: TaskStore, key: str) -> None:
        first = await store.create_once(ALICE, BUY_MILK, key=key)
        assert (await store.create_once(ALICE, BUY_MILK, key=key)).task == first.task

    async def test_keys_differing_only_in_case_are_different(self, store: TaskStore) -> None:
        await store.create_once(ALICE, BUY_MILK, key="key")
        assert not (await store.create_once(ALICE, BUY_MILK, key="KEY")).replayed

    @pytest.mark.parametrize(
        "key", ["", "x" * 256, "a\x00b", "a\ud800", None, 7, b"bytes"], ids=repr
    )
    async def test_refuses_other_keys_and_creates_nothing(
        self, store: TaskStore, key: object
    ) -> None:
        with pytest.raises(ValidationError):
            await store.create_once(ALICE, BUY_MILK, key=key)  # type: ignore[arg-type]
        assert await stored_task_count(store) == 0
        assert await key_count(store) == 0

    async def test_refuses_a_bad_user_id(self, store: TaskStore) -> None:
        with pytest.raises(ValidationError):
            await store.create_once("bad user", BUY_MILK, key="k")
        assert await stored_task_count(store) == 0


class TestExpiry:
    async def test_a_key_replays_for_24_hours_then_creates_again(
        self, store_factory: StoreFactory
    ) -> None:
        clock = SteppingClock(EPOCH_2024)
        async with store_factory(clock=clock) as store:
            first = await store.create_once(ALICE, BUY_MILK, key="k")
            clock.now = EPOCH_2024 + IDEMPOTENCY_TTL - MICROSECOND
            assert (await store.create_once(ALICE, BUY_MILK, key="k")).replayed
            clock.now = EPOCH_2024 + IDEMPOTENCY_TTL
            second = await store.create_once(ALICE, BUY_MILK, key="k")
            assert not second.replayed
            assert second.task.id != first.task.id
            # The key now belongs to the second task, for 24 hours from its creation.
            assert (await store.create_once(ALICE, BUY_MILK, key="k")).task == second.task

    async def test_a_dead_key_may_carry_another_request(self, store_factory: StoreFactory) -> None:
        clock = SteppingClock(EPOCH_2024)
        async with store_factory(clock=clock) as store:
            await store.create_once(ALICE, BUY_MILK, key="k")
            clock.now += IDEMPOTENCY_TTL
            other = TaskCreate(title="something else")
            assert (await store.create_once(ALICE, other, key="k")).task.title == other.title

    async def test_purge_deletes_only_dead_keys(self, store_factory: StoreFactory) -> None:
        clock = SteppingClock(EPOCH_2024)
        async with store_factory(clock=clock) as store:
            for number in range(5):
                await store.create_once(ALICE, BUY_MILK, key=f"old-{number}")
            clock.now += timedelta(hours=12)
            live = await store.create_once(BOB, BUY_MILK, key="new")
            clock.now = EPOCH_2024 + IDEMPOTENCY_TTL
            assert await store.purge_idempotency_keys(limit=2) == 2
            assert await store.purge_idempotency_keys() == 3
            assert await store.purge_idempotency_keys() == 0
            assert await key_count(store) == 1
            assert (await store.create_once(BOB, BUY_MILK, key="new")) == Created(live.task, True)
            assert await stored_task_count(store) == 6, "purging keys never deletes tasks"


class TestConcurrency:
    async def test_twenty_at_once_create_one_task(self, store: TaskStore) -> None:
        """A client retrying impatiently: one creates, the rest replay or are told
        the first is still running."""
        results = await asyncio.gather(
            *(store.create_once(ALICE, BUY_MILK, key="k") for _ in range(20)),
            return_exceptions=True,
        )
        outcomes = [outcome(result) for result in results]
        assert outcomes.count("created") == 1
        assert set(outcomes) <= {"created", "replayed", "in use"}
        assert await stored_task_count(store) == 1
        assert (await store.create_once(ALICE, BUY_MILK, key="k")).replayed

    async def test_the_key_is_free_again_after_a_failed_create(self, tmp_path: Path) -> None:
        """A create that failed leaves no claim behind: the retry creates."""
        async with open_backend("sqlite", tmp_path) as store:
            assert isinstance(store, SqlTaskStore)
            refuse = (
                "CREATE TRIGGER refuse BEFORE INSERT ON tasks BEGIN SELECT RAISE(ABORT, 'no'); END"
            )
            await run_sql(store, sa.text(refuse))
            with pytest.raises(StoreError):
                await store.create_once(ALICE, BUY_MILK, key="k")
            assert await key_count(store) == 0, "the claim rolled back with the task"
            await run_sql(store, sa.text("DROP TRIGGER refuse"))
            assert not (await store.create_once(ALICE, BUY_MILK, key="k")).replayed


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        *(pytest.param(name, marks=pytest.mark.postgres) for name in sorted(POSTGRES_BACKENDS)),
    ],
    indirect=True,
)
class TestAcrossProcesses:
    """Two stores on one database stand for two worker processes."""

    async def test_twenty_at_once_through_two_stores_create_one_task(
        self, store_factory: StoreFactory
    ) -> None:
        async with store_factory() as first, store_factory() as second:
            results = await asyncio.gather(
                *(
                    (first if number % 2 else second).create_once(ALICE, BUY_MILK, key="k")
                    for number in range(20)
                ),
                return_exceptions=True,
            )
            outcomes = [outcome(result) for result in results]
            assert outcomes.count("created") == 1, outcomes
            assert await stored_task_count(first) == 1
            assert (await second.create_once(ALICE, BUY_MILK, key="k")).replayed

    async def test_a_failed_transaction_changes_nothing(self, store: TaskStore) -> None:
        """``Database.transaction`` is atomic: when its second statement fails, the
        first is undone, and a write of another caller meanwhile is not."""
        assert isinstance(store, SqlTaskStore)
        created = await store.create(ALICE, TaskCreate(title="first"))
        database = store.database
        values = {
            "user_id": ALICE,
            "id": created.id,  # taken: the second insert fails on the primary key
            "title": "t",
            "title_folded": "t",
            "description": None,
            "description_folded": None,
            "completed": False,
            "created_at": EPOCH_2024,
            "updated_at": EPOCH_2024,
            "version": 1,
        }
        fresh = dict(values, id=uuid4())
        insert = database.statements.insert
        with pytest.raises(StoreError):
            await database.transaction([insert, insert], fresh)
        other = asyncio.ensure_future(store.create(BOB, TaskCreate(title="meanwhile")))
        with pytest.raises(StoreError):
            await database.transaction([insert, insert], fresh)
        await other
        assert [task.title for task in await walk(store, ALICE)] == ["first"]
        assert [task.title for task in await walk(store, BOB)] == ["meanwhile"]

    async def test_a_cancelled_keyed_create_leaves_no_transaction_open(
        self, store_factory: StoreFactory
    ) -> None:
        """A caller cancelled at any point of a keyed create (a client gone, a shutdown)
        must not leave a connection inside BEGIN, where later writes would be
        acknowledged yet never committed."""
        async with store_factory() as store, store_factory() as other:
            for steps in range(12):
                attempt = asyncio.ensure_future(store.create_once(ALICE, BUY_MILK, key=f"k{steps}"))
                for _ in range(steps):
                    await asyncio.sleep(0)
                attempt.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await attempt
                plain = await store.create(BOB, TaskCreate(title=f"after {steps}"))
                # Another store sees only what was committed.
                assert await other.get(BOB, plain.id) == plain, f"cancelled after {steps} steps"


@pytest.mark.postgres
async def test_a_claim_held_by_another_process_is_in_use(tmp_path: Path) -> None:
    """While another process's create holds the key (PostgreSQL's advisory lock), the
    store answers at once that it is in use instead of waiting; afterwards it creates."""
    url = backend_url("postgres", tmp_path)
    async with open_backend("postgres", tmp_path) as store:
        holder = await asyncpg.connect(url)
        try:
            transaction = holder.transaction()
            await transaction.start()
            assert await holder.fetchval(
                "SELECT pg_try_advisory_xact_lock("
                "hashtextextended(concat_ws(' ', $1::text, $2::text), 0))",
                ALICE,
                "k",
            )
            with pytest.raises(IdempotencyKeyInUse):
                await asyncio.wait_for(store.create_once(ALICE, BUY_MILK, key="k"), 5)
            await transaction.rollback()
        finally:
            await holder.close()
        assert not (await store.create_once(ALICE, BUY_MILK, key="k")).replayed
        assert await stored_task_count(store) == 1


def test_the_fingerprint_is_of_the_request_not_its_spelling() -> None:
    base = fingerprint(TaskCreate(title="a"))
    assert fingerprint(TaskCreate.model_validate({"completed": False, "title": " a "})) == base
    assert fingerprint(TaskCreate(title="a", description=None)) == base
    assert fingerprint(TaskCreate(title="a", description="")) != base
    assert fingerprint(TaskCreate(title="A")) != base
    assert fingerprint(TaskCreate(title="a", completed=True)) != base


# What the v1 release stored for TaskCreate(title="a"): a v1 worker's key, retried on
# a v2 worker during a rolling upgrade, must still replay (sha256 of the canonical
# JSON of ["v1", {"completed": false, "description": null, "title": "a"}]).
V1_FINGERPRINT = "c4ea90ca4df71a5f7aaa74d32fced6d7f85fd4bf619fefa5c822c94d3aa57048"


def test_a_request_without_v2_fields_keeps_its_v1_fingerprint() -> None:
    """Fields v2 added count only when set otherwise than by default: a request that
    leaves them all to their defaults hashes as v1 did; one that sets any does not."""
    assert fingerprint(TaskCreate(title="a")) == V1_FINGERPRINT
    explicit_defaults = TaskCreate(title="a", priority="none", tags=[], time_zone="UTC")
    assert fingerprint(explicit_defaults) == V1_FINGERPRINT
    for changed in (
        {"priority": "low"},
        {"tags": ["x"]},
        {"time_zone": "Europe/Paris"},
        {"due_at": EPOCH_2024},
        {"due_at": EPOCH_2024, "recurrence": "daily"},
    ):
        assert fingerprint(TaskCreate(title="a", **changed)) != V1_FINGERPRINT, changed


@pytest.mark.postgres
async def test_purge_skips_keys_being_taken_over_instead_of_waiting(tmp_path: Path) -> None:
    """A dead key that a create is taking over right now (its row locked) is left for a
    later purge; the purge neither waits for that create nor holds it up."""
    clock = SteppingClock(EPOCH_2024)
    async with open_backend("postgres", tmp_path, clock=clock) as store:
        for key in ("busy", "idle-1", "idle-2"):
            await store.create_once(ALICE, BUY_MILK, key=key)
        clock.now += IDEMPOTENCY_TTL
        other = await asyncpg.connect(backend_url("postgres", tmp_path))
        try:
            async with other.transaction():
                await other.execute(
                    "SELECT 1 FROM idempotency_keys WHERE user_id = $1 AND key = 'busy' FOR UPDATE",
                    ALICE,
                )
                purged = await asyncio.wait_for(store.purge_idempotency_keys(), 5)
                assert purged == 2
        finally:
            await other.close()
        assert await store.purge_idempotency_keys() == 1


async def test_a_transaction_left_open_is_rolled_back_before_the_next_write(
    tmp_path: Path,
) -> None:
    """SQLite: should a ROLLBACK itself fail, the next write ends the transaction it left
    open first, rather than joining it and being acknowledged yet never committed."""
    async with open_backend("sqlite", tmp_path) as store, open_backend("sqlite", tmp_path) as other:
        assert isinstance(store, SqlTaskStore)
        assert isinstance(other, SqlTaskStore)
        assert isinstance(store.database, SqliteDatabase)

        def leave_open(connection: sqlite3.Connection) -> None:
            connection.execute("BEGIN IMMEDIATE")  # as a transaction whose ROLLBACK failed
            connection.execute("INSERT INTO todo_settings (name, value) VALUES ('stray', 'x')")

        await store.database.on_writer(leave_open)
        created = await store.create(BOB, TaskCreate(title="after"))
        assert await other.get(BOB, created.id) == created, "committed, seen from elsewhere"
        stray = sa.select(settings.c.value).where(settings.c.name == "stray")
        assert await run_sql(other, stray) == [], "the stray transaction's work is gone"
