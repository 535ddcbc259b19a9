"""``todo_http.gunicorn:app`` under gunicorn with aiohttp's worker class, as deploy.md runs it."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from gunicorn.errors import AppImportError  # type: ignore[import-untyped]
from pytest_aiohttp import AiohttpClient

from tests.http.server_process import STARTUP_SECONDS, free_port, migrate, server_environment
from todo_http import gunicorn
from todo_http.keys import SETTINGS
from todo_http.server import StartupError

GRACEFUL_TIMEOUT = 8  # gunicorn's --graceful-timeout: aiohttp drains for 95 % of it


def _request(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        payload = None if body is None else orjson.dumps(body)
        headers = {} if body is None else {"Content-Type": "application/json"}
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, orjson.loads(response.read())
    finally:
        connection.close()


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError):
            if _request(port, "GET", "/readyz")[0] == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"gunicorn not ready after {STARTUP_SECONDS} s:\n{log.read_text()}")


def _gunicorn(port: int, workers: int = 2) -> list[str]:
    """The command deploy.md gives, on ``port``."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "todo_http.gunicorn:app",
        "--worker-class",
        "aiohttp.GunicornWebWorker",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        str(GRACEFUL_TIMEOUT),
    ]


def _environment(home: Path, **variables: str) -> dict[str, str]:
    # HOME: gunicorn >= 25 puts its control socket under ~/.gunicorn.
    return server_environment(HOME=str(home), **variables)


def test_gunicorn_serves_the_packaged_factory_and_stops_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    migrate(url)
    port = free_port()
    log = tmp_path / "gunicorn.log"
    environment = _environment(tmp_path, DATABASE_URL=url)
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            _gunicorn(port),
            cwd=tmp_path,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own: killed in the finally
        )
    try:
        _wait_ready(process, port, log)
        status, created = _request(port, "POST", "/api/alice/tasks", {"title": "Buy milk"})
        assert status == 201, created
        assert created["success"] is True
        assert created["message"] == "Task created"
        task_id = created["data"]["id"]
        # Each request comes on a new connection, which either worker may take.
        for _ in range(4):
            status, fetched = _request(port, "GET", f"/api/alice/tasks/{task_id}")
            assert status == 200, fetched
            assert set(fetched) == {"success", "data", "message"}
            assert fetched["success"] is True
            assert fetched["data"] == created["data"]

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(GRACEFUL_TIMEOUT + 2)
        seconds = time.monotonic() - started
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    output = log.read_text()
    assert code == 0, output
    assert seconds < 5, output
    assert "Booting worker" in output
    assert "Traceback" not in output


async def test_the_factory_reads_the_environment_as_serve_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    monkeypatch.chdir(tmp_path)
    migrate("sqlite:///elsewhere.db")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///elsewhere.db")
    monkeypatch.setenv("TODO_SECRET", "s" * 32)
    monkeypatch.setenv("TODO_CORS_ORIGINS", "https://app.example.com, https://b.example.com")
    app = await gunicorn.app()
    client = await aiohttp_client(app)  # served, then stopped: the store it opened closes
    assert (await client.post("/api/alice/tasks", json={"title": "x"})).status == 201
    settings = app[SETTINGS]
    assert settings.database_url == "sqlite:///elsewhere.db"
    assert settings.cursor_secret == "s" * 32
    assert settings.cors_origins == ("https://app.example.com", "https://b.example.com")
    assert not settings.create_schema  # the workers must not race to migrate
    monkeypatch.setenv("TODO_SECRET", "short")
    # gunicorn's own error for an application that cannot load: one line, no traceback.
    with pytest.raises(AppImportError, match="cannot start: TODO_SECRET must be at least"):
        await gunicorn.app()


def _unmigrated(workdir: Path) -> None:
    sqlite3.connect(workdir / "todo.db").close()  # an empty file, as a crashed start leaves


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("prepare", [None, _unmigrated], ids=["no-database", "no-schema"])
def test_gunicorn_before_migrate_stops_with_one_line_naming_migrate(
    tmp_path: Path, prepare: Callable[[Path], None] | None, workers: int
) -> None:
    """Each worker says why in one line; gunicorn stops instead of booting more.

    With several workers, gunicorn itself may add a traceback of its own: when a second
    worker fails while gunicorn is already stopping for the first, it raises HaltServer
    out of its halt and exits 1 (reported since gunicorn 0.14, benoitc/gunicorn#366; seen
    here with 27). Nothing of this package's code is in it.
    """
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    if prepare is not None:
        prepare(workdir)
    before = sorted(path.name for path in workdir.iterdir())
    result = subprocess.run(
        _gunicorn(free_port(), workers),
        cwd=workdir,
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
    )
    output = result.stdout + result.stderr
    assert "Exception in worker process" not in output  # the traceback of each worker
    assert "todo_http" not in output.replace("todo_http.gunicorn: cannot start: ", "")
    ours = {line for line in output.splitlines() if "todo_http.gunicorn" in line}
    [line] = ours  # each worker says it, in the same words
    assert line.startswith("todo_http.gunicorn: cannot start: ")
    assert "run `todo-http migrate`" in line
    if workers == 1:
        assert result.returncode == 4, output  # gunicorn's "App failed to load": it stops
        assert "Traceback" not in output
        assert len(output.splitlines()) <= 12, output
    else:
        assert result.returncode != 0, output
    assert sorted(path.name for path in workdir.iterdir()) == before, "no file left behind"


async def test_outside_gunicorn_the_factory_raises_startup_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setitem(sys.modules, "gunicorn.errors", None)  # as if not installed
    with pytest.raises(StartupError, match=r"todo\.db does not exist: run `todo-http migrate`"):
        await gunicorn.app()
    assert not (tmp_path / "todo.db").exists()
