"""The ``todo-http`` command as an operator runs it: real processes, sockets and signals."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.backends import fresh_postgres_database
from tests.http.server_process import ServerProcess, free_port, server_environment, worker_serving
from todo_core import open_store
from todo_core.engine import create_engine
from todo_core.migrate import current_revision, head_revision
from todo_http.cli import parser, serve_configuration
from todo_http.server import bind_sockets
from todo_http.startup import StartupError, startup_errors

GRACE = 8.0  # the default --shutdown-timeout: no stop may take longer


def _todo_http(*arguments: str, cwd: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "todo_http", *arguments],
        cwd=cwd,
        env=server_environment(**variables),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _json_lines(server: ServerProcess) -> list[dict[str, Any]]:
    """Every output line, each of which must be one JSON object."""
    records = [orjson.loads(line) for line in server.lines]
    assert all(isinstance(record, dict) for record in records)
    return records


def _access(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [record for record in records if record["logger"] == "aiohttp.access"]


def _refused_soon(port: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        # A connection that races the listening socket's close is reset by the kernel
        # instead of refused (seen about once in ten runs on uvloop): not served either way.
        except (ConnectionRefusedError, ConnectionResetError):
            return True
        time.sleep(0.02)
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- serve ---------------------------------------------------------------------------


def test_serve_with_no_options_creates_todo_db_in_the_working_directory(tmp_path: Path) -> None:
    with ServerProcess(cwd=tmp_path) as server:
        server.wait_ready()
        assert (tmp_path / "todo.db").is_file()
        created = server.request("POST", "/api/alice/tasks", {"title": "Buy milk"})
        assert created.status == 201
        task_id = created.json()["data"]["id"]
        fetched = server.request("GET", f"/api/alice/tasks/{task_id}")
        assert fetched.status == 200
        assert fetched.json()["data"]["title"] == "Buy milk"
        assert server.request("GET", "/readyz").status == 200

        status, seconds = server.stop(signal.SIGTERM)

    assert status == 0, server.output
    assert seconds < GRACE
    url = f"http://127.0.0.1:{server.port}"
    database = tmp_path.resolve() / "todo.db"
    started = (
        f"todo-http serving on {url} (web app: {url}/, API docs: {url}/api/docs), "
        "tasks in sqlite:///todo.db"
    )
    assert f"{started} ({database})" in server.output
    request_id = created.headers["x-request-id"]
    assert "POST /api/alice/tasks 201 " in server.output
    assert f"request_id={request_id}" in server.output
    assert "Traceback" not in server.output


def test_database_url_environment_variable_is_honoured(tmp_path: Path) -> None:
    elsewhere = tmp_path / "data" / "tasks.db"
    elsewhere.parent.mkdir()
    environment = server_environment(DATABASE_URL=f"sqlite:///{elsewhere}")
    with ServerProcess(cwd=tmp_path, environment=environment) as server:
        server.wait_ready()
        assert server.request("POST", "/api/alice/tasks", {"title": "x"}).status == 201
        assert server.stop()[0] == 0
    assert elsewhere.is_file()
    assert not (tmp_path / "todo.db").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_request_in_flight_finishes_before_the_server_exits(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """The request is held inside its handler by a write lock this test takes on the
    SQLite file, so the signal certainly arrives while it is in flight."""
    with ServerProcess(cwd=tmp_path) as server:
        server.wait_ready()
        lock = sqlite3.connect(tmp_path / "todo.db", isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        body = b'{"title": "in flight"}'
        connection = socket.create_connection(("127.0.0.1", server.port), timeout=15)
        try:
            connection.sendall(
                b"POST /api/alice/tasks HTTP/1.1\r\nHost: test\r\n"
                b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)
            )
            # aiohttp says 100 Continue once the request is routed to its handler.
            assert connection.recv(100).startswith(b"HTTP/1.1 100 Continue")
            connection.sendall(body)
            time.sleep(0.3)  # the handler reads the body and waits for the lock
            started = time.monotonic()
            server.process.send_signal(signum)
            server.wait_for_line(lambda line: "shutting down" in line)
            # It stops listening: new connections are refused while the request finishes.
            assert _refused_soon(server.port)
            lock.execute("ROLLBACK")
            response = http.client.HTTPResponse(connection)
            try:
                response.begin()
                assert response.status == 201
                assert orjson.loads(response.read())["data"]["title"] == "in flight"
            finally:
                response.close()
        finally:
            connection.close()
            lock.close()
        status = server.process.wait(GRACE)
        seconds = time.monotonic() - started
    assert status == 0, server.output
    assert seconds < GRACE
    assert "Traceback" not in server.output


def test_json_log_format_writes_one_object_per_line(tmp_path: Path) -> None:
    with ServerProcess("--log-format", "json", cwd=tmp_path) as server:
        server.wait_ready()
        reply = server.request(
            "POST", "/api/alice/tasks", {"title": "x"}, {"X-Request-ID": "test-42"}
        )
        assert reply.status == 201
        assert server.request("GET", "/api/alice/tasks/not-a-uuid").status == 404
        assert server.stop()[0] == 0
    access = _access(_json_lines(server))
    created = next(record for record in access if record["method"] == "POST")
    assert created["path"] == "/api/alice/tasks"
    assert created["status"] == 201
    assert created["request_id"] == "test-42"
    assert isinstance(created["duration_ms"], float)
    assert created["duration_ms"] >= 0
    assert created["level"] == "INFO"
    assert created["time"].endswith("Z")
    missing = next(record for record in access if record["status"] == 404)
    assert missing["path"] == "/api/alice/tasks/not-a-uuid"
    assert len(missing["request_id"]) == 32  # made by the server


def test_workers_serve_one_port_from_separate_processes(tmp_path: Path) -> None:
    arguments = ("--workers", "2", "--log-format", "json")
    with ServerProcess(*arguments, cwd=tmp_path) as server:
        for number in (1, 2):
            server.wait_for_line(worker_serving(number))
        server.wait_ready()
        for title in ("a", "b", "c"):
            assert server.request("POST", "/api/alice/tasks", {"title": title}).status == 201
        # Each request comes on a new connection, which the kernel gives to either
        # worker: a walk's cursors must hold in both.
        seen: list[str] = []
        path = "/api/alice/tasks?limit=1&sort=title"
        for _ in range(20):
            page = server.request("GET", path).json()
            seen.extend(task["title"] for task in page["data"])
            cursor = page["meta"]["next_cursor"]
            path = f"/api/alice/tasks?limit=1&sort=title&cursor={cursor}"
            if cursor is None:
                break
        assert seen == ["a", "b", "c"]
        for _ in range(30):
            server.request("GET", "/healthz")
        records = _json_lines(server)
        workers = {record["pid"] for record in _access(records)}
        assert server.process.pid not in workers
        if sys.platform.startswith("linux"):  # SO_REUSEPORT spreads connections evenly
            assert len(workers) == 2

        status, seconds = server.stop(signal.SIGTERM)

    assert status == 0, server.output
    assert seconds < GRACE
    for pid in workers:
        assert not _alive(pid)


@pytest.mark.postgres
async def test_workers_on_postgresql_share_the_schema_and_the_cursor_secret(
    tmp_path: Path,
) -> None:
    async with fresh_postgres_database() as url:
        arguments = ("--workers", "2", "--database-url", url)
        with ServerProcess(*arguments, cwd=tmp_path) as server:
            server.wait_ready()
            for title in ("a", "b"):
                assert server.request("POST", "/api/bob/tasks", {"title": title}).status == 201
            first = server.request("GET", "/api/bob/tasks?limit=1&sort=title").json()
            cursor = first["meta"]["next_cursor"]
            for _ in range(6):  # whichever worker answers accepts the cursor
                page = server.request("GET", f"/api/bob/tasks?limit=1&sort=title&cursor={cursor}")
                assert [task["title"] for task in page.json()["data"]] == ["b"]
            assert server.stop()[0] == 0
        assert not (tmp_path / "todo.db").exists()


def test_a_worker_that_dies_stops_the_server_with_a_failure(tmp_path: Path) -> None:
    with ServerProcess("--workers", "2", "--log-format", "json", cwd=tmp_path) as server:
        lines = [server.wait_for_line(worker_serving(number)) for number in (1, 2)]
        victim, survivor = (orjson.loads(line)["pid"] for line in lines)
        os.kill(victim, signal.SIGKILL)
        status = server.process.wait(GRACE)
    assert status == 1
    assert "worker 1 (pid" in server.output
    assert "stopping the others" in server.output
    assert not _alive(survivor)


# --- startup errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ("serve", "--database-url", "postgresql://todo@127.0.0.1:1/todo"),
            "cannot reach the database",
        ),
        (
            ("serve", "--workers", "2", "--database-url", "postgresql://todo@127.0.0.1:1/t"),
            "cannot reach the database",
        ),
        (("migrate", "--database-url", "postgresql://todo@127.0.0.1:1/todo"), "cannot reach"),
        (("serve", "--database-url", "mysql://db/todo"), "unsupported database URL scheme"),
        (("serve", "--workers", "2", "--database-url", "memory://"), "use --workers 1"),
    ],
    ids=["unreachable", "unreachable-workers", "migrate-unreachable", "scheme", "memory"],
)
def test_startup_errors_are_one_line_and_a_failure(
    tmp_path: Path, arguments: tuple[str, ...], message: str
) -> None:
    if arguments[0] == "serve":  # it binds its port before it opens the database
        arguments = (*arguments, "--port", str(free_port()))
    result = _todo_http(*arguments, cwd=tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("todo-http: error: ")
    assert message in line


def test_a_taken_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _todo_http("serve", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"todo-http: error: cannot listen on 127.0.0.1:{port}: " + (
        "Address already in use"
    )


def test_a_password_in_the_url_is_never_printed(tmp_path: Path) -> None:
    url = "postgresql://todo:hunter2@127.0.0.1:1/todo"
    result = _todo_http("migrate", "--database-url", url, cwd=tmp_path)
    assert result.returncode == 1
    assert "hunter2" not in result.stdout + result.stderr


async def _open(url: str) -> None:
    async with open_store(url):
        pass


async def test_an_unmigrated_database_is_one_line_naming_migrate(tmp_path: Path) -> None:
    """The store's SchemaNotCurrent gives the library's remedy; an operator starting the
    server (workers that only check the schema, gunicorn) gets the command's."""
    with pytest.raises(StartupError) as raised, startup_errors():
        await _open(f"sqlite:///{tmp_path / 'todo.db'}")
    assert str(raised.value) == (
        f"the database schema is at revision none, this server needs {head_revision()}: "
        "run `todo-http migrate`"
    )


# --- migrate --------------------------------------------------------------------------


async def test_migrate_creates_and_then_keeps_a_sqlite_schema(tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"
    url = f"sqlite:///{database}"
    for _ in range(2):  # the second run finds the schema current and changes nothing
        result = _todo_http("migrate", "--database-url", url, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"schema is at revision {head_revision()} on {url}"
    engine = create_engine(url)
    try:
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_migrate_creates_a_postgresql_schema(tmp_path: Path) -> None:
    async with fresh_postgres_database() as url:
        result = _todo_http("migrate", "--database-url", url, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert f"schema is at revision {head_revision()}" in result.stdout
        engine = create_engine(url)
        try:
            assert await current_revision(engine) == head_revision()
        finally:
            await engine.dispose()


# --- configuration, in process ----------------------------------------------------------


def _configure(*argv: str, **environ: str) -> Any:
    arguments = parser(environ).parse_args(["serve", *argv])
    return serve_configuration(arguments, environ)


def test_defaults() -> None:
    settings, options = _configure()
    assert settings.database_url == "sqlite:///todo.db"
    assert settings.cursor_secret is None
    assert settings.cors_origins == ()
    assert settings.store_options == {}
    assert (options.host, options.port, options.workers) == ("127.0.0.1", 8080, 1)
    assert (options.shutdown_timeout, options.log_format) == (8.0, "text")


def test_the_command_line_wins_over_the_environment() -> None:
    environ = {
        "DATABASE_URL": "sqlite:///from-env.db",
        "TODO_CORS_ORIGINS": "https://a.example, https://b.example:8443",
        "TODO_SECRET": "0123456789abcdef",
    }
    settings, _ = _configure(**environ)
    assert settings.database_url == "sqlite:///from-env.db"
    assert settings.cors_origins == ("https://a.example", "https://b.example:8443")
    assert settings.cursor_secret == "0123456789abcdef"
    settings, _ = _configure(
        "--database-url", "sqlite:///given.db", "--cors-origin", "http://c.example", **environ
    )
    assert settings.database_url == "sqlite:///given.db"
    assert settings.cors_origins == ("http://c.example",)


def test_store_and_server_options() -> None:
    settings, options = _configure(
        "--pool-size", "2", "--max-overflow", "0", "--workers", "3", "--shutdown-timeout", "4.5"
    )
    assert settings.store_options == {"pool_size": 2, "max_overflow": 0}
    assert (options.workers, options.shutdown_timeout) == (3, 4.5)
    settings, _ = _configure("--prepared-statements")
    assert settings.store_options == {"prepared_statements": True}
    settings, _ = _configure("--no-prepared-statements")
    assert settings.store_options == {"prepared_statements": False}
    settings, _ = _configure()
    assert "prepared_statements" not in settings.store_options, "decided per connection"


@pytest.mark.parametrize(
    "argv",
    [
        ["--workers", "0"],
        ["--port", "70000"],
        ["--pool-size", "0"],
        ["--shutdown-timeout", "-1"],
        ["--log-format", "xml"],
        ["--cors-origin", "https://app.example/"],
    ],
)
def test_bad_options_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parser({}).parse_args(["serve", *argv])
    assert exit_.value.code == 2


def test_a_short_secret_is_a_startup_error() -> None:
    with pytest.raises(StartupError, match="TODO_SECRET must be at least 16 bytes"):
        _configure(TODO_SECRET="short")


def test_the_purge_interval_comes_from_the_environment() -> None:
    assert _configure()[0].purge_interval == 600.0
    assert _configure(TODO_PURGE_INTERVAL="0")[0].purge_interval == 0.0
    assert _configure(TODO_PURGE_INTERVAL="2.5")[0].purge_interval == 2.5
    for bad in ("soon", "-1", "inf"):
        with pytest.raises(StartupError, match="TODO_PURGE_INTERVAL"):
            _configure(TODO_PURGE_INTERVAL=bad)


def test_the_retention_window_comes_from_the_option_or_the_environment() -> None:
    assert _configure()[0].retention_days == 30
    assert _configure(TODO_RETENTION_DAYS="7")[0].retention_days == 7
    assert _configure("--retention-days", "2", TODO_RETENTION_DAYS="7")[0].retention_days == 2
    for bad in ("0", "-1", "1.5", "week", "36501"):
        with pytest.raises(StartupError, match="TODO_RETENTION_DAYS"):
            _configure(TODO_RETENTION_DAYS=bad)
        with pytest.raises(SystemExit) as exit_:
            parser({}).parse_args(["serve", "--retention-days", bad])
        assert exit_.value.code == 2


def test_a_bad_origin_in_the_environment_is_a_startup_error() -> None:
    with pytest.raises(StartupError, match="TODO_CORS_ORIGINS"):
        _configure(TODO_CORS_ORIGINS="app.example.com")


def test_workers_get_one_socket_each_on_the_same_port() -> None:
    groups = bind_sockets("127.0.0.1", 0, copies=2)
    try:
        [first], [second] = groups
        assert first is not second
        assert first.getsockname() == second.getsockname()
        first.listen()
        second.listen()
        # Bound without SO_REUSEPORT first: another server cannot join a serving port.
        with pytest.raises(StartupError, match="cannot listen"):
            bind_sockets("127.0.0.1", first.getsockname()[1], copies=1)
    finally:
        for group in groups:
            for sock in group:
                sock.close()
