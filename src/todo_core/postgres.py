"""PostgreSQL for the SQL store: compiled statements run on pooled asyncpg connections.

One round trip per statement and nothing else: no pre-ping, no ``BEGIN``/``COMMIT``
(each statement is its own transaction), no reset query on release. A connection the
server closed is found by the statement that uses it; reads are then retried once on
another connection, writes are not (they may have been applied).

Each connection keeps what it learned when it first described a statement (parameter
and column types, their codecs). On a connection to PostgreSQL itself the statement is
*named*, so the server keeps its plan too. Behind a pooler it stays *unnamed*: asyncpg
sends ``Parse`` again with every ``Bind``/``Execute``/``Sync``, all in one message
batch, so nothing is left on the server for a pooler to lose or mix up (PgBouncer in
transaction mode, Neon's ``-pooler`` endpoint), yet the describing round trip asyncpg
makes for an unnamed statement is paid once per connection, not once per query.

Which one a connection is, it proves when it opens: PostgreSQL's first message names
the process serving the connection (``BackendKeyData``, the key for cancelling), and
on a direct connection that is the process ``pg_backend_pid()`` then reports. A
pooler must hand out cancel keys of its own, because the server process behind a
client changes; so behind any pooler that moves clients between server connections,
and behind PgBouncer in any mode, the two differ and the connection stays unnamed.
``prepared_statements`` True or False decides for every connection instead.

What a connection described is trusted until it closes, which is why migrations never
change a column's type in place (``todo_core.migrations``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import asyncpg

from todo_core.engine import EngineOptions, connect_arguments, translate_errors
from todo_core.errors import StoreError
from todo_core.pool import ConnectionPool
from todo_core.sql.statement import Statement
from todo_core.sql.statements import Statements
from todo_core.urls import DatabaseURL

__all__ = ["PostgresDatabase"]

_log = logging.getLogger("todo_core.postgres")


class _Connection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no types
    """An asyncpg connection with the statements it has described, by SQL text."""

    __slots__ = ("named", "statements")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statements: dict[str, asyncpg.prepared_stmt.PreparedStatement] = {}
        self.named = False  # whether its statements are named: set when it opens


# Raised when the connection, not the statement, failed: the server restarted or the
# network dropped it. Nothing ran, or for a read it does not matter that something did.
_CONNECTION_LOST: Final = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # out of step after the server's shutdown notice
    ConnectionError,
)

# The server does not have the named statement (26000), or has one of its name (42P05).
_NAME_CLASH: Final = (
    asyncpg.InvalidSQLStatementNameError,
    asyncpg.DuplicatePreparedStatementError,
)
# The server's own answer to the statement, or its refusal to wait: the connection is
# sound and what the server said stands.
_ANSWERED: Final = (asyncpg.PostgresError, TimeoutError)
# Far above the store's own statement shapes (a few dozen are ever used, sql/statements.py);
# only ad-hoc statements through ``fetch`` could reach it, and must not grow it forever.
STATEMENTS_PER_CONNECTION: Final = 512


class PostgresDatabase:
    """A connection pool and the statements compiled for it."""

    def __init__(self, pool: ConnectionPool, options: EngineOptions) -> None:
        self.statements = Statements("postgresql")
        self._pool = pool
        # Enforced by asyncpg, which on expiry asks the server to cancel the statement:
        # as binding as a server-side statement_timeout, without a SET round trip.
        self._statement_timeout = options.statement_timeout

    @classmethod
    async def open(cls, url: DatabaseURL, options: EngineOptions) -> PostgresDatabase:
        """A pool for ``url``; it connects on first use."""
        arguments = connect_arguments(url, options)

        async def connect() -> _Connection:
            connection: _Connection = await asyncpg.connect(
                **arguments, connection_class=_Connection
            )
            try:
                if options.prepared_statements is None:
                    connection.named = await is_direct(connection, options.statement_timeout)
                else:
                    connection.named = options.prepared_statements
            except BaseException:
                connection.terminate()
                raise
            return connection

        pool = ConnectionPool(
            connect,
            max_size=options.pool_size + options.max_overflow,
            acquire_timeout=options.pool_timeout,
            # Closed before Neon suspends an idle compute and cuts them (five minutes).
            idle_lifetime=options.pool_recycle,
        )
        return cls(pool, options)

    @property
    def pool(self) -> ConnectionPool:
        """The pool underneath (tests hold its connections to exhaust it)."""
        return self._pool

    async def fetch(self, statement: Statement, values: Mapping[str, Any]) -> list[Sequence[Any]]:
        """Every row ``statement`` returns for ``values``."""
        arguments = statement.arguments(values)
        with translate_errors():
            try:
                return await self._fetch(statement, arguments)
            except _CONNECTION_LOST:
                if statement.writes:
                    raise
                return await self._fetch(statement, arguments)

    async def transaction(
        self, statements: Sequence[Statement], values: Mapping[str, Any]
    ) -> list[Sequence[Any]]:
        """Run ``statements`` in one transaction; the rows of the last one that has
        result columns.

        Never retried: a lost connection may have lost the ``COMMIT``'s answer only.
        """
        with translate_errors():
            if len(statements) == 1:  # a statement is its own transaction already
                (statement,) = statements
                return await self._fetch(statement, statement.arguments(values))
            return await self._fetch_all(statements, values)

    async def _fetch(self, statement: Statement, arguments: list[Any]) -> list[Sequence[Any]]:
        return await self._on_connection(
            lambda connection: self._run(
                connection, statement.sql, arguments, writes=statement.writes
            )
        )

    async def _fetch_all(
        self, statements: Sequence[Statement], values: Mapping[str, Any]
    ) -> list[Sequence[Any]]:
        async def run(connection: _Connection) -> list[Sequence[Any]]:
            rows: list[Sequence[Any]] = []
            async with connection.transaction():
                for statement in statements:
                    returned = await self._run(
                        connection,
                        statement.sql,
                        statement.arguments(values),
                        writes=statement.writes,
                    )
                    if statement.columns:
                        rows = returned
            return rows

        return await self._on_connection(run)

    async def _run(
        self, connection: _Connection, sql: str, arguments: list[Any], *, writes: bool
    ) -> list[Sequence[Any]]:
        # One budget for describing, running and running again, as for a single call.
        deadline = time.monotonic() + self._statement_timeout
        try:
            return await self._execute(connection, sql, arguments, deadline)
        except _NAME_CLASH:
            # Named, yet the server connection does not have the statement, or has
            # another of its name: something between us moves this connection between
            # server connections after all. Nothing ran; from now on it names nothing.
            if not connection.named or connection.is_in_transaction():
                raise
            _log.warning(
                "a pooler moves this connection between server connections: "
                "its statements are unnamed from now on"
            )
            connection.named = False
            connection.statements.clear()
            return await self._execute(connection, sql, arguments, deadline)
        except asyncpg.InvalidCachedStatementError:
            # A schema change altered a named statement's result, and the server refused
            # it before running it: describe it afresh and run it again, unless the
            # error has aborted the transaction it was in.
            connection.statements.pop(sql, None)
            if connection.is_in_transaction():
                raise
            return await self._execute(connection, sql, arguments, deadline)
        except (*_ANSWERED, *_CONNECTION_LOST):
            raise
        except Exception as error:
            # The server ran it, but its rows did not decode as described (BufferError,
            # AssertionError, UnicodeDecodeError, ... from asyncpg's decoders): a
            # migration changed a column's type under this connection. Describe it
            # afresh; run it again only if it is a read outside a transaction.
            connection.statements.pop(sql, None)
            if writes or connection.is_in_transaction():
                raise StoreError(
                    "the database's answer did not match the statement's description "
                    "(a column's type changed?)"
                ) from error
            return await self._execute(connection, sql, arguments, deadline)

    async def _execute(
        self, connection: _Connection, sql: str, arguments: list[Any], deadline: float
    ) -> list[Sequence[Any]]:
        statement = connection.statements.get(sql)
        if statement is None:
            statement = await connection.prepare(
                sql, name=connection.named, timeout=_remaining(deadline)
            )
            if len(connection.statements) >= STATEMENTS_PER_CONNECTION:
                del connection.statements[next(iter(connection.statements))]  # the oldest
            connection.statements[sql] = statement
        rows: list[Sequence[Any]] = await statement.fetch(*arguments, timeout=_remaining(deadline))
        return rows

    async def _on_connection(
        self, work: Callable[[_Connection], Awaitable[list[Sequence[Any]]]]
    ) -> list[Sequence[Any]]:
        connection = await self._pool.acquire()
        try:
            rows = await work(connection)
        except _ANSWERED:
            self._pool.release(connection)  # the server answered: the connection is sound
            raise
        except BaseException:
            # Lost, or cancelled by our caller mid-protocol: its state is unknown.
            self._pool.release(connection, reusable=False)
            raise
        self._pool.release(connection)
        return rows

    async def close(self) -> None:
        await self._pool.close()


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    return remaining


async def is_direct(connection: _Connection, within: float) -> bool:
    """Whether ``connection`` reaches PostgreSQL itself, not a pooler (see the top)."""
    try:
        backend = await connection.fetchval("SELECT pg_backend_pid()", timeout=within)
    except asyncpg.PostgresError:  # a server that is PostgreSQL-like only: play safe
        return False
    return bool(backend == connection.get_server_pid())
