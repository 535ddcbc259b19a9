"""Live events against real ``todo-http serve`` processes: what only processes show.

A change committed by another process reaches an open stream within a second (SQLite
shared by two servers, PostgreSQL directly with LISTEN, through PgBouncer by polling);
SIGTERM ends open streams within a second; a ``--workers 2`` restart loses nothing for
a client that resumes with ``Last-Event-ID``; with every stream slot taken, other
requests are still answered; and ``access_token`` appears in no log line.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.backends import pgbouncer_url, postgres_url
from tests.http.event_stream import EventStream
from tests.http.server_process import ServerProcess, migrate, serving, worker_serving
from tests.http.tokens import SECRET, claims, hs
from todo_core import TaskCreate, open_store

WITHIN = 1.0  # the contract's bound for another process's change
SLACK = 5.0  # for whatever is not measured: starting, connecting


def database_url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'tasks.db'}"
    if kind == "postgres":
        return postgres_url()
    return pgbouncer_url()


DATABASES = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("pgbouncer", marks=pytest.mark.postgres),
]


@asynccontextmanager
async def stream(
    session: aiohttp.ClientSession, server: ServerProcess, path: str, **headers: str
) -> AsyncIterator[EventStream]:
    response = await session.get(f"http://127.0.0.1:{server.port}{path}", headers=headers)
    try:
        assert response.status == 200, await response.text()
        yield EventStream(response)
    finally:
        response.close()


async def create(
    session: aiohttp.ClientSession, server: ServerProcess, user: str, title: str
) -> Any:
    async with session.post(
        f"http://127.0.0.1:{server.port}/api/{user}/tasks", json={"title": title}
    ) as response:
        assert response.status == 201, await response.text()
        return (await response.json())["data"]


@pytest.mark.parametrize("kind", DATABASES)
async def test_a_change_by_another_process_reaches_the_stream_within_a_second(
    tmp_path: Path, kind: str
) -> None:
    url = database_url(kind, tmp_path)
    migrate(url)
    user = f"u{uuid.uuid4().hex[:12]}"
    with serving(url, tmp_path) as reader, serving(url, tmp_path) as writer:
        async with (
            aiohttp.ClientSession() as session,
            stream(session, reader, f"/api/{user}/events") as events,
        ):
            for number in range(5):
                started = time.monotonic()
                task = await create(session, writer, user, f"t{number}")
                event = await events.next(SLACK)
                elapsed = time.monotonic() - started
                assert event is not None
                assert event.data["task"]["id"] == task["id"]
                assert elapsed < WITHIN, f"{elapsed:.3f} s"


async def test_sigterm_ends_open_streams_within_a_second(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    with serving(url, tmp_path, "--workers", "2") as server:
        async with (
            aiohttp.ClientSession() as session,
            stream(session, server, "/api/alice/events") as first,
            stream(session, server, "/api/bob/events") as second,
        ):
            await asyncio.sleep(0.2)
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            assert await first.until_end(SLACK)
            assert await second.until_end(SLACK)
            assert time.monotonic() - started < WITHIN
        assert server.process.wait(SLACK + 10) == 0


async def test_a_restart_loses_nothing_for_a_client_resuming_with_last_event_id(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    migrate(url)
    written: list[str] = []
    received: list[str] = []
    last_id = ""
    async with aiohttp.ClientSession() as session:
        with serving(url, tmp_path, "--workers", "2") as server:
            async with stream(session, server, "/api/alice/events") as events:
                for number in range(10):
                    written.append((await create(session, server, "alice", f"a{number}"))["id"])
                while len(events.events) < 5:
                    assert await events.next(SLACK) is not None
                server.process.send_signal(signal.SIGTERM)
                await events.until_end(SLACK)
                received += [event.data["task"]["id"] for event in events.events]
                last_id = events.events[-1].id
            assert server.process.wait(SLACK + 10) == 0
        # Written while no server runs (by another process: this one, on the file).
        async with open_store(url) as store:
            for number in range(5):
                written.append(
                    str((await store.create("alice", TaskCreate(title=f"b{number}"))).id)
                )
        with serving(url, tmp_path, "--workers", "2") as server:
            async with stream(
                session, server, "/api/alice/events", **{"Last-Event-ID": last_id}
            ) as events:
                for number in range(5):
                    written.append((await create(session, server, "alice", f"c{number}"))["id"])
                while len(received) + len(events.events) < len(written):
                    assert await events.next(SLACK) is not None, "an event is missing"
                assert await events.next(0.5) is None
                received += [event.data["task"]["id"] for event in events.events]
    assert received == written


async def test_with_every_stream_slot_taken_other_requests_are_still_answered(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    arguments = ("--max-streams", "3", "--max-connections", "4")
    with serving(url, tmp_path, *arguments) as server:
        async with (
            aiohttp.ClientSession() as session,
            stream(session, server, "/api/alice/events"),
            stream(session, server, "/api/bob/events"),
            stream(session, server, "/api/carol/events"),
        ):
            refused = server.request("GET", "/api/dave/events")
            assert refused.status == 429
            assert refused.json()["error"]["code"] == "TOO_MANY_REQUESTS"
            assert server.request("GET", "/healthz").status == 200
            assert server.request("GET", "/api/dave/tasks").status == 200


async def test_access_token_appears_in_no_log_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    token = hs(claims(sub="alice"))
    with serving(url, tmp_path, "--auth", "jwt", TODO_JWT_SECRET=SECRET) as server:
        async with aiohttp.ClientSession() as session:
            async with stream(session, server, f"/api/alice/events?access_token={token}") as events:
                await create_with(session, server, token)
                assert await events.next(SLACK) is not None
            for path in (
                f"/api/alice/tasks?access_token={token}",
                f"/api/bob/events?access_token={token}",
            ):
                async with session.get(f"http://127.0.0.1:{server.port}{path}") as response:
                    assert response.status in (401, 403)
        server.stop()
    assert "/api/alice/events" in server.output  # the access log has the requests...
    assert token not in server.output  # ...but never the token
    assert token.split(".")[2] not in server.output


async def create_with(session: aiohttp.ClientSession, server: ServerProcess, token: str) -> None:
    async with session.post(
        f"http://127.0.0.1:{server.port}/api/alice/tasks",
        json={"title": "x"},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        assert response.status == 201


async def test_a_client_that_leaves_frees_its_slot_at_once(tmp_path: Path) -> None:
    """Not at the next keepalive, 15 s later: the server hears the connection close."""
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    with serving(url, tmp_path, "--max-streams-per-user", "1") as server:
        async with aiohttp.ClientSession() as session:
            async with stream(session, server, "/api/alice/events"):
                assert server.request("GET", "/api/alice/events").status == 429
            deadline = time.monotonic() + WITHIN
            while (status := await _status(session, server, "/api/alice/events")) == 429:
                assert time.monotonic() < deadline, "the slot was not freed"
                await asyncio.sleep(0.05)
            assert status == 200


async def _status(session: aiohttp.ClientSession, server: ServerProcess, path: str) -> int:
    response = await session.get(f"http://127.0.0.1:{server.port}{path}")
    response.close()
    return response.status


async def test_a_change_made_by_the_other_worker_reaches_the_stream_within_a_second(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    migrate(url)
    with serving(url, tmp_path, "--workers", "2", "--log-format", "json") as server:
        for number in (1, 2):
            server.wait_for_line(worker_serving(number))
        async with (
            aiohttp.ClientSession() as session,
            stream(session, server, "/api/alice/events") as events,
        ):
            for number in range(12):
                started = time.monotonic()
                # A new connection each: the kernel spreads them over the workers.
                async with (
                    aiohttp.ClientSession() as writer,
                    writer.post(
                        f"http://127.0.0.1:{server.port}/api/alice/tasks",
                        json={"title": f"t{number}"},
                    ) as response,
                ):
                    assert response.status == 201
                    task = (await response.json())["data"]
                event = await events.next(SLACK)
                assert event is not None
                assert event.data["task"]["id"] == task["id"]
                assert time.monotonic() - started < WITHIN
        server.stop()
    access = [orjson.loads(line) for line in server.lines if '"aiohttp.access"' in line]
    (streamed,) = {line["pid"] for line in access if line["path"] == "/api/alice/events"}
    writers = {line["pid"] for line in access if line["method"] == "POST"}
    assert writers - {streamed}, "no write was made by the other worker: nothing was shown"
