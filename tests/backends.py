"""Where each backend's test store lives, and how a test gets an empty one."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from todo_core import TaskStore, open_store
from todo_core.schema import tasks
from todo_core.sql import SqlTaskStore

POSTGRES_URL_VARIABLE = "TODO_TEST_POSTGRES_URL"

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    # The same database with named prepared statements (EngineOptions.prepared_statements).
    pytest.param("postgres-prepared", marks=pytest.mark.postgres),
]
# Store options each backend name stands for, beyond its URL.
BACKEND_OPTIONS: dict[str, dict[str, object]] = {"postgres-prepared": {"prepared_statements": True}}


def postgres_url() -> str:
    """The PostgreSQL test database; skips (or, in CI, fails) when none is configured."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(f"{POSTGRES_URL_VARIABLE} must be set in CI: PostgreSQL tests may not skip")
    pytest.skip(
        f"PostgreSQL tests need {POSTGRES_URL_VARIABLE} (e.g. postgresql://postgres@127.0.0.1/test)"
    )


def backend_url(backend: str, tmp_path: Path) -> str:
    """A database URL for ``backend``; SQLite gets a fresh file under ``tmp_path``."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'tasks.db'}"
    if backend.startswith("postgres"):
        return postgres_url()
    raise ValueError(backend)


async def run_sql(store: SqlTaskStore, statement: sa.ClauseElement) -> list[Sequence[Any]]:
    """Run ``statement`` on the store's own connections (a bypass of the API)."""
    database = store.database
    return await database.fetch(database.statements.compile(statement), {})


@asynccontextmanager
async def open_backend(backend: str, tmp_path: Path, **options: object) -> AsyncIterator[TaskStore]:
    """An empty, migrated store of ``backend``. PostgreSQL tests share one database, so
    its tasks table is emptied first; tests run one at a time."""
    options = {"create_schema": backend != "memory"} | BACKEND_OPTIONS.get(backend, {}) | options
    async with open_store(backend_url(backend, tmp_path), **options) as store:  # type: ignore[arg-type]
        if isinstance(store, SqlTaskStore) and backend.startswith("postgres"):
            await run_sql(store, sa.delete(tasks))
        yield store
