"""``kill -9`` of a serving ``todo-http serve`` process during 50 concurrent creates:
after a restart, every create it acknowledged is stored exactly once (a Jepsen-style
set check), on PostgreSQL and on SQLite in WAL mode."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.faults.conftest import SERVER_BACKENDS, Figure
from tests.faults.support import FaultClient, Outcome, statuses
from tests.http.process import ServerProcess

CREATES = 50
KILL_AFTER = 10  # acknowledgements before the kill: the rest are in flight or unsent


async def create_all(client: FaultClient, server: ServerProcess) -> list[Outcome]:
    """Send the creates at once; SIGKILL the server when the KILL_AFTER-th is answered 201."""
    acknowledged = 0

    async def create(number: int) -> Outcome:
        nonlocal acknowledged
        outcome = await client.send("POST", "/api/carol/tasks", {"title": f"task {number:02}"})
        if outcome.status == 201:
            acknowledged += 1
            if acknowledged == KILL_AFTER:
                os.kill(server.process.pid, signal.SIGKILL)
        return outcome

    return await asyncio.gather(*(create(number) for number in range(CREATES)))


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
async def test_kill_9_during_concurrent_creates_loses_no_acknowledged_task(
    backend: str, database_url: str, tmp_path: Path, figure: Figure
) -> None:

    with ServerProcess("--database-url", database_url, cwd=tmp_path) as server:
        await asyncio.to_thread(server.wait_ready)
        async with FaultClient(f"http://127.0.0.1:{server.port}", connections=CREATES) as client:
            await client.send("GET", "/healthz")  # fetches the document while it can
            outcomes = await create_all(client, server)
        assert server.process.wait(10) == -signal.SIGKILL

    acknowledged = {
        o.json()["data"]["title"]: o.json()["data"]["id"] for o in outcomes if o.status == 201
    }
    assert all(o.status in (201, None) for o in outcomes), statuses(outcomes)
    assert KILL_AFTER <= len(acknowledged) < CREATES, statuses(outcomes)

    with ServerProcess("--database-url", database_url, cwd=tmp_path) as server:
        await asyncio.to_thread(server.wait_ready)
        async with FaultClient(f"http://127.0.0.1:{server.port}") as client:
            listing = await client.send("GET", "/api/carol/tasks?limit=500")
    assert listing.status == 200, listing
    stored = [(task["title"], task["id"]) for task in listing.json()["data"]]
    ids = [task_id for _, task_id in stored]
    titles = [title for title, _ in stored]
    assert len(set(ids)) == len(ids), "a task listed twice"
    assert len(set(titles)) == len(titles), "a create stored twice"
    missing = {t: i for t, i in acknowledged.items() if (t, i) not in set(stored)}
    assert not missing, f"acknowledged 201 but not stored: {missing}"

    if backend == "sqlite":
        with sqlite3.connect(tmp_path / "tasks.db") as connection:
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    figure(
        "creates sent / acknowledged 201 / unanswered",
        f"{CREATES} / {len(acknowledged)} / {CREATES - len(acknowledged)}",
    )
    figure("stored after restart", len(stored))
    figure("acknowledged and stored exactly once", len(acknowledged) - len(missing))
    figure("unanswered but stored (applied, never acknowledged)", len(stored) - len(acknowledged))
