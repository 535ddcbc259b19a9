"""What a database's catalog says about the schema beyond what Alembic compares: the
triggers on ``tasks``, for the schema and migration tests."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine


async def trigger_names(engine: AsyncEngine) -> frozenset[str]:
    """The names of the triggers on ``tasks`` (``compare_metadata`` does not see them)."""
    async with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'tasks'"
        else:
            sql = (
                "SELECT tgname FROM pg_trigger "
                "WHERE tgrelid = CAST('tasks' AS regclass) AND NOT tgisinternal"
            )
        return frozenset((await connection.execute(sa.text(sql))).scalars())
