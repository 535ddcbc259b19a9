"""Migration 0005 (the change feed and the trash) on a database filled before it.

Tasks written before the upgrade read back unchanged and enter the feed at their
next write; workers of the previous release keep writing after it, and the triggers
number their writes too; the triggers are there after the upgrade as after a fresh
migration; several migrators at once all succeed; a downgrade forgets the trash.
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.backends import fresh_postgres_database
from tests.core.alembic_config import step_to
from tests.core.catalog import trigger_names
from tests.core.migrators import migrate_at_once
from tests.core.old_workers import UPDATED, insert_v1, update_v1
from tests.replica import Replica
from tests.values import ALICE
from todo_core import TaskCreate, TaskPatch, open_store
from todo_core.engine import create_engine
from todo_core.feed import Deleted, Upserted
from todo_core.migrate import current_revision, head_revision, upgrade_schema
from todo_core.schema import FEED_TRIGGERS


@pytest.fixture(name="v4_database")
async def _v4_database(engine: AsyncEngine) -> list[uuid.UUID]:
    """The database at revision 0004 with a completed and an open task."""
    await step_to(engine, "0004")
    return [await insert_v1(engine, f"old {n}", completed=n == 0) for n in range(2)]


async def test_old_tasks_read_back_and_join_the_feed_when_written(
    empty_url: str, engine: AsyncEngine, v4_database: list[uuid.UUID]
) -> None:
    """After the upgrade the old tasks read back as they were; they are in no feed
    until written, and then are reported like any other; a client that took a token
    and listed the tasks ends with them all."""
    await upgrade_schema(engine)
    assert await current_revision(engine) == head_revision()
    assert await trigger_names(engine) == FEED_TRIGGERS[engine.dialect.name]
    async with open_store(empty_url) as store:
        old = [await store.get(ALICE, task_id) for task_id in v4_database]
        assert [(task.updated_at, task.version) for task in old] == [(UPDATED, 2)] * 2
        replica = await Replica.start(store, ALICE)
        assert set(replica.tasks) == set(v4_database)
        assert (await store.changes(ALICE, replica.token)).items == []
        patched = await store.patch(ALICE, old[0].id, TaskPatch(title="written"))
        await store.delete(ALICE, old[1].id)
        new = await store.create(ALICE, TaskCreate(title="new"))
        items = (await replica.read(store)).items
        assert isinstance(items[0], Upserted)
        assert items[0].task == patched
        assert isinstance(items[1], Deleted)
        assert [change.task_id for change in items] == [old[0].id, old[1].id, new.id]
        await replica.matches(store)


async def test_old_workers_writes_are_numbered(
    empty_url: str, engine: AsyncEngine, v4_database: list[uuid.UUID]
) -> None:
    """An INSERT or UPDATE naming only the columns an old worker knows (a rolling
    upgrade) is in the feed: the triggers number every write, whoever wrote it."""
    await upgrade_schema(engine)
    async with open_store(empty_url) as store:
        replica = await Replica.start(store, ALICE)
        inserted = await insert_v1(engine, "late", completed=False)
        await update_v1(engine, v4_database[1], "retitled")
        items = (await replica.read(store)).items
        assert [change.task_id for change in items] == [inserted, v4_database[1]]
        await replica.matches(store)


async def test_a_downgrade_forgets_the_trash(
    empty_url: str, engine: AsyncEngine, v4_database: list[uuid.UUID]
) -> None:
    """Back at 0004, which knows no trash, a trashed task is gone (not live again),
    the triggers are dropped; upgrading again brings them back."""
    await upgrade_schema(engine)
    async with open_store(empty_url) as store:
        await store.delete(ALICE, v4_database[0])
    await step_to(engine, "0004", down=True)
    assert await trigger_names(engine) == frozenset()
    async with engine.connect() as connection:
        ids = (await connection.execute(sa.text("SELECT id FROM tasks"))).scalars().all()
    assert len(ids) == 1
    await upgrade_schema(engine)
    assert await trigger_names(engine) == FEED_TRIGGERS[engine.dialect.name]
    async with open_store(empty_url) as store:
        assert [task.id for task in (await store.list(ALICE)).items] == [v4_database[1]]


@pytest.mark.postgres
async def test_concurrent_upgrades_from_0004_all_succeed() -> None:
    """Several processes upgrading one 0004 database at once all succeed: one trigger,
    every index valid, the tasks kept."""
    async with fresh_postgres_database() as url:
        engine = create_engine(url)
        try:
            await step_to(engine, "0004")
            task_id = await insert_v1(engine, "kept", completed=True)
            await migrate_at_once(url, delay=2.0)
            assert await current_revision(engine) == head_revision()
            assert await trigger_names(engine) == FEED_TRIGGERS["postgresql"]
            async with engine.connect() as connection:
                invalid = await connection.scalar(
                    sa.text("SELECT count(*) FROM pg_index WHERE NOT indisvalid")
                )
            assert invalid == 0
        finally:
            await engine.dispose()
        async with open_store(url) as store:
            assert (await store.get(ALICE, task_id)).title == "kept"
