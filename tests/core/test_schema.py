"""The shipped migrations build exactly the schema the code uses, on fresh databases."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.schema import CreateIndex

from tests.backends import fresh_postgres_database
from tests.core.alembic_config import alembic_config
from tests.core.catalog import trigger_names
from tests.core.migrators import migrate_at_once
from tests.listing import walk
from tests.values import ALICE
from todo_core import ListQuery, SchemaNotCurrent, StoreError, TaskCreate, open_store
from todo_core.engine import create_engine
from todo_core.migrate import (
    current_revision,
    head_revision,
    require_current_schema,
    upgrade_schema,
)
from todo_core.schema import FEED_TRIGGERS, UTCTimestamp, metadata, next_stamp
from todo_core.sql import SCHEMA_REVISION, SqlTaskStore, Statements


async def schema_differences(engine: AsyncEngine, target: sa.MetaData = metadata) -> list[Any]:
    """What alembic autogenerate would change to make the database match ``target``."""

    def compare(connection: Connection) -> list[Any]:
        sqlite = connection.dialect.name == "sqlite"
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_object": lambda item, name, kind, *_: (
                    not (sqlite and kind == "index" and name in _DESCENDING_INDEXES)
                ),
            },
        )
        differences: list[Any] = list(compare_metadata(context, target))
        if sqlite:
            differences += _descending_index_differences(connection, target)
        return differences

    async with engine.connect() as connection:
        return await connection.run_sync(compare)


# SQLite's reflection drops an index column's DESC, so Alembic would see these differ
# from the metadata whatever they are: they are compared by their CREATE INDEX instead.
_DESCENDING_INDEXES = frozenset({"ix_tasks_user_due_desc"})


def _descending_index_differences(connection: Connection, target: sa.MetaData) -> list[Any]:
    """The descending indexes whose SQLite definition differs from ``target``'s."""
    differences: list[Any] = []
    for table in target.tables.values():
        for index in table.indexes:
            if index.name not in _DESCENDING_INDEXES:
                continue
            expected = str(CreateIndex(index).compile(dialect=connection.dialect)).strip()
            found = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (index.name,)
            ).scalar()
            if found != expected:
                differences.append(("index definition", index.name, found, expected))
    return differences


async def cursor_secret(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        value = await connection.scalar(
            sa.text("SELECT value FROM todo_settings WHERE name = 'cursor_secret'")
        )
    return None if value is None else str(value)


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    return set(names)


class TestUnmigratedDatabase:
    async def test_the_migration_check_raises_the_same(self, engine: AsyncEngine) -> None:
        """require_current_schema says what a store says on opening it (test_failure):
        the library's remedy, no command line."""
        with pytest.raises(SchemaNotCurrent, match="at revision none") as raised:
            await require_current_schema(engine)
        assert "todo-http" not in str(raised.value)
        await upgrade_schema(engine)
        await require_current_schema(engine)


class TestMigratedSchema:
    async def test_matches_the_metadata(self, engine: AsyncEngine) -> None:
        """After migration the database has exactly the tables, columns, types, indexes
        and keys of todo_core.schema (alembic compare_metadata, types included)."""
        await upgrade_schema(engine)
        assert await schema_differences(engine) == []
        assert await current_revision(engine) == head_revision()

    async def test_has_the_feed_triggers(self, engine: AsyncEngine) -> None:
        """The triggers that number every write are there, and only they."""
        await upgrade_schema(engine)
        assert await trigger_names(engine) == FEED_TRIGGERS[engine.dialect.name]

    async def test_comparison_notices_drift(self, engine: AsyncEngine) -> None:
        """The comparison above is not vacuous: a changed column type is reported."""
        await upgrade_schema(engine)
        drifted = sa.MetaData()
        for table in metadata.tables.values():
            table.to_metadata(drifted)
        drifted.tables["tasks"].c.version.type = sa.BigInteger()
        differences = await schema_differences(engine, drifted)
        assert len(differences) == 1
        assert "version" in repr(differences)

    async def test_has_a_cursor_secret(self, engine: AsyncEngine) -> None:
        """The migration stores a random 256-bit cursor secret in the database."""
        await upgrade_schema(engine)
        secret = await cursor_secret(engine)
        assert secret is not None
        assert len(bytes.fromhex(secret)) == 32

    async def test_each_database_gets_its_own_secret(self, tmp_path: Path) -> None:
        """Two databases never share a cursor secret: it is generated, not shipped."""
        secrets = []
        for name in ("one.db", "two.db"):
            engine = create_engine(f"sqlite:///{tmp_path / name}")
            try:
                await upgrade_schema(engine)
                secrets.append(await cursor_secret(engine))
            finally:
                await engine.dispose()
        assert secrets[0] != secrets[1]

    async def test_upgrade_is_idempotent(self, empty_url: str, engine: AsyncEngine) -> None:
        """Upgrading a current database changes nothing: same revision, same secret, and
        its tasks are kept."""
        async with open_store(empty_url, create_schema=True) as store:
            task = await store.create(ALICE, TaskCreate(title="kept"))
        secret = await cursor_secret(engine)
        await upgrade_schema(engine)
        await upgrade_schema(engine)
        assert await current_revision(engine) == head_revision()
        assert await cursor_secret(engine) == secret
        assert await schema_differences(engine) == []
        async with open_store(empty_url, create_schema=True) as store:
            assert await store.get(ALICE, task.id) == task

    async def test_downgrade_to_base_then_upgrade(self, engine: AsyncEngine) -> None:
        """Every migration can be undone, and the schema rebuilt from nothing."""
        await upgrade_schema(engine)
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "base"))
        assert await current_revision(engine) is None
        assert await table_names(engine) <= {"alembic_version"}
        await upgrade_schema(engine)
        assert await schema_differences(engine) == []
        assert await trigger_names(engine) == FEED_TRIGGERS[engine.dialect.name]
        assert await cursor_secret(engine) is not None

    async def test_cursors_survive_a_restart(self, empty_url: str) -> None:
        """A cursor issued before the store is closed is valid after it is reopened."""
        async with open_store(empty_url, create_schema=True) as store:
            for title in "abcd":
                await store.create(ALICE, TaskCreate(title=title))
            first = await store.list(ALICE, ListQuery(sort="title", limit=2))
        follow = ListQuery(sort="title", limit=2, cursor=first.next_cursor)
        for create_schema in (False, True):
            async with open_store(empty_url, create_schema=create_schema) as store:
                rest = await walk(store, ALICE, follow)
            assert [task.title for task in rest] == ["c", "d"]


@pytest.mark.postgres
class TestPostgresSchema:
    async def test_title_collation_is_c(self) -> None:
        """PostgreSQL compares titles with the "C" collation (code point order)."""
        async with fresh_postgres_database() as url:
            engine = create_engine(url)
            try:
                await upgrade_schema(engine)
                async with engine.connect() as connection:
                    collation = await connection.scalar(
                        sa.text(
                            "SELECT collation_name FROM information_schema.columns"
                            " WHERE table_name = 'tasks' AND column_name = 'title'"
                        )
                    )
            finally:
                await engine.dispose()
        assert collation == "C"

    async def test_titles_sort_by_code_point_in_a_natural_language_database(self) -> None:
        """Even where the database's default collation is en-US, titles sort by code point
        and q still matches by Python lower-casing."""
        options = "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        async with (
            fresh_postgres_database(options) as url,
            open_store(url, create_schema=True) as store,
        ):
            for title in ("\U0001f600", "a", "\u00e9", "B", "Straße", "STRASSE"):
                await store.create(ALICE, TaskCreate(title=title))
            titles = [task.title for task in await walk(store, ALICE, ListQuery(sort="title"))]
            found = {task.title for task in await walk(store, ALICE, ListQuery(q="strasse"))}
        assert titles == ["B", "STRASSE", "Straße", "a", "\u00e9", "\U0001f600"]
        assert found == {"STRASSE"}

    async def test_concurrent_migrations_are_serialised(self) -> None:
        """Several processes migrating one database at once all succeed, and the database
        ends with one schema and one secret."""
        async with fresh_postgres_database() as url:
            await migrate_at_once(url)
            engine = create_engine(url)
            try:
                assert await schema_differences(engine) == []
                assert await trigger_names(engine) == FEED_TRIGGERS["postgresql"]
                async with engine.connect() as connection:
                    secrets = await connection.scalar(sa.text("SELECT count(*) FROM todo_settings"))
                assert secrets == 1
            finally:
                await engine.dispose()


def test_the_store_needs_the_newest_migration() -> None:
    """The revision a store checks for (read from the migrations' file names, without
    Alembic) is Alembic's head, and every migration's file is named by its revision."""
    assert head_revision() == SCHEMA_REVISION
    versions = files("todo_core").joinpath("migrations", "versions")
    for entry in versions.iterdir():
        if entry.name[0].isdigit() and entry.name.endswith(".py"):
            assert f'revision = "{entry.name[:4]}"' in entry.read_text(), entry.name


def test_opening_a_current_database_loads_no_migration_machinery(tmp_path: Path) -> None:
    """A store whose schema is current loads neither Alembic nor SQLAlchemy's engine
    (a serving process stays smaller: it only compiles statements with SQLAlchemy's
    Core); one that migrates loads them."""
    program = """
import asyncio, sys
from todo_core import open_store

async def main(path: str) -> None:
    async with open_store(f"sqlite:///{path}", create_schema=True) as store:
        await store.ping()
    print(sorted(m for m in ("alembic", "sqlalchemy.ext.asyncio") if m in sys.modules))

asyncio.run(main(sys.argv[1]))
"""
    path = str(tmp_path / "tasks.db")

    def loaded() -> str:
        result = subprocess.run(
            [sys.executable, "-c", program, path], capture_output=True, text=True, check=True
        )
        return result.stdout.strip()

    assert loaded() == "['alembic', 'sqlalchemy.ext.asyncio']"  # the first open migrates
    assert loaded() == "[]"


@pytest.mark.postgres
async def test_updates_call_only_immutable_functions_over_columns() -> None:
    """Every UPDATE stamps ``updated_at`` with an expression PostgreSQL itself holds
    IMMUTABLE (Citus refuses STABLE functions over columns in an UPDATE, and
    ``timestamptz + interval`` is STABLE): it may index it, which it refuses for the
    STABLE spelling. The expression is one microsecond after the old stamp, or now,
    exactly what the IMMUTABLE function ``todo_next_stamp`` (still created by
    migration 0002 for servers of earlier releases) returns."""
    writable = ("title", "description", "completed")
    updates = [
        Statements("postgresql").update(frozenset(fields), conditional=conditional).sql
        for size in range(1, len(writable) + 1)
        for fields in itertools.combinations(writable, size)
        for conditional in (False, True)
    ]
    previous, now = sa.column("previous", UTCTimestamp()), sa.column("now", UTCTimestamp())
    async with fresh_postgres_database() as url, open_store(url, create_schema=True) as store:
        assert isinstance(store, SqlTaskStore)
        statements = store.database.statements
        stamp = statements.compile(sa.select(next_stamp(previous, now))).sql
        expression = stamp.removeprefix("SELECT ").partition(" AS ")[0]
        in_updates = re.compile(
            re.escape(expression)
            .replace("previous", re.escape("tasks.updated_at"))
            .replace("now", r"\$\d+::TIMESTAMP WITH TIME ZONE")
        )
        assert all(in_updates.search(sql) for sql in updates), expression

        async def run(sql: str) -> list[Any]:
            return [
                tuple(row)
                for row in await store.database.fetch(statements.compile(sa.text(sql)), {})
            ]

        await run("CREATE TABLE stamps (previous timestamptz, now timestamptz)")
        await run(f"CREATE INDEX stamped ON stamps (({expression}))")
        with pytest.raises(StoreError):
            await run("CREATE INDEX stable ON stamps ((previous + INTERVAL '1 microsecond'))")
        await run(
            "INSERT INTO stamps VALUES ('2026-01-01 00:00:00+00', '2025-06-01 00:00:00+00'),"
            " ('2025-06-01 00:00:00+00', '2026-01-01 00:00:00+00'),"
            " ('2024-03-10 06:59:59.999999+00', '2000-01-01 00:00:00+00'),"
            " ('2024-12-31 23:59:59.999999+00', '2024-12-31 23:59:59.999999+00')"
        )
        rows = await run(
            f"SELECT ({expression})::text, todo_next_stamp(previous, now)::text FROM stamps"
        )
    assert rows == [
        ("2026-01-01 00:00:00.000001+00",) * 2,
        ("2026-01-01 00:00:00+00",) * 2,
        ("2024-03-10 07:00:00+00",) * 2,
        ("2025-01-01 00:00:00+00",) * 2,
    ]
