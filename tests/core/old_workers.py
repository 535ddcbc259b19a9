"""Rows as workers of an earlier release write them: only the v1 columns of ``tasks``.

The migration tests fill a database at an older revision with them, and write them
again after the upgrade, as a worker not yet upgraded does during a rolling upgrade.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.values import ALICE, EPOCH_2024
from todo_core.schema import UTCTimestamp

# The tasks table as a v1 worker writes it: only the columns revision 0003 has (a
# worker of 0004 names more of them, but none that 0005 reads differently).
V1_TASKS = sa.table(
    "tasks",
    sa.column("user_id", sa.String()),
    sa.column("id", sa.Uuid()),
    sa.column("title", sa.Text()),
    sa.column("description", sa.Text()),
    sa.column("completed", sa.Boolean()),
    sa.column("created_at", UTCTimestamp()),
    sa.column("updated_at", UTCTimestamp()),
    sa.column("version", sa.Integer()),
    sa.column("title_folded", sa.Text()),
    sa.column("description_folded", sa.Text()),
)
UPDATED = EPOCH_2024 + timedelta(minutes=5)


async def insert_v1(engine: AsyncEngine, title: str, *, completed: bool) -> uuid.UUID:
    """Insert a task as a v1 worker does; its id."""
    task_id = uuid.uuid4()
    row: dict[str, Any] = {
        "user_id": ALICE,
        "id": task_id,
        "title": title,
        "description": None,
        "completed": completed,
        "created_at": EPOCH_2024,
        "updated_at": UPDATED,
        "version": 2,
        "title_folded": title.lower(),
        "description_folded": None,
    }
    async with engine.begin() as connection:
        await connection.execute(sa.insert(V1_TASKS).values(row))
    return task_id


async def update_v1(engine: AsyncEngine, task_id: uuid.UUID, title: str) -> None:
    """Retitle a task as an old worker does: every row of that id, trashed or not."""
    column = V1_TASKS.c
    async with engine.begin() as connection:
        await connection.execute(
            sa.update(V1_TASKS)
            .where(column.user_id == ALICE, column.id == task_id)
            .values(
                title=title,
                title_folded=title.lower(),
                updated_at=UPDATED + timedelta(minutes=1),
                version=column.version + 1,
            )
        )
