"""Connections that survive PgBouncer and Neon, and the one place driver errors are translated.

See ``docs/library.md`` ("Backends") for why each setting is what it is. SQLAlchemy is
imported only by the functions that build its engine, which only migrations use: the
store's own connections (``connect_arguments``) and error translation work without it.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from todo_core.errors import StoreError, StoreUnavailable
from todo_core.urls import DatabaseURL, parse_database_url

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "EngineOptions",
    "asyncpg_arguments",
    "connect_arguments",
    "create_engine",
    "database_url",
    "engine_arguments",
    "sqlite_code",
    "translate_errors",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class EngineOptions:
    """Tunables of a SQL store; every field can be passed to ``open_store`` by name.

    The total number of database connections of a deployment is
    processes x (``pool_size`` + ``max_overflow``).
    """

    pool_size: int = 5
    max_overflow: int = 5
    pool_timeout: float = 5.0  # waiting for a pooled connection; then StoreUnavailable
    pool_recycle: float = 240.0  # below Neon's 5-minute scale-to-zero suspend
    connect_timeout: float = 10.0  # asyncpg's default is 60 s
    statement_timeout: float = 5.0  # then cancelled on PostgreSQL; lock wait on SQLite
    command_timeout: float = 30.0  # migrations and other maintenance on PostgreSQL
    application_name: str = "todo"
    # Named server-side statements: PostgreSQL keeps each plan instead of parsing and
    # planning every execution, but they are only safe on direct connections or behind
    # PgBouncer >= 1.21 with max_prepared_statements > 0. None: on each connection that
    # proves to be direct (postgres.py), unnamed on any other; True or False: always.
    prepared_statements: bool | None = None
    echo: bool = False

    @classmethod
    def from_mapping(cls, options: Mapping[str, object]) -> EngineOptions:
        """Options from keyword arguments. Raises ``ValueError`` for an unknown name."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown store options: {', '.join(unknown)}")
        return cls(**options)  # type: ignore[arg-type]


def database_url(url: str | URL) -> URL:
    """Normalise a user's database URL to the async driver this package uses.

    Raises:
        ValueError: the URL is not PostgreSQL or SQLite, or names another driver.
    """
    from sqlalchemy import exc
    from sqlalchemy.engine import make_url

    if url == ":memory:":
        return make_url("sqlite+aiosqlite:///:memory:")
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise ValueError(f"not a database URL: {url!r}") from error
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "asyncpg"):
        return parsed.set(drivername="postgresql+asyncpg")
    if backend == "sqlite" and driver in ("", "aiosqlite"):
        return parsed.set(drivername="sqlite+aiosqlite")
    raise ValueError(
        f"unsupported database URL scheme {parsed.drivername!r}: "
        "use postgresql://, postgresql+asyncpg://, sqlite:/// or sqlite+aiosqlite:///"
    )


def engine_arguments(url: URL, options: EngineOptions) -> tuple[URL, dict[str, Any]]:
    """The URL and ``create_async_engine`` keyword arguments for ``url``.

    The engine only migrates and reads settings, once per start, so it pools nothing;
    requests run on the store's own connections (``pool_arguments``, ``sqlite.py``).
    Split out from ``create_engine`` so tests can pin them without a database.
    """
    from sqlalchemy.pool import NullPool

    arguments: dict[str, Any] = {"poolclass": NullPool, "echo": options.echo}
    if url.get_backend_name() == "sqlite":
        # sqlite3's busy timeout: how long a writer waits for the file lock.
        arguments["connect_args"] = {"timeout": options.statement_timeout}
        return url, arguments
    target, connect_args = asyncpg_arguments(url, options)
    # SQLAlchemy's own statement cache; a DBAPI argument, so it goes with asyncpg's.
    connect_args["prepared_statement_cache_size"] = 0
    arguments["connect_args"] = connect_args
    return target, arguments


def asyncpg_arguments(url: URL, options: EngineOptions) -> tuple[URL, dict[str, Any]]:
    """The URL without the libpq-only query keys, and ``asyncpg.connect`` arguments.

    The keys are stripped by ``urls.parse_database_url``, as for the store's own
    connections, so the migration engine and the store read a URL alike.
    """
    from sqlalchemy.engine import make_url

    parsed = parse_database_url(url.render_as_string(hide_password=False))
    target = make_url(parsed.dsn).set(drivername=url.drivername)
    return target, _driver_arguments(options, parsed.ssl)


def connect_arguments(url: DatabaseURL, options: EngineOptions) -> dict[str, Any]:
    """``asyncpg.connect`` arguments for the connections the store serves requests with."""
    arguments = {"dsn": url.dsn, **_driver_arguments(options, url.ssl)}
    if options.prepared_statements:
        # With asyncpg's statement cache on, ``prepare()`` names the statement; the store
        # keeps the prepared statements itself (postgres.py), the cache serves any other
        # query on these connections.
        arguments["statement_cache_size"] = 256
    return arguments


def _driver_arguments(options: EngineOptions, sslmode: str | None) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        # Unnamed statements only: safe behind PgBouncer in transaction mode (Neon's
        # pooler) and across processes. Needs asyncpg >= 0.31.
        "statement_cache_size": 0,
        "timeout": options.connect_timeout,
        "command_timeout": options.command_timeout,
        # Poolers reject any other startup parameter.
        "server_settings": {"application_name": options.application_name},
    }
    if sslmode is not None:
        arguments["ssl"] = sslmode  # asyncpg takes libpq's sslmode names
    return arguments


def create_engine(url: str | URL, options: EngineOptions | None = None) -> AsyncEngine:
    """An engine for ``url`` with this package's settings. Connects lazily."""
    # Imported here: only migrations need an engine, and a serving process that does
    # not migrate never loads SQLAlchemy's engine layer.
    from sqlalchemy.ext.asyncio import create_async_engine

    target, arguments = engine_arguments(database_url(url), options or EngineOptions())
    return create_async_engine(target, **arguments)


# PostgreSQL SQLSTATE classes that mean "not now" rather than "never": connection
# exceptions, insufficient resources, operator intervention (includes statement timeout
# 57014 and admin shutdown 57P01), and transaction rollback (serialization, deadlock).
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "40"})
# SQLite primary result codes for the same: BUSY, LOCKED, IOERR, FULL, CANTOPEN.
_TRANSIENT_SQLITE_CODES = frozenset({5, 6, 10, 13, 14})


def sqlite_code(error: object) -> int | None:
    """SQLite's primary result code of ``error``, if it carries one: the errors that
    Python's sqlite3 raises itself (a closed connection, a type it cannot bind) do not."""
    code = getattr(error, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _is_transient(error: BaseException | None) -> bool:
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES
    if isinstance(error, sqlite3.Error):
        return sqlite_code(error) in _TRANSIENT_SQLITE_CODES
    # asyncpg's InterfaceError without a SQLSTATE: the connection is closed or broken.
    # InternalClientError: asyncpg's protocol got out of step with the server, as when
    # a shutting-down server's notice (57P01) reaches an idle pooled connection and the
    # statement after it finds "another operation in progress" (tests/faults).
    return isinstance(
        error, asyncpg.InterfaceError | asyncpg.InternalClientError | OSError | TimeoutError
    )


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn any database or driver failure raised inside into ``StoreError``.

    ``StoreUnavailable`` for what may pass (unreachable, pool exhausted, timeouts, lock
    waits); ``StoreError`` for the rest. The original stays chained as ``__cause__``
    for logs; the message names only the error's type, never SQL or parameters.
    """
    try:
        yield
    except (
        OSError,
        TimeoutError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        sqlite3.Error,
    ) as error:
        if _is_transient(error):
            raise StoreUnavailable(_describe(error)) from error
        raise StoreError(_describe(error)) from error
    except Exception as error:
        # SQLAlchemy's errors come only from its engine (migrations), which loads it:
        # a process that never did cannot be holding one.
        sqlalchemy_errors = sys.modules.get("sqlalchemy.exc")
        if sqlalchemy_errors is None or not isinstance(error, sqlalchemy_errors.SQLAlchemyError):
            raise
        _translate_sqlalchemy(error, sqlalchemy_errors)


def _translate_sqlalchemy(error: Exception, exc: Any) -> None:
    if isinstance(error, exc.TimeoutError):  # the pool had no connection in time
        raise StoreUnavailable("no database connection free within the pool timeout") from error
    if isinstance(error, exc.DBAPIError):
        original = error.orig
        if error.connection_invalidated or _is_transient(original):
            raise StoreUnavailable(_describe(original)) from error
        raise StoreError(_describe(original)) from error
    if isinstance(error, exc.ArgumentError | exc.CompileError):
        raise error  # our bug, not the database's: keep it loud
    raise StoreError(_describe(error)) from error


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "database error"
    sqlstate = getattr(error, "sqlstate", None)
    suffix = f" (SQLSTATE {sqlstate})" if isinstance(sqlstate, str) else ""
    return f"database error: {type(error).__name__}{suffix}"
