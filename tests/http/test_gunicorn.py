"""``todo_http.gunicorn:app`` under gunicorn with aiohttp's worker class, as deploy.md runs it."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

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


def test_gunicorn_serves_the_packaged_factory_and_stops_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    migrate(url)
    port = free_port()
    log = tmp_path / "gunicorn.log"
    # HOME: gunicorn >= 25 puts its control socket under ~/.gunicorn.
    environment = server_environment(DATABASE_URL=url, HOME=str(tmp_path))
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "todo_http.gunicorn:app",
                "--worker-class",
                "aiohttp.GunicornWebWorker",
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{port}",
                "--graceful-timeout",
                str(GRACEFUL_TIMEOUT),
            ],
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
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:///elsewhere.db")
    monkeypatch.setenv("TODO_SECRET", "s" * 32)
    monkeypatch.setenv("TODO_CORS_ORIGINS", "https://app.example.com, https://b.example.com")
    settings = (await gunicorn.app())[SETTINGS]
    assert settings.database_url == "sqlite:///elsewhere.db"
    assert settings.cursor_secret == "s" * 32
    assert settings.cors_origins == ("https://app.example.com", "https://b.example.com")
    assert not settings.create_schema  # the workers must not race to migrate
    monkeypatch.setenv("TODO_SECRET", "short")
    with pytest.raises(StartupError, match="TODO_SECRET"):
        await gunicorn.app()
