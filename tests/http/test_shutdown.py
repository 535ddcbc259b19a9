"""SIGTERM to ``todo-http serve --workers 2`` under load: a drain, not a crash.

Requests that got a response got a 2xx; every create acknowledged with 201 is in the
database afterwards; the supervisor exits 0 within the shutdown timeout. Connections
refused or closed once the listeners are gone are allowed (nothing serves them any
more), and counted.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp

from tests.http.server_process import ServerProcess, migrate, worker_serving

CLIENTS = 32
LOAD_BEFORE_SIGNAL = 1.0  # seconds
SHUTDOWN_TIMEOUT = 5.0  # --shutdown-timeout
EXIT_SLACK = 2.0  # the exit may take this much longer than the drain


class _Load:
    """What the clients saw: statuses, connection errors, and the tasks acknowledged."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.acknowledged: set[uuid.UUID] = set()
        self.after_signal = 0  # responses received once SIGTERM was sent
        self.signalled = False
        self.stop = asyncio.Event()

    def answered(self, status: int) -> None:
        self.statuses[status] += 1
        if self.signalled:
            self.after_signal += 1

    async def client(self, session: aiohttp.ClientSession, base: str, number: int) -> None:
        sequence = 0
        while not self.stop.is_set():
            sequence += 1
            try:
                async with session.post(
                    f"{base}/api/user{number % 4}/tasks", json={"title": f"{number}-{sequence}"}
                ) as response:
                    body = await response.json()
                    self.answered(response.status)
                if response.status != 201:
                    continue
                task_id = uuid.UUID(body["data"]["id"])
                self.acknowledged.add(task_id)
                async with session.get(f"{base}/api/user{number % 4}/tasks/{task_id}") as response:
                    await response.read()
                    self.answered(response.status)
            except (TimeoutError, aiohttp.ClientConnectionError) as error:
                self.errors[type(error).__name__] += 1
                if self.signalled:
                    await asyncio.sleep(0.01)  # the port is closing: do not spin on it


def _stored(database: Path) -> set[uuid.UUID]:
    connection = sqlite3.connect(database)
    try:
        return {uuid.UUID(str(row[0])) for row in connection.execute("SELECT id FROM tasks")}
    finally:
        connection.close()


async def test_sigterm_under_load_drains_and_loses_no_acknowledged_write(tmp_path: Path) -> None:
    database = tmp_path / "tasks.db"
    url = f"sqlite:///{database}"
    migrate(url)  # before the workers start, which only check the schema
    arguments = (
        *("--workers", "2", "--database-url", url, "--log-format", "json"),
        *("--shutdown-timeout", str(SHUTDOWN_TIMEOUT)),
    )
    load = _Load()
    with ServerProcess(*arguments, cwd=tmp_path) as server:
        for number in (1, 2):
            server.wait_for_line(worker_serving(number))
        server.wait_ready()
        base = f"http://127.0.0.1:{server.port}"
        connector = aiohttp.TCPConnector(limit=CLIENTS)
        timeout = aiohttp.ClientTimeout(total=SHUTDOWN_TIMEOUT + EXIT_SLACK + 5)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            clients = [
                asyncio.create_task(load.client(session, base, number)) for number in range(CLIENTS)
            ]
            await asyncio.sleep(LOAD_BEFORE_SIGNAL)
            before_signal = sum(load.statuses.values())
            load.signalled = True
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            try:
                status = await asyncio.to_thread(server.process.wait, SHUTDOWN_TIMEOUT + EXIT_SLACK)
                seconds = time.monotonic() - started
            finally:
                load.stop.set()
                await asyncio.gather(*clients)
        output = server.output

    stored = _stored(database)
    responses = sum(load.statuses.values())
    print(
        f"\n{CLIENTS} clients: {responses} responses ({before_signal} before SIGTERM, "
        f"{load.after_signal} after), statuses {dict(load.statuses)}; "
        f"connection errors {dict(load.errors)} ({sum(load.errors.values())}); "
        f"{len(load.acknowledged)} creates acknowledged, {len(stored)} stored "
        f"({len(stored - load.acknowledged)} without an answer); "
        f"exit status {status} after {seconds:.2f} s"
    )
    assert before_signal > 0, "no load reached the server before SIGTERM"
    assert status == 0, output
    assert seconds < SHUTDOWN_TIMEOUT + EXIT_SLACK
    assert all(200 <= code < 300 for code in load.statuses), load.statuses
    assert load.acknowledged <= stored, len(load.acknowledged - stored)
    assert "Traceback" not in output
