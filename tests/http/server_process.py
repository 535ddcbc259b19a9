"""A ``todo-http serve`` process for tests that need the real command: start, talk, stop.

Replies from the API are checked against the OpenAPI document the server itself
serves, like every other HTTP test's.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tests.http.schema_check import check_response

__all__ = [
    "Reply",
    "ServerProcess",
    "free_port",
    "migrate",
    "server_environment",
    "serving",
    "worker_serving",
]

# Variables the command reads: a test sets them explicitly, never inherits them.
_COMMAND_VARIABLES = (
    "DATABASE_URL",
    "TODO_SECRET",
    "TODO_CORS_ORIGINS",
    "TODO_PURGE_INTERVAL",
    "TODO_AUTH",
    "TODO_JWT_SECRET",
    "TODO_JWKS_URL",
    "TODO_JWKS_FILE",
    "TODO_JWT_ALGORITHMS",
    "TODO_JWT_ISSUER",
    "TODO_JWT_AUDIENCE",
    "TODO_JWT_LEEWAY",
    "TODO_BODY_TIMEOUT",
)
# Generous: a loaded CI machine takes a few seconds to import and start a process.
STARTUP_SECONDS = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_environment(**variables: str) -> dict[str, str]:
    """This process's environment without the command's variables, plus ``variables``."""
    environment = {k: v for k, v in os.environ.items() if k not in _COMMAND_VARIABLES}
    environment.update(variables)
    return environment


def migrate(url: str) -> None:
    """``todo-http migrate`` on ``url`` in a process of its own; fails the test on an error."""
    migrated = subprocess.run(
        [sys.executable, "-m", "todo_http", "migrate", "--database-url", url],
        env=server_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrated.returncode == 0, migrated.stderr


def worker_serving(worker: int) -> Callable[[str], bool]:
    """Whether a JSON log line says that ``worker`` (of ``--workers N``) serves."""
    return lambda line: f'"worker {worker} serving on' in line


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class ServerProcess:
    """A server started with ``command`` (default ``python -m todo_http``) ``serve``.

    ``--port`` is added unless ``port_option`` is False: then ``port`` says where the
    command's own arguments (or its default, 8080) make it listen.

    Its output (stdout and stderr together) is collected line by line in ``lines``.
    Use as a context manager: the process is killed if a test leaves it running.
    """

    def __init__(
        self,
        *arguments: str,
        cwd: Path,
        port: int | None = None,
        environment: Mapping[str, str] | None = None,
        command: tuple[str, ...] = (sys.executable, "-m", "todo_http"),
        port_option: bool = True,
    ) -> None:
        self.port = free_port() if port is None else port
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._document: bytes | None = None
        self.process = subprocess.Popen(
            [*command, "serve", *(["--port", str(self.port)] if port_option else []), *arguments],
            cwd=cwd,
            env=dict(environment) if environment is not None else server_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a process group of its own: see __exit__
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        # The whole group: workers that a killed supervisor leaves behind would keep the
        # output pipe open, and the reader (and closing the pipe) waiting on it forever.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self._reader.join(10)
        if self.process.stdout is not None and not self._reader.is_alive():
            self.process.stdout.close()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for_line(self, wanted: Callable[[str], bool], timeout: float = STARTUP_SECONDS) -> str:
        """The first output line that is ``wanted``, waiting for it if need be."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if wanted(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no such line; output so far:\n{self.output}")
                self._changed.wait(min(left, 0.5))

    def wait_ready(self, timeout: float = STARTUP_SECONDS) -> None:
        """Return once ``/healthz`` answers 200; fail with the output if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.process.returncode}:\n{self.output}"
                )
            try:
                if self.request("GET", "/healthz", check=False).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server not ready after {timeout} s:\n{self.output}")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        check: bool = True,
    ) -> Reply:
        """One request on a new connection; the reply is checked against the document."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            sent_headers = dict(headers or {})
            payload: bytes | None = None
            if body is not None:
                payload = orjson.dumps(body)
                sent_headers.setdefault("Content-Type", "application/json")
            connection.request(method, path, body=payload, headers=sent_headers)
            response = connection.getresponse()
            reply = Reply(
                response.status,
                {name.lower(): value for name, value in response.getheaders()},
                response.read(),
            )
        finally:
            connection.close()
        if check:
            check_response(
                orjson.loads(self.document()),
                method=method,
                path=path.partition("?")[0],
                status=reply.status,
                headers=reply.headers,
                body=reply.body,
            )
        return reply

    def document(self) -> bytes:
        """The OpenAPI document this server serves."""
        if self._document is None:
            reply = self.request("GET", "/api/openapi.json", check=False)
            assert reply.status == 200, reply
            self._document = reply.body
        return self._document

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20.0) -> tuple[int, float]:
        """Send ``signum``; return the exit status and the seconds the exit took."""
        started = time.monotonic()
        self.process.send_signal(signum)
        status = self.process.wait(timeout)
        elapsed = time.monotonic() - started
        self._reader.join(10)
        return status, elapsed


@contextmanager
def serving(
    url: str, directory: Path, *arguments: str, **environment: str
) -> Iterator[ServerProcess]:
    """``todo-http serve`` on ``url`` with ``arguments``, run in ``directory``, ready;
    killed on exit."""
    with ServerProcess(
        "--database-url",
        url,
        *arguments,
        cwd=directory,
        environment=server_environment(**environment),
    ) as server:
        server.wait_ready()
        yield server
