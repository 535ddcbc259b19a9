"""What ``todo-http`` says on a first run: its version, usage errors, and one line for
every database it cannot use, the same from ``serve`` as from ``migrate``."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.backends import fresh_postgres_database
from tests.http.server_process import free_port, server_environment
from todo_http import __version__
from todo_http import cli as cli_module
from todo_http.server import where_serving
from todo_http.settings import Settings
from todo_http.startup import database_name
from todo_http.version import DISTRIBUTION, UNKNOWN_VERSION, installed_version

CONFIGURATION = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _todo_http(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "todo_http", *arguments],
        cwd=cwd,
        env=server_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _error_line(*arguments: str, cwd: Path) -> str:
    """The one line a command that cannot start prints; fails unless that is all it did."""
    if arguments[0] == "serve":  # it binds its port before it opens the database
        arguments = (*arguments, "--port", str(free_port()))
    result = _todo_http(*arguments, cwd=cwd)
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("todo-http: error: ")
    return line


# --- version and usage ------------------------------------------------------------------


def test_version_is_the_installed_distributions(tmp_path: Path) -> None:
    result = _todo_http("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"todo-http {version(DISTRIBUTION)}\n"
    assert __version__ == version(DISTRIBUTION)


def test_without_an_installed_distribution_the_version_says_it_is_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert installed_version("no-such-distribution-for-todo-tests") == UNKNOWN_VERSION
    monkeypatch.setattr(cli_module, "__version__", UNKNOWN_VERSION)
    text = cli_module.version_text()
    assert "version unknown" in text
    assert DISTRIBUTION in text
    assert UNKNOWN_VERSION not in text  # a made-up number would look like a release


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_an_unknown_option_shows_the_usage_of_its_command(tmp_path: Path, command: str) -> None:
    result = _todo_http(command, "--databse-url", "sqlite:///x.db", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"usage: todo-http {command} [-h] [--database-url URL]")
    assert result.stderr.endswith(
        f"todo-http {command}: error: unrecognized arguments: --databse-url sqlite:///x.db\n"
    )
    assert not list(tmp_path.iterdir())


# --- one line per database that cannot be used --------------------------------------------


def _refused_url() -> str:
    with socket.socket() as probe:  # bound, never listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql://todo:hunter2@127.0.0.1:{port}/todo"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite://todo.db", "a SQLite URL has no host: 'sqlite://todo.db'"),
        ("mysql://db/todo", "unsupported database URL scheme 'mysql'"),
        ("sqlite:///todo.db?mode=ro", "unsupported SQLite URL options ['mode']"),
        (None, "cannot reach the database postgresql://todo:***@127.0.0.1:"),
    ],
    ids=["two-slashes", "scheme", "options", "refused"],
)
def test_serve_and_migrate_say_the_same_one_line(
    tmp_path: Path, url: str | None, expected: str
) -> None:
    url = url or _refused_url()
    served = _error_line("serve", "--database-url", url, cwd=tmp_path)
    migrated = _error_line("migrate", "--database-url", url, cwd=tmp_path)
    assert served == migrated
    assert expected in served
    assert "hunter2" not in served
    assert not list(tmp_path.iterdir()), "nothing is created for a database that cannot be used"


def test_the_documented_refusal_is_what_serve_prints(tmp_path: Path) -> None:
    [documented] = [
        line
        for line in CONFIGURATION.read_text(encoding="utf-8").splitlines()
        if line.startswith("todo-http: error: cannot reach the database")
    ]
    url = _refused_url()
    port = url.rpartition(":")[2].partition("/")[0]
    served = _error_line("serve", "--database-url", url, cwd=tmp_path)
    assert served == documented.replace(":5432/", f":{port}/")


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("missing/todo.db", "the directory {parent} does not exist"),
        ("a-file/todo.db", "{parent} is not a directory"),
        ("a-directory", "it is a directory"),
        ("locked/todo.db", "permission denied: this user cannot create files in {parent}"),
    ],
    ids=["missing-directory", "file-as-directory", "directory", "permission"],
)
@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_a_sqlite_file_that_cannot_be_opened_is_named_with_the_reason(
    tmp_path: Path, command: str, where: str, reason: str
) -> None:
    if where.startswith("locked") and os.geteuid() == 0:
        pytest.skip("root may create files in any directory")
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "locked").mkdir(mode=0o500)
    before = sorted(tmp_path.rglob("*"))
    path = tmp_path / where
    line = _error_line(command, "--database-url", f"sqlite:///{path}", cwd=tmp_path)
    expected = f"cannot open the SQLite database {path}: " + reason.format(parent=path.parent)
    assert line == f"todo-http: error: {expected}"
    assert sorted(tmp_path.rglob("*")) == before


# --- what the start says -----------------------------------------------------------------


@pytest.mark.parametrize("ui", [True, False])
def test_the_start_names_the_pages_and_the_database_without_its_password(ui: bool) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        settings = Settings(database_url="postgresql://todo:hunter2@db.example/tasks", ui=ui)
        where = where_serving([sock], settings)
    pages = f"web app: {url}/, " if ui else ""
    assert where == (
        f"{url} ({pages}API docs: {url}/api/docs), tasks in postgresql://todo:***@db.example/tasks"
    )


def test_a_relative_sqlite_file_is_named_with_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert database_name("sqlite:///todo.db") == f"sqlite:///todo.db ({tmp_path / 'todo.db'})"
    assert database_name(f"sqlite:///{tmp_path}/x.db") == f"sqlite:///{tmp_path}/x.db"
    assert database_name("memory://") == "memory://"


# --- migrate -----------------------------------------------------------------------------

_RUNNING = re.compile(r"Running upgrade (\w*) -> (\w+)")


def test_migrate_on_sqlite_announces_only_the_revisions_that_change_it(tmp_path: Path) -> None:
    result = _todo_http("migrate", "--database-url", f"sqlite:///{tmp_path}/t.db", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    announced = [match[1] for match in _RUNNING.findall(result.stderr)]
    assert announced == ["0001", "0003", "0004", "0005", "0006"], result.stderr
    assert "PostgreSQL" not in result.stderr


@pytest.mark.postgres
async def test_migrate_on_postgresql_announces_only_the_revisions_that_change_it(
    tmp_path: Path,
) -> None:
    async with fresh_postgres_database() as url:
        result = _todo_http("migrate", "--database-url", url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    announced = [match[1] for match in _RUNNING.findall(result.stderr)]
    assert announced == ["0001", "0002", "0003", "0004", "0005"], result.stderr
