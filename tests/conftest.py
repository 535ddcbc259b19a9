"""Fixtures shared by every test: one store per backend, and Hypothesis profiles."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.backends import BACKENDS, open_backend
from tests.pgbouncer import SESSION_PGBOUNCER
from todo_core import TaskStore

# Reports how many SQL statement shapes the run compiled (tests/sql_shapes.py).
pytest_plugins = ["tests.sql_shapes"]

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True)
settings.load_profile("default")

StoreFactory = Callable[..., AbstractAsyncContextManager[TaskStore]]


@pytest.fixture(scope="session", autouse=True)
def pgbouncer() -> Iterator[None]:
    """Stops the session's PgBouncer when the session ends. The first test that needs it
    starts it (``tests.backends.pgbouncer_url``), so sessions without one start none."""
    yield
    SESSION_PGBOUNCER.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of each backend in turn: memory, sqlite, postgres (direct, with prepared
    statements, through PgBouncer)."""
    name: str = request.param
    return name


@pytest.fixture
def store_factory(backend: str, tmp_path: Path) -> StoreFactory:
    """Opens an empty store of the current backend, taking ``open_store`` keywords."""

    def factory(**options: object) -> AbstractAsyncContextManager[TaskStore]:
        return open_backend(backend, tmp_path, **options)

    return factory


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[TaskStore]:
    """An empty store of each backend in turn."""
    async with store_factory() as opened:
        yield opened
