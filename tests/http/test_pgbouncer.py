"""``todo-http serve --workers 2`` through PgBouncer in transaction mode, under load.

asyncpg's prepared-statement collisions need several processes on the same server
connections (``../shared/reliability-notes.md`` §1.3: settings that pass in one process
fail with four), so one process through PgBouncer proves little. Here two workers, each
with its own pool, share PgBouncer's few server connections (``tests.pgbouncer.POOL_SIZE``)
while many requests are in flight, and neither a response nor the server's log may show
a prepared-statement or protocol error.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import asyncpg
import orjson
import pytest

from tests.backends import backend_url, open_backend, postgres_url
from tests.http.server_process import ServerProcess, worker_serving
from tests.pgbouncer import POOL_SIZE, SESSION_PGBOUNCER

pytestmark = pytest.mark.postgres

USERS = ("alice", "bob", "carol", "dave")
LIVES = 80  # tasks created, read, patched, listed, deleted and missed: 6 requests each
IN_FLIGHT = 32
# What asyncpg says when a named statement meets the wrong server connection.
FORBIDDEN = (
    "InvalidSQLStatementNameError",
    "DuplicatePreparedStatementError",
    "ProtocolError",
    "prepared statement",
)
# The store's default application_name (EngineOptions): PgBouncer passes it on.
APPLICATION_NAME = "todo"


class Answer(NamedTuple):
    status: int
    body: Any
    etag: str


Request = Callable[..., Awaitable[Answer]]


def _requester(session: aiohttp.ClientSession, base: str, statuses: Counter[str]) -> Request:
    """Sends one request with at most ``IN_FLIGHT`` in flight; counts "METHOD status"."""
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def request(method: str, path: str, body: Any = None, **headers: str) -> Answer:
        data = None if body is None else orjson.dumps(body)
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with gate, session.request(method, base + path, data=data, headers=headers) as reply:
            statuses[f"{method} {reply.status}"] += 1
            return Answer(
                reply.status, orjson.loads(await reply.read()), reply.headers.get("ETag", "")
            )

    return request


async def _life(request: Request, number: int) -> None:
    """One task from creation to a read after its deletion, each step's status checked."""
    user = USERS[number % len(USERS)]
    tasks = f"/api/{user}/tasks"
    created = await request("POST", tasks, {"title": f"load {number}"})
    assert created.status == 201, created
    task = f"{tasks}/{created.body['data']['id']}"
    assert (await request("GET", task)).status == 200
    patch = {"completed": True, "description": f"patched {number}"}
    assert (await request("PATCH", task, patch, **{"If-Match": created.etag})).status == 200
    assert (await request("GET", f"{tasks}?q=load&sort=-created_at&limit=5")).status == 200
    assert (await request("DELETE", task)).status == 200
    assert (await request("GET", task)).status == 404


async def _watch_server_connections(stop: asyncio.Event, since: datetime) -> int:
    """The most PostgreSQL backends carrying the store's application_name at one time
    while the load ran, seen over a direct connection: PgBouncer opened them, so at
    most its pool. Only backends started ``since`` the session's PgBouncer started
    count (not those of one an interrupted earlier run left behind)."""
    probe = await asyncpg.connect(
        postgres_url(), server_settings={"application_name": "todo-test-probe"}
    )
    most = 0
    try:
        while not stop.is_set():
            count = await probe.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = $1 AND backend_start >= $2",
                APPLICATION_NAME,
                since,
            )
            most = max(most, count)
            await asyncio.sleep(0.02)
    finally:
        await probe.close()
    return most


async def _load(port: int, since: datetime) -> tuple[Counter[str], float, int]:
    """Every life at once, ``IN_FLIGHT`` requests at a time: statuses, seconds, backends."""
    statuses: Counter[str] = Counter()
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_server_connections(stop, since))
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    timeout = aiohttp.ClientTimeout(total=30)
    started = time.monotonic()
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            request = _requester(session, f"http://127.0.0.1:{port}", statuses)
            await asyncio.gather(*(_life(request, number) for number in range(LIVES)))
    finally:
        elapsed = time.monotonic() - started
        stop.set()
        backends = await watcher
    return statuses, elapsed, backends


async def test_two_workers_under_load_through_pgbouncer(tmp_path: Path) -> None:
    """480 mixed requests by four users, 32 in flight, from two processes through
    PgBouncer 1.18 in transaction mode: every answer as expected, no error logged."""
    url = backend_url("pgbouncer", tmp_path)  # starts PgBouncer, or skips
    async with open_backend("pgbouncer", tmp_path):  # migrated, tasks table empty
        pass
    arguments = ("--workers", "2", "--log-format", "json", "--database-url", url)
    with ServerProcess(*arguments, cwd=tmp_path) as server:
        for worker in (1, 2):
            server.wait_for_line(worker_serving(worker))
        server.wait_ready()
        assert SESSION_PGBOUNCER.running is not None
        statuses, seconds, backends = await _load(server.port, SESSION_PGBOUNCER.running.started)
        assert server.stop()[0] == 0, server.output

    print(f"{sum(statuses.values())} requests in {seconds:.2f} s: {dict(statuses)};")
    print(f"at most {backends} PostgreSQL backends at once served them through PgBouncer")
    assert sum(statuses.values()) == 6 * LIVES
    assert statuses["GET 404"] == LIVES
    assert not [status for status in statuses if int(status.split()[1]) >= 500], statuses
    for text in FORBIDDEN:
        assert text not in server.output, text
    # Both processes served, and their connections went through PgBouncer's pool.
    records = [orjson.loads(line) for line in server.lines]
    access = [record for record in records if record.get("logger") == "aiohttp.access"]
    served = {record["pid"] for record in access if record["path"].startswith("/api/")}
    assert len(served) == 2, served
    assert 1 <= backends <= POOL_SIZE, backends
