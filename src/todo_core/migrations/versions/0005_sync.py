"""The change feed and the trash: change numbers, deletion marks, feed heads, triggers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

Safe while workers of the previous release still serve (docs/deploy.md). The three
columns are nullable or have a constant default, so no row is rewritten and old
workers' INSERTs get the defaults; their writes are numbered by the triggers from the
moment this revision's first transaction commits. Old workers still delete rows for
good (the feed never learns of those deletions) until they are upgraded. The indexes
are built ``CONCURRENTLY`` as in 0004, and every step is safe for several migrators
at once (``todo_core.migrations.online``).

Nothing is backfilled: a task not written since has no change number and is not in
any feed (a client lists the tasks first, then follows the feed).
"""

from __future__ import annotations

from alembic import op

from todo_core.migrations.online import build_indexes, has_column, has_trigger

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Frozen copies of todo_core.schema as of this revision.
_COLUMNS = (
    ("change_seq", "BIGINT", "BIGINT"),
    ("deleted_at", "TIMESTAMP WITH TIME ZONE", "BIGINT"),
    ("purged", "BOOLEAN NOT NULL DEFAULT false", "BOOLEAN NOT NULL DEFAULT 0"),
)
_FEED_HEADS = (
    "CREATE TABLE IF NOT EXISTS feed_heads (user_id VARCHAR(64) NOT NULL, seq BIGINT NOT NULL, "
    "CONSTRAINT pk_feed_heads PRIMARY KEY (user_id))"
)
_FEED_LISTENERS = (
    "CREATE TABLE IF NOT EXISTS feed_listeners (backend_pid INTEGER NOT NULL, "
    "CONSTRAINT pk_feed_listeners PRIMARY KEY (backend_pid))"
)
_INDEXES = (
    ("ix_tasks_user_change", "(user_id, change_seq)"),
    (
        "ix_tasks_user_trash",
        "(user_id, deleted_at, id) WHERE deleted_at IS NOT NULL AND NOT purged",
    ),
    ("ix_tasks_deleted", "(deleted_at) WHERE deleted_at IS NOT NULL"),
)
# Trashing sets deleted_at, restoring deleted_at and version, every other write
# version: each is a change. Purging sets neither: the feed reported the deletion.
_NUMBERED = "version, deleted_at"

# PostgreSQL: the upsert locks the user's head row until the write commits, so the
# next writer of the user takes its number only after this one is visible. NOTIFY is
# delivered at commit, to LISTENers of todo_feed (live events), never for a rollback;
# only while some process listens (feed_listeners), since every commit that notifies
# takes one lock shared by the whole cluster: concurrent writes would queue on it.
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION todo_feed_next() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO feed_heads AS head (user_id, seq) VALUES (NEW.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET seq = head.seq + 1
    RETURNING head.seq INTO NEW.change_seq;
    IF EXISTS (SELECT FROM feed_listeners) THEN
        PERFORM pg_notify('todo_feed', NEW.user_id);
    END IF;
    RETURN NEW;
END
$$
"""
_PG_TRIGGER = (
    f"CREATE TRIGGER tasks_feed BEFORE INSERT OR UPDATE OF {_NUMBERED} ON tasks "
    "FOR EACH ROW EXECUTE FUNCTION todo_feed_next()"
)


def _sqlite_trigger(name: str, event: str) -> str:
    # SQLite's BEFORE triggers cannot change NEW: an AFTER trigger numbers the row with
    # an UPDATE of change_seq alone, which fires neither trigger again. The writer
    # holds the database's write lock until it commits, so numbers are visible in order.
    return f"""
CREATE TRIGGER {name} AFTER {event} ON tasks FOR EACH ROW BEGIN
    INSERT INTO feed_heads (user_id, seq) VALUES (NEW.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET seq = seq + 1;
    UPDATE tasks SET change_seq = (SELECT seq FROM feed_heads WHERE user_id = NEW.user_id)
    WHERE user_id = NEW.user_id AND id = NEW.id;
END
"""


_SQLITE_TRIGGERS = (
    ("tasks_feed_insert", "INSERT"),
    ("tasks_feed_update", f"UPDATE OF {_NUMBERED}"),
)


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        for name, _, on_sqlite in _COLUMNS:
            op.execute(f"ALTER TABLE tasks ADD COLUMN {name} {on_sqlite}")
        op.execute(_FEED_HEADS)
        op.execute(_FEED_LISTENERS)
        for name, event in _SQLITE_TRIGGERS:
            op.execute(_sqlite_trigger(name, event))
        for name, definition in _INDEXES:
            op.execute(f"CREATE INDEX {name} ON tasks {definition}")
        return
    for name, on_postgresql, _ in _COLUMNS:
        # Checked first, as in 0004: ADD COLUMN IF NOT EXISTS would lock the table even
        # when the column is there, behind another migrator's index build.
        if not has_column("tasks", name):
            op.execute(f"ALTER TABLE tasks ADD COLUMN {name} {on_postgresql}")
    op.execute(_FEED_HEADS)
    op.execute(_FEED_LISTENERS)
    op.execute(_PG_FUNCTION)
    if not has_trigger("tasks", "tasks_feed"):  # CREATE OR REPLACE TRIGGER would lock
        op.execute(_PG_TRIGGER)
    build_indexes(revision, down_revision, _INDEXES)


def downgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    if postgresql:
        op.execute("DROP TRIGGER tasks_feed ON tasks")
        op.execute("DROP FUNCTION todo_feed_next()")
    else:
        for name, _ in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    # The previous release knows no trash: what is in it (or purged) is deleted.
    op.execute("DELETE FROM tasks WHERE deleted_at IS NOT NULL")
    for name, _ in _INDEXES:
        op.drop_index(name, table_name="tasks")
    op.drop_table("feed_heads")
    op.drop_table("feed_listeners")
    with op.batch_alter_table("tasks") as batch:
        for name, *_ in _COLUMNS:
            batch.drop_column(name)
