"""``kill -9`` of a serving ``todo-http serve`` process during creates from 50 clients:
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
from tests.faults.fault_client import FaultClient, Outcome, statuses
from tests.http.server_process import ServerProcess

CLIENTS = 50
CREATES_EACH = 5  # one after another: most are still unsent when the server dies
CREATES = CLIENTS * CREATES_EACH
KILL_AFTER = 10  # acknowledgements before the kill: the rest are in flight or unsent


async def create_all(client: FaultClient, server: ServerProcess) -> list[Outcome]:
    """Each client sends its creates one after another until one gets no answer; SIGKILL
    the server when the KILL_AFTER-th create is answered 201.

    Sent all at once instead, the creates could all be answered before the kill lands
    on a fast machine, and the test would prove nothing about creates in flight.
    """
    acknowledged = 0

    async def creates(number: int) -> list[Outcome]:
        nonlocal acknowledged
        outcomes = []
        for sequence in range(CREATES_EACH):
            title = f"task {number:02}-{sequence}"
            outcome = await client.send("POST", "/api/carol/tasks", {"title": title})
            outcomes.append(outcome)
            if outcome.status != 201:
                break
            acknowledged += 1
            if acknowledged == KILL_AFTER:
                os.kill(server.process.pid, signal.SIGKILL)
        return outcomes

    batches = await asyncio.gather(*(creates(number) for number in range(CLIENTS)))
    return [outcome for batch in batches for outcome in batch]


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
async def test_kill_9_during_concurrent_creates_loses_no_acknowledged_task(
    backend: str, database_url: str, tmp_path: Path, figure: Figure
) -> None:

    with ServerProcess("--database-url", database_url, cwd=tmp_path) as server:
        await asyncio.to_thread(server.wait_ready)
        async with FaultClient(f"http://127.0.0.1:{server.port}", connections=CLIENTS) as client:
            await client.send("GET", "/healthz")  # fetches the document while it can
            outcomes = await create_all(client, server)
        assert server.process.wait(10) == -signal.SIGKILL

    acknowledged = {
        o.json()["data"]["title"]: o.json()["data"]["id"] for o in outcomes if o.status == 201
    }
    assert all(o.status in (201, None) for o in outcomes), statuses(outcomes)
    assert len(acknowledged) >= KILL_AFTER, statuses(outcomes)
    unanswered = [o for o in outcomes if o.status is None]
    assert unanswered, "the kill landed after every create was answered"

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
        f"{len(outcomes)} / {len(acknowledged)} / {len(unanswered)}",
    )
    figure("stored after restart", len(stored))
    figure("acknowledged and stored exactly once", len(acknowledged) - len(missing))
    figure("unanswered but stored (applied, never acknowledged)", len(stored) - len(acknowledged))
