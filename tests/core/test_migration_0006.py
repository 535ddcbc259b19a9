"""Migration 0006 (SQLite's writes number themselves) on a database written at 0005.

Tasks numbered at 0005 keep their numbers and the feed goes on after them; a worker of
the previous release, which names no ``change_seq``, still has each write numbered
once; every kind of write of the store numbers itself, without the triggers that
number the others; a downgrade brings 0005's triggers back.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.core.alembic_config import step_to
from tests.core.catalog import trigger_names
from tests.core.old_workers import insert_v1, update_v1
from tests.replica import Replica
from tests.values import ALICE, EPOCH_2024
from todo_core import TaskCreate, TaskPatch, TaskStore, open_store
from todo_core.migrate import upgrade_schema
from todo_core.schema import FEED_TRIGGERS

_TRIGGERS_0005 = {
    "postgresql": frozenset({"tasks_feed"}),
    "sqlite": frozenset({"tasks_feed_insert", "tasks_feed_update"}),
}


async def numbers(engine: AsyncEngine) -> tuple[dict[uuid.UUID, int | None], int]:
    """Each of ALICE's tasks' change number by id, and her feed's head."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.text("SELECT id, change_seq FROM tasks WHERE user_id = :user"), {"user": ALICE}
        )
        head = await connection.scalar(
            sa.text("SELECT seq FROM feed_heads WHERE user_id = :user"), {"user": ALICE}
        )
    return {uuid.UUID(str(task_id)): seq for task_id, seq in rows}, int(head or 0)


@pytest.fixture(name="v5_database")
async def _v5_database(engine: AsyncEngine) -> list[uuid.UUID]:
    """The database at revision 0005 with two tasks written as an old worker writes:
    numbered 1 and 2, the first retitled since (3)."""
    await step_to(engine, "0005")
    written = [await insert_v1(engine, f"old {n}", completed=False) for n in range(2)]
    await update_v1(engine, written[0], "retitled")
    return written


async def test_numbers_taken_at_0005_are_kept_and_the_feed_goes_on(
    empty_url: str, engine: AsyncEngine, v5_database: list[uuid.UUID]
) -> None:
    first, second = v5_database
    await upgrade_schema(engine)
    assert await trigger_names(engine) == FEED_TRIGGERS[engine.dialect.name]
    assert await numbers(engine) == ({first: 3, second: 2}, 3)
    async with open_store(empty_url) as store:
        assert (await store.get(ALICE, first)).title == "retitled"
        replica = await Replica.start(store, ALICE)
        await store.patch(ALICE, second, TaskPatch(title="written"))
        created = await store.create(ALICE, TaskCreate(title="new"))
        items = (await replica.read(store)).items
        assert [change.task_id for change in items] == [second, created.id]
        await replica.matches(store)
    assert await numbers(engine) == ({first: 3, second: 4, created.id: 5}, 5)


async def test_an_old_workers_write_is_numbered_once(
    empty_url: str, engine: AsyncEngine, v5_database: list[uuid.UUID]
) -> None:
    """During a rolling upgrade the old release's INSERT and UPDATE, which name no
    change number, take the next one each, between the store's own writes."""
    await upgrade_schema(engine)
    async with open_store(empty_url) as store:
        replica = await Replica.start(store, ALICE)
        created = await store.create(ALICE, TaskCreate(title="new"))
        inserted = await insert_v1(engine, "late", completed=False)
        await update_v1(engine, v5_database[1], "retitled late")
        patched = await store.patch(ALICE, created.id, TaskPatch(title="again"))
        items = (await replica.read(store)).items
        assert [change.task_id for change in items] == [inserted, v5_database[1], patched.id]
        await replica.matches(store)
    seqs, head = await numbers(engine)
    assert (seqs[inserted], seqs[v5_database[1]], seqs[created.id], head) == (5, 6, 7, 7)


async def test_a_downgrade_brings_back_the_triggers_of_0005(
    empty_url: str, engine: AsyncEngine, v5_database: list[uuid.UUID]
) -> None:
    await upgrade_schema(engine)
    await step_to(engine, "0005", down=True)
    assert await trigger_names(engine) == _TRIGGERS_0005[engine.dialect.name]
    inserted = await insert_v1(engine, "after the downgrade", completed=False)
    seqs, head = await numbers(engine)
    assert (seqs[inserted], head) == (4, 4)
    await upgrade_schema(engine)
    assert await trigger_names(engine) == FEED_TRIGGERS[engine.dialect.name]


async def _every_kind_of_write(store: TaskStore) -> list[uuid.UUID]:
    """Create (plain and keyed), patch, complete a recurring task (which spawns its
    successor in the same transaction), trash and restore; the ids in write order."""
    plain = await store.create(ALICE, TaskCreate(title="plain"))
    keyed = (await store.create_once(ALICE, TaskCreate(title="keyed"), key="k-1")).task
    due = EPOCH_2024 + timedelta(days=1)
    recurring = await store.create(ALICE, TaskCreate(title="daily", due_at=due, recurrence="daily"))
    await store.patch(ALICE, plain.id, TaskPatch(title="patched"))
    completed = await store.patch(ALICE, recurring.id, TaskPatch(completed=True))
    assert completed.next_occurrence_id is not None
    await store.delete(ALICE, keyed.id)
    await store.restore(ALICE, keyed.id)
    return [plain.id, recurring.id, completed.next_occurrence_id, keyed.id]


@pytest.mark.parametrize("empty_url", ["sqlite"], indirect=True)
async def test_the_stores_writes_number_themselves(empty_url: str, engine: AsyncEngine) -> None:
    """On SQLite every write of the store takes its number itself: with the triggers
    that number other writers' rows dropped, each is still numbered, in write order
    (a successor after the completion that spawned it), and the head follows."""
    await upgrade_schema(engine)
    async with engine.begin() as connection:
        for name in ("tasks_feed_number_insert", "tasks_feed_number_update"):
            await connection.execute(sa.text(f"DROP TRIGGER {name}"))
    async with open_store(empty_url) as store:
        replica = await Replica.start(store, ALICE)
        in_order = await _every_kind_of_write(store)
        items = (await replica.read(store)).items
        assert [change.task_id for change in items] == in_order
        await replica.matches(store)
    seqs, head = await numbers(engine)
    taken = [seq for seq in seqs.values() if seq is not None]
    assert len(taken) == len(seqs)
    assert head == max(taken) == 8  # eight writes, one number each
