"""Fixtures of the schema and migration tests: a new, empty database of each SQL backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.backends import SQL_BACKENDS, fresh_postgres_database
from todo_core.engine import create_engine


@pytest.fixture(name="empty_url", params=SQL_BACKENDS)
async def _empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a new, empty database of each SQL backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'schema.db'}"
    else:
        async with fresh_postgres_database() as url:
            yield url


@pytest.fixture(name="engine")
async def _engine(empty_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine with this package's settings on the empty database."""
    engine = create_engine(empty_url)
    try:
        yield engine
    finally:
        await engine.dispose()
