"""SQLite: the store's writes number themselves; the triggers number only the others.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

From this release on, the store's writes on SQLite set ``change_seq`` themselves (the
user's head in ``feed_heads`` plus one, read inside the write: ``sql/shapes.py``), so
0005's triggers, which number a write by writing its row a second time, fire only for
a write that did not number itself: one of a worker of the previous release, or of
another tool. Two lighter triggers move the head to the number a write took.

Safe while workers of the previous release still serve (docs/deploy.md): each step
is one statement under SQLite's write lock, and the new triggers are created before
0005's are dropped, so a write, old or new, is numbered at every moment in between (an
old worker's write in that moment is numbered twice, which leaves a gap in its user's
numbers and nothing else). On PostgreSQL nothing changes.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None
dialects = ("sqlite",)

# Frozen copies as of this revision. Trashing sets deleted_at, restoring deleted_at and
# version, every other write version: each is a change (as in 0005).
_NUMBERED = "version, deleted_at"
_NUMBER_THE_ROW = """
    INSERT INTO feed_heads (user_id, seq) VALUES (NEW.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET seq = seq + 1;
    UPDATE tasks SET change_seq = (SELECT seq FROM feed_heads WHERE user_id = NEW.user_id)
    WHERE user_id = NEW.user_id AND id = NEW.id;"""
# max(): a head never moves back, whatever number another tool writes.
_MOVE_THE_HEAD = """
    INSERT INTO feed_heads (user_id, seq) VALUES (NEW.user_id, NEW.change_seq)
    ON CONFLICT (user_id) DO UPDATE SET seq = max(seq, excluded.seq);"""
# (name, event, when, body): a write that numbered itself changed change_seq.
_TRIGGERS = (
    ("tasks_feed_head_insert", "INSERT", "NEW.change_seq IS NOT NULL", _MOVE_THE_HEAD),
    (
        "tasks_feed_head_update",
        f"UPDATE OF {_NUMBERED}",
        "NEW.change_seq IS NOT OLD.change_seq",
        _MOVE_THE_HEAD,
    ),
    ("tasks_feed_number_insert", "INSERT", "NEW.change_seq IS NULL", _NUMBER_THE_ROW),
    (
        "tasks_feed_number_update",
        f"UPDATE OF {_NUMBERED}",
        "NEW.change_seq IS OLD.change_seq",
        _NUMBER_THE_ROW,
    ),
)
# 0005's: they number every write.
_PREVIOUS = (
    ("tasks_feed_insert", "INSERT", None, _NUMBER_THE_ROW),
    ("tasks_feed_update", f"UPDATE OF {_NUMBERED}", None, _NUMBER_THE_ROW),
)
_Trigger = tuple[str, str, str | None, str]


def _replace(old: tuple[_Trigger, ...], new: tuple[_Trigger, ...]) -> None:
    """Create ``new``, then drop ``old``: in between, both number a write."""
    for name, event, when, body in new:
        condition = f" WHEN {when}" if when else ""
        op.execute(
            f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON tasks "
            f"FOR EACH ROW{condition} BEGIN{body}\nEND"
        )
    for name, *_ in old:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        _replace(_PREVIOUS, _TRIGGERS)


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        _replace(_TRIGGERS, _PREVIOUS)
