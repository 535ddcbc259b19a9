"""Throwaway PostgreSQL databases for benchmark runs, made through a maintenance database."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import asyncpg

from benchmarks.errors import BenchError
from benchmarks.organized import (
    DUE_SPREAD_DAYS,
    FILTER_TAG,
    FILTER_TAG_IN_FIVE,
    NO_DUE_EVERY,
    OTHER_TAGS,
)
from benchmarks.processes import run_command
from todo_core.engine import database_url
from todo_core.models import PRIORITIES
from todo_core.schema import tasks

__all__ = [
    "MAINTENANCE_VARIABLE",
    "TableSize",
    "backend_pids",
    "create_database",
    "drop_database",
    "fill_tasks",
    "maintenance_url",
    "migrate",
    "table_size",
    "throwaway_database",
]

MAINTENANCE_VARIABLE: Final = "TODO_BENCH_POSTGRES_URL"
_DEFAULT_MAINTENANCE: Final = "postgresql://postgres@127.0.0.1:5432/postgres"
MIGRATE_SECONDS: Final = 120.0
# Filling 1,000,000 rows takes ~25 s on a busy 2-core machine; a stuck fill still ends.
FILL_SECONDS: Final = 900.0

# Filler rows shaped like the API's own: uuid4 ids, created_at = updated_at, version 1,
# the folded columns as str.lower() of ASCII text, completed_at = created_at for the
# tasks created completed. A user's rows are spread over the whole table, as a user's
# tasks created over time would be; created_at runs back one second per row from now.
# A user's m-th filler task (m = n / users) gets benchmarks.organized.fields(m): the
# same priorities, tags and due dates as seeded tasks, so the indexes and the filter's
# share are what they are for seeded users. None is in the trash; the feed trigger
# numbers each row (change_seq) as it numbers the API's writes, so the feed's index is
# as full as an established table's. Every column of todo_core.schema.tasks, checked
# before use.
_FILLER_COLUMNS: Final = (
    "user_id",
    "id",
    "title",
    "description",
    "completed",
    "created_at",
    "updated_at",
    "version",
    "title_folded",
    "description_folded",
    "due_at",
    "priority",
    "tags",
    "recurrence",
    "time_zone",
    "completed_at",
    "next_occurrence_id",
    "change_seq",
    "deleted_at",
    "purged",
)
_FILL: Final = f"""
INSERT INTO tasks ({", ".join(_FILLER_COLUMNS)})
SELECT 'filler-' || lpad((n % $2)::text, 6, '0'), gen_random_uuid(),
       'Filler task ' || n, 'Filler description ' || n, n % 3 = 0,
       stamp.at, stamp.at, 1, 'filler task ' || n, 'filler description ' || n,
       CASE WHEN m % {NO_DUE_EVERY} <> {NO_DUE_EVERY - 1}
            THEN statement_timestamp() + (m % {DUE_SPREAD_DAYS}) * interval '1 day'
                 + m * interval '1 minute' END,
       m % {len(PRIORITIES)},
       CASE WHEN m % 5 < {FILTER_TAG_IN_FIVE} THEN ARRAY[$3::text] ELSE '{{}}'::text[] END
           || ($4::text[])[m % {len(OTHER_TAGS)} + 1],
       NULL, 'UTC', CASE WHEN n % 3 = 0 THEN stamp.at END, NULL, NULL, NULL, false
FROM generate_series(1, $1::integer) AS n,
     LATERAL (SELECT statement_timestamp() - n * interval '1 second' AS at) AS stamp,
     LATERAL (SELECT n / $2 AS m) AS ordinal
"""


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


@asynccontextmanager
async def _connection(url: str) -> AsyncIterator[Any]:
    try:
        connection = await asyncpg.connect(_plain(url), timeout=10)
    except (OSError, asyncpg.PostgresError) as error:
        raise BenchError(
            f"cannot reach PostgreSQL at {_shown(url)} (set it with --postgres-url "
            f"or {MAINTENANCE_VARIABLE}): {error}"
        ) from error
    try:
        yield connection
    finally:
        await connection.close()


async def _execute(maintenance: str, sql: str) -> None:
    async with _connection(maintenance) as connection:
        await connection.execute(sql)


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


def migrate(url: str) -> None:
    """Create the project's schema in ``url`` with ``todo-http migrate``."""
    command = [sys.executable, "-m", "todo_http", "migrate", "--database-url", url]
    run_command(command, label="todo-http migrate", timeout=MIGRATE_SECONDS, cwd=Path.cwd())


async def fill_tasks(url: str, count: int, users: int) -> None:
    """Insert ``count`` filler tasks over ``users`` users (``filler-NNNNNN``) into the
    migrated database ``url`` in one server-side statement, then ``VACUUM ANALYZE`` and
    ``CHECKPOINT``: planner statistics, visibility map and hint bits as an established
    table has them, and no checkpoint of the fill's writes during the measurement."""
    if set(_FILLER_COLUMNS) != set(tasks.columns.keys()):
        raise BenchError(
            f"the filler INSERT in {__name__} fills {sorted(_FILLER_COLUMNS)}, but "
            f"todo_core.schema.tasks has {sorted(tasks.columns.keys())}: update _FILL"
        )
    async with _connection(url) as connection:
        try:
            if count > 0:
                await connection.execute(
                    _FILL,
                    count,
                    max(1, users),
                    FILTER_TAG,
                    list(OTHER_TAGS),
                    timeout=FILL_SECONDS,
                )
            await connection.execute("VACUUM ANALYZE tasks", timeout=FILL_SECONDS)
            # Without the privilege it is only slower to settle; the measurement stays valid.
            with suppress(asyncpg.InsufficientPrivilegeError):
                await connection.execute("CHECKPOINT", timeout=FILL_SECONDS)
        except TimeoutError:
            raise BenchError(f"filling {_shown(url)} took over {FILL_SECONDS:.0f} s") from None


async def backend_pids(url: str) -> frozenset[int]:
    """The PostgreSQL backends connected to the database ``url`` names, this query's
    own aside: the processes whose CPU a server on that database costs PostgreSQL."""
    async with _connection(url) as connection:
        found = await connection.fetch(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    return frozenset(int(row["pid"]) for row in found)


@dataclass(frozen=True)
class TableSize:
    """What the tasks table holds: rows, distinct users, and MiB with its indexes."""

    tasks: int
    users: int
    mib: float


async def table_size(url: str) -> TableSize:
    """Count the tasks table of ``url`` (a full scan: once, after the measurement)."""
    async with _connection(url) as connection:
        row = await connection.fetchrow(
            "SELECT count(*), count(DISTINCT user_id), pg_total_relation_size('tasks') FROM tasks"
        )
    return TableSize(tasks=int(row[0]), users=int(row[1]), mib=int(row[2]) / 2**20)
