"""The connection pool under faults, in process (the command has no option for the
timeouts): ``create_app(store)`` served by an ``AppRunner`` on a free port, the store on
the private cluster, requests held up by a row lock another connection keeps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg
import pytest
from aiohttp import web

from tests.faults.conftest import Figure
from tests.faults.fault_client import FaultClient, assert_unavailable, statuses
from tests.http.server_process import free_port
from todo_core import open_store
from todo_core.pool import ConnectionPool
from todo_core.postgres import PostgresDatabase
from todo_core.sql import SqlTaskStore
from todo_http import create_app

pytestmark = pytest.mark.postgres


@asynccontextmanager
async def served(
    url: str, *, handler_cancellation: bool = False, **options: object
) -> AsyncIterator[tuple[FaultClient, ConnectionPool]]:
    """The app over a store of ``url`` with ``options``, a client, and the store's pool."""
    async with open_store(url, create_schema=True, **options) as store:  # type: ignore[arg-type]
        assert isinstance(store, SqlTaskStore)
        assert isinstance(store.database, PostgresDatabase)
        runner = web.AppRunner(create_app(store), handler_cancellation=handler_cancellation)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with FaultClient(f"http://127.0.0.1:{port}") as client:
                yield client, store.database.pool
        finally:
            await runner.cleanup()


class RowLock:
    """A transaction on its own connection holding ``FOR UPDATE`` on one task's row,
    and a second connection to watch the server's sessions (a transaction would see
    one snapshot of ``pg_stat_activity`` only)."""

    def __init__(self, connection: asyncpg.Connection, monitor: asyncpg.Connection) -> None:
        self.connection = connection
        self.monitor = monitor

    @classmethod
    @asynccontextmanager
    async def on(cls, url: str, task_id: str) -> AsyncIterator[RowLock]:
        connection = await asyncpg.connect(url)
        monitor = await asyncpg.connect(url)
        try:
            await connection.execute("BEGIN")
            await connection.execute("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", UUID(task_id))
            yield cls(connection, monitor)
        finally:
            await connection.close()  # ends the transaction if release() did not
            await monitor.close()

    async def release(self) -> None:
        await self.connection.execute("ROLLBACK")

    async def waiting(self, count: int, within: float = 5) -> None:
        """Return once ``count`` other sessions wait for a lock."""
        deadline = time.monotonic() + within
        while True:
            waiting = await self.monitor.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if waiting >= count:
                return
            assert time.monotonic() < deadline, f"{waiting} sessions wait, not {count}"
            await asyncio.sleep(0.02)

    async def app_sessions(self) -> list[asyncpg.Record]:
        """The store's sessions on the server (application_name 'todo')."""
        return list(
            await self.monitor.fetch(
                "SELECT pid, state FROM pg_stat_activity"
                " WHERE application_name = 'todo' AND datname = current_database()"
            )
        )


async def create(client: FaultClient, title: str) -> str:
    outcome = await client.send("POST", "/api/dave/tasks", {"title": title})
    assert outcome.status == 201, outcome
    task_id: str = outcome.json()["data"]["id"]
    return task_id


async def server_pid(pool: ConnectionPool) -> int:
    connection = await pool.acquire()
    try:
        pid: int = connection.get_server_pid()
    finally:
        pool.release(connection)
    return pid


async def settled(pool: ConnectionPool, within: float = 5) -> float:
    """Wait until every connection of the pool is idle; the seconds it took."""
    started = time.monotonic()
    while pool.size != pool.idle:
        assert time.monotonic() - started < within, (pool.size, pool.idle)
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_exhausted_pool_is_503_within_the_pool_timeout(
    postgres_database: str, figure: Figure
) -> None:
    """Both connections of a pool held by requests waiting for a row lock: another
    request is 503 after pool_timeout, and the holders complete once the lock goes."""
    pool_timeout = 0.5
    async with served(
        postgres_database, pool_size=2, max_overflow=0, pool_timeout=pool_timeout
    ) as (client, pool):
        locked, other = await create(client, "locked"), await create(client, "other")
        async with RowLock.on(postgres_database, locked) as lock:
            holders = [
                asyncio.create_task(
                    client.send("PATCH", f"/api/dave/tasks/{locked}", {"completed": True})
                )
                for _ in range(2)
            ]
            await lock.waiting(2)
            assert (pool.size, pool.idle) == (2, 0)
            extra = await client.send("GET", f"/api/dave/tasks/{other}")
            readyz = await client.send("GET", "/readyz")
            healthz = await client.send("GET", "/healthz")
            await lock.release()
            held = await asyncio.gather(*holders)
        assert_unavailable(extra)
        assert pool_timeout * 0.9 <= extra.elapsed < pool_timeout + 1.0
        assert_unavailable(readyz)
        assert healthz.status == 200
        assert [outcome.status for outcome in held] == [200, 200], held
        after = await client.send("GET", f"/api/dave/tasks/{other}")
        assert after.status == 200, after
        assert pool.size <= 2
        await settled(pool)

    figure("pool", "pool_size=2, max_overflow=0, pool_timeout=0.5 s")
    figure("extra request: 503 after (s)", round(extra.elapsed, 3))
    figure("/readyz with the pool exhausted", f"{readyz.status} after {readyz.elapsed:.3f} s")
    figure(
        "holders once the lock was released",
        f"{[o.status for o in held]}, slowest {max(o.elapsed for o in held):.3f} s",
    )


async def test_statement_timeout_is_503_and_the_connection_is_reused(
    postgres_database: str, figure: Figure
) -> None:
    """A write stuck behind a row lock past statement_timeout is 503; the statement is
    cancelled on the server, and the pool's one connection serves the next requests."""
    statement_timeout = 0.5
    async with served(
        postgres_database,
        pool_size=1,
        max_overflow=0,
        pool_timeout=3,
        statement_timeout=statement_timeout,
    ) as (client, pool):
        task = await create(client, "contended")
        pid = await server_pid(pool)
        timed_out, reads = [], []
        async with RowLock.on(postgres_database, task) as lock:
            for _ in range(3):
                timed_out.append(
                    await client.send("PATCH", f"/api/dave/tasks/{task}", {"completed": True})
                )
                reads.append(await client.send("GET", f"/api/dave/tasks/{task}"))
                assert pool.size == 1
            sessions = await lock.app_sessions()
            await lock.release()
        write = await client.send("PATCH", f"/api/dave/tasks/{task}", {"completed": True})
        assert await server_pid(pool) == pid
        assert pool.size == 1

    for outcome in timed_out:
        assert_unavailable(outcome)
        assert statement_timeout * 0.9 <= outcome.elapsed < statement_timeout + 1.5
    assert [outcome.status for outcome in reads] == [200, 200, 200], reads
    assert [(row["pid"], row["state"]) for row in sessions] == [(pid, "idle")]
    assert write.status == 200, write
    assert write.json()["data"]["completed"] is True

    figure("statement_timeout (s)", statement_timeout)
    figure("timed-out writes: 503 after (s)", [round(o.elapsed, 3) for o in timed_out])
    figure("read right after each 503 (s)", [round(o.elapsed, 3) for o in reads])
    figure("server sessions of the store after the timeouts", f"{len(sessions)} (pid {pid}, idle)")


async def abort_after_sending(port: int, request: bytes, delay: float) -> None:
    """Send ``request`` on a new connection and close it ``delay`` seconds later."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    await asyncio.sleep(delay)
    writer.transport.abort()


@pytest.mark.parametrize("handler_cancellation", [False, True], ids=["default", "cancelling"])
async def test_clients_that_disconnect_mid_request_leak_no_connection(
    postgres_database: str, handler_cancellation: bool, figure: Figure
) -> None:
    """Clients that go away while their request waits for a row lock, for a pooled
    connection, for its own body or for nothing in particular: afterwards the pool is
    all idle, the server holds no other session, and the app keeps answering. Both with
    aiohttp's default (handlers run on) and with handler_cancellation=True."""
    async with served(
        postgres_database,
        handler_cancellation=handler_cancellation,
        pool_size=2,
        max_overflow=1,
        pool_timeout=1,
        statement_timeout=3,
    ) as (client, pool):
        task = await create(client, "contended")
        port = int(client.base.rpartition(":")[2])
        body = b'{"completed": true}'
        patch = (
            f"PATCH /api/dave/tasks/{task} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        get = f"GET /api/dave/tasks/{task} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        partial = (
            b"POST /api/dave/tasks HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"title": '
        )
        aborted = 0
        started = time.monotonic()
        for _ in range(2):
            async with RowLock.on(postgres_database, task) as lock:
                clients = [abort_after_sending(port, patch, 0.2) for _ in range(10)]
                clients += [abort_after_sending(port, get, 0) for _ in range(10)]
                clients += [abort_after_sending(port, partial, 0.1) for _ in range(10)]
                await asyncio.gather(*clients)
                aborted += len(clients)
                await asyncio.sleep(0.1)
                await lock.release()
        took = await settled(pool)
        answers = [
            await client.send("GET", f"/api/dave/tasks/{task}"),
            await client.send("POST", "/api/dave/tasks", {"title": "after"}),
            await client.send("GET", "/readyz"),
        ]
        assert [o.status for o in answers] == [200, 201, 200], statuses(answers)
        version = answers[0].headers["etag"]
        await settled(pool)
        size, idle = pool.size, pool.idle
        assert 1 <= size <= 3
        sessions = await asyncio.wait_for(_app_sessions(postgres_database, size), 5)

    figure("aborted requests", aborted)
    figure("pool settled to all idle after the last abort (s)", round(took, 3))
    figure("pool size / idle afterwards", f"{size} / {idle}")
    figure("server sessions of the store afterwards", sessions)
    figure("ETag of the contended task (aborted PATCHes that ran)", version)
    figure("whole scenario (s)", round(time.monotonic() - started, 2))


async def _app_sessions(url: str, expected: int) -> int:
    """Wait until the server has exactly ``expected`` sessions of the store (terminated
    ones take a moment to end); their number."""
    connection = await asyncpg.connect(url)
    try:
        while True:
            count: int = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = 'todo' AND datname = current_database()"
            )
            if count == expected:
                return count
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
