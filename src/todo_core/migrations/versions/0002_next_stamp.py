"""PostgreSQL: an IMMUTABLE function for a write's new updated_at.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

``GREATEST(now, updated_at + INTERVAL '1 microsecond')`` uses ``timestamptz + interval``,
which PostgreSQL marks STABLE (adding days or months depends on the time zone). Citus
refuses STABLE functions over columns in an UPDATE, so on a distributed ``tasks`` every
PUT and PATCH would fail. Adding a microsecond does not depend on the time zone, so the
same expression wrapped in a function is truthfully IMMUTABLE. SQLite needs nothing.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
# The dialects this revision changes anything on; on others it is a step in name only,
# and migrations/env.py does not announce it.
dialects = ("postgresql",)


def upgrade() -> None:
    if op.get_context().dialect.name not in dialects:
        return
    op.execute(
        """
        CREATE FUNCTION todo_next_stamp(previous timestamptz, now timestamptz)
        RETURNS timestamptz
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $$ SELECT GREATEST(now, previous + INTERVAL '1 microsecond') $$
        """
    )


def downgrade() -> None:
    if op.get_context().dialect.name not in dialects:
        return
    op.execute("DROP FUNCTION todo_next_stamp(timestamptz, timestamptz)")
