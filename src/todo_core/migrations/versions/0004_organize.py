"""Organizing tasks: due dates, priority, tags, recurrence.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

Safe while workers of the previous release still serve (docs/deploy.md). Every new
column is nullable or has a constant default, which PostgreSQL records in the catalog
without rewriting the table, and old workers' INSERTs, which do not name the columns,
get the defaults. On PostgreSQL the indexes are built ``CONCURRENTLY``, outside the
migration's transaction, so writes go on while they build; every step says
``IF NOT EXISTS``, so a migrator that takes over after a crash (or after the first one
released the lock at that commit) finishes the job instead of failing.

Nothing is backfilled: tasks completed before the upgrade have no ``completed_at``,
and the store answers their ``updated_at`` for it (``shapes.TASK_COLUMNS``).
"""

from __future__ import annotations

import random
import time

import sqlalchemy as sa
from alembic import op

from todo_core.migrations import MIGRATION_LOCK

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen copies of todo_core.schema's types as of this revision.
_TIMESTAMP = "TIMESTAMP WITH TIME ZONE"
_SQLITE_TIMESTAMP = "BIGINT"

# (name, PostgreSQL type and default, SQLite type and default): the same on both tables
# but completed_at and next_occurrence_id, which only tasks has.
_TASK_FIELDS = (
    ("due_at", _TIMESTAMP, _SQLITE_TIMESTAMP),
    ("priority", "SMALLINT NOT NULL DEFAULT 0", "SMALLINT NOT NULL DEFAULT 0"),
    ("tags", "TEXT[] NOT NULL DEFAULT '{}'::text[]", "TEXT NOT NULL DEFAULT '[]'"),
    ("recurrence", "VARCHAR(16)", "VARCHAR(16)"),
    ("time_zone", "VARCHAR(64) NOT NULL DEFAULT 'UTC'", "VARCHAR(64) NOT NULL DEFAULT 'UTC'"),
)
_TASK_ONLY = (
    ("completed_at", _TIMESTAMP, _SQLITE_TIMESTAMP),
    ("next_occurrence_id", "UUID", "CHAR(32)"),
)
_TABLES = (("tasks", _TASK_FIELDS + _TASK_ONLY), ("idempotency_keys", _TASK_FIELDS))
# How long to wait for an index that another migrator is building (a large table's
# build takes minutes; ours must not give up before it does).
_BUILD_WAIT = 3600.0
# What a build that raced another migrator's fails with: deadlock detected, and "tuple
# concurrently updated" (both creating the same index's catalog entry).
_RACES = frozenset({"40P01", "XX000"})
_INDEXES = (
    ("ix_tasks_user_priority", "user_id, priority, id"),
    ("ix_tasks_user_due", "user_id, due_at, id"),
    ("ix_tasks_user_due_desc", "user_id, due_at DESC NULLS LAST, id DESC"),
)


def upgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    for table, fields in _TABLES:
        for name, on_postgresql, on_sqlite in fields:
            if not postgresql:
                op.execute(f"ALTER TABLE {table} ADD COLUMN {name} {on_sqlite}")
            elif not _has_column(table, name):
                # Not ADD COLUMN IF NOT EXISTS alone: it locks the table even when the
                # column is there, and waits for another migrator's index build, which
                # waits for this transaction: a deadlock.
                op.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {on_postgresql}")
    if not postgresql:
        for name, columns in _INDEXES:
            # SQLite sorts NULL first, so descending already puts it last; and it does
            # not accept NULLS LAST in an index.
            op.execute(f"CREATE INDEX {name} ON tasks ({columns.replace(' NULLS LAST', '')})")
        return
    with op.get_context().autocommit_block():
        for name, columns in _INDEXES:
            _build_index(name, columns)
    # The block committed, releasing the migration lock (migrations/env.py) that made
    # other migrators wait: one of them may have finished this revision meanwhile and
    # recorded it. Take the lock again, and leave the record where Alembic's own
    # "0003 -> 0004" step (next, in this transaction) expects it.
    bind = op.get_bind()
    bind.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
    bind.exec_driver_sql(
        f"UPDATE alembic_version SET version_num = '{down_revision}' "
        f"WHERE version_num = '{revision}'"
    )


def _has_column(table: str, name: str) -> bool:
    found = op.get_bind().execute(
        sa.text(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = :table AND column_name = :name"
        ),
        {"table": table, "name": name},
    )
    return found.first() is not None


def _build_index(name: str, columns: str) -> None:
    """Build index ``name`` unless it is there and usable; return once it is.

    Another migrator may be building it (or another index of the table) right now: two
    concurrent builds on one table can deadlock, so this waits for theirs to end first,
    and should both start at once, the one PostgreSQL aborts tries again. An INVALID
    index that nobody is building is what a failed build left: built again.
    """
    deadline = time.monotonic() + _BUILD_WAIT
    while True:
        if time.monotonic() > deadline:
            raise RuntimeError(f"index {name} is still not usable after {_BUILD_WAIT} s")
        if _is_being_built():
            time.sleep(0.2)
            continue
        try:
            if _is_invalid_index(name):
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON tasks ({columns})")
        except sa.exc.DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) not in _RACES:
                raise
            time.sleep(random.uniform(0.1, 0.5))
            continue
        if not _is_invalid_index(name):
            return


def _is_being_built() -> bool:
    # Another migrator's build of any index on the table: the one of an index may
    # not name it yet.
    found = op.get_bind().execute(
        sa.text(
            "SELECT 1 FROM pg_stat_progress_create_index "
            "WHERE relid = CAST('tasks' AS regclass) AND pid <> pg_backend_pid()"
        )
    )
    return found.first() is not None


def _is_invalid_index(name: str) -> bool:
    found = op.get_bind().execute(
        sa.text(
            "SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = pg_index.indexrelid "
            "WHERE pg_class.relname = :name AND NOT pg_index.indisvalid"
        ),
        {"name": name},
    )
    return found.first() is not None


def downgrade() -> None:
    for name, _ in _INDEXES:
        op.drop_index(name, table_name="tasks")
    for table, columns in _TABLES:
        with op.batch_alter_table(table) as batch:
            for name, *_ in columns:
                batch.drop_column(name)
