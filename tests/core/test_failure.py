"""How stores fail: unreachable or slow databases, exhausted pools, and error translation."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy import exc

from tests.backends import (
    SQL_BACKENDS,
    fresh_postgres_database,
    open_backend,
    postgres_url,
    sqlite_threads_finished,
)
from tests.tcp_proxy import TcpProxy
from todo_core import (
    PreconditionFailed,
    SchemaNotCurrent,
    StoreError,
    StoreUnavailable,
    TaskCreate,
    TaskNotFound,
    open_store,
)
from todo_core.engine import create_engine, translate_errors
from todo_core.migrate import head_revision
from todo_core.postgres import PostgresDatabase
from todo_core.sql import SqlTaskStore, Statement


def unused_port() -> int:
    """A loopback port that was just bound and released, so nothing listens on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def open_and_ping(url: str, **options: object) -> None:
    async with open_store(url, **options) as store:  # type: ignore[arg-type]
        await store.ping()


@pytest.fixture(name="silent_port")
async def _silent_port() -> AsyncIterator[int]:
    """A port where a server accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


@pytest.fixture(name="sql_backend", params=SQL_BACKENDS)
def _sql_backend(request: pytest.FixtureRequest) -> str:
    """Each SQL backend in turn."""
    name: str = request.param
    return name


class TestUnreachableDatabase:
    @pytest.mark.parametrize("create_schema", [False, True])
    async def test_closed_port(self, create_schema: bool) -> None:
        """A refused connection is StoreUnavailable, quickly, and the password is not in it."""
        url = "postgresql://postgres:s3cret-word@127.0.0.1:1/test"
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            await open_and_ping(url, create_schema=create_schema, connect_timeout=2)
        assert time.monotonic() - started < 3
        assert "s3cret" not in str(info.value)

    async def test_port_that_was_just_closed(self) -> None:
        """A port with no listener is StoreUnavailable within the connect timeout."""
        url = f"postgresql://postgres@127.0.0.1:{unused_port()}/test"
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await open_and_ping(url, connect_timeout=2)
        assert time.monotonic() - started < 3

    async def test_server_that_never_answers(self, silent_port: int) -> None:
        """A server that accepts but stays silent is StoreUnavailable after connect_timeout."""
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await open_and_ping(
                f"postgresql://postgres@127.0.0.1:{silent_port}/test", connect_timeout=1
            )
        assert time.monotonic() - started < 2

    @pytest.mark.parametrize("create_schema", [False, True])
    async def test_sqlite_file_in_a_missing_directory(
        self, tmp_path: Path, create_schema: bool
    ) -> None:
        """An SQLite path that cannot be opened is a StoreError, not a raw sqlite3 error."""
        url = f"sqlite:///{tmp_path / 'missing' / 'dir' / 'tasks.db'}"
        with pytest.raises(StoreError):
            await open_and_ping(url, create_schema=create_schema)
        assert not (tmp_path / "missing").exists()
        await sqlite_threads_finished()


class TestOutage:
    @pytest.mark.postgres
    async def test_store_recovers_when_the_database_returns(self) -> None:
        """While the database is unreachable every call is StoreUnavailable; once it is
        back, the same store works again without being reopened."""
        proxy = TcpProxy.in_front_of(postgres_url())
        await proxy.start()
        try:
            async with open_store(
                proxy.url(postgres_url()), create_schema=True, connect_timeout=2
            ) as store:
                user = f"outage-{uuid4().hex[:8]}"
                task = await store.create(user, TaskCreate(title="before"))
                await proxy.stop()
                for call in (store.get(user, task.id), store.list(user), store.ping()):
                    with pytest.raises(StoreUnavailable):
                        await call
                await proxy.start()
                assert await store.get(user, task.id) == task
                await store.delete(user, task.id)
        finally:
            await proxy.stop()


# The library's remedies for a database without the current schema.
MIGRATE_ADVICE = (
    r"migrate it \(todo_core\.migrate\.migrate\) or open the store with create_schema=True"
)


class TestUnmigratedDatabase:
    async def test_sqlite(self, tmp_path: Path) -> None:
        """Opening an empty SQLite database without create_schema says how to migrate it
        with the library (no command line: todo_http adds its own), and leaves the
        database untouched."""
        path = tmp_path / "empty.db"
        with pytest.raises(SchemaNotCurrent, match=MIGRATE_ADVICE) as info:
            await open_and_ping(f"sqlite:///{path}")
        assert (info.value.current, info.value.required) == (None, head_revision())
        assert not isinstance(info.value, StoreUnavailable)
        assert "todo-http" not in str(info.value)
        with sqlite3.connect(path) as connection:
            tables = connection.execute("SELECT name FROM sqlite_master").fetchall()
        connection.close()
        assert tables == []

    @pytest.mark.postgres
    async def test_postgresql(self) -> None:
        """Opening an empty PostgreSQL database without create_schema says to run the
        migration, and creates nothing."""
        async with fresh_postgres_database() as url:
            with pytest.raises(SchemaNotCurrent, match=MIGRATE_ADVICE) as info:
                await open_and_ping(url)
            assert not isinstance(info.value, StoreUnavailable)
            assert "todo-http" not in str(info.value)
            engine = create_engine(url)
            try:
                async with engine.connect() as connection:
                    tables = await connection.scalar(
                        sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                    )
            finally:
                await engine.dispose()
            assert tables == 0


def slow_statement(store: object, seconds: float) -> Statement:
    assert isinstance(store, SqlTaskStore)
    return store.database.statements.compile(sa.select(sa.func.pg_sleep(seconds)))


@pytest.mark.postgres
class TestPostgresTimeouts:
    async def test_statement_timeout(self) -> None:
        """A statement over statement_timeout is cancelled and StoreUnavailable; the
        connection it ran on serves the next call."""
        async with open_store(
            postgres_url(), create_schema=True, statement_timeout=0.2, pool_size=1, max_overflow=0
        ) as store:
            assert isinstance(store, SqlTaskStore)
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.database.fetch(slow_statement(store, 1), {})
            assert time.monotonic() - started < 0.9
            user = f"timeout-{uuid4().hex[:8]}"
            task = await store.create(user, TaskCreate(title="after"))
            assert await store.get(user, task.id) == task
            await store.delete(user, task.id)

    async def test_timed_out_statement_is_cancelled_on_the_server(self) -> None:
        """The server stops running a statement the store gave up on (nothing keeps
        holding locks or a backend), and the session keeps no statement_timeout."""
        async with open_store(
            postgres_url(), create_schema=True, statement_timeout=0.25, pool_size=1, max_overflow=0
        ) as store:
            assert isinstance(store, SqlTaskStore)
            with pytest.raises(StoreUnavailable):
                await store.database.fetch(slow_statement(store, 30), {})
            # Only this database's sessions: the view spans the cluster, which other
            # work may share.
            activity = store.database.statements.compile(
                sa.select(sa.func.count())
                .select_from(sa.table("pg_stat_activity", sa.column("query"), sa.column("datname")))
                .where(
                    sa.column("query").like("%pg_sleep%"),
                    sa.column("query").notlike("%count%"),
                    sa.column("datname") == sa.func.current_database(),
                )
            )
            for _ in range(50):
                ((running,),) = await store.database.fetch(activity, {})
                if running == 0:
                    break
                await asyncio.sleep(0.05)
            assert running == 0
            setting = store.database.statements.compile(sa.text("SHOW statement_timeout"))
            assert await store.database.fetch(setting, {}) == [("0",)]


class TestSqliteLocks:
    async def test_write_lock_wait_is_bounded(self, tmp_path: Path) -> None:
        """A write blocked by another writer for longer than statement_timeout is
        StoreUnavailable; reads still work meanwhile (WAL) and writes resume after."""
        path = tmp_path / "tasks.db"
        async with open_store(f"sqlite:///{path}", create_schema=True, statement_timeout=0.2) as s:
            task = await s.create("alice", TaskCreate(title="t"))
            blocker = sqlite3.connect(path, isolation_level=None)
            try:
                blocker.execute("BEGIN IMMEDIATE")
                started = time.monotonic()
                with pytest.raises(StoreUnavailable):
                    await s.create("alice", TaskCreate(title="blocked"))
                assert time.monotonic() - started < 2
                assert await s.get("alice", task.id) == task
                blocker.execute("ROLLBACK")
            finally:
                blocker.close()
            await s.create("alice", TaskCreate(title="after"))
            assert len((await s.list("alice")).items) == 2


@pytest.mark.postgres
class TestPoolExhaustion:
    async def test_waiting_for_a_connection_is_bounded(self, tmp_path: Path) -> None:
        """With every pooled connection busy, a call is StoreUnavailable after pool_timeout;
        once the connection is back, calls succeed. (SQLite has no pool to exhaust: its
        calls queue on their connection.)"""
        async with open_backend(
            "postgres", tmp_path, pool_size=1, max_overflow=0, pool_timeout=0.5
        ) as store:
            assert isinstance(store, SqlTaskStore)
            assert isinstance(store.database, PostgresDatabase)
            held = await store.database.pool.acquire()
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.get("alice", uuid4())
            assert time.monotonic() - started < 1.2
            store.database.pool.release(held)
            with pytest.raises(TaskNotFound):
                await store.get("alice", uuid4())


class _DriverError(Exception):
    """Stands in for a driver exception carrying a PostgreSQL SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"secret driver detail {sqlstate}")
        self.sqlstate = sqlstate


def translated(error: BaseException) -> BaseException:
    """What ``translate_errors`` lets out when ``error`` is raised inside it."""
    try:
        with translate_errors():
            raise error
    except BaseException as result:  # CancelledError included on purpose
        return result
    raise AssertionError("unreachable")  # pragma: no cover


def sqlite_error(code: int, cls: type[sqlite3.Error] = sqlite3.OperationalError) -> sqlite3.Error:
    error = cls(f"sqlite says {code}")
    error.sqlite_errorcode = code
    return error


def dbapi_error(orig: BaseException, *, invalidated: bool = False) -> exc.DBAPIError:
    statement, parameters = "SELECT secret_sql FROM tasks", {"p": "secret_param"}
    return exc.DBAPIError(statement, parameters, orig, connection_invalidated=invalidated)


class TestTranslateErrors:
    @pytest.mark.parametrize(
        "sqlstate", ["57014", "08006", "08001", "53300", "40001", "40P01", "57P01"]
    )
    def test_transient_sqlstates_are_unavailable(self, sqlstate: str) -> None:
        """Timeouts, lost connections, exhausted resources and serialization failures are
        StoreUnavailable, with the driver error chained."""
        error = dbapi_error(_DriverError(sqlstate))
        result = translated(error)
        assert isinstance(result, StoreUnavailable)
        assert result.__cause__ is error

    @pytest.mark.parametrize("sqlstate", ["22021", "23505", "22P05", "42P01", "26000"])
    def test_other_sqlstates_are_store_errors(self, sqlstate: str) -> None:
        """Data, constraint and schema errors are StoreError but not StoreUnavailable."""
        result = translated(dbapi_error(_DriverError(sqlstate)))
        assert isinstance(result, StoreError)
        assert not isinstance(result, StoreUnavailable)

    def test_invalidated_connection_is_unavailable(self) -> None:
        """Any error that invalidated the connection is StoreUnavailable."""
        result = translated(dbapi_error(_DriverError("42000"), invalidated=True))
        assert isinstance(result, StoreUnavailable)

    def test_messages_hide_sql_parameters_and_driver_text(self) -> None:
        """The translated message names the error type and SQLSTATE, nothing else."""
        result = translated(dbapi_error(_DriverError("22021")))
        assert "secret" not in str(result)
        assert "22021" in str(result)

    def test_sqlite_errors_without_a_code_are_store_errors(self) -> None:
        """Errors that Python's sqlite3 raises itself carry no SQLite result code (a
        closed connection, a value it cannot bind): StoreError all the same."""
        error = sqlite3.ProgrammingError("Cannot operate on a closed database.")
        assert not hasattr(error, "sqlite_errorcode")
        result = translated(error)
        assert type(result) is StoreError
        assert "closed database" not in str(result)

    @pytest.mark.parametrize("code", [5, 6, 517, 261, 14, 10])
    @pytest.mark.parametrize("wrapped", [False, True])
    def test_sqlite_busy_and_io_codes_are_unavailable(self, code: int, wrapped: bool) -> None:
        """SQLite BUSY (also extended codes), LOCKED, CANTOPEN and IOERR are StoreUnavailable."""
        error: BaseException = sqlite_error(code)
        if wrapped:
            error = exc.OperationalError("UPDATE tasks", {}, error)
        assert isinstance(translated(error), StoreUnavailable)

    @pytest.mark.parametrize("code", [1, 19, 2067])
    def test_other_sqlite_codes_are_store_errors(self, code: int) -> None:
        """SQLite generic and constraint errors are StoreError but not StoreUnavailable."""
        result = translated(exc.IntegrityError("INSERT", {}, sqlite_error(code)))
        assert isinstance(result, StoreError)
        assert not isinstance(result, StoreUnavailable)

    @pytest.mark.parametrize(
        "error",
        [
            ConnectionRefusedError(111, "Connection refused"),
            ConnectionResetError(),
            TimeoutError(),
            OSError(113, "No route to host"),
            exc.TimeoutError("QueuePool limit of size 1 overflow 0 reached"),
            asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
            asyncpg.exceptions.TooManyConnectionsError("too many clients"),
            asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
            asyncpg.InterfaceError("cannot perform operation: connection is closed"),
        ],
        ids=type,
    )
    def test_raw_connection_failures_are_unavailable(self, error: BaseException) -> None:
        """Failures raised past SQLAlchemy (refused, reset, timeouts, pool, asyncpg's own)
        are StoreUnavailable."""
        assert isinstance(translated(error), StoreUnavailable)

    def test_raw_permanent_driver_error_is_a_store_error(self) -> None:
        """A raw asyncpg error with a non-transient SQLSTATE is StoreError."""
        result = translated(asyncpg.exceptions.UniqueViolationError("duplicate key"))
        assert isinstance(result, StoreError)
        assert not isinstance(result, StoreUnavailable)

    @pytest.mark.parametrize(
        "error",
        [
            asyncio.CancelledError(),
            ValueError("unrelated"),
            KeyError("x"),
            TaskNotFound(uuid4()),
            PreconditionFailed(uuid4(), 3),
        ],
        ids=type,
    )
    def test_other_exceptions_pass_through_untouched(self, error: BaseException) -> None:
        """Cancellation, unrelated bugs and todo_core's own errors are not translated."""
        assert translated(error) is error
