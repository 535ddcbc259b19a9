"""Where each backend's test store lives, and how a test gets an empty one."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest
import sqlalchemy as sa

from tests.pgbouncer import SESSION_PGBOUNCER, pgbouncer_binary
from todo_core import TaskStore, open_store
from todo_core.schema import idempotency_keys, tasks
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
        yield store
