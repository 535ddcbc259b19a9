"""Developer tasks. `nox` runs lint, typecheck and the whole test suite; `nox -l` lists all."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
SOURCES = ("src", "tests", "benchmarks", "noxfile.py")


@nox.session
def tests(session: nox.Session) -> None:
    """Tests on the memory store, SQLite and, with TODO_TEST_POSTGRES_URL, PostgreSQL."""
    session.install("-e", ".[server]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("pytest", *session.posargs)


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
    """Serve the API on http://127.0.0.1:8080 from ./todo.db (arguments go to `serve`)."""
    session.install("-e", ".[server]")
    session.run("todo-http", "serve", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Load the server beside the limit server and on a 1,000,000-task table; time the store.

    The HTTP suites use ../shared/bench; the scale one compares a 1,000,000-task table
    with a 10,000-task one.

    Needs wrk (apt-get install wrk) and PostgreSQL: TODO_BENCH_POSTGRES_URL names the
    maintenance database through which the bench databases are created and dropped
    (default postgresql://postgres@127.0.0.1:5432/postgres). Takes about ten minutes;
    writes docs/performance/. Arguments after -- go to both HTTP suites, e.g.
    `nox -s bench -- --duration 5 --rounds 2` (`python -m benchmarks.http --help`);
    `--no-scale` leaves out the large table (`python -m benchmarks.scale --help`).
    """
    session.install("-e", ".[server]", *nox.project.dependency_groups(PYPROJECT, "bench"))
    load = [argument for argument in session.posargs if argument != "--no-scale"]
    session.run("python", "-m", "benchmarks.http", *load)
    if "--no-scale" not in session.posargs:
        session.run("python", "-m", "benchmarks.scale", *load)
    session.run(
        "pytest",
        "benchmarks/test_store_speed.py",
        "--library-json=docs/performance/library.json",
        "--benchmark-columns=min,median,iqr,rounds",
    )
