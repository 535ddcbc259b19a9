"""Wake-ups for other processes' writes: a store's ``ChangeSignal`` hears of them too.

A store notifies its own signal after each write it commits; a write committed by
another process (another worker, another server) reaches it here, one of two ways:

* **LISTEN** on PostgreSQL, over a direct connection: the feed's trigger runs
  ``pg_notify('todo_feed', user_id)`` in every task write's transaction, and
  PostgreSQL delivers it when the transaction commits. One dedicated connection per
  store listens, outside the pool.
* **Polling the feed heads** everywhere else: behind PgBouncer in transaction mode
  (Neon's pooled URLs) a ``LISTEN`` lasts only as long as the transaction that ran it,
  and SQLite has no notifications at all. Every ``POLL_SECONDS`` one query reads the
  head of every user someone watches (``feed_heads``, which each write moves), and
  wakes those whose head moved. It costs one small indexed read per interval for the
  whole process, however many streams are open, and nothing while nobody watches.

Which one is decided when the first watcher appears (nothing is opened before): the
dedicated connection is opened and proves itself direct the way the pool's
connections do (``postgres.is_direct``); if it does not, the store polls from then on.
A lost connection is reopened with growing pauses, and every watcher is woken once it
listens again, since notifications sent meanwhile are lost: a wake-up too many costs a
read that finds nothing, a wake-up too few would leave a stream behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

import asyncpg
import orjson

from todo_core.engine import EngineOptions, connect_arguments
from todo_core.errors import StoreError
from todo_core.signal import ChangeSignal
from todo_core.sql.statement import Statement
from todo_core.urls import DatabaseURL

if TYPE_CHECKING:  # the store imports this module
    from todo_core.sql.store import Database

__all__ = ["CHANNEL", "POLL_SECONDS", "FeedWakeups", "feed_wakeups", "heads_statement"]

_log = logging.getLogger("todo_core.wakeups")

CHANNEL: Final = "todo_feed"  # what the feed's trigger notifies, with the user's id
POLL_SECONDS: Final = 0.25
# The feed's trigger notifies only while feed_listeners has a row (schema.py says why):
# a listener adds its own, clearing those of backends that are gone (a crashed worker's).
_ANNOUNCE: Final = (
    "DELETE FROM feed_listeners WHERE backend_pid NOT IN (SELECT pid FROM pg_stat_activity);"
    " INSERT INTO feed_listeners (backend_pid) VALUES (pg_backend_pid()) ON CONFLICT DO NOTHING"
)
_WITHDRAW: Final = "DELETE FROM feed_listeners WHERE backend_pid = pg_backend_pid()"
LATE_COMMIT_PAUSES: Final = (0.05, 0.2, 0.75)
# How often a quiet LISTEN connection proves it is alive: a connection cut without a
# word (a network partition) would otherwise look idle forever.
_HEALTH_CHECK_SECONDS: Final = 5.0
_FIRST_PAUSE: Final = 0.1
_LONGEST_PAUSE: Final = 2.0
_CONNECTION_ERRORS: Final = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)

HeadReader = Callable[[Sequence[str]], Awaitable[Mapping[str, int]]]
"""The feed heads of the users named (a user without changes may be left out)."""
Listener = Callable[[], Awaitable[asyncpg.Connection | None]]
"""A connection to LISTEN on, or None where LISTEN cannot work (poll instead)."""


def heads_statement(dialect: str) -> Statement:
    """``SELECT user_id, seq FROM feed_heads`` for a list of users bound as ``users``:
    one statement whatever their number (an array on PostgreSQL, JSON on SQLite)."""
    if dialect == "postgresql":
        sql = "SELECT user_id, seq FROM feed_heads WHERE user_id = ANY($1::varchar[])"
        binder = None
    else:
        sql = (
            "SELECT user_id, seq FROM feed_heads WHERE user_id IN (SELECT value FROM json_each(?))"
        )
        binder = _json_list
    return Statement(
        sql=sql,
        writes=False,
        _parameters=(("users", binder),),
        _defaults={},
        columns=("user_id", "seq"),
        decode=lambda row: {"user_id": row[0], "seq": row[1]},
    )


def _json_list(users: Sequence[str]) -> str:
    return orjson.dumps(list(users)).decode()


class FeedWakeups:
    """Notifies ``signal`` of the writes other processes commit, while it runs."""

    def __init__(
        self,
        signal: ChangeSignal,
        read_heads: HeadReader,
        *,
        listen: Listener | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._signal = signal
        self._read_heads = read_heads
        self._listen = listen
        self._poll_seconds = poll_seconds
        self._task: asyncio.Task[None] | None = None
        self.mode = "waiting"  # then "listening" or "polling": for logs and tests

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        pause = _FIRST_PAUSE
        while True:
            await self._signal.wait_for_watchers()
            if self._listen is not None:
                try:
                    connection = await self._listen()
                except _CONNECTION_ERRORS as error:
                    _log.warning(
                        "cannot listen for other processes' writes (%s): retrying in %g s",
                        type(error).__name__,
                        pause,
                    )
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, _LONGEST_PAUSE)
                    continue
                if connection is not None:
                    pause = _FIRST_PAUSE
                    await self._listening(connection)
                    continue
                _log.info("not a direct connection to PostgreSQL: polling the feed heads")
                self._listen = None
            await self._poll()

    async def _listening(self, connection: asyncpg.Connection) -> None:
        """LISTEN on ``connection`` until it is lost."""
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        try:
            await connection.add_listener(CHANNEL, self._heard)
            await connection.execute(_ANNOUNCE)
            self.mode = "listening"
            self._signal.notify_all()  # what was committed before this LISTEN took hold
            # A write whose trigger ran before the announcement, and so did not notify,
            # may commit just after it: wake everyone again while such writes finish.
            for pause in LATE_COMMIT_PAUSES:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        await lost.wait()
                self._signal.notify_all()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_HEALTH_CHECK_SECONDS):
                        await lost.wait()
                if not lost.is_set():
                    await connection.fetchval("SELECT 1", timeout=_HEALTH_CHECK_SECONDS)
        except _CONNECTION_ERRORS as error:
            _log.warning("lost the connection listening for writes: %s", type(error).__name__)
        finally:
            self.mode = "waiting"
            if not lost.is_set():  # else a later listener clears the row
                with contextlib.suppress(*_CONNECTION_ERRORS, TimeoutError):
                    await connection.execute(_WITHDRAW, timeout=_HEALTH_CHECK_SECONDS)
            connection.terminate()

    def _heard(self, _connection: Any, _pid: int, _channel: str, user_id: str) -> None:
        self._signal.notify(user_id)

    async def _poll(self) -> None:
        """Poll the heads of the watched users until nobody watches."""
        self.mode = "polling"
        known: dict[str, int] = {}
        while watched := self._signal.watched():
            try:
                heads = await self._read_heads(sorted(watched))
            except StoreError as error:
                # Once it answers again every watcher is woken: first sight of each.
                _log.warning("cannot poll the feed heads: %s", error)
                known.clear()
            else:
                for user_id in watched:
                    head = heads.get(user_id, 0)
                    # A user seen for the first time is woken too: its watcher may have
                    # read the feed just before a write this poll is the first to see.
                    if known.get(user_id) != head:
                        known[user_id] = head
                        self._signal.notify(user_id)
                for user_id in known.keys() - watched:
                    del known[user_id]
            await asyncio.sleep(self._poll_seconds)
        self.mode = "waiting"


async def _direct_connection(target: DatabaseURL, options: EngineOptions) -> Any:
    from todo_core.postgres import is_direct

    connection = await asyncpg.connect(**connect_arguments(target, options))
    try:
        if await is_direct(connection, options.statement_timeout):
            return connection
    except BaseException:
        connection.terminate()
        raise
    connection.terminate()
    return None


@asynccontextmanager
async def feed_wakeups(
    database: Database, target: DatabaseURL, options: EngineOptions, signal: ChangeSignal
) -> AsyncIterator[FeedWakeups | None]:
    """Run the wake-ups of a store on ``database`` while the block runs; none for a
    SQLite database in memory, which no other process can write."""
    if target.in_memory:
        yield None
        return
    statement = heads_statement(database.statements.dialect)

    async def read_heads(users: Sequence[str]) -> Mapping[str, int]:
        rows = await database.fetch(statement, {"users": users})
        return {str(user_id): int(seq) for user_id, seq in rows}

    async def listen() -> Any:
        return await _direct_connection(target, options)

    wakeups = FeedWakeups(
        signal, read_heads, listen=listen if target.backend == "postgresql" else None
    )
    wakeups.start()
    try:
        yield wakeups
    finally:
        await wakeups.close()
