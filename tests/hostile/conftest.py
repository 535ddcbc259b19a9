"""A real ``todo-http serve`` per backend, with short timeouts, for raw-socket attacks.

Each test marks the log before it attacks; ``server.log_since(mark)`` is what the
server logged meanwhile, parsed from its JSON lines, so a test can say that a client's
doing was logged below ERROR and never with a traceback.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backends import postgres_url
from tests.http.server_process import ServerProcess, migrate, server_environment

BODY_TIMEOUT = 1.0  # --body-timeout
KEEPALIVE_TIMEOUT = 2.0  # --keepalive-timeout
MAX_CONNECTIONS = 64  # --max-connections


class HostileServer(ServerProcess):
    """A server process whose JSON log lines a test can read back."""

    def __exit__(self, *exc: object) -> None:
        # Stopped as an operator would, so that it exits by itself (and a coverage run
        # of the suite gets to save what the process measured); killed only if stuck.
        if self.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.stop()
        super().__exit__(*exc)

    def mark(self) -> int:
        return len(self.lines)

    def log_since(self, mark: int, settle: float = 0.3) -> list[dict[str, Any]]:
        time.sleep(settle)  # lines written by the answer just read
        records = []
        for line in self.lines[mark:]:
            try:
                records.append(json.loads(line))
            except ValueError:
                records.append({"level": "RAW", "message": line})
        return records


def assert_quiet(records: list[dict[str, Any]]) -> None:
    """Nothing at ERROR or above, no traceback, no line that is not a JSON record."""
    loud = [r for r in records if r["level"] not in {"DEBUG", "INFO", "WARNING"}]
    assert not loud, loud
    assert not [r for r in records if "exception" in r], records


def start(arguments: tuple[str, ...], cwd: Path, **environment: str) -> HostileServer:
    server = HostileServer(
        "--log-format",
        "json",
        "--body-timeout",
        str(BODY_TIMEOUT),
        "--keepalive-timeout",
        str(KEEPALIVE_TIMEOUT),
        "--max-connections",
        str(MAX_CONNECTIONS),
        *arguments,
        cwd=cwd,
        environment=server_environment(**environment),
    )
    server.wait_ready()
    return server


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostileServer]:
    """The server on each backend in turn, shared by a module's tests."""
    folder = tmp_path_factory.mktemp("hostile")
    if request.param == "postgres":
        url = postgres_url()
        migrate(url)
    else:
        url = f"sqlite:///{folder / 'tasks.db'}"
    running = start(("--database-url", url), folder)
    with running:
        yield running
