"""Fixtures of the fault tests: a private PostgreSQL cluster, and measured figures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.postgres_server import PostgresServer, start_server

Figure = Callable[[str, object], None]

# (test id, name, value) of every figure recorded this session, printed at the end.
_FIGURES: list[tuple[str, str, object]] = []


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway cluster for the session's fault tests; always stopped and removed."""
    server = start_server()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database on the private cluster, which is running before
    and after the test (a test that stopped it has it started again)."""
    postgres_server.ensure_running()
    yield postgres_server.create_database()
    postgres_server.ensure_running()


# Parametrize a test's ``backend`` with these, and take ``database_url``.
SERVER_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database of ``backend``: a file under ``tmp_path``, or a database on
    the private cluster (``postgres_database``)."""
    if backend == "postgres":
        url: str = request.getfixturevalue("postgres_database")
        return url
    return f"sqlite:///{tmp_path / 'tasks.db'}"


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Figure:
    """``figure(name, value)``: a measured figure, printed in the session's summary."""

    def record(name: str, value: object) -> None:
        _FIGURES.append((request.node.nodeid, name, value))
        request.node.user_properties.append((name, value))
        print(f"{name}: {value}")  # shown with -s, and on failure

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("fault test figures")
    last = None
    for test, name, value in _FIGURES:
        if test != last:
            terminalreporter.write_line(test)
            last = test
        terminalreporter.write_line(f"    {name}: {value}")
