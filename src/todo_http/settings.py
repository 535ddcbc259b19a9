"""Server configuration as one immutable value; only the CLI reads the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_DATABASE_URL", "Settings"]

DEFAULT_DATABASE_URL = "sqlite:///todo.db"


@dataclass(frozen=True, kw_only=True, slots=True)
class Settings:
    """What ``create_app`` needs to know. Defaults serve a local SQLite file."""

    database_url: str = DEFAULT_DATABASE_URL
    create_schema: bool = True  # create or upgrade the schema when the store opens
    cursor_secret: str | None = None  # None: the secret stored in the database
    cors_origins: tuple[str, ...] = ()
    store_options: dict[str, Any] = field(default_factory=dict)  # EngineOptions fields
