"""Engine settings that keep the store working behind PgBouncer/Neon, pinned without a server."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any, get_args

import pytest
import sqlalchemy as sa

from todo_core import TaskCreate, open_store
from todo_core.engine import (
    EngineOptions,
    asyncpg_arguments,
    connect_arguments,
    create_engine,
    database_url,
    engine_arguments,
)
from todo_core.models import SortOrder
from todo_core.sql import SqlTaskStore
from todo_core.sqlite import SqliteDatabase
from todo_core.urls import parse_database_url, redacted

NEON_URL = "postgresql://u:p@ep-x-pooler.neon.tech/db?sslmode=require&channel_binding=require"


def postgres_arguments(url: str, **options: Any) -> tuple[sa.URL, dict[str, Any]]:
    """What ``asyncpg.connect`` gets, for the store's pool and the migration engine."""
    target, connect_args = asyncpg_arguments(database_url(url), EngineOptions(**options))
    return target, {"connect_args": connect_args}


def store_connect(url: str, **options: Any) -> dict[str, Any]:
    return connect_arguments(parse_database_url(url), EngineOptions(**options))


class TestPostgresArguments:
    def test_statement_cache_is_off(self) -> None:
        """asyncpg's statement cache is off, in the pool and in the migration engine
        (with SQLAlchemy's own cache): unnamed statements only."""
        _, arguments = postgres_arguments("postgresql://u@h/db")
        assert arguments["connect_args"]["statement_cache_size"] == 0
        assert store_connect("postgresql://u@h/db")["statement_cache_size"] == 0
        _, engine = engine_arguments(database_url("postgresql://u@h/db"), EngineOptions())
        assert engine["connect_args"]["statement_cache_size"] == 0
        assert engine["connect_args"]["prepared_statement_cache_size"] == 0

    def test_only_application_name_is_a_startup_parameter(self) -> None:
        """server_settings carries only application_name, which Neon's pooler accepts."""
        _, arguments = postgres_arguments("postgresql://u@h/db", application_name="worker-1")
        assert arguments["connect_args"]["server_settings"] == {"application_name": "worker-1"}
        pool = store_connect("postgresql://u@h/db", application_name="worker-1")
        assert pool["server_settings"] == {"application_name": "worker-1"}

    def test_connect_timeout_is_bounded(self) -> None:
        """The default connect timeout is at most 10 s (asyncpg's own is 60 s), and the
        option overrides it."""
        _, default = postgres_arguments("postgresql://u@h/db")
        _, custom = postgres_arguments("postgresql://u@h/db", connect_timeout=2)
        assert 0 < default["connect_args"]["timeout"] <= 10
        assert custom["connect_args"]["timeout"] == 2

    def test_commands_have_a_client_side_timeout(self) -> None:
        """Every command has a finite client-side timeout (asyncpg's default is none)."""
        _, arguments = postgres_arguments("postgresql://u@h/db", command_timeout=7)
        assert arguments["connect_args"]["command_timeout"] == 7

    def test_dsn_has_no_libpq_only_keys(self) -> None:
        """The store's DSN is the user's URL minus sslmode and channel_binding, which
        asyncpg would otherwise send to the server as startup parameters."""
        pool = store_connect(NEON_URL)
        assert pool["dsn"] == "postgresql://u:p@ep-x-pooler.neon.tech/db"
        assert pool["ssl"] == "require"

    def test_migration_engine_pools_nothing(self) -> None:
        """The SQLAlchemy engine only migrates at start: it keeps no connections."""
        _, engine = engine_arguments(database_url("postgresql://u@h/db"), EngineOptions())
        assert engine["poolclass"] is sa.NullPool

    def test_neon_url_sslmode_becomes_asyncpg_ssl(self) -> None:
        """Neon's sslmode=require&channel_binding=require becomes ssl="require" and neither
        libpq-only key is passed on to asyncpg."""
        url, arguments = postgres_arguments(NEON_URL)
        assert arguments["connect_args"]["ssl"] == "require"
        assert "sslmode" not in url.query
        assert "channel_binding" not in url.query
        assert "sslmode" not in arguments["connect_args"]
        assert "channel_binding" not in arguments["connect_args"]
        assert (url.host, url.username, url.password, url.database) == (
            "ep-x-pooler.neon.tech",
            "u",
            "p",
            "db",
        )

    @pytest.mark.parametrize("mode", ["disable", "prefer", "require", "verify-ca", "verify-full"])
    def test_every_sslmode_is_passed_as_ssl(self, mode: str) -> None:
        """Any libpq sslmode is handed to asyncpg's ssl argument, which takes the same names."""
        url, arguments = postgres_arguments(f"postgresql://u@h/db?sslmode={mode}")
        assert arguments["connect_args"]["ssl"] == mode
        assert dict(url.query) == {}

    def test_no_sslmode_leaves_ssl_to_asyncpg(self) -> None:
        """Without sslmode, no ssl argument is forced."""
        _, arguments = postgres_arguments("postgresql://u@h/db")
        assert "ssl" not in arguments["connect_args"]

    def test_repeated_sslmode_is_refused(self) -> None:
        """A URL naming sslmode twice is ambiguous and a ValueError."""
        with pytest.raises(ValueError, match="sslmode"):
            postgres_arguments("postgresql://u@h/db?sslmode=require&sslmode=disable")

    async def test_engine_uses_asyncpg(self) -> None:
        """The engine built for a postgresql:// URL runs on asyncpg (no connection needed)."""
        engine = create_engine("postgresql://u@h/db")
        try:
            assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "asyncpg")
        finally:
            await engine.dispose()


class TestDatabaseUrl:
    @pytest.mark.parametrize(
        "url",
        ["postgres://u@h/db", "postgresql://u@h/db", "postgresql+asyncpg://u@h/db"],
    )
    def test_postgres_urls_use_asyncpg(self, url: str) -> None:
        """postgres://, postgresql:// and postgresql+asyncpg:// all mean asyncpg."""
        parsed = database_url(url)
        assert parsed.drivername == "postgresql+asyncpg"
        assert (parsed.host, parsed.database) == ("h", "db")

    @pytest.mark.parametrize(
        ("url", "database"),
        [
            ("sqlite:///x", "x"),
            ("sqlite:////abs/path/tasks.db", "/abs/path/tasks.db"),
            ("sqlite+aiosqlite:///x", "x"),
            (":memory:", ":memory:"),
        ],
    )
    def test_sqlite_urls_use_aiosqlite(self, url: str, database: str) -> None:
        """sqlite:///, sqlite+aiosqlite:/// and :memory: all mean aiosqlite."""
        parsed = database_url(url)
        assert parsed.drivername == "sqlite+aiosqlite"
        assert parsed.database == database

    @pytest.mark.parametrize(
        "url",
        [
            "mysql://u@h/db",
            "postgresql+psycopg://u@h/db",
            "postgresql+psycopg2://u@h/db",
            "sqlite+pysqlite:///x",
            "oracle://u@h/db",
            "not a url",
            "",
        ],
    )
    def test_other_urls_are_refused(self, url: str) -> None:
        """Other databases and drivers are a ValueError, not a late driver failure."""
        with pytest.raises(ValueError):  # noqa: PT011 - the message is not the contract
            database_url(url)


class TestStoreOptions:
    @pytest.mark.parametrize("url", ["sqlite:///{tmp}/tasks.db", "postgresql://u@h/db"])
    async def test_unknown_option_is_refused(self, url: str, tmp_path: Path) -> None:
        """An option a store does not know is a ValueError naming it, before connecting."""
        with pytest.raises(ValueError, match="pool_sise"):
            async with open_store(url.format(tmp=tmp_path), pool_sise=3):
                pass  # pragma: no cover

    async def test_memory_store_refuses_engine_options(self) -> None:
        """The memory store has no engine: engine options are a ValueError."""
        with pytest.raises(ValueError, match="pool_size"):
            async with open_store("memory://", pool_size=3):
                pass  # pragma: no cover

    async def test_unsupported_url_is_refused(self) -> None:
        """open_store refuses an unsupported URL with ValueError."""
        with pytest.raises(ValueError, match="mysql"):
            async with open_store("mysql://u@h/db"):
                pass  # pragma: no cover


async def sqlite_pragmas(store: object, *names: str) -> list[object]:
    """The values of ``names`` on the connection a SQLite store writes through."""
    assert isinstance(store, SqlTaskStore)
    assert isinstance(store.database, SqliteDatabase)
    pragmas = [f"PRAGMA {name}" for name in names]

    def read(connection: sqlite3.Connection) -> list[object]:
        return [connection.execute(pragma).fetchone()[0] for pragma in pragmas]

    return await store.database.on_writer(read)


class TestSqlite:
    def test_migration_lock_wait_follows_statement_timeout(self) -> None:
        """The migration engine's busy timeout is the store's statement_timeout."""
        _, arguments = engine_arguments(
            database_url("sqlite:///x.db"), EngineOptions(statement_timeout=1.5)
        )
        assert arguments["connect_args"] == {"timeout": 1.5}

    async def test_file_database_runs_in_wal_mode_with_full_sync(self, tmp_path: Path) -> None:
        """A file store uses WAL (readers beside a writer), synchronous=FULL (an
        acknowledged write survives a power cut), and waits statement_timeout for a lock
        another process holds."""
        async with open_store(
            f"sqlite:///{tmp_path / 'tasks.db'}", create_schema=True, statement_timeout=1.5
        ) as store:
            pragmas = await sqlite_pragmas(store, "journal_mode", "synchronous", "busy_timeout")
        assert pragmas == ["wal", 2, 1500]  # 2 is FULL; the busy timeout is in ms

    async def test_in_memory_stores_are_separate(self) -> None:
        """Two :memory: stores open at once do not see each other's tasks."""
        async with (
            open_store(":memory:", create_schema=True) as first,
            open_store(":memory:", create_schema=True) as second,
        ):
            await first.create("alice", TaskCreate(title="first"))
            assert (await second.list("alice")).items == []

    async def test_in_memory_database_is_one_shared_connection(self) -> None:
        """:memory: keeps its tasks across calls, concurrent ones included: every call
        uses the one connection that holds the database."""
        async with open_store(":memory:", create_schema=True) as store:
            created = await asyncio.gather(
                *(store.create("alice", TaskCreate(title=str(n))) for n in range(10))
            )
            assert len((await store.list("alice")).items) == 10
            assert await store.get("alice", created[0].id) == created[0]


async def test_echo_logs_each_statement(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """echo=True logs every statement a call runs, with its arguments, to todo_core.sql."""
    caplog.set_level("INFO", logger="todo_core.sql")
    async with open_store(
        f"sqlite:///{tmp_path / 'echo.db'}", create_schema=True, echo=True
    ) as store:
        task = await store.create("alice", TaskCreate(title="logged"))
        await store.get("alice", task.id)
    messages = [r.getMessage() for r in caplog.records if r.name == "todo_core.sql"]
    assert any(m.startswith("INSERT INTO tasks") and "'logged'" in m for m in messages)
    assert any(m.startswith("SELECT") and "'alice'" in m for m in messages)


class TestPreparedStatements:
    def test_off_by_default(self) -> None:
        """Unless asked, the store's connections prepare nothing by name."""
        assert store_connect("postgresql://u@h/db")["statement_cache_size"] == 0

    def test_on_request_the_store_caches_named_statements(self) -> None:
        """prepared_statements=True turns on asyncpg's statement cache for the store's
        connections, large enough for every statement shape; the migration engine keeps
        unnamed statements."""
        size = store_connect("postgresql://u@h/db", prepared_statements=True)[
            "statement_cache_size"
        ]
        assert size >= 2 * len(get_args(SortOrder)) * 8
        _, engine = engine_arguments(
            database_url("postgresql://u@h/db"), EngineOptions(prepared_statements=True)
        )
        assert engine["connect_args"]["statement_cache_size"] == 0


class TestStoreUrls:
    """The store reads URLs without SQLAlchemy; its migration engine reads them with.
    Both must reach the same database."""

    @pytest.mark.parametrize(
        "url",
        [
            "postgresql://u:p%40ss@db.example:6543/tasks",
            "postgres://u@h/db",
            "postgresql+asyncpg://u@h/db?application_name=x",
            NEON_URL,
        ],
    )
    def test_postgresql_dsn_names_what_sqlalchemy_names(self, url: str) -> None:
        """Host, port, user, password and database agree with SQLAlchemy's reading; the
        libpq-only keys are gone from the DSN and sslmode is kept as asyncpg's ssl."""
        parsed = parse_database_url(url)
        dsn, engine = sa.make_url(parsed.dsn), database_url(parsed.engine_url)
        for part in ("host", "port", "username", "password", "database"):
            assert getattr(dsn, part) == getattr(database_url(url), part) == getattr(engine, part)
        assert {"sslmode", "channel_binding"}.isdisjoint(dsn.query)
        assert parsed.ssl == database_url(url).query.get("sslmode")

    @pytest.mark.parametrize(
        "url",
        [
            "sqlite:///relative/tasks.db",
            "sqlite+aiosqlite:////var/lib/todo/tasks.db",
            "sqlite:///file:tasks.db?mode=ro&uri=true",
        ],
    )
    def test_sqlite_path_is_sqlalchemys(self, url: str) -> None:
        """The file the store opens is the one SQLAlchemy's dialect would open."""
        parsed = parse_database_url(url)
        engine = create_engine(parsed.engine_url)
        (path,), arguments = engine.dialect.create_connect_args(engine.url)
        assert (parsed.path, parsed.uri) == (path, arguments.get("uri", False))
        assert not parsed.in_memory

    @pytest.mark.parametrize("url", [":memory:", "sqlite://", "sqlite:///:memory:"])
    def test_in_memory_is_named_shared_and_unique(self, url: str) -> None:
        """Every in-memory URL becomes a shared-cache memory database of its own name,
        which the migration engine opens too."""
        first, second = parse_database_url(url), parse_database_url(url)
        assert first.in_memory
        assert first.uri
        assert first.path != second.path
        engine = create_engine(first.engine_url)
        (path,), _ = engine.dialect.create_connect_args(engine.url)
        assert path.split("?")[0] == first.path.split("?")[0]
        assert "mode=memory" in path
        assert "cache=shared" in path

    @pytest.mark.parametrize(
        "url",
        ["mysql://u@h/db", "postgresql+psycopg://u@h/db", "tasks.db", "sqlite:///x.db?timeout=3"],
    )
    def test_other_urls_are_refused(self, url: str) -> None:
        with pytest.raises(ValueError, match=r"URL|option"):
            parse_database_url(url)

    def test_repeated_sslmode_is_refused(self) -> None:
        with pytest.raises(ValueError, match="sslmode"):
            parse_database_url("postgresql://u@h/db?sslmode=require&sslmode=disable")

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("postgresql://u:secret@h:5432/db", "postgresql://u:***@h:5432/db"),
            ("postgresql://u@h/db", "postgresql://u@h/db"),
            ("sqlite:///todo.db", "sqlite:///todo.db"),
            ("not a url", "not a url"),
        ],
    )
    def test_redacted_hides_only_the_password(self, url: str, shown: str) -> None:
        assert redacted(url) == shown
