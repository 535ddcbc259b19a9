"""Helpers shared by test modules: clocks, listing walks, and throwaway databases.

Append new helpers at the end; keep each one small and documented.
"""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import create_async_engine

from tests.backends import postgres_url, run_sql
from todo_core import ListQuery, MemoryTaskStore, SortOrder, Task, TaskStore
from todo_core.engine import database_url
from todo_core.listing import SORTS
from todo_core.schema import tasks
from todo_core.sql import SqlTaskStore

# A fixed, recognisable instant far from "now", so tests never depend on the real clock.
EPOCH_2024 = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


class SteppingClock:
    """A store clock that starts at ``start`` and moves by ``step`` on every call.

    ``step`` may be zero (a stalled clock) or negative (a clock that goes backwards).
    """

    def __init__(self, start: datetime = EPOCH_2024, step: timedelta = timedelta(0)) -> None:
        self.now = start
        self.step = step
        self.calls = 0

    def __call__(self) -> datetime:
        moment = self.now
        self.now += self.step
        self.calls += 1
        return moment


async def walk(store: TaskStore, user_id: str, query: ListQuery | None = None) -> list[Task]:
    """Every task of one listing, following ``next_cursor`` to the last page.

    Each page is also asked for as field values (``list_fields``), which must be the
    same page: the same fields of the same tasks, and the same cursor.
    """
    query = query or ListQuery()
    items: list[Task] = []
    for _ in range(10_000):  # a cursor that never ends is a bug, not a long walk
        page = await store.list(user_id, query)
        assert await store.list_fields(user_id, query) == (
            [task.model_dump() for task in page.items],
            page.next_cursor,
        )
        assert len(page.items) <= query.limit
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        assert page.items, "a page with a next_cursor must not be empty"
        query = query.model_copy(update={"cursor": page.next_cursor})
    raise AssertionError("the walk did not end")


def expected_order(tasks: list[Task], sort: SortOrder) -> list[Task]:
    """``tasks`` in the order the contract gives ``sort``: key, then id, same direction."""
    spec = SORTS[sort]
    return sorted(
        tasks,
        key=lambda task: (getattr(task, spec.field), task.id),
        reverse=spec.descending,
    )


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
    """How many tasks the store holds for all users together (a bypass of the API)."""
    if isinstance(store, SqlTaskStore):
        (count,) = (await run_sql(store, sa.select(sa.func.count()).select_from(tasks)))[0]
        return int(count)
    assert isinstance(store, MemoryTaskStore)
    return sum(len(user_tasks) for user_tasks in store._tasks.values())


# Two users for isolation tests; any valid user ids would do.
ALICE = "alice"
BOB = "bob"

# The backends that have a database underneath (parametrize values, like BACKENDS).
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

# A serialised timestamp: RFC 3339, UTC, six fractional digits, "Z".
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")

# Any code point a text field may hold: everything but NUL and the surrogates.
VALID_CHARACTERS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")


async def sqlite_threads_finished() -> None:
    """Wait for the SQLite store's worker threads to end: a store that failed to open
    leaves none behind (nor would a thread outlive the test's event loop)."""
    for _ in range(500):
        names = [thread.name for thread in threading.enumerate()]
        if not any(name.startswith("todo-sqlite") for name in names):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("SQLite worker threads did not stop")
