"""Child processes that are always stopped: servers under load and harness commands.

Every child gets its own session (process group), so that Ctrl+C in the terminal
reaches only this driver, which then stops each group it started and nothing else.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Final

from benchmarks.errors import BenchError

__all__ = [
    "Running",
    "Server",
    "free_port",
    "interrupt_on_signals",
    "our_server",
    "run_command",
    "running_server",
    "stop_group",
]

STARTUP_SECONDS: Final = 30.0
STOP_SECONDS: Final = 15.0
# Variables our server reads: a benchmark passes its configuration explicitly.
_SERVER_VARIABLES: Final = ("DATABASE_URL", "TODO_SECRET", "TODO_CORS_ORIGINS")


@dataclass(frozen=True)
class Server:
    """A server to start: its command line, and a path that answers 200 once it is ready."""

    name: str
    command: tuple[str, ...]
    port: int
    ready_path: str


@dataclass(frozen=True)
class Running:
    """A started server: its process id (for CPU and RSS) and its base URL."""

    name: str
    pid: int
    base: str


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def our_server(name: str, database: str, *options: str) -> Server:
    """``todo-http serve`` with one worker on ``database``, on a free port."""
    port = free_port()
    command = (sys.executable, "-m", "todo_http", "serve", "--workers", "1", "--port", str(port))
    return Server(name, (*command, "--database-url", database, *options), port, "/readyz")


def stop_group(process: subprocess.Popen[Any], timeout: float = STOP_SECONDS) -> None:
    """SIGTERM the child's process group (its own session), then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def run_command(command: Sequence[str], *, label: str, timeout: float, cwd: Path) -> None:
    """Run ``command`` with inherited output; stop its whole group on any interruption."""
    process = subprocess.Popen(command, cwd=cwd, start_new_session=True, stdin=subprocess.DEVNULL)
    try:
        status = process.wait(timeout)
    except subprocess.TimeoutExpired:
        stop_group(process, timeout=5)
        raise BenchError(f"{label} did not finish in {timeout:.0f} s") from None
    except BaseException:
        stop_group(process, timeout=5)
        raise
    if status != 0:
        raise BenchError(f"{label} exited with status {status}")


def _answers(port: int, path: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


@contextmanager
def running_server(server: Server, log: Path, cwd: Path) -> Iterator[Running]:
    """Start ``server``, wait until it answers, and stop it on exit whatever happens.

    Its output goes to ``log``, a file: a pipe nobody reads would stall the server's
    access log under load.
    """
    environment = {k: v for k, v in os.environ.items() if k not in _SERVER_VARIABLES}
    with log.open("wb") as output:
        process = subprocess.Popen(
            server.command,
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _answers(server.port, server.ready_path):
            if process.poll() is not None:
                raise BenchError(
                    f"{server.name} exited with status {process.returncode}:\n{_tail(log)}"
                )
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{server.name} not ready in {STARTUP_SECONDS:.0f} s:\n{_tail(log)}"
                )
            time.sleep(0.1)
        yield Running(server.name, process.pid, f"http://127.0.0.1:{server.port}")
    finally:
        stop_group(process)


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into ``KeyboardInterrupt``, so that the ``finally`` blocks
    stop what was started. Set explicitly: a shell starts background jobs with SIGINT
    ignored, and Python keeps an inherited ignore."""
    previous = {
        signum: signal.signal(signum, _raise_interrupt)
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
