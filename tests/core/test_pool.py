"""The connection pool's promises, on stand-in connections (no database needed)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from todo_core.pool import ConnectionPool


class FakeConnection:
    """What the pool asks of an asyncpg connection, and a record of what it did."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.closed = False
        self.in_transaction = False
        self.terminated = False

    def is_closed(self) -> bool:
        return self.closed or self.terminated

    def is_in_transaction(self) -> bool:
        return self.in_transaction

    def terminate(self) -> None:
        self.terminated = True

    async def close(self) -> None:
        self.closed = True


class Opener:
    """Makes numbered fake connections; ``fail`` makes the next openings raise."""

    def __init__(self) -> None:
        self.opened: list[FakeConnection] = []
        self.fail = False

    async def __call__(self) -> asyncpg.Connection:
        await asyncio.sleep(0)
        if self.fail:
            raise OSError("refused")
        connection = FakeConnection(len(self.opened))
        self.opened.append(connection)
        return cast(asyncpg.Connection, connection)


def make_pool(opener: Opener, **overrides: Any) -> ConnectionPool:
    options: dict[str, Any] = {"max_size": 2, "acquire_timeout": 0.3, "idle_lifetime": 60.0}
    return ConnectionPool(opener, **(options | overrides))


def fake(connection: asyncpg.Connection) -> FakeConnection:
    return cast(FakeConnection, connection)


async def test_reuses_an_idle_connection() -> None:
    """A released connection serves the next caller; no second one is opened."""
    opener = Opener()
    pool = make_pool(opener)
    first = await pool.acquire()
    pool.release(first)
    assert await pool.acquire() is first
    assert len(opener.opened) == 1


async def test_never_opens_more_than_max_size() -> None:
    """A caller beyond max_size waits, and gets the first connection given back."""
    opener = Opener()
    pool = make_pool(opener)
    held = [await pool.acquire(), await pool.acquire()]
    waiting = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    pool.release(held[0])
    assert await waiting is held[0]
    assert (pool.size, len(opener.opened)) == (2, 2)


async def test_waiters_are_served_first_come_first_served() -> None:
    """A released connection goes to the caller that has waited longest, even when a
    newcomer asks at that very moment: under steady load nobody starves."""
    pool = make_pool(Opener(), max_size=1, acquire_timeout=5)
    held = await pool.acquire()
    first = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    second = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    pool.release(held)
    newcomer = asyncio.create_task(pool.acquire())
    assert await first is held
    await asyncio.sleep(0.01)
    assert not second.done()
    assert not newcomer.done()
    pool.release(held)
    assert await second is held
    pool.release(held)
    assert await newcomer is held


async def test_waiting_is_bounded_by_the_acquire_timeout() -> None:
    """With the pool full and nothing released, acquire raises TimeoutError in time."""
    pool = make_pool(Opener(), max_size=1, acquire_timeout=0.2)
    held = await pool.acquire()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await pool.acquire()
    assert 0.15 < time.monotonic() - started < 1
    pool.release(held)
    assert await pool.acquire() is held


async def test_broken_and_stale_connections_are_not_reused() -> None:
    """Connections that failed, that the server closed, that are left in a
    transaction, or that idled past idle_lifetime are terminated, not handed out."""
    opener = Opener()
    pool = make_pool(opener, max_size=4, idle_lifetime=0.1)
    failed, closed, in_transaction, stale = [await pool.acquire() for _ in range(4)]
    pool.release(failed, reusable=False)
    fake(closed).closed = True
    pool.release(closed)
    fake(in_transaction).in_transaction = True
    pool.release(in_transaction)
    pool.release(stale)
    await asyncio.sleep(0.15)
    fresh = await pool.acquire()
    assert fresh not in (failed, closed, in_transaction, stale)
    assert fake(failed).terminated
    assert fake(in_transaction).terminated
    assert fake(stale).terminated
    assert pool.size == 1


async def test_failed_open_frees_its_room() -> None:
    """A connect that fails raises to its caller and leaves the room for the next one."""
    opener = Opener()
    pool = make_pool(opener, max_size=1)
    opener.fail = True
    with pytest.raises(OSError, match="refused"):
        await pool.acquire()
    opener.fail = False
    assert pool.size == 0
    await pool.acquire()


async def test_a_waiter_gets_the_room_of_a_discarded_connection() -> None:
    """When a held connection is dropped as broken, a waiting caller opens a new one
    instead of timing out."""
    opener = Opener()
    pool = make_pool(opener, max_size=1, acquire_timeout=1)
    held = await pool.acquire()
    waiting = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    pool.release(held, reusable=False)
    replacement = await asyncio.wait_for(waiting, 0.5)
    assert replacement is not held
    assert len(opener.opened) == 2


async def test_close_closes_idle_and_later_released_connections() -> None:
    """close() closes what is idle at once and what is in use when it comes back;
    acquiring afterwards fails."""
    opener = Opener()
    pool = make_pool(opener)
    idle, busy = await pool.acquire(), await pool.acquire()
    pool.release(idle)
    await pool.close()
    assert fake(idle).closed
    pool.release(busy)
    assert fake(busy).terminated
    assert pool.size == 0
    with pytest.raises(asyncpg.InterfaceError):
        await pool.acquire()


async def test_close_fails_waiting_callers() -> None:
    """Callers waiting for a connection when the pool closes get an error at once."""
    pool = make_pool(Opener(), max_size=1, acquire_timeout=5)
    held = await pool.acquire()
    waiting = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    await pool.close()
    with pytest.raises(asyncpg.InterfaceError):
        await asyncio.wait_for(waiting, 1)
    pool.release(held)
    assert pool.size == 0


@settings(max_examples=60, deadline=None)
@given(
    max_size=st.integers(1, 4),
    holds=st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=25),
)
def test_concurrent_callers_share_connections_safely(
    max_size: int, holds: list[tuple[int, bool]]
) -> None:
    """However many callers hold connections for however long, and whichever of them
    break theirs, no connection is ever held by two callers, the pool never exceeds
    max_size, and every caller is served (the timeout is long enough for all)."""

    async def scenario() -> None:
        opener = Opener()
        pool = make_pool(opener, max_size=max_size, acquire_timeout=10)
        in_use: set[int] = set()
        peak = 0

        async def caller(ticks: int, breaks: bool) -> None:
            nonlocal peak
            connection = await pool.acquire()
            number = fake(connection).number
            assert number not in in_use
            assert not connection.is_closed()
            in_use.add(number)
            peak = max(peak, pool.size)
            for _ in range(ticks):
                await asyncio.sleep(0)
            in_use.discard(number)
            pool.release(connection, reusable=not breaks)

        await asyncio.wait_for(asyncio.gather(*(caller(*hold) for hold in holds)), 5)
        assert peak <= max_size
        assert pool.size == pool.idle <= max_size

    asyncio.run(scenario())
