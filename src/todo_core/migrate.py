"""Schema versions: upgrade a database to this package's schema, or check that it is there."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_core.engine import EngineOptions, create_engine, translate_errors
from todo_core.errors import SchemaNotCurrent

__all__ = [
    "current_revision",
    "head_revision",
    "migrate",
    "require_current_schema",
    "upgrade_schema",
]


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("todo_core") / "migrations"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The schema revision this package ships."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None  # the package always ships at least one revision
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None for an empty database."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def upgrade_schema(engine: AsyncEngine) -> None:
    """Create the schema, or upgrade it to ``head_revision()``.

    Alembic owns the transaction (``migrations/env.py``): a revision that builds indexes
    ``CONCURRENTLY`` (0004) must commit before them, which it can only do to a
    transaction it began itself. Every other step runs in that one transaction.
    """
    async with engine.connect() as connection:
        await connection.run_sync(lambda sync: command.upgrade(_config(sync), "head"))


async def require_current_schema(engine: AsyncEngine) -> None:
    """Raise ``SchemaNotCurrent`` unless the database is at ``head_revision()``."""
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise SchemaNotCurrent(current, head)


async def migrate(url: str | URL, options: EngineOptions | None = None) -> None:
    """``upgrade_schema`` on a short-lived engine for ``url``; driver errors translated."""
    engine = create_engine(url, options)
    try:
        with translate_errors():
            await upgrade_schema(engine)
            if engine.dialect.name == "sqlite":
                # Before any store opens the file: see todo_core.sqlite.enable_wal.
                async with engine.connect() as connection:
                    await connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    finally:
        await engine.dispose()
