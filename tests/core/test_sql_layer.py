"""The SQL layer's own promises: one filter entry per ``ListQuery`` filter, each shape
compiled once and kept, and rows read by column name rather than position."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import get_args
from uuid import UUID

import pytest
import pytest_asyncio
import sqlalchemy as sa

from tests.backends import SQL_BACKENDS, open_backend
from tests.listing import expected_order, walk
from tests.values import ALICE, DUE_INSTANTS
from todo_core import ListQuery, SortOrder, Task, TaskCreate, TaskPatch
from todo_core.listing import FILTER_FIELDS, SortSpec
from todo_core.schema import UTCTimestamp, tasks
from todo_core.sql import SqlTaskStore, Statements, shapes
from todo_core.sql.filters import FILTERS
from todo_core.sql.sorts import After, position_kind

STARTS: tuple[After, ...] = (None, "key")


@pytest_asyncio.fixture(name="store", params=SQL_BACKENDS)
async def _store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlTaskStore]:
    async with open_backend(request.param, tmp_path) as store:
        assert isinstance(store, SqlTaskStore)
        yield store


def test_every_listing_filter_has_one_sql_fragment() -> None:
    """Each filtering field of ``ListQuery`` (which cursors are bound to) has exactly
    one entry in ``FILTERS``: a filter added to the query and not to SQL fails here."""
    assert tuple(FILTERS) == FILTER_FIELDS


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_a_shape_compiles_once_and_only_when_used(dialect: str) -> None:
    """Nothing is compiled ahead of use; asking for a shape again returns the same
    compiled statement; each combination of sort, filters and cursor is its own."""
    statements = Statements(dialect)  # type: ignore[arg-type]
    assert not statements.shapes
    first = statements.list("title", frozenset({"q"}), after="key")
    assert statements.list("title", frozenset({"q"}), after="key") is first
    assert len(statements.shapes) == 1
    combinations = list(
        itertools.product(
            get_args(SortOrder),
            [
                frozenset(chosen)
                for size in range(3)
                for chosen in itertools.combinations(FILTERS, size)
            ],
            STARTS,
        )
    )
    texts = {
        statements.list(sort, filters, after=after).sql for sort, filters, after in combinations
    }
    assert len(texts) == len(combinations) == len(statements.shapes)


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_only_a_search_may_scan(dialect: str) -> None:
    """A listing that searches (``q``) is marked as one that may read a user's whole
    set (SQLite runs those on a thread of their own); the others are not."""
    statements = Statements(dialect)  # type: ignore[arg-type]
    for filters in (frozenset(), frozenset({"completed"})):
        assert not statements.list("-created_at", filters, after=None).scans
    assert statements.list("-created_at", frozenset({"q"}), after="key").scans


async def test_rows_are_decoded_by_column_name(store: SqlTaskStore) -> None:
    """A statement selecting the task's columns in any order reads the same task: rows
    are decoded by the statement's own column names and types, not by position."""
    created = await store.create(ALICE, TaskCreate(title="Buy milk", description="2 l"))
    columns = [tasks.c[name] for name in reversed(Task.model_fields)]
    statement = store.database.statements.compile(
        sa.select(*columns).where(tasks.c.user_id == ALICE)
    )
    ((row,),) = [await store.database.fetch(statement, {})]
    assert statement.columns == tuple(reversed(Task.model_fields))
    assert statement.decode(row) == created.model_dump()


async def test_list_fields_rows_hold_the_same_values(store: SqlTaskStore) -> None:
    """``decode_fields`` (for ``list_fields``) reads a row as ``decode`` does; only a
    UUID may stay the driver's subclass, which the HTTP layer writes with ``str()``."""
    created = await store.create(
        ALICE, TaskCreate(title="Buy milk", recurrence="daily", due_at=DUE_INSTANTS[1])
    )
    await store.patch(ALICE, created.id, TaskPatch(completed=True))
    statement = store.database.statements.list("-created_at", frozenset(), after=None)
    rows = await store.database.fetch(statement, {"user_id": ALICE, "limit": 10})
    assert len(rows) == 2
    for row in rows:
        fields, model = statement.decode_fields(row), statement.decode(row)
        assert fields == model
        assert {name: type(value) for name, value in model.items()} == {
            name: type(value) if not isinstance(value, UUID) else UUID
            for name, value in fields.items()
        }
        assert str(fields["id"]) == str(model["id"])
    assert any(statement.decode_fields(row)["next_occurrence_id"] is not None for row in rows)


async def test_a_null_of_a_converted_type_stays_none(store: SqlTaskStore) -> None:
    """A NULL in a column whose values are converted (a timestamp, stored as integer
    microseconds on SQLite) decodes as None, as a nullable field's would."""
    statement = store.database.statements.compile(
        sa.select(sa.cast(sa.null(), UTCTimestamp()).label("due_at"))
    )
    ((row,),) = [await store.database.fetch(statement, {})]
    assert statement.decode(row) == {"due_at": None}


async def test_every_listing_shape_lists_what_its_query_asks(store: SqlTaskStore) -> None:
    """Each sort with each combination of filters, walked two tasks a page (so after a
    cursor too), lists the tasks the filters keep in the sort's order."""
    for number in range(7):
        await store.create(
            ALICE,
            TaskCreate(title=f"Task {number % 3}", completed=number % 2 == 0, description=None),
        )
    everything = await walk(store, ALICE, ListQuery(limit=500))
    for sort, completed, q in itertools.product(get_args(SortOrder), (None, True), (None, "2")):
        query = ListQuery(sort=sort, completed=completed, q=q, limit=2)
        listed = await walk(store, ALICE, query)
        expected = [
            task
            for task in everything
            if (completed is None or task.completed is completed)
            and (q is None or q in task.title.lower())
        ]
        assert listed == expected_order(expected, sort)


@pytest.mark.parametrize("descending", [False, True])
async def test_a_nullable_key_sorts_its_nulls_last_page_by_page(
    store: SqlTaskStore, descending: bool
) -> None:
    """A sort on a nullable column (here ``description``, which no public sort uses)
    puts NULLs after every value in both directions, and keyset pages of two walk into
    and through them: each task once, in order, on both dialects."""
    for number, description in enumerate(["b", None, "a", None, "c", "a", None]):
        await store.create(ALICE, TaskCreate(title=f"Task {number}", description=description))
    everything = await walk(store, ALICE, ListQuery(limit=500))
    valued = sorted(
        (task for task in everything if task.description is not None),
        key=lambda task: (task.description, task.id),
        reverse=descending,
    )
    nulls = sorted(
        (task for task in everything if task.description is None),
        key=lambda task: task.id,
        reverse=descending,
    )
    spec = SortSpec("description", descending=descending)
    statements = store.database.statements
    listed: list[dict[str, object]] = []
    values: dict[str, object] = {"user_id": ALICE, "limit": 2}
    after = None
    for _ in range(len(everything) + 1):
        statement = statements.compile(shapes.listing(spec, (), after))
        page = [statement.decode(row) for row in await store.database.fetch(statement, values)]
        if not page:
            break
        listed.extend(page)
        last = page[-1]
        after = position_kind(last["description"])
        values |= {"after_key": last["description"], "after_id": last["id"]}
    assert [fields["id"] for fields in listed] == [task.id for task in valued + nulls]
