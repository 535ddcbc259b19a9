"""The tables, and the few SQL expressions that must be spelled per dialect.

The migrations in ``todo_core/migrations`` create exactly this schema; a test compares
the two. Every query the store runs is scoped by ``user_id``, the first column of the
primary key and of every index, so the table can be distributed by it (Citus).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from todo_core.timestamps import from_micros, to_micros

__all__ = [
    "FEED_TRIGGERS",
    "DueTimestamp",
    "PriorityLevel",
    "TagList",
    "UTCTimestamp",
    "alembic_version",
    "contains_text",
    "feed_heads",
    "feed_listeners",
    "idempotency_keys",
    "metadata",
    "next_stamp",
    "settings",
    "tasks",
]


class UTCTimestamp(sa.TypeDecorator[datetime]):
    """``timestamptz`` on PostgreSQL; integer microseconds since the epoch on SQLite.

    SQLite has no time type and its text form drops the zone and sorts badly; integers
    keep microseconds exact, sort correctly and support ``+ 1`` in ``next_stamp``.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    # Off SQLite there is nothing to convert: asyncpg takes and returns aware datetimes.
    # Saying so (None) spares a pass-through call per value on every row.
    def bind_processor(self, dialect: Dialect) -> Any:
        return super().bind_processor(dialect) if dialect.name == "sqlite" else None

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        return super().result_processor(dialect, coltype) if dialect.name == "sqlite" else None

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return to_micros(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None or dialect.name != "sqlite":
            return value  # type: ignore[no-any-return]
        return from_micros(value)


class DueTimestamp(UTCTimestamp):
    """A ``UTCTimestamp`` that may hold the ends of the range ``due_at`` allows.

    asyncpg writes ``0001-01-01T00:00:00Z`` and ``9999-12-31T23:59:59.999999Z`` (Python's
    ``datetime.min`` and ``max``) as ``-infinity`` and ``infinity``, which sort and
    compare as those ends do, and reads them back as naive ``datetime.min``/``max``:
    ``sql/dialects.py`` (kind ``due``) makes them aware again.
    """

    cache_ok = True


class PriorityLevel(sa.TypeDecorator[str]):
    """A priority's name (``todo_core.PRIORITIES``), stored as its rank, 0-3.

    Ranks sort like the levels (``none`` < ``low`` < ``medium`` < ``high``), so one
    index on (user_id, priority, id) serves ``sort=priority`` in both directions.
    The conversion happens in ``sql/dialects.py`` (kind ``priority``), not here.
    """

    impl = sa.SmallInteger()
    cache_ok = True


class TagList(sa.TypeDecorator[list[str]]):
    """A task's tags in order: ``text[]`` on PostgreSQL, a JSON array as text on SQLite.

    PostgreSQL matches ``tag=`` with array containment (``@>``); SQLite with
    ``json_each``. The JSON conversion happens in ``sql/dialects.py`` (kind ``list``).
    """

    impl = sa.Text()
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(sa.Text()))
        return dialect.type_descriptor(sa.Text())


metadata = sa.MetaData()

# Alembic's own bookkeeping table, read at open to skip loading Alembic when there is
# nothing to migrate. Outside ``metadata``: the migrations do not create it, Alembic does.
alembic_version = sa.Table(
    "alembic_version", sa.MetaData(), sa.Column("version_num", sa.String(32), nullable=False)
)


class no_tags(FunctionElement[list[str]]):
    """An empty ``TagList``, the default of rows written without tags: ``'{}'`` on
    PostgreSQL, ``'[]'`` on SQLite."""

    type = TagList()
    inherit_cache = True
    name = "no_tags"


@compiles(no_tags, "postgresql")
def _no_tags_postgresql(element: no_tags, compiler: SQLCompiler, **kw: Any) -> str:
    return "'{}'::text[]"


@compiles(no_tags, "sqlite")
def _no_tags_sqlite(element: no_tags, compiler: SQLCompiler, **kw: Any) -> str:
    return "'[]'"


_NO_TAGS: Final = no_tags()


class due_descending(FunctionElement[datetime]):
    """``due_at DESC NULLS LAST`` in an index: SQLite refuses the clause there, but
    sorts NULL first, so its plain ``DESC`` already puts NULL last."""

    inherit_cache = True
    name = "due_descending"


@compiles(due_descending, "postgresql")
def _due_descending_postgresql(element: due_descending, compiler: SQLCompiler, **kw: Any) -> str:
    return "due_at DESC NULLS LAST"


@compiles(due_descending, "sqlite")
def _due_descending_sqlite(element: due_descending, compiler: SQLCompiler, **kw: Any) -> str:
    return "due_at DESC"


# Titles sort by code point: PostgreSQL's "C" collation does that for UTF-8, and so does
# SQLite's default BINARY collation.
_CODE_POINT_TEXT = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("title", _CODE_POINT_TEXT, nullable=False),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("completed", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCTimestamp(), nullable=False),
    sa.Column("updated_at", UTCTimestamp(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    # Python's str.lower() of title and description: what ``q`` is matched against.
    sa.Column("title_folded", sa.Text(), nullable=False),
    sa.Column("description_folded", sa.Text(), nullable=True),
    # v2 (migration 0004): each with a constant default, so adding it rewrites nothing
    # and workers of the previous release keep inserting rows.
    sa.Column("due_at", DueTimestamp(), nullable=True),
    sa.Column("priority", PriorityLevel(), nullable=False, server_default="0"),
    sa.Column("tags", TagList(), nullable=False, server_default=_NO_TAGS),
    sa.Column("recurrence", sa.String(16), nullable=True),
    sa.Column("time_zone", sa.String(64), nullable=False, server_default="UTC"),
    sa.Column("completed_at", UTCTimestamp(), nullable=True),
    sa.Column("next_occurrence_id", sa.Uuid(), nullable=True),
    # The change feed and the trash (migration 0005): the number of the task's latest
    # change, set by the write itself or by the triggers (FEED_TRIGGERS), NULL for a task
    # not written since before 0005; when it went to the trash; whether it was purged
    # from it (a tombstone the feed still reports deleted until the retention ends).
    sa.Column("change_seq", sa.BigInteger(), nullable=True),
    sa.Column("deleted_at", UTCTimestamp(), nullable=True),
    sa.Column("purged", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.PrimaryKeyConstraint("user_id", "id", name="pk_tasks"),
    # One index per sort key; the trailing id gives keyset pages their tie-breaker.
    # (user_id) and (user_id, created_at) of the original plan are prefixes of these.
    sa.Index("ix_tasks_user_created", "user_id", "created_at", "id"),
    sa.Index("ix_tasks_user_updated", "user_id", "updated_at", "id"),
    sa.Index("ix_tasks_user_title", "user_id", "title", "id"),
    sa.Index("ix_tasks_user_priority", "user_id", "priority", "id"),
    # Tasks without due_at come last in both directions: NULLS LAST ascending is the
    # default order of an index, descending needs one of its own.
    sa.Index("ix_tasks_user_due", "user_id", "due_at", "id"),
    sa.Index("ix_tasks_user_due_desc", "user_id", due_descending(), sa.desc(sa.column("id"))),
    # The feed reads a user's changes in number order; the trash, a user's trashed
    # tasks most recently deleted first; the retention purge, every user's oldest
    # deletions. The partial ones hold only the few rows they serve.
    sa.Index("ix_tasks_user_change", "user_id", "change_seq"),
    sa.Index(
        "ix_tasks_user_trash",
        "user_id",
        "deleted_at",
        "id",
        postgresql_where=sa.text("deleted_at IS NOT NULL AND NOT purged"),
        sqlite_where=sa.text("deleted_at IS NOT NULL AND NOT purged"),
    ),
    sa.Index(
        "ix_tasks_deleted",
        "deleted_at",
        postgresql_where=sa.text("deleted_at IS NOT NULL"),
        sqlite_where=sa.text("deleted_at IS NOT NULL"),
    ),
)

# Each user's feed head: the number of the user's latest change. A task write's
# trigger takes the next number here, inside the write's transaction, and holds this
# row's lock (PostgreSQL) or the database's write lock (SQLite) until it commits: so a
# later number is taken only once the earlier one is committed, and numbers become
# visible in number order (docs/library.md, "The change feed").
feed_heads = sa.Table(
    "feed_heads",
    metadata,
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("seq", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("user_id", name="pk_feed_heads"),
)

# The processes LISTENing for the feed's NOTIFY (PostgreSQL; empty on SQLite), by
# backend pid: the trigger notifies only while there is one, because each commit that
# notifies takes a lock shared by the whole cluster (sql/wakeups.py keeps the rows).
feed_listeners = sa.Table(
    "feed_listeners",
    metadata,
    sa.Column("backend_pid", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("backend_pid", name="pk_feed_listeners"),
)

FEED_TRIGGERS: Final = {
    # One BEFORE trigger sets NEW.change_seq, then notifies LISTENers of the user.
    "postgresql": frozenset({"tasks_feed"}),
    # The store's writes number themselves (sql/shapes.py): an AFTER trigger moves the
    # user's head to the number taken. A write that did not (an older worker's) is
    # numbered by another, which sets the row's change_seq with an UPDATE of that column
    # alone (SQLite's BEFORE triggers may not change NEW), firing none of them again.
    "sqlite": frozenset(
        {
            "tasks_feed_head_insert",
            "tasks_feed_head_update",
            "tasks_feed_number_insert",
            "tasks_feed_number_update",
        }
    ),
}
"""The triggers on ``tasks`` that keep every write numbered, by dialect. Migrations 0005
and 0006 create them (their SQL is there): a task is numbered on INSERT and on every
UPDATE that sets ``version`` or ``deleted_at``, whatever statement or release wrote it."""

# Exactly-once creates (todo_core.idempotency): per user and key, the request's
# fingerprint and the task as created, written in the create's own transaction. A row
# whose expires_at has passed is dead: a create with its key replaces it.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("task_id", sa.Uuid(), nullable=False),
    sa.Column("title", sa.Text(), nullable=False),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("completed", sa.Boolean(), nullable=False),
    sa.Column("due_at", DueTimestamp(), nullable=True),
    sa.Column("priority", PriorityLevel(), nullable=False, server_default="0"),
    sa.Column("tags", TagList(), nullable=False, server_default=_NO_TAGS),
    sa.Column("recurrence", sa.String(16), nullable=True),
    sa.Column("time_zone", sa.String(64), nullable=False, server_default="UTC"),
    sa.Column("created_at", UTCTimestamp(), nullable=False),
    sa.Column("expires_at", UTCTimestamp(), nullable=False),
    sa.PrimaryKeyConstraint("user_id", "key", name="pk_idempotency_keys"),
    # For the purge of dead rows, which must find them without reading live ones.
    sa.Index("ix_idempotency_keys_expires", "expires_at"),
)

settings = sa.Table(
    "todo_settings",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
)


class next_stamp(FunctionElement[datetime]):
    """``max(now, previous + 1 microsecond)``: a write's new ``updated_at``.

    Computed in the UPDATE itself, so it is strictly later than the value it replaces
    even when clocks of several processes disagree, without reading the row first.
    """

    type = UTCTimestamp()
    inherit_cache = True
    name = "next_stamp"


@compiles(next_stamp, "postgresql")
def _next_stamp_postgresql(element: next_stamp, compiler: SQLCompiler, **kw: Any) -> str:
    # GREATEST(now, previous + INTERVAL '1 microsecond') with the addition done on UTC
    # wall-clock time: timestamptz + interval is STABLE (days and months depend on the
    # time zone), which Citus refuses over a column in an UPDATE; timestamp + interval
    # and AT TIME ZONE are IMMUTABLE. Inline, it costs PostgreSQL 13-16 µs less per
    # UPDATE than the IMMUTABLE SQL function todo_next_stamp (migration 0002) that
    # earlier releases call, which PostgreSQL cannot inline.
    previous, now = (compiler.process(clause, **kw) for clause in element.clauses)
    return (
        f"GREATEST({now}, "
        f"(({previous} AT TIME ZONE 'UTC') + INTERVAL '1 microsecond') AT TIME ZONE 'UTC')"
    )


@compiles(next_stamp, "sqlite")
def _next_stamp_sqlite(element: next_stamp, compiler: SQLCompiler, **kw: Any) -> str:
    previous, now = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"MAX({now}, {previous} + 1)"


class contains_text(FunctionElement[bool]):
    """True where ``haystack`` contains ``needle`` literally (no LIKE wildcards)."""

    type = sa.Boolean()
    inherit_cache = True
    name = "contains_text"


@compiles(contains_text, "postgresql")
def _contains_text_postgresql(element: contains_text, compiler: SQLCompiler, **kw: Any) -> str:
    haystack, needle = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"(strpos({haystack}, {needle}) > 0)"


@compiles(contains_text, "sqlite")
def _contains_text_sqlite(element: contains_text, compiler: SQLCompiler, **kw: Any) -> str:
    haystack, needle = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"(instr({haystack}, {needle}) > 0)"
