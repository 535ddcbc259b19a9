"""The point of idempotency keys: the server commits a create and dies before it
answers; the client's retry with the same key, to the restarted server, gets the
task that was made, and exactly one task exists. On PostgreSQL and on SQLite."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from pathlib import Path

import pytest

from tests.faults.conftest import SERVER_BACKENDS, Figure
from tests.faults.fault_client import FaultClient
from tests.http.server_process import ServerProcess, server_environment

REPOSITORY = Path(__file__).parents[2]
CRASHING = (sys.executable, "-m", "tests.faults.crash_after_commit")


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
async def test_a_retry_after_the_answer_was_lost_creates_nothing_more(
    backend: str, database_url: str, tmp_path: Path, figure: Figure
) -> None:
    body = {"title": "Pay the rent", "description": "before the 1st"}
    key = {"Idempotency-Key": str(uuid.uuid4())}
    environment = server_environment(PYTHONPATH=str(REPOSITORY))

    with ServerProcess(
        "--database-url", database_url, cwd=tmp_path, command=CRASHING, environment=environment
    ) as crashing:
        await asyncio.to_thread(crashing.wait_ready)
        async with FaultClient(f"http://127.0.0.1:{crashing.port}") as client:
            await client.send("GET", "/healthz")  # fetches the document while it can
            lost = await client.send("POST", "/api/dave/tasks", body, key)
        assert lost.status is None, lost  # no answer: the process died first
        assert crashing.process.wait(10) == -signal.SIGKILL

    with ServerProcess("--database-url", database_url, cwd=tmp_path) as server:
        await asyncio.to_thread(server.wait_ready)
        async with FaultClient(f"http://127.0.0.1:{server.port}") as client:
            retry = await client.send("POST", "/api/dave/tasks", body, key)
            listing = await client.send("GET", "/api/dave/tasks")
            fresh = await client.send("POST", "/api/dave/tasks", body, {"Idempotency-Key": "new"})

    assert retry.status == 201, retry
    assert retry.headers["idempotent-replayed"] == "true"
    assert listing.status == 200
    stored = listing.json()["data"]
    assert [task["id"] for task in stored] == [retry.json()["data"]["id"]], "exactly one task"
    assert stored[0] == retry.json()["data"], "the retry answers the task that was stored"
    assert fresh.status == 201, "a new key creates"
    assert "idempotent-replayed" not in fresh.headers
    figure(f"lost answer ({backend})", f"retry answered {retry.status} replayed, 1 task stored")
