"""Where each backend's test store lives, how a test gets an empty one, and throwaway
PostgreSQL databases."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.pgbouncer import SESSION_PGBOUNCER, pgbouncer_binary
from todo_core import MemoryTaskStore, TaskStore, open_store
from todo_core.engine import database_url
from todo_core.schema import feed_heads, idempotency_keys, tasks
from todo_core.sql import SqlTaskStore

POSTGRES_URL_VARIABLE = "TODO_TEST_POSTGRES_URL"

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    # The same database with unnamed statements only (EngineOptions.prepared_statements
    # False), as behind a pooler; "postgres", a direct connection, names them.
    pytest.param("postgres-unnamed", marks=pytest.mark.postgres),
    # The same database through PgBouncer in transaction mode (tests/pgbouncer.py), as
    # Neon's pooled URLs are, with the default options: unnamed statements only.
    pytest.param("pgbouncer", marks=pytest.mark.postgres),
]
# The backends on the PostgreSQL test server, directly or through PgBouncer.
POSTGRES_BACKENDS = frozenset({"postgres", "postgres-unnamed", "pgbouncer"})
# Store options each backend name stands for, beyond its URL.
BACKEND_OPTIONS: dict[str, dict[str, object]] = {"postgres-unnamed": {"prepared_statements": False}}


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose service is missing, saying why; in CI (``CI`` set) fail it
    instead, so that a missing service cannot pass as a green run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI may not skip these tests")
    pytest.skip(reason)


def postgres_url() -> str:
    """The PostgreSQL test database; skips (or, in CI, fails) when none is configured."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if url:
        return url
    unavailable(
        f"PostgreSQL tests need {POSTGRES_URL_VARIABLE} (e.g. postgresql://postgres@127.0.0.1/test)"
    )


def pgbouncer_url() -> str:
    """The PostgreSQL test database through the session's PgBouncer, started on first
    use; skips (or, in CI, fails) without PostgreSQL or without pgbouncer."""
    server_url = postgres_url()
    binary = pgbouncer_binary()
    if binary is None:
        unavailable("PgBouncer tests need pgbouncer (apt-get install pgbouncer)")
    return SESSION_PGBOUNCER.url(binary, server_url)


def postgres_backend_url(backend: str) -> str:
    """The URL of one of ``POSTGRES_BACKENDS``; skips (or, in CI, fails) when unavailable."""
    if backend == "pgbouncer":
        return pgbouncer_url()
    if backend in POSTGRES_BACKENDS:
        return postgres_url()
    raise ValueError(backend)


def backend_url(backend: str, tmp_path: Path) -> str:
    """A database URL for ``backend``; SQLite gets a fresh file under ``tmp_path``."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'tasks.db'}"
    return postgres_backend_url(backend)


async def run_sql(store: SqlTaskStore, statement: sa.ClauseElement) -> list[Sequence[Any]]:
    """Run ``statement`` on the store's own connections (a bypass of the API)."""
    database = store.database
    return await database.fetch(database.statements.compile(statement), {})


@asynccontextmanager
async def open_backend(backend: str, tmp_path: Path, **options: object) -> AsyncIterator[TaskStore]:
    """An empty, migrated store of ``backend``. PostgreSQL tests share one database
    (PgBouncer's too), so its tables are emptied first; tests run one at a time."""
    options = {"create_schema": backend != "memory"} | BACKEND_OPTIONS.get(backend, {}) | options
    async with open_store(backend_url(backend, tmp_path), **options) as store:  # type: ignore[arg-type]
        if isinstance(store, SqlTaskStore) and backend in POSTGRES_BACKENDS:
            await run_sql(store, sa.delete(tasks))
            await run_sql(store, sa.delete(idempotency_keys))
            await run_sql(store, sa.delete(feed_heads))
        yield store


# The backends that have a database underneath (parametrize values, like BACKENDS).
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@asynccontextmanager
async def fresh_postgres_database(create_options: str = "") -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards.

    It is created through the ``postgres`` maintenance database of the server that
    ``TODO_TEST_POSTGRES_URL`` names; skips (or fails in CI) like every PostgreSQL test.
    """
    base = database_url(postgres_url())
    name = f"todo_test_{uuid.uuid4().hex[:16]}"
    maintenance = create_async_engine(
        base.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    try:
        async with maintenance.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}" {create_options}')
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            async with maintenance.connect() as connection:
                await connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await maintenance.dispose()


async def stored_task_count(store: TaskStore) -> int:
    """How many tasks the store holds for all users together, not counting those in the
    trash (a bypass of the API)."""
    if isinstance(store, SqlTaskStore):
        live = sa.select(sa.func.count()).select_from(tasks).where(tasks.c.deleted_at.is_(None))
        (count,) = (await run_sql(store, live))[0]
        return int(count)
    assert isinstance(store, MemoryTaskStore)
    return sum(len(user_tasks) for user_tasks in store._tasks.values())


async def sqlite_threads_finished() -> None:
    """Wait for the SQLite store's worker threads to end: a store that failed to open
    leaves none behind (nor would a thread outlive the test's event loop)."""
    for _ in range(500):
        names = [thread.name for thread in threading.enumerate()]
        if not any(name.startswith("todo-sqlite") for name in names):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("SQLite worker threads did not stop")
