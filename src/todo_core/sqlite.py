"""SQLite for the SQL store: reads on the event loop, writes committed in groups.

Where the time goes decides the shape (docs/performance.md measures each step):

* **Reads by key or index range** (a task, a page) run on the event loop, on their own
  connection. They take tens of microseconds from the page cache, less than a trip to a
  thread and back costs, and a thread would contend for the GIL at every row. WAL lets
  them run beside a write; their busy handler is off, so a rare lock (WAL recovery) is
  waited out with ``asyncio.sleep``, never by blocking the loop.
* **Searches** (``q``, which can scan a user's whole set) run on a thread of their own.
* **Writes** go through one connection on one thread, so they queue in order instead
  of contending for the file lock. Writes that queue up while one group is committing
  are committed together as the next group: one transaction, one fsync
  (``synchronous=FULL``). One write's failure is its own: a failed statement undoes
  itself, and a write of several statements runs in a savepoint. A write is
  acknowledged only after its group's COMMIT returns: group commit saves fsyncs, never
  durability.

A shared-cache memory database has table locks instead of WAL: there every statement
goes through the writer's connection and thread.

A file deleted or replaced under a running store (by an operator, a clean-up job, a
restore) would go on taking writes into a file that no one can open again: they would
be acknowledged, then lost on the next start. So the store remembers which file it
opened and checks before every statement, and again before it acknowledges a group,
that the path still names it: if not, ``StoreUnavailable``, and nothing is
acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from todo_core.engine import EngineOptions, sqlite_code, translate_errors
from todo_core.errors import StoreUnavailable
from todo_core.sql.statement import Statement
from todo_core.sql.statements import Statements
from todo_core.urls import DatabaseURL

__all__ = ["SqliteDatabase"]

_log = logging.getLogger("todo_core.sqlite")
_T = TypeVar("_T")
Rows = list[Sequence[Any]]
# Statements run together; the rows of the last one with result columns count.
Job = Sequence[tuple[str, Sequence[Any]]]
Outcome = Rows | Exception

# A group holds the write lock for its statements and one fsync; beyond this many, the
# last writer of a group would wait longer than it saves.
MAX_GROUP = 128
_SQLITE_BUSY = 5
# BUSY, NOMEM, INTERRUPT, IOERR, FULL: https://www.sqlite.org/lang_transaction.html
_TRANSACTION_ENDING_CODES = frozenset({5, 7, 9, 10, 13})
_FIRST_BUSY_PAUSE = 0.001
_LONGEST_BUSY_PAUSE = 0.05


class _Worker:
    """One connection, used only on one thread of its own."""

    def __init__(self, pool: ThreadPoolExecutor, connection: sqlite3.Connection) -> None:
        self._pool = pool
        self._connection = connection

    @classmethod
    async def open(cls, name: str, url: DatabaseURL, busy_timeout: float) -> _Worker:
        pool = ThreadPoolExecutor(1, thread_name_prefix=f"todo-sqlite-{name}")
        try:
            loop = asyncio.get_running_loop()
            connection = await loop.run_in_executor(pool, _connect, url, busy_timeout)
        except BaseException:
            pool.shutdown(wait=False)
            raise
        return cls(pool, connection)

    async def call(self, function: Callable[..., _T], *arguments: Any) -> _T:
        """``function(connection, *arguments)`` on this worker's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, function, self._connection, *arguments)

    async def close(self) -> None:
        try:
            await self.call(sqlite3.Connection.close)
        finally:
            self._pool.shutdown(wait=False)


class _DatabaseFile:
    """The file a store opened, to notice when its path no longer names it."""

    def __init__(self, url: DatabaseURL) -> None:
        self._path = _file_path(url)
        self._identity = self._current()

    def _current(self) -> tuple[int, int] | None:
        if self._path is None:
            return None
        try:
            found = os.stat(self._path)
        except OSError:
            return None
        return found.st_dev, found.st_ino

    def check(self) -> None:
        """Raise ``StoreUnavailable`` if the file was deleted or replaced since opening."""
        if self._path is not None and self._current() != self._identity:
            raise StoreUnavailable(
                f"the database file {self._path} was deleted or replaced while in use"
            )


def _file_path(url: DatabaseURL) -> str | None:
    """The file behind ``url``; None for a database in memory."""
    if url.in_memory:
        return None
    if not url.uri:
        return url.path
    parts = urlsplit(url.path)
    if dict(parse_qsl(parts.query)).get("mode") == "memory":
        return None
    return unquote(parts.path)


class SqliteDatabase:
    """A writer (committing in groups), a reader on the loop, a searcher on a thread."""

    def __init__(
        self,
        writer: _Worker,
        reader: sqlite3.Connection | None,
        searcher: _Worker,
        options: EngineOptions,
        file: _DatabaseFile,
    ) -> None:
        self.statements = Statements("sqlite")
        self._file = file
        self._writer = writer
        self._reader = reader
        self._searcher = searcher
        self._lock_wait = options.statement_timeout
        self._queue: list[tuple[Job, asyncio.Future[Outcome]]] = []
        self._committing: asyncio.Task[None] | None = None
        self._closing: asyncio.Future[None] | None = None

    @classmethod
    async def open(cls, url: DatabaseURL, options: EngineOptions) -> SqliteDatabase:
        """Connections to the database file (or shared memory) ``url`` names."""
        workers: list[_Worker] = []
        reader = None
        try:
            with translate_errors():
                workers.append(
                    writer := await _Worker.open("writer", url, options.statement_timeout)
                )
                await writer.call(_prepare_writer)  # the file exists from here on
                file = _DatabaseFile(url)
                if url.in_memory:
                    searcher = writer
                else:
                    workers.append(
                        searcher := await _Worker.open("searcher", url, options.statement_timeout)
                    )
                    # No busy handler: it would sleep on the event loop (see the docstring).
                    reader = await asyncio.to_thread(_connect, url, 0)
        except BaseException:
            if reader is not None:
                reader.close()
            for worker in workers:
                await worker.close()
            raise
        return cls(writer, reader, searcher, options, file)

    async def fetch(self, statement: Statement, values: Mapping[str, Any]) -> Rows:
        """Every row ``statement`` returns for ``values``."""
        self._check_open()
        arguments = statement.arguments(values)
        if statement.writes:
            return await self._commit(((statement.sql, arguments),))
        if self._reader is None or statement.scans:
            with translate_errors():
                return await self._searcher.call(_fetch, statement.sql, arguments)
        return await self._read(statement.sql, arguments)

    async def transaction(self, statements: Sequence[Statement], values: Mapping[str, Any]) -> Rows:
        """Run ``statements`` in one transaction; the rows of the last one that has
        result columns."""
        self._check_open()
        return await self._commit(tuple((s.sql, s.arguments(values)) for s in statements))

    async def on_writer(self, function: Callable[[sqlite3.Connection], _T]) -> _T:
        """``function(connection)`` on the writer's thread, between groups (tests)."""
        with translate_errors():
            return await self._writer.call(function)

    def _check_open(self) -> None:
        if self._closing is not None:
            raise StoreUnavailable("the store is closed")
        self._file.check()

    async def _read(self, sql: str, arguments: Sequence[Any]) -> Rows:
        assert self._reader is not None
        deadline = time.monotonic() + self._lock_wait
        pause = _FIRST_BUSY_PAUSE
        while True:
            try:
                with translate_errors():
                    return _fetch(self._reader, sql, arguments)
            except Exception as error:
                if not _busy(error.__cause__) or time.monotonic() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            self._check_open()
            pause = min(pause * 2, _LONGEST_BUSY_PAUSE)

    async def _commit(self, job: Job) -> Rows:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append((job, future))
        if self._committing is None:
            self._committing = asyncio.create_task(self._commit_groups())
        # Once queued, a write runs whether or not its caller still waits for it (a
        # client gone, a shutdown): cancelling the wait cancels only the future.
        outcome = await future
        if isinstance(outcome, Exception):
            with translate_errors():
                # One error object may be the outcome of a whole group: each raise
                # starts its own traceback rather than growing the shared one.
                raise outcome.with_traceback(None)
        return outcome

    async def _commit_groups(self) -> None:
        group: list[tuple[Job, asyncio.Future[Outcome]]] = []
        try:
            while self._queue:
                group = self._queue[:MAX_GROUP]
                del self._queue[:MAX_GROUP]
                jobs = [job for job, _ in group]
                try:
                    outcomes = await self._writer.call(_run_group, jobs)
                except Exception:  # the thread is gone: told to its callers below
                    _log.exception("the SQLite writer stopped")
                    return
                try:
                    self._file.check()  # committed to a file that still counts?
                except StoreUnavailable as gone:
                    outcomes = [gone] * len(group)
                for (_, future), outcome in zip(group, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
        finally:
            # Stopped early (cancelled, or the writer's thread gone): nobody may be left
            # waiting. The group in flight may yet commit; its callers cannot be told.
            for _, future in [*group, *self._queue]:
                if not future.done():
                    future.set_result(StoreUnavailable("the store's writer stopped"))
            self._queue.clear()
            self._committing = None

    async def close(self) -> None:
        """Wait for the queued writes, then close the connections.

        Shielded: a caller that stops waiting does not stop the closing, nor the writes
        queued before it. Once called, the store refuses new work; calling again waits
        for the same closing.
        """
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        if self._committing is not None:
            await self._committing
        if self._reader is not None:
            self._reader.close()
        await self._writer.close()
        if self._searcher is not self._writer:
            await self._searcher.close()


def _busy(error: BaseException | None) -> bool:
    return sqlite_code(error) == _SQLITE_BUSY


def _fetch(connection: sqlite3.Connection, sql: str, arguments: Sequence[Any]) -> Rows:
    return connection.execute(sql, arguments).fetchall()


def _run_group(connection: sqlite3.Connection, jobs: Sequence[Job]) -> list[Outcome]:
    """Commit ``jobs`` in one transaction: what each one returned, or its error.

    Runs on the writer's thread. A job that fails leaves no trace and the others go
    on. An error that may have ended the transaction itself (disk full, I/O, lock
    wait) fails every job before it too, none of them acknowledged, and the jobs after
    it run as a group of their own.
    """
    if not jobs:
        return []
    try:
        return _run_jobs(connection, jobs)
    except Exception as error:  # a bug of ours or sqlite3's: nothing of the group counts
        with contextlib.suppress(sqlite3.Error):
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        return [error] * len(jobs)


def _run_jobs(connection: sqlite3.Connection, jobs: Sequence[Job]) -> list[Outcome]:
    try:
        if connection.in_transaction:  # a ROLLBACK failed last time: nothing of it counts
            connection.execute("ROLLBACK")
        if len(jobs) == 1 and len(jobs[0]) == 1:
            # One statement is a transaction of its own (autocommit).
            return [_run_job(connection, jobs[0])]
        # IMMEDIATE takes the file's write lock now (waiting at most the busy timeout),
        # so that another process cannot write between a job's reads and its writes.
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as error:
        return [error] * len(jobs)
    outcomes: list[Outcome] = []
    for index, job in enumerate(jobs):
        outcome = _run_job(connection, job)
        if _may_have_ended_transaction(outcome) or not connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            return [outcome] * (index + 1) + _run_group(connection, jobs[index + 1 :])
        outcomes.append(outcome)
    try:
        connection.execute("COMMIT")
    except sqlite3.Error as error:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")
        return [error] * len(jobs)
    return outcomes


def _run_job(connection: sqlite3.Connection, job: Job) -> Outcome:
    # A failed statement undoes itself (SQLite's ABORT), leaving the transaction open;
    # a job of several statements needs a savepoint to undo the ones before it too.
    several = len(job) > 1
    try:
        if several:
            connection.execute("SAVEPOINT job")
        rows: Rows = []
        for sql, arguments in job:
            cursor = connection.execute(sql, arguments)
            returned = cursor.fetchall()
            if cursor.description is not None:  # it has result columns
                rows = returned
        if several:
            connection.execute("RELEASE job")
    except Exception as error:
        if several:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK TO job")
                connection.execute("RELEASE job")
        return error
    return rows


def _may_have_ended_transaction(outcome: Outcome) -> bool:
    """After these errors SQLite may have rolled back the whole transaction, or not:
    its documentation asks for a ROLLBACK either way. (sqlite3 raises MemoryError for
    SQLITE_NOMEM.)"""
    return isinstance(outcome, MemoryError) or sqlite_code(outcome) in _TRANSACTION_ENDING_CODES


def _connect(url: DatabaseURL, busy_timeout: float) -> sqlite3.Connection:
    return sqlite3.connect(
        url.path,
        uri=url.uri,
        isolation_level=None,  # autocommit: transactions are begun explicitly
        timeout=busy_timeout,  # the busy timeout: lock waits are bounded
        check_same_thread=False,  # opened on a worker thread, used where documented above
        cached_statements=512,  # every statement shape the store compiles, parsed once
    )


def _prepare_writer(connection: sqlite3.Connection) -> None:
    # WAL lets readers run beside the writer; FULL fsyncs every commit, so an
    # acknowledged write survives even a power cut, not only a killed process.
    connection.execute("PRAGMA synchronous=FULL")
    enable_wal(connection)


def enable_wal(connection: sqlite3.Connection) -> None:
    """Put the database file in WAL mode (it stays so), unless it already is.

    Switching takes the file's exclusive lock, which workers starting together would
    fight over ("database is locked"); migrations switch it first, and a connection
    that finds it switched leaves it alone.
    """
    ((mode,),) = connection.execute("PRAGMA journal_mode").fetchall()
    if mode not in ("wal", "memory"):
        connection.execute("PRAGMA journal_mode=WAL").fetchall()
