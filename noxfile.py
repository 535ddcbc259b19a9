"""Developer tasks. `nox` runs lint, typecheck and the whole test suite under coverage;
`nox -l` lists all."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "coverage"]
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
SOURCES = ("src", "tests", "benchmarks", "noxfile.py")


@nox.session
def tests(session: nox.Session) -> None:
    """Tests on the memory store, SQLite and, with TODO_TEST_POSTGRES_URL, PostgreSQL,
    without coverage: for focused runs (`nox -s tests -- tests/core -x`)."""
    session.install("-e", ".[server]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("pytest", *session.posargs)


@nox.session
def coverage(session: nox.Session) -> None:
    """The whole test suite under coverage.py, server processes included: branch coverage
    of todo_core and todo_http, failing under pyproject's fail_under when it ran whole
    with PostgreSQL (TODO_TEST_POSTGRES_URL), as CI runs it. Arguments go to pytest."""
    groups = nox.project.dependency_groups(PYPROJECT, "test", "coverage")
    session.install("-e", ".[server]", *groups)
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "combine", "--quiet")
    if session.posargs or not os.environ.get("TODO_TEST_POSTGRES_URL"):
        # fail_under is what the whole suite reaches with PostgreSQL; a part of it, or
        # a run whose PostgreSQL tests skipped, is reported but not judged by it.
        session.log("coverage threshold not enforced: not the whole suite with PostgreSQL")
        session.run("coverage", "report", "--fail-under=0")
    else:
        session.run("coverage", "report")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", *SOURCES)
    session.run("ruff", "format", "--check", *SOURCES)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the packages, the tests, the benchmarks and this file."""
    session.install("-e", ".[server]", *nox.project.dependency_groups(PYPROJECT, "typecheck"))
    session.run("mypy", *session.posargs)


@nox.session
def serve(session: nox.Session) -> None:
    """The web app and API on http://127.0.0.1:8080, from ./todo.db (arguments go to `serve`)."""
    _install_project_once(session)
    session.run("todo-http", "serve", *session.posargs)


def _install_project_once(session: nox.Session) -> None:
    """`pip install -e .[server]` into a new environment, or after pyproject.toml changed.

    The install is editable, so changes to the code need none; only the project's
    metadata (dependencies, the `todo-http` script) does. A stamp in the environment
    holds the hash of the pyproject.toml it was installed from: a start with the same
    one skips pip, which took seconds of every start.
    """
    stamp = Path(session.virtualenv.location) / "project-installed-from.sha256"
    wanted = hashlib.sha256(Path("pyproject.toml").read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == wanted:
        session.log("project already installed from this pyproject.toml")
        return
    session.install("-e", ".[server]")
    stamp.write_text(wanted)


@nox.session
def bench(session: nox.Session) -> None:
    """Load the server beside the limit server and on a 1,000,000-task table; time the store.

    The HTTP suites use ../shared/bench; the scale one compares a 1,000,000-task table
    with a 10,000-task one. Without ../shared/bench (a clone of this repository alone)
    both say they are skipped and `benchmarks.solo` measures our server by itself.

    Needs wrk (apt-get install wrk) and PostgreSQL: TODO_BENCH_POSTGRES_URL names the
    maintenance database through which the bench databases are created and dropped
    (default postgresql://postgres@127.0.0.1:5432/postgres). Takes about a quarter of an hour;
    writes docs/performance/. Arguments after -- go to both HTTP suites, e.g.
    `nox -s bench -- --duration 5 --rounds 2` (`python -m benchmarks.http --help`);
    `--no-scale` leaves out the large table (`python -m benchmarks.scale --help`);
    `--no-streams` the live event streams (`python -m benchmarks.streams --help`: 10,000
    idle streams, then delivery latency and losses, directly and through PgBouncer);
    `--no-webapp` the web app's first load in chromium (`python -m benchmarks.webapp
    --help`: requests, bytes and time to the first task shown with 500 tasks).
    """
    session.install("-e", ".[server]", *nox.project.dependency_groups(PYPROJECT, "bench"))
    own = ("--no-scale", "--no-streams", "--no-webapp")
    load = [argument for argument in session.posargs if argument not in own]
    session.run("python", "-m", "benchmarks.http", *load)
    if "--no-scale" not in session.posargs:
        session.run("python", "-m", "benchmarks.scale", *load)
    if "--no-streams" not in session.posargs:
        session.run("python", "-m", "benchmarks.streams")
    if "--no-webapp" not in session.posargs:
        session.run("python", "-m", "benchmarks.webapp", "--json", "docs/performance/webapp.json")
    session.run(
        "pytest",
        "benchmarks/test_store_speed.py",
        "--library-json=docs/performance/library.json",
        "--benchmark-columns=min,median,iqr,rounds",
    )
