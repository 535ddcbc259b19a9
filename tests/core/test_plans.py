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
from todo_core.sql.filters import FILTERS

# One database for the whole module: filling and analysing it is the slow part.
pytestmark = [pytest.mark.postgres, pytest.mark.asyncio(loop_scope="module")]

USERS = 200
TASKS_PER_USER = 50
BIG_USER_TASKS = 20_000
SORT_INDEXES = {
    "created_at": "ix_tasks_user_created",
    "-created_at": "ix_tasks_user_created",
    "updated_at": "ix_tasks_user_updated",
    "-updated_at": "ix_tasks_user_updated",
    "title": "ix_tasks_user_title",
    "-title": "ix_tasks_user_title",
    "due_at": "ix_tasks_user_due",
    # NULLs last both ways: descending, only the index built that way gives the order.
    "-due_at": "ix_tasks_user_due_desc",
    "priority": "ix_tasks_user_priority",
    "-priority": "ix_tasks_user_priority",
}
# A cursor's sort key of each kind of sort, by field.
AFTER_KEYS: dict[str, Any] = {"title": "Task 50", "priority": "medium"}
# Tasks of many users with distinct keys, written on the server: USERS ordinary users,
# and "big", whose listings are the ones explained.
FILL = """
INSERT INTO tasks (user_id, id, title, description, completed, created_at, updated_at,
                   version, title_folded, description_folded, due_at, priority, tags)
SELECT {user}, gen_random_uuid(), 'Task ' || n, NULL, n % 3 = 0,
       now() - n * interval '1 second', now() - n * interval '1 second', 1,
       'task ' || n, NULL,
       CASE WHEN n % 5 = 0 THEN NULL ELSE now() + n * interval '1 minute' END,
       n % 4, ARRAY['tag' || (n % 3), 'all']
FROM generate_series(1, {count}) AS n
"""
FILLS = (
    FILL.format(user=f"'user-' || (n % {USERS})", count=USERS * TASKS_PER_USER),
    FILL.format(user="'big'", count=BIG_USER_TASKS),
    # A quarter of big's tasks in the trash, for the trash's pages.
    "UPDATE tasks SET deleted_at = updated_at WHERE user_id = 'big' AND priority = 3",
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


def _literal(value: object) -> str:
    """``value`` as a quoted literal its parameter's type takes in."""
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, list):  # an array parameter
        text = "{" + ",".join(f'"{item}"' for item in value) + "}"
    else:
        text = str(value)
    return "'" + text.replace("'", "''") + "'"


async def explain_generic(store: SqlTaskStore, statement: Statement, values: dict[str, Any]) -> Any:
    """The generic plan PostgreSQL may settle on for ``statement`` prepared under a
    name (after five executions, when it costs no more than the custom ones)."""
    assert isinstance(store.database, PostgresDatabase)
    # EXECUTE takes no bound parameters: literals, which the prepared parameter types
    # take in (str() of every value here is valid input for its type).
    literals = ", ".join(_literal(value) for value in statement.arguments(values))
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
    values: dict[str, Any] = {"user_id": "big", "limit": 101}
    if completed:
        values["completed"] = False
    if search:
        values["needle"] = "task 1"
    if after:
        values["after_key"] = AFTER_KEYS.get(sort.lstrip("-"), datetime.now(UTC))
        values["after_id"] = uuid4()
    await assert_reads_the_index(store, listing, values, plan, SORT_INDEXES[sort])


async def assert_reads_the_index(
    store: SqlTaskStore, listing: Statement, values: dict[str, Any], plan: str, index: str
) -> None:
    """``listing``'s plan reads ``index`` for user "big" alone, in the order asked for."""
    document = await (explain if plan == "custom" else explain_generic)(store, listing, values)
    nodes = list(plan_nodes(orjson.loads(document)[0]["Plan"]))
    kinds = [node["Node Type"] for node in nodes]
    assert "Seq Scan" not in kinds, kinds
    assert "Sort" not in kinds, kinds
    assert "Incremental Sort" not in kinds, kinds
    scans = [node for node in nodes if node["Node Type"] in ("Index Scan", "Index Only Scan")]
    assert [scan["Index Name"] for scan in scans] == [index], kinds
    assert ("'big'" if plan == "custom" else "$") in scans[0]["Index Cond"]


@pytest.mark.parametrize("plan", ["custom", "generic"])
@pytest.mark.parametrize("sort", ["due_at", "-due_at"])
async def test_a_page_among_the_tasks_without_due_at_reads_the_index(
    store: SqlTaskStore, sort: SortOrder, plan: str
) -> None:
    """After a cursor among the tasks without ``due_at`` (the last ones, both ways),
    the page still comes from the sort's index, in order."""
    listing = store.database.statements.list(sort, frozenset(), after="null")
    values = {"user_id": "big", "limit": 101, "after_id": uuid4()}
    await assert_reads_the_index(store, listing, values, plan, SORT_INDEXES[sort])


# Each v2 filter alone and all together, with values most of the user's tasks match,
# as a page of the listing would ask for them (FILTERS' own binds).
FILTER_CASES: dict[str, dict[str, Any]] = {
    "priority": {"priority": ("none", "low", "high")},
    "tag": {"tag": ("all",)},
    "due_min": {"due_min": datetime(2000, 1, 1, tzinfo=UTC)},
    "due_max": {"due_max": datetime(2999, 1, 1, tzinfo=UTC)},
    "combined": {
        "priority": ("none", "low", "high"),
        "tag": ("all",),
        "due_min": datetime(2000, 1, 1, tzinfo=UTC),
        "due_max": datetime(2999, 1, 1, tzinfo=UTC),
    },
}


@pytest.mark.parametrize("plan", ["custom", "generic"])
@pytest.mark.parametrize("after", [False, True])
@pytest.mark.parametrize("sort", ["-created_at", "due_at", "-due_at", "priority", "-priority"])
@pytest.mark.parametrize("case", list(FILTER_CASES))
async def test_filtered_listing_reads_the_sort_index_in_order(
    store: SqlTaskStore, case: str, sort: SortOrder, after: bool, plan: str
) -> None:
    """The new filters are conditions on the rows the sort's index yields for the
    user: no sequential scan, no Sort node."""
    chosen = FILTER_CASES[case]
    values: dict[str, Any] = {"user_id": "big", "limit": 101}
    for name, value in chosen.items():
        values |= FILTERS[name].bind(value)
    if after:
        values["after_key"] = AFTER_KEYS.get(sort.lstrip("-"), datetime.now(UTC))
        values["after_id"] = uuid4()
    listing = store.database.statements.list(
        sort, frozenset(chosen), after="key" if after else None
    )
    if case == "combined" and plan == "generic" and not sort.endswith("due_at"):
        # Knowing no value, the generic plan takes four filters together to keep a
        # handful of rows, and sorts what an index finds for the user (custom plans,
        # for the values at hand, read the sort's index in order).
        document = await explain_generic(store, listing, values)
        nodes = list(plan_nodes(orjson.loads(document)[0]["Plan"]))
        kinds = [node["Node Type"] for node in nodes]
        assert "Seq Scan" not in kinds, kinds
        assert any("Index Name" in node for node in nodes), kinds
        return
    await assert_reads_the_index(store, listing, values, plan, SORT_INDEXES[sort])


@pytest.mark.parametrize("after", [False, True])
async def test_tags_read_the_users_rows_by_index(store: SqlTaskStore, after: bool) -> None:
    """A page of tags finds the user's rows through an index, not by reading the table
    (a user with few of its rows: "big" holds most of them, which a scan reads best)."""
    statement = store.database.statements.tags(after=after)
    values = {"user_id": "user-7", "limit": 101, "after_tag": "tag0"}
    for document in (
        await explain(store, statement, values),
        await explain_generic(store, statement, values),
    ):
        nodes = list(plan_nodes(orjson.loads(document)[0]["Plan"]))
        kinds = [node["Node Type"] for node in nodes]
        assert "Seq Scan" not in kinds, kinds
        assert any("Index Name" in node for node in nodes), kinds


@pytest.mark.parametrize("plan", ["custom", "generic"])
async def test_the_feed_reads_the_users_changes_in_order(store: SqlTaskStore, plan: str) -> None:
    """A feed page reads (user_id, change_seq) from the token's number on, in order."""
    values = {"user_id": "big", "since": BIG_USER_TASKS // 2, "limit": 101}
    changes = store.database.statements.changes
    await assert_reads_the_index(store, changes, values, plan, "ix_tasks_user_change")


@pytest.mark.parametrize("plan", ["custom", "generic"])
@pytest.mark.parametrize("after", [False, True])
async def test_the_trash_reads_its_partial_index_in_order(
    store: SqlTaskStore, plan: str, after: bool
) -> None:
    """A trash page reads the partial index of trashed tasks, backwards, no Sort."""
    values: dict[str, Any] = {"user_id": "big", "limit": 21}
    if after:
        values |= {"after_deleted_at": datetime.now(UTC), "after_id": uuid4()}
    trash = store.database.statements.trash(after=after)
    await assert_reads_the_index(store, trash, values, plan, "ix_tasks_user_trash")
