"""Alembic configured as ``todo_core.migrate`` configures it, for tests that step the
schema to a given revision (a downgrade, a database left at an older release's)."""

from __future__ import annotations

from importlib.resources import files

from alembic.config import Config
from sqlalchemy.engine import Connection


def alembic_config(connection: Connection) -> Config:
    """Alembic pointed at the migrations shipped inside the installed package."""
    config = Config()
    config.set_main_option("script_location", str(files("todo_core") / "migrations"))
    config.attributes["connection"] = connection
    return config
