"""``todo-http serve --workers 2`` under 60 s of mixed load from 64 connections.

A fresh PostgreSQL database, migrated first; 64 client loops on loopback, each one of
eight users creating, reading, listing and patching tasks, bounded both in time
(``DURATION`` s, with a hard timeout over everything) and in count (``MAX_REQUESTS``).
Meanwhile the workers' resident memory is sampled every second and the database's
backends carrying the store's ``application_name`` every 0.2 s, over a direct
connection. Asserted: no 5xx (and no other surprise), the workers' memory growing less
than 10 % between the first and the last 20 s, and never more connections than
workers x (pool size + max overflow).

The server's output goes to a file, not through a pipe read by this process: the
access log of a few hundred thousand requests would otherwise compete with the load
generator for this process's CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import orjson
import pytest
from sqlalchemy.engine import make_url

from tests.backends import fresh_postgres_database
from tests.http.server_process import free_port, migrate, server_environment

pytestmark = pytest.mark.postgres

WORKERS = 2
POOL_SIZE = 3
MAX_OVERFLOW = 2
CONNECTIONS = 64
DURATION = 60.0  # seconds of load
WINDOW = 20.0  # seconds at each end whose mean RSS is compared
MAX_REQUESTS = 600_000  # a bound well above what this load reaches in DURATION
HARD_TIMEOUT = DURATION + 60.0  # over the whole load, whatever hangs
USERS = tuple(f"soak-user-{number}" for number in range(8))
# Request kinds and their weights: 20 % creates, 40 % gets, 20 % lists, 20 % patches.
MIX = (("create", 20), ("get", 40), ("list", 20), ("patch", 20))
KEPT = 100  # each loop reads and patches among its last KEPT created tasks
APPLICATION_NAME = "todo"  # the store's default (EngineOptions.application_name)


@dataclass
class Soak:
    """What the load and the watchers saw."""

    statuses: Counter[str] = field(default_factory=Counter)  # "KIND status"
    failures: Counter[str] = field(default_factory=Counter)  # no answer: exception name
    sent: int = 0
    seconds: float = 0.0
    rss: list[tuple[float, int]] = field(default_factory=list)  # (s since start, KiB)
    connections: list[int] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + sum(self.failures.values())


def _start_server(url: str, port: int, log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "todo_http", "serve", "--port", str(port)),
                *("--workers", str(WORKERS), "--log-format", "json", "--database-url", url),
                *("--pool-size", str(POOL_SIZE), "--max-overflow", str(MAX_OVERFLOW)),
            ],
            cwd=cwd,
            env=server_environment(),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, killed at the end
        )


def _parent(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no PPid for {pid}")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _serving(log: Path) -> dict[str, int]:
    """Worker number to pid, for each "worker N serving on" line of the JSON log."""
    pids: dict[str, int] = {}
    for line in log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            record = orjson.loads(line)
            message = str(record.get("message", ""))
            if message.startswith("worker ") and " serving on " in message:
                pids[message.split()[1]] = int(record["pid"])
    return pids


def _tail(log: Path) -> str:
    return log.read_text()[-5000:]


async def _wait_for_workers(server: subprocess.Popen[bytes], log: Path) -> list[int]:
    """The pids of the workers, from their "worker N serving on" log lines, once every
    worker serves; each must be a child of the supervisor."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, _tail(log)
        pids = _serving(log)
        if len(pids) == WORKERS:
            workers = sorted(pids.values())
            assert all(_parent(pid) == server.pid for pid in workers), workers
            return workers
        await asyncio.sleep(0.1)
    raise AssertionError(f"workers not serving after 30 s:\n{_tail(log)}")


async def _wait_ready(session: aiohttp.ClientSession, base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{base}/readyz") as reply:
                if reply.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise AssertionError("server not ready after 30 s")


async def _client_loop(
    session: aiohttp.ClientSession, base: str, number: int, deadline: float, soak: Soak
) -> None:
    """One connection's worth of load, until the deadline or the request bound."""
    chooser = random.Random(number)
    kinds = [kind for kind, _ in MIX]
    weights = [weight for _, weight in MIX]
    tasks = f"{base}/api/{USERS[number % len(USERS)]}/tasks"
    mine: list[str] = []
    count = 0
    while time.monotonic() < deadline and soak.sent < MAX_REQUESTS:
        soak.sent += 1
        count += 1
        kind = chooser.choices(kinds, weights)[0] if mine else "create"
        body: dict[str, object] | None = None
        if kind == "create":
            method, url = "POST", tasks
            body = {"title": f"soak {number}-{count}", "description": "x" * (count % 200)}
        elif kind == "get":
            method, url = "GET", f"{tasks}/{chooser.choice(mine)}"
        elif kind == "list":
            method, url = "GET", f"{tasks}?limit=20&sort=-created_at"
        else:
            method, url = "PATCH", f"{tasks}/{chooser.choice(mine)}"
            body = {"completed": count % 2 == 0, "description": f"patched {count}"}
        data = None if body is None else orjson.dumps(body)
        headers = {} if data is None else {"Content-Type": "application/json"}
        try:
            async with session.request(method, url, data=data, headers=headers) as reply:
                content = await reply.read()
                soak.statuses[f"{kind} {reply.status}"] += 1
                if kind == "create" and reply.status == 201:
                    mine.append(orjson.loads(content)["data"]["id"])
                    del mine[:-KEPT]
        except (aiohttp.ClientError, TimeoutError) as error:
            soak.failures[type(error).__name__] += 1


async def _sample_rss(workers: list[int], started: float, stop: asyncio.Event, soak: Soak) -> None:
    """The sum of the workers' VmRSS, once a second."""
    while not stop.is_set():
        soak.rss.append((time.monotonic() - started, sum(_rss_kib(pid) for pid in workers)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def _watch_connections(url: str, stop: asyncio.Event, soak: Soak) -> None:
    """The database's backends carrying the store's application_name, every 0.2 s."""
    probe = await asyncpg.connect(url, server_settings={"application_name": "todo-soak-probe"})
    try:
        while not stop.is_set():
            count = await probe.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = $1",
                APPLICATION_NAME,
            )
            soak.connections.append(int(count))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
    finally:
        await probe.close()


async def _soak(url: str, port: int, workers: list[int]) -> Soak:
    soak = Soak()
    base = f"http://127.0.0.1:{port}"
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await _wait_ready(session, base)
        stop = asyncio.Event()
        watcher = asyncio.create_task(_watch_connections(url, stop, soak))
        started = time.monotonic()
        sampler = asyncio.create_task(_sample_rss(workers, started, stop, soak))
        try:
            async with asyncio.timeout(HARD_TIMEOUT):
                await asyncio.gather(
                    *(
                        _client_loop(session, base, number, started + DURATION, soak)
                        for number in range(CONNECTIONS)
                    )
                )
        finally:
            soak.seconds = time.monotonic() - started
            stop.set()
            await asyncio.gather(watcher, sampler)
    return soak


async def test_two_workers_soak_under_mixed_load(tmp_path: Path) -> None:
    """60 s of 64 connections' mixed load on two workers: no 5xx, RSS growth under
    10 %, database connections within workers x (pool size + max overflow)."""
    async with fresh_postgres_database() as engine_url:
        # The plain form, as a deployment passes it and as asyncpg takes it.
        url = make_url(engine_url).set(drivername="postgresql").render_as_string(False)
        migrate(url)
        log = tmp_path / "server.log"
        port = free_port()
        server = _start_server(url, port, log, tmp_path)
        try:
            workers = await _wait_for_workers(server, log)
            soak = await _soak(url, port, workers)
            server.send_signal(signal.SIGTERM)
            status = server.wait(30)
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)

    first = statistics.mean(kib for moment, kib in soak.rss if moment < WINDOW)
    last = statistics.mean(kib for moment, kib in soak.rss if moment >= soak.seconds - WINDOW)
    growth = (last - first) / first * 100
    bound = WORKERS * (POOL_SIZE + MAX_OVERFLOW)
    print(
        f"\nsoak: {soak.requests} requests in {soak.seconds:.1f} s"
        f" ({soak.requests / soak.seconds:.0f} req/s) over {CONNECTIONS} connections"
    )
    print(f"soak: statuses {dict(sorted(soak.statuses.items()))}, failures {dict(soak.failures)}")
    print(
        f"soak: workers' RSS {first / 1024:.1f} MiB (first {WINDOW:.0f} s)"
        f" -> {last / 1024:.1f} MiB (last {WINDOW:.0f} s): {growth:+.2f} %"
        f" ({len(soak.rss)} samples)"
    )
    print(
        f"soak: at most {max(soak.connections)} database connections"
        f" (bound {bound}; {len(soak.connections)} samples)"
    )

    assert status == 0, _tail(log)
    assert soak.seconds < DURATION + 30, soak.seconds  # the load ended on time
    assert not soak.failures, soak.failures
    assert not [key for key in soak.statuses if int(key.split()[1]) >= 500], soak.statuses
    expected = {"create 201", "get 200", "list 200", "patch 200"}
    assert set(soak.statuses) <= expected, soak.statuses
    assert len(soak.rss) >= DURATION - 5, soak.rss
    assert growth < 10, soak.rss
    assert 1 <= max(soak.connections) <= bound, soak.connections
