"""SQLite for the SQL store: compiled statements on two aiosqlite connections.

Writes go through one connection per process, so they queue in order instead of
contending for the file lock and sleeping in SQLite's busy handler; the busy timeout
then only bounds waits on *other* processes. Reads go through a second connection,
which WAL lets run beside the writer, so a read never waits for a write's fsync. More
reader connections were measured to cost CPU (each is a thread contending for the
GIL) without serving more requests. Every statement commits on its own (autocommit),
except the few that ``transaction`` runs together.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import aiosqlite

from todo_core.engine import EngineOptions, translate_errors
from todo_core.statements import Statement, Statements
from todo_core.urls import DatabaseURL

__all__ = ["SqliteDatabase"]


class SqliteDatabase:
    """A writer connection, a reader connection, and statements compiled for them."""

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self.statements = Statements("sqlite")
        self._writer = writer
        self._reader = reader
        # Held by every use of the writer: a statement sent between another caller's
        # BEGIN and COMMIT would join that transaction, and vanish with its rollback.
        self._writing = asyncio.Lock()

    @classmethod
    async def open(cls, url: DatabaseURL, options: EngineOptions) -> SqliteDatabase:
        """Connections to the database file (or shared memory) ``url`` names."""
        opened: list[aiosqlite.Connection] = []
        try:
            with translate_errors():
                # A shared-cache memory database has table locks, not WAL: one connection.
                for _ in range(1 if url.in_memory else 2):
                    opened.append(await _connect(url, options))
        except BaseException:
            for connection in opened:
                await connection.close()
            raise
        return cls(opened[0], opened[-1])

    @property
    def writer(self) -> aiosqlite.Connection:
        """The connection every write goes through (tests read its pragmas)."""
        return self._writer

    async def fetch(self, statement: Statement, values: Mapping[str, Any]) -> list[Sequence[Any]]:
        """Every row ``statement`` returns for ``values``."""
        if not statement.writes:
            return await _fetch(self._reader, statement, values)
        async with self._writing:
            await self._end_stray_transaction()
            return await _fetch(self._writer, statement, values)

    async def transaction(
        self, statements: Sequence[Statement], values: Mapping[str, Any]
    ) -> list[Sequence[Any]]:
        """Run ``statements`` in one transaction; the rows the last one returns."""
        # Shielded: a caller cancelled between BEGIN and COMMIT (a client gone, a
        # shutdown) would otherwise leave the writer inside the transaction, and every
        # later autocommit write in it, acknowledged but never committed. The
        # transaction ends, committed or rolled back, whoever stops waiting for it.
        return await asyncio.shield(self._transaction(statements, values))

    async def _transaction(
        self, statements: Sequence[Statement], values: Mapping[str, Any]
    ) -> list[Sequence[Any]]:
        async with self._writing:
            await self._end_stray_transaction()
            with translate_errors():
                # IMMEDIATE takes the file's write lock now, so that another process
                # cannot write between this transaction's reads and its writes.
                await self._writer.execute("BEGIN IMMEDIATE")
            try:
                rows: list[Sequence[Any]] = []
                for statement in statements:
                    rows = await _fetch(self._writer, statement, values)
                with translate_errors():
                    await self._writer.execute("COMMIT")
            except BaseException:
                # The error that got us here is the one to raise; a ROLLBACK that fails
                # too leaves the transaction to the next write's _end_stray_transaction.
                with contextlib.suppress(sqlite3.Error):
                    await self._writer.execute("ROLLBACK")
                raise
        return rows

    async def _end_stray_transaction(self) -> None:
        """Roll back a transaction that a failed ROLLBACK left open, before a write.

        It holds only the failed transaction's own statements: nothing acknowledged,
        since every write checks this first. A write let into it instead would be
        acknowledged and never committed.
        """
        if self._writer.in_transaction:
            with translate_errors():
                await self._writer.execute("ROLLBACK")

    async def close(self) -> None:
        await self._writer.close()
        if self._reader is not self._writer:
            await self._reader.close()


async def _fetch(
    connection: aiosqlite.Connection, statement: Statement, values: Mapping[str, Any]
) -> list[Sequence[Any]]:
    with translate_errors():
        rows = await connection.execute_fetchall(statement.sql, statement.arguments(values))
    return rows  # type: ignore[return-value]  # noqa: RET504 # a list of sqlite3 rows


async def _connect(url: DatabaseURL, options: EngineOptions) -> aiosqlite.Connection:
    pending = aiosqlite.connect(
        url.path,
        uri=url.uri,
        isolation_level=None,  # autocommit: each statement is its own transaction
        timeout=options.statement_timeout,  # the busy timeout: lock waits are bounded
    )
    # aiosqlite's worker thread is not a daemon: a process that ends without closing
    # the store (a worker whose supervisor was killed) would hang at exit waiting for
    # it. SQLAlchemy's aiosqlite dialect sets the same flag on the same private thread.
    thread = getattr(pending, "_thread", None)
    if thread is not None:
        thread.daemon = True
    connection = await pending
    # WAL lets readers run beside the writer; FULL fsyncs every commit, so an
    # acknowledged write survives even a power cut, not only a killed process.
    await connection.execute("PRAGMA synchronous=FULL")
    await enable_wal(connection)
    return connection


async def enable_wal(connection: aiosqlite.Connection) -> None:
    """Put the database file in WAL mode (it stays so), unless it already is.

    Switching takes the file's exclusive lock, which workers starting together would
    fight over ("database is locked"); migrations switch it first, and a connection
    that finds it switched leaves it alone.
    """
    ((mode,),) = await connection.execute_fetchall("PRAGMA journal_mode")
    if mode not in ("wal", "memory"):
        await connection.execute_fetchall("PRAGMA journal_mode=WAL")  # stepped to the end
