"""PostgreSQL serves every listing from an index, in index order, at any table size.

Each list statement the store can run is EXPLAINed, with real arguments (and as the
generic plan of a named statement), for a user
with far more tasks than a page, on a table of many users: no sequential scan, and no
Sort node over that user's tasks, since every sort has an index
``(user_id, key, id)`` that yields rows in the order asked for. A missing index, or a
query the planner cannot match to one (a collation mismatch on ``title``, say), fails.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any, get_args
from uuid import uuid4

import orjson
import pytest
import pytest_asyncio
import sqlalchemy as sa

from tests.backends import fresh_postgres_database
from todo_core import open_store
from todo_core.models import SortOrder
from todo_core.postgres import PostgresDatabase
from todo_core.sql import SqlTaskStore, Statement

# One database for the whole module: filling and analysing it is the slow part.
pytestmark = [pytest.mark.postgres, pytest.mark.asyncio(loop_scope="module")]

USERS = 200
TASKS_PER_USER = 50
BIG_USER_TASKS = 20_000
SORT_INDEXES = {
    "created_at": "ix_tasks_user_created",
    "updated_at": "ix_tasks_user_updated",
    "title": "ix_tasks_user_title",
}
# Tasks of many users with distinct keys, written on the server: USERS ordinary users,
# and "big", whose listings are the ones explained.
FILL = """
INSERT INTO tasks (user_id, id, title, description, completed, created_at, updated_at,
                   version, title_folded, description_folded)
SELECT {user}, gen_random_uuid(), 'Task ' || n, NULL, n % 3 = 0,
       now() - n * interval '1 second', now() - n * interval '1 second', 1,
       'task ' || n, NULL
FROM generate_series(1, {count}) AS n
"""
FILLS = (
    FILL.format(user=f"'user-' || (n % {USERS})", count=USERS * TASKS_PER_USER),
    FILL.format(user="'big'", count=BIG_USER_TASKS),
)


@pytest_asyncio.fixture(name="store", scope="module", loop_scope="module")
async def _store() -> AsyncIterator[SqlTaskStore]:
    """A store on its own database of USERS x TASKS_PER_USER tasks, analysed."""
    async with fresh_postgres_database() as url, open_store(url, create_schema=True) as store:
        assert isinstance(store, SqlTaskStore)
        for sql in (*FILLS, "ANALYZE tasks"):
            await store.database.fetch(store.database.statements.compile(sa.text(sql)), {})
        yield store


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def listing_cases() -> Iterator[tuple[SortOrder, bool, bool, bool]]:
    """Every sort, with and without a cursor, the completed filter and a search."""
    yield from itertools.product(get_args(SortOrder), (False, True), (False, True), (False, True))


async def explain(store: SqlTaskStore, statement: Statement, values: dict[str, Any]) -> Any:
    """The plan PostgreSQL makes for ``statement`` run once with ``values``: a custom
    plan, for these very values, as for an unnamed statement."""
    explain = dataclasses.replace(statement, sql=f"EXPLAIN (FORMAT JSON) {statement.sql}")
    ((document,),) = await store.database.fetch(explain, values)
    return document


async def explain_generic(store: SqlTaskStore, statement: Statement, values: dict[str, Any]) -> Any:
    """The generic plan PostgreSQL may settle on for ``statement`` prepared under a
    name (after five executions, when it costs no more than the custom ones)."""
    assert isinstance(store.database, PostgresDatabase)
    # EXECUTE takes no bound parameters: literals, which the prepared parameter types
    # take in (str() of every value here is valid input for its type).
    literals = ", ".join(
        "'" + str(value).lower().replace("'", "''") + "'"
        if isinstance(value, bool)
        else "'" + str(value).replace("'", "''") + "'"
        for value in statement.arguments(values)
    )
    pool = store.database.pool
    connection = await pool.acquire()
    try:
        await connection.execute("SET plan_cache_mode = force_generic_plan")
        await connection.execute(f"PREPARE listing AS {statement.sql}")
        try:
            return await connection.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE listing({literals})")
        finally:
            await connection.execute("DEALLOCATE listing; RESET plan_cache_mode")
    finally:
        pool.release(connection)


@pytest.mark.parametrize("plan", ["custom", "generic"])
@pytest.mark.parametrize(("sort", "after", "completed", "search"), list(listing_cases()))
async def test_listing_reads_one_index_in_order(
    store: SqlTaskStore,
    sort: SortOrder,
    after: bool,
    completed: bool,
    search: bool,
    plan: str,
) -> None:
    """The plan scans the sort's index for one user and needs no Sort node: the plan
    for the values at hand (unnamed statements, behind a pooler) and the generic one a
    named statement may be run with (direct connections)."""
    statements = store.database.statements
    filters = frozenset(name for name, on in (("completed", completed), ("q", search)) if on)
    listing = statements.list(sort, filters, after="key" if after else None)
    field = sort.lstrip("-")
    values: dict[str, Any] = {"user_id": "big", "limit": 101}
    if completed:
        values["completed"] = False
    if search:
        values["needle"] = "task 1"
    if after:
        key = "Task 50" if field == "title" else datetime.now(UTC)
        values["after_key"], values["after_id"] = key, uuid4()
    document = await (explain if plan == "custom" else explain_generic)(store, listing, values)
    nodes = list(plan_nodes(orjson.loads(document)[0]["Plan"]))
    kinds = [node["Node Type"] for node in nodes]
    assert "Seq Scan" not in kinds, kinds
    assert "Sort" not in kinds, kinds
    assert "Incremental Sort" not in kinds, kinds
    scans = [node for node in nodes if node["Node Type"] in ("Index Scan", "Index Only Scan")]
    assert [scan["Index Name"] for scan in scans] == [SORT_INDEXES[field]], kinds
    assert ("'big'" if plan == "custom" else "$") in scans[0]["Index Cond"]
