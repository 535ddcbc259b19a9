"""Create tasks and todo_settings (with a generated cursor secret).

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the types in todo_core.schema as of this revision.
_TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.BigInteger(), "sqlite")
_CODE_POINT_TEXT = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("title", _CODE_POINT_TEXT, nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("updated_at", _TIMESTAMP, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title_folded", sa.Text(), nullable=False),
        sa.Column("description_folded", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("user_id", "id", name="pk_tasks"),
    )
    op.create_index("ix_tasks_user_created", "tasks", ["user_id", "created_at", "id"])
    op.create_index("ix_tasks_user_updated", "tasks", ["user_id", "updated_at", "id"])
    op.create_index("ix_tasks_user_title", "tasks", ["user_id", "title", "id"])
    settings = op.create_table(
        "todo_settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    # Cursors are signed with this unless TODO_SECRET says otherwise: one secret per
    # database keeps cursors valid across worker processes and restarts.
    op.bulk_insert(settings, [{"name": "cursor_secret", "value": secrets.token_hex(32)}])


def downgrade() -> None:
    op.drop_table("todo_settings")
    op.drop_index("ix_tasks_user_title", table_name="tasks")
    op.drop_index("ix_tasks_user_updated", table_name="tasks")
    op.drop_index("ix_tasks_user_created", table_name="tasks")
    op.drop_table("tasks")
