"""Migration 0004 (organizing tasks) on a database that v1 filled, as in an upgrade.

Tasks written at revision 0003 read back through the store with the v2 defaults;
workers of the previous release, which name only the v1 columns, keep inserting rows
after it; several migrators at once all succeed; running it again changes nothing.
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.backends import fresh_postgres_database
from tests.core.alembic_config import alembic_config
from tests.core.migrators import migrate_at_once
from tests.core.old_workers import UPDATED, insert_v1
from tests.values import ALICE, EPOCH_2024
from todo_core import open_store
from todo_core.engine import create_engine
from todo_core.migrate import current_revision, head_revision, upgrade_schema
from todo_core.models import Task


def _migrate_to_0003(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "0003")


def assert_v2_defaults(task: Task, *, completed: bool) -> None:
    """``task``, written by v1, reads with the v2 fields' defaults."""
    assert (task.due_at, task.priority, task.tags) == (None, "none", [])
    assert (task.recurrence, task.time_zone, task.next_occurrence_id) == (None, "UTC", None)
    # Nothing is backfilled: a completed task answers the time it last changed.
    assert task.completed_at == (UPDATED if completed else None)
    assert (task.created_at, task.updated_at, task.version) == (EPOCH_2024, UPDATED, 2)


@pytest.fixture(name="v1_database")
async def _v1_database(empty_url: str, engine: AsyncEngine) -> dict[bool, uuid.UUID]:
    """The database at revision 0003 with a completed and an open task, by completed."""
    async with engine.connect() as connection:
        await connection.run_sync(_migrate_to_0003)
        await connection.commit()
    assert await current_revision(engine) == "0003"
    return {
        completed: await insert_v1(engine, f"v1 {completed}", completed=completed)
        for completed in (True, False)
    }


async def test_v1_tasks_read_with_the_defaults(
    empty_url: str, engine: AsyncEngine, v1_database: dict[bool, uuid.UUID]
) -> None:
    """After the upgrade, the tasks v1 wrote read back with priority none, no tags, UTC,
    and completed_at = updated_at for a completed one, null for the other."""
    await upgrade_schema(engine)
    assert await current_revision(engine) == head_revision()
    async with open_store(empty_url) as store:
        for completed, task_id in v1_database.items():
            task = await store.get(ALICE, task_id)
            assert task.completed is completed
            assert_v2_defaults(task, completed=completed)


async def test_v1_workers_keep_inserting(
    empty_url: str, engine: AsyncEngine, v1_database: dict[bool, uuid.UUID]
) -> None:
    """An INSERT naming only the v1 columns (a worker of the previous release in a
    rolling upgrade) still works after the upgrade, and its task reads with defaults."""
    await upgrade_schema(engine)
    task_id = await insert_v1(engine, "late", completed=True)
    async with open_store(empty_url) as store:
        assert_v2_defaults(await store.get(ALICE, task_id), completed=True)


async def test_upgrading_again_changes_nothing(
    empty_url: str, engine: AsyncEngine, v1_database: dict[bool, uuid.UUID]
) -> None:
    """Running the migrations again at head is a no-op: same revision, same tasks."""
    await upgrade_schema(engine)
    async with open_store(empty_url) as store:
        before = [await store.get(ALICE, task_id) for task_id in v1_database.values()]
    await upgrade_schema(engine)
    assert await current_revision(engine) == head_revision()
    async with open_store(empty_url) as store:
        assert [await store.get(ALICE, task_id) for task_id in v1_database.values()] == before


@pytest.mark.postgres
async def test_concurrent_upgrades_from_0003_all_succeed() -> None:
    """Several processes upgrading one v1 database at once all succeed (the index
    builds run outside the migration lock's transaction), and the tasks are kept."""
    async with fresh_postgres_database() as url:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(_migrate_to_0003)
                await connection.commit()
            task_id = await insert_v1(engine, "kept", completed=True)
            await migrate_at_once(url, delay=2.0)
            assert await current_revision(engine) == head_revision()
            async with engine.connect() as connection:
                invalid = await connection.scalar(
                    sa.text("SELECT count(*) FROM pg_index WHERE NOT indisvalid")
                )
            assert invalid == 0
        finally:
            await engine.dispose()
        async with open_store(url) as store:
            assert_v2_defaults(await store.get(ALICE, task_id), completed=True)
