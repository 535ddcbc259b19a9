"""PostgreSQL serves every listing from an index, in index order, at any table size.

Each list statement the store can run is EXPLAINed, with real arguments, for a user
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

from tests.helpers import fresh_postgres_database
from todo_core import open_store
from todo_core.models import SortOrder
from todo_core.sql import SqlTaskStore

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


@pytest.mark.parametrize(("sort", "after", "completed", "search"), list(listing_cases()))
async def test_listing_reads_one_index_in_order(
    store: SqlTaskStore, sort: SortOrder, after: bool, completed: bool, search: bool
) -> None:
    """The plan scans the sort's index for one user and needs no Sort node."""
    statements = store.database.statements
    listing = statements.list(sort, completed=completed, search=search, after=after)
    field = sort.lstrip("-")
    values: dict[str, Any] = {"user_id": "big", "limit": 101}
    if completed:
        values["completed"] = False
    if search:
        values["needle"] = "task 1"
    if after:
        key = "Task 50" if field == "title" else datetime.now(UTC)
        values["after_key"], values["after_id"] = key, uuid4()
    explain = dataclasses.replace(listing, sql=f"EXPLAIN (FORMAT JSON) {listing.sql}")
    ((document,),) = await store.database.fetch(explain, values)
    nodes = list(plan_nodes(orjson.loads(document)[0]["Plan"]))
    kinds = [node["Node Type"] for node in nodes]
    assert "Seq Scan" not in kinds, kinds
    assert "Sort" not in kinds, kinds
    assert "Incremental Sort" not in kinds, kinds
    scans = [node for node in nodes if node["Node Type"] in ("Index Scan", "Index Only Scan")]
    assert [scan["Index Name"] for scan in scans] == [SORT_INDEXES[field]], kinds
    assert "'big'" in scans[0]["Index Cond"]
