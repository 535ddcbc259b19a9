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

from alembic import op

from todo_core.migrations.online import build_indexes, has_column

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
_INDEXES = (
    ("ix_tasks_user_priority", "(user_id, priority, id)"),
    ("ix_tasks_user_due", "(user_id, due_at, id)"),
    ("ix_tasks_user_due_desc", "(user_id, due_at DESC NULLS LAST, id DESC)"),
)


def upgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    for table, fields in _TABLES:
        for name, on_postgresql, on_sqlite in fields:
            if not postgresql:
                op.execute(f"ALTER TABLE {table} ADD COLUMN {name} {on_sqlite}")
            elif not has_column(table, name):
                # Not ADD COLUMN IF NOT EXISTS alone: it locks the table even when the
                # column is there, and waits for another migrator's index build, which
                # waits for this transaction: a deadlock.
                op.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {on_postgresql}")
    if not postgresql:
        for name, columns in _INDEXES:
            # SQLite sorts NULL first, so descending already puts it last; and it does
            # not accept NULLS LAST in an index.
            op.execute(f"CREATE INDEX {name} ON tasks {columns.replace(' NULLS LAST', '')}")
        return
    build_indexes(revision, down_revision, _INDEXES)


def downgrade() -> None:
    for name, _ in _INDEXES:
        op.drop_index(name, table_name="tasks")
    for table, columns in _TABLES:
        with op.batch_alter_table(table) as batch:
            for name, *_ in columns:
                batch.drop_column(name)
