"""``todo_core.sql.wakeups``: other processes' writes wake a store's watchers.

The polling half is driven here by a fake head reader (what it reads is the
``feed_heads`` table: the store tests cover the real one); the LISTEN half runs against
the PostgreSQL test server, directly and through PgBouncer, where it must fall back to
polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

import asyncpg
import pytest

from tests.backends import pgbouncer_url, postgres_url
from tests.values import ALICE, BOB
from todo_core import TaskCreate, open_store
from todo_core.engine import EngineOptions
from todo_core.errors import StoreUnavailable
from todo_core.signal import ChangeSignal
from todo_core.sql.wakeups import CHANNEL, LATE_COMMIT_PAUSES, FeedWakeups, _direct_connection
from todo_core.urls import parse_database_url

POLL = 0.01
WAKE_SECONDS = 2.0


class Heads:
    """A fake ``feed_heads``: what each read returned, and failures on demand."""

    def __init__(self) -> None:
        self.heads: dict[str, int] = {}
        self.reads: list[tuple[str, ...]] = []
        self.failing = False

    async def __call__(self, users: Sequence[str]) -> Mapping[str, int]:
        self.reads.append(tuple(users))
        if self.failing:
            raise StoreUnavailable("away")
        return {user: self.heads[user] for user in users if user in self.heads}


async def woken(event: asyncio.Event, within: float = WAKE_SECONDS) -> bool:
    try:
        async with asyncio.timeout(within):
            await event.wait()
    except TimeoutError:
        return False
    event.clear()
    return True


async def polling(heads: Heads) -> tuple[ChangeSignal, FeedWakeups]:
    signal = ChangeSignal()
    wakeups = FeedWakeups(signal, heads, poll_seconds=POLL)
    wakeups.start()
    return signal, wakeups


async def test_nothing_is_read_while_nobody_watches() -> None:
    heads = Heads()
    signal, wakeups = await polling(heads)
    try:
        await asyncio.sleep(POLL * 10)
        assert heads.reads == []
        with signal.watch(ALICE):
            await asyncio.sleep(POLL * 5)
        assert heads.reads
        assert all(read == (ALICE,) for read in heads.reads)
        count = len(heads.reads)
        await asyncio.sleep(POLL * 10)
        assert len(heads.reads) <= count + 1  # at most the poll already under way
    finally:
        await wakeups.close()


async def test_a_head_that_moves_wakes_its_watchers_only() -> None:
    heads = Heads()
    signal, wakeups = await polling(heads)
    try:
        with signal.watch(ALICE) as alice, signal.watch(BOB) as bob:
            assert await woken(alice)  # first sight: the watcher reads once more
            assert await woken(bob)
            assert not await woken(alice, POLL * 10)
            heads.heads[ALICE] = 3
            assert await woken(alice)
            assert not await woken(bob, POLL * 10)
            assert wakeups.mode == "polling"
    finally:
        await wakeups.close()


async def test_after_a_failed_poll_every_watcher_is_woken() -> None:
    heads = Heads()
    signal, wakeups = await polling(heads)
    try:
        with signal.watch(ALICE) as alice:
            assert await woken(alice)
            heads.failing = True
            await asyncio.sleep(POLL * 5)
            heads.failing = False
            assert await woken(alice)
    finally:
        await wakeups.close()


async def test_closing_stops_the_polls() -> None:
    heads = Heads()
    signal, wakeups = await polling(heads)
    with signal.watch(ALICE):
        await asyncio.sleep(POLL * 5)
        await wakeups.close()
        count = len(heads.reads)
        await asyncio.sleep(POLL * 10)
        assert len(heads.reads) == count


def _options() -> EngineOptions:
    return EngineOptions()


async def _listening(url: str) -> tuple[ChangeSignal, FeedWakeups]:
    async with open_store(url, create_schema=True):  # the listener registers in its table
        pass
    target = parse_database_url(url)
    signal = ChangeSignal()

    async def listen() -> asyncpg.Connection | None:
        connection: asyncpg.Connection | None = await _direct_connection(target, _options())
        return connection

    wakeups = FeedWakeups(signal, Heads(), listen=listen, poll_seconds=POLL)
    wakeups.start()
    return signal, wakeups


async def _notify(url: str, user_id: str) -> None:
    connection = await asyncpg.connect(parse_database_url(url).dsn)
    try:
        await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, user_id)
    finally:
        await connection.close()


@pytest.mark.postgres
async def test_on_a_direct_connection_a_notification_wakes_its_user() -> None:
    url = postgres_url()
    signal, wakeups = await _listening(url)
    try:
        with signal.watch(ALICE) as alice, signal.watch(BOB) as bob:
            assert await woken(alice)  # once listening, everyone is woken
            assert wakeups.mode == "listening"
            # ... and again while writes that raced the listener's start commit
            await asyncio.sleep(sum(LATE_COMMIT_PAUSES) + 0.1)
            alice.clear()
            bob.clear()
            await _notify(url, ALICE)
            assert await woken(alice)
            assert not await woken(bob, 0.2)
    finally:
        await wakeups.close()


@pytest.mark.postgres
async def test_a_lost_listening_connection_is_reopened_and_wakes_everyone() -> None:
    url = postgres_url()
    signal, wakeups = await _listening(url)
    try:
        with signal.watch(ALICE) as alice:
            assert await woken(alice)
            connection = await asyncpg.connect(parse_database_url(url).dsn)
            try:
                await connection.execute(
                    "SELECT pg_terminate_backend(backend_pid) FROM feed_listeners"
                )
            finally:
                await connection.close()
            assert await woken(alice, 10)  # reopened: everyone reads once more
            for _ in range(100):
                if wakeups.mode == "listening":
                    break
                await asyncio.sleep(0.05)
            await _notify(url, ALICE)
            assert await woken(alice)
    finally:
        await wakeups.close()


@pytest.mark.postgres
async def test_behind_pgbouncer_it_polls_instead() -> None:
    signal, wakeups = await _listening(pgbouncer_url())
    try:
        with signal.watch(ALICE) as alice:
            assert await woken(alice)
            assert wakeups.mode == "polling"
    finally:
        await wakeups.close()


async def _heard(connection: asyncpg.Connection, write: Awaitable[object]) -> list[str]:
    """What ``connection``, LISTENing on its own without registering, hears of ``write``."""
    heard: list[str] = []

    def hear(*arguments: Any) -> None:
        heard.append(arguments[-1])

    await connection.add_listener(CHANNEL, hear)
    try:
        await write
        await asyncio.sleep(0.3)
    finally:
        await connection.remove_listener(CHANNEL, hear)
    return heard


@pytest.mark.postgres
async def test_writes_notify_only_while_a_process_listens() -> None:
    """Each commit that notifies takes a cluster-wide lock: with no listener, none does."""
    url = postgres_url()
    async with open_store(url, create_schema=True) as store:
        spy = await asyncpg.connect(parse_database_url(url).dsn)
        try:
            await spy.execute("DELETE FROM feed_listeners")  # no live events anywhere
            assert await _heard(spy, store.create(ALICE, TaskCreate(title="unheard"))) == []
            signal, wakeups = await _listening(url)
            try:
                with signal.watch(ALICE) as alice:
                    assert await woken(alice)
                    assert wakeups.mode == "listening"
                    write = store.create(ALICE, TaskCreate(title="heard"))
                    assert await _heard(spy, write) == [ALICE]
            finally:
                await wakeups.close()
            assert await spy.fetchval("SELECT count(*) FROM feed_listeners") == 0
        finally:
            await spy.close()
