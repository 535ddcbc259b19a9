"""Alembic configured as ``todo_core.migrate`` configures it, for tests that step the
schema to a given revision (a downgrade, a database left at an older release's)."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_core.migrate import current_revision


def alembic_config(connection: Connection) -> Config:
    """Alembic pointed at the migrations shipped inside the installed package."""
    config = Config()
    config.set_main_option("script_location", str(files("todo_core") / "migrations"))
    config.attributes["connection"] = connection
    return config


async def step_to(engine: AsyncEngine, revision: str, *, down: bool = False) -> None:
    """Upgrade (or downgrade) the database to ``revision``."""

    def step(connection: Connection) -> None:
        (command.downgrade if down else command.upgrade)(alembic_config(connection), revision)

    async with engine.connect() as connection:
        await connection.run_sync(step)
        await connection.commit()
    assert await current_revision(engine) == revision
