"""Throwaway PostgreSQL databases for benchmark runs, made through a maintenance database."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import asyncpg

from benchmarks.errors import BenchError
from todo_core.engine import database_url

__all__ = [
    "MAINTENANCE_VARIABLE",
    "create_database",
    "drop_database",
    "maintenance_url",
    "throwaway_database",
]

MAINTENANCE_VARIABLE: Final = "TODO_BENCH_POSTGRES_URL"
_DEFAULT_MAINTENANCE: Final = "postgresql://postgres@127.0.0.1:5432/postgres"


def maintenance_url() -> str:
    """The database through which benchmark databases are created and dropped."""
    return os.environ.get(MAINTENANCE_VARIABLE) or _DEFAULT_MAINTENANCE


def _plain(url: str, name: str | None = None) -> str:
    # postgresql:// without a driver: what both asyncpg and our server accept.
    parsed = database_url(url).set(drivername="postgresql")
    if name is not None:
        parsed = parsed.set(database=name)
    return parsed.render_as_string(hide_password=False)


def _shown(url: str) -> str:
    return database_url(url).set(drivername="postgresql").render_as_string(hide_password=True)


async def _execute(maintenance: str, sql: str) -> None:
    try:
        connection = await asyncpg.connect(_plain(maintenance), timeout=10)
    except (OSError, asyncpg.PostgresError) as error:
        raise BenchError(
            f"cannot reach PostgreSQL at {_shown(maintenance)} (set it with --postgres-url "
            f"or {MAINTENANCE_VARIABLE}): {error}"
        ) from error
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def create_database(maintenance: str, prefix: str) -> str:
    """Create an empty database named ``prefix`` plus a random suffix; return its URL.

    The suffix lets two runs (or a run and a crashed run's leftovers) never collide.
    """
    name = f"{prefix}_{secrets.token_hex(4)}"
    await _execute(maintenance, f'CREATE DATABASE "{name}"')
    return _plain(maintenance, name)


async def drop_database(maintenance: str, url: str) -> None:
    """Drop the database ``url`` names, disconnecting whoever is still on it."""
    name = database_url(url).database
    await _execute(maintenance, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def throwaway_database(maintenance: str, prefix: str) -> Iterator[str]:
    """``create_database`` for synchronous code; dropped on exit, even after an error."""
    url = asyncio.run(create_database(maintenance, prefix))
    try:
        yield url
    finally:
        asyncio.run(drop_database(maintenance, url))
