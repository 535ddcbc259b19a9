"""``GET /api/{user_id}/events``: the contract's "Live events", in process, on every backend.

Streams are read as ``EventSource`` reads them (``tests/http/event_stream.py``); the
JSON refusals go through ``ApiClient``, so they are checked against the OpenAPI
document. The rules that need real processes (SIGTERM, other workers' writes, logs,
the connection limit) are in ``test_events_processes.py``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from tests.conftest import StoreFactory
from tests.http.api_client import ORIGIN, ApiClient, ClientFactory
from tests.http.event_stream import EventStream, parse
from tests.http.tokens import bearer, claims, hs, hs_settings
from tests.values import ALICE, BOB, SteppingClock
from todo_core import MemoryTaskStore, StoreUnavailable, TaskCreate, TaskStore
from todo_http import Settings
from todo_http.cli import parser, serve_configuration
from todo_http.keys import API, EVENT_STREAMS
from todo_http.server import streams_within

EVENTS = "/api/alice/events"
WITHIN = 2.0  # seconds: a change reaches a stream in the same process well within this
QUIET = 0.2  # seconds of silence that show nothing more is coming


@asynccontextmanager
async def opened(
    client: ApiClient, path: str = EVENTS, headers: Mapping[str, str] | None = None
) -> AsyncIterator[EventStream]:
    """An open stream; fails the test unless it is a 200 event stream."""
    response = await client.raw.get(path, headers=headers)
    try:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == "text/event-stream"
        yield EventStream(response)
    finally:
        response.close()


async def now(store: TaskStore, user_id: str = ALICE) -> str:
    return (await store.changes(user_id)).next_since


async def test_each_change_is_one_event_with_the_feed_items_json(
    client: ApiClient, store: TaskStore
) -> None:
    token = await now(store)
    kept = await client.create(title="kept")
    await client.patch(f"/api/alice/tasks/{kept['id']}", json={"completed": True})
    gone = await client.create(title="gone")
    await client.delete(f"/api/alice/tasks/{gone['id']}")
    async with opened(client, f"{EVENTS}?since={token}") as stream:
        upsert, delete = await stream.next(WITHIN), await stream.next(WITHIN)
        assert await stream.next(QUIET) is None
    assert upsert is not None
    assert delete is not None
    assert upsert.kind == "upsert"
    assert upsert.data == {"type": "upsert", "task": (await client.fetch(ALICE, kept["id"])).data}
    assert delete.kind == "delete"
    assert set(delete.data) == {"type", "id", "deleted_at"}
    assert (delete.data["type"], delete.data["id"]) == ("delete", gone["id"])
    # Each id resumes after its event.
    after_upsert = await store.changes(ALICE, upsert.id)
    assert [change.task_id for change in after_upsert.items] == [UUID(delete.data["id"])]


async def test_without_a_token_the_stream_starts_now(client: ApiClient) -> None:
    await client.create(title="before")
    async with opened(client) as stream:
        assert await stream.next(QUIET) is None
        task = await client.create(title="after")
        event = await stream.next(WITHIN)
    assert event is not None
    assert event.data["task"]["id"] == task["id"]


async def test_last_event_id_wins_over_since(client: ApiClient, store: TaskStore) -> None:
    token = await now(store)
    await client.create(title="first")
    async with opened(client, f"{EVENTS}?since={token}") as stream:
        first = await stream.next(WITHIN)
    assert first is not None
    second = await client.create(title="second")
    async with opened(client, f"{EVENTS}?since={token}", {"Last-Event-ID": first.id}) as stream:
        event = await stream.next(WITHIN)
        assert await stream.next(QUIET) is None
    assert event is not None
    assert event.data["task"]["id"] == second["id"]


async def test_an_empty_last_event_id_counts_as_absent(client: ApiClient, store: TaskStore) -> None:
    token = await now(store)
    task = await client.create(title="first")
    async with opened(client, f"{EVENTS}?since={token}", {"Last-Event-ID": ""}) as stream:
        event = await stream.next(WITHIN)
    assert event is not None
    assert event.data["task"]["id"] == task["id"]


@pytest.mark.parametrize(
    ("query", "headers", "field"),
    [
        ("?since=nonsense", {}, "since"),
        ("?since=", {}, "since"),
        ("?since=a&since=b", {}, "since"),
        ("", {"Last-Event-ID": "nonsense"}, "Last-Event-ID"),
        ("?since=nonsense", {"Last-Event-ID": "nonsense"}, "Last-Event-ID"),
    ],
)
async def test_a_bad_token_is_a_422_before_any_event(
    client: ApiClient, query: str, headers: dict[str, str], field: str
) -> None:
    reply = await client.get(f"{EVENTS}{query}", headers=headers)
    assert reply.status == 422
    assert reply.code == "VALIDATION_ERROR"
    assert reply.fields == [field]


async def test_another_users_token_is_a_422(client: ApiClient, store: TaskStore) -> None:
    reply = await client.get(f"{EVENTS}?since={await now(store, BOB)}")
    assert reply.status == 422
    assert reply.fields == ["since"]


async def test_an_expired_token_is_a_410(store_factory: StoreFactory, serve: ClientFactory) -> None:
    clock = SteppingClock()
    async with store_factory(clock=clock, retention=timedelta(days=1)) as store:
        client = await serve(store)
        token = await now(store)
        clock.now += timedelta(days=2)
        for headers, query in (({}, f"?since={token}"), ({"Last-Event-ID": token}, "")):
            reply = await client.get(f"{EVENTS}{query}", headers=headers)
            assert reply.status == 410
            assert reply.code == "SYNC_TOKEN_EXPIRED"


async def test_past_the_users_limit_a_429_with_retry_after(
    store: TaskStore, serve: ClientFactory
) -> None:
    client = await serve(store, Settings(max_streams_per_user=2))
    async with opened(client), opened(client):
        reply = await client.get(EVENTS)
        assert reply.status == 429
        assert reply.code == "TOO_MANY_REQUESTS"
        assert int(reply.headers["Retry-After"]) > 0
        async with opened(client, "/api/bob/events"):
            pass
        # A bad or expired token is told first: the client must start over, not wait.
        assert (await client.get(f"{EVENTS}?since=nonsense")).status == 422


async def test_past_the_process_limit_a_429(store: TaskStore, serve: ClientFactory) -> None:
    client = await serve(store, Settings(max_streams=2))
    async with opened(client), opened(client, "/api/bob/events"):
        reply = await client.get("/api/carol/events")
        assert reply.status == 429
        assert reply.code == "TOO_MANY_REQUESTS"
        # Ordinary requests are answered all the same.
        assert (await client.get("/api/carol/tasks")).status == 200


async def test_a_stream_that_ends_frees_its_slot(store: TaskStore, serve: ClientFactory) -> None:
    client = await serve(store, Settings(max_streams_per_user=1, stream_keepalive=0.05))
    async with opened(client):
        assert (await client.get(EVENTS)).status == 429
    # The server notices the client left at its next keepalive at the latest.
    for _ in range(50):
        response = await client.raw.get(EVENTS)
        response.close()
        if response.status == 200:
            return
        await asyncio.sleep(0.05)
    pytest.fail("the slot was never freed")


async def test_an_idle_stream_sends_keepalive_comments(
    store: TaskStore, serve: ClientFactory
) -> None:
    client = await serve(store, Settings(stream_keepalive=0.05))
    async with opened(client) as stream:
        assert await stream.comment(WITHIN) == "keepalive"
        assert await stream.comment(WITHIN) == "keepalive"
        task = await client.create(title="between keepalives")
        event = await stream.next(WITHIN)
    assert event is not None
    assert event.data["task"]["id"] == task["id"]


def test_keepalives_are_at_most_15_seconds_apart_by_default() -> None:
    assert Settings().stream_keepalive <= 15


async def test_the_stream_carries_the_request_id_and_no_caching(client: ApiClient) -> None:
    async with opened(client, headers={"X-Request-ID": "stream-1"}) as stream:
        assert stream.response.headers["X-Request-ID"] == "stream-1"
        assert stream.response.headers["Cache-Control"] == "no-store"


async def test_head_answers_the_streams_headers_alone(client: ApiClient) -> None:
    reply = await asyncio.wait_for(client.head(EVENTS), WITHIN)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/event-stream"
    assert reply.body == b""


async def test_an_allowed_origin_gets_cors_headers_on_the_stream(
    store: TaskStore, serve: ClientFactory
) -> None:
    client = await serve(store, Settings(cors_origins=(ORIGIN,)))
    async with opened(client, headers={"Origin": ORIGIN}) as stream:
        assert stream.response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "X-Request-ID" in stream.response.headers["Access-Control-Expose-Headers"]


async def test_ending_every_stream_ends_them_at_once_and_refuses_new_ones(
    client: ApiClient,
) -> None:
    app = client.raw.app
    assert app is not None
    streams = app[API][EVENT_STREAMS]
    async with opened(client) as first, opened(client, "/api/bob/events") as second:
        await asyncio.sleep(0.05)
        ending = asyncio.create_task(streams.end_all())
        assert await first.until_end(1.0)
        assert await second.until_end(1.0)
        await ending
    assert (await client.get(EVENTS)).status == 429


async def test_with_jwt_the_access_token_parameter_opens_the_stream_only_here(
    store: TaskStore, serve: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = await serve(store, hs_settings())
    token = hs(claims(sub=ALICE))
    async with opened(client, f"{EVENTS}?access_token={token}") as stream:
        task = await client.post("/api/alice/tasks", json={"title": "x"}, headers=bearer(token))
        event = await stream.next(WITHIN)
    assert event is not None
    assert event.data["task"]["id"] == task.data["id"]
    assert (await client.get(f"/api/alice/tasks?access_token={token}")).status == 401
    assert (await client.get(f"/api/bob/events?access_token={token}")).status == 403
    assert (await client.get(f"{EVENTS}?access_token=")).status == 401
    assert (await client.get(f"{EVENTS}?access_token=not.a.token")).status == 401
    # aiohttp's own access log, which the test server uses, writes query strings: the
    # server's (todo_http.logs.AccessLogger) does not, test_events_processes.py shows.
    ours = [record for record in caplog.records if record.name != "aiohttp.access"]
    assert ours
    assert all(token not in record.getMessage() for record in ours)


async def test_a_slow_reader_is_cut_off_and_resumes_without_a_loss(serve: ClientFactory) -> None:
    """A client that stops reading has its stream ended; from the events it did
    receive whole, the last one's id resumes it with nothing missing."""
    store = MemoryTaskStore()
    client = await serve(store, Settings(stream_write_timeout=0.3))
    token = await now(store)
    created = [
        (await store.create(ALICE, TaskCreate(title=f"t{n}", description="x" * 1000))).id
        for n in range(4000)
    ]
    server = client.raw.server
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (server.host, server.port))
    request = f"GET {EVENTS}?since={token} HTTP/1.1\r\nHost: x\r\n\r\n"
    await loop.sock_sendall(sock, request.encode())
    await asyncio.sleep(2)  # not reading: the server's writes back up, then time out
    received = bytearray()
    while True:
        try:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), 5)
        except (ConnectionError, TimeoutError):
            break
        if not chunk:
            break
        received += chunk
    sock.close()
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    got = parse(_dechunked(body)).events
    assert 0 < len(got) < len(created), "the stream was not cut off"
    async with opened(client, headers={"Last-Event-ID": got[-1].id}) as stream:
        while (event := await stream.next(QUIET * 5)) is not None:
            got.append(event)
    assert [event.data["task"]["id"] for event in got] == [str(task_id) for task_id in created]


def _dechunked(body: bytes) -> bytes:
    """The data of a chunked body, as far as whole chunks go."""
    data = bytearray()
    while True:
        size_line, found, rest = body.partition(b"\r\n")
        if not found:
            return bytes(data)
        size = int(size_line, 16)
        if size == 0 or len(rest) < size + 2:
            data += rest[:size] if size else b""
            return bytes(data)
        data += rest[:size]
        body = rest[size + 2 :]


def test_the_stream_limits_come_from_the_command_line() -> None:
    arguments = parser({}).parse_args(
        ["serve", "--max-streams", "50", "--max-streams-per-user", "3"]
    )
    settings, _ = serve_configuration(arguments, {})
    assert (settings.max_streams, settings.max_streams_per_user) == (50, 3)
    defaults, _ = serve_configuration(parser({}).parse_args(["serve"]), {})
    assert (defaults.max_streams, defaults.max_streams_per_user) == (10_000, 10)


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_a_stream_limit_below_one_is_a_usage_error(value: str) -> None:
    with pytest.raises(SystemExit):
        parser({}).parse_args(["serve", "--max-streams", value])


@pytest.mark.parametrize(
    ("connections", "wanted", "served"),
    [(12_000, 10_000, 10_000), (12_000, 11_000, 10_000), (600, 10_000, 500), (2, 5, 1)],
)
def test_streams_leave_a_sixth_of_the_connections_to_other_requests(
    connections: int, wanted: int, served: int
) -> None:
    settings = streams_within(Settings(max_streams=wanted), connections)
    assert settings.max_streams == served


async def test_a_database_failure_mid_stream_ends_it_and_a_reconnect_resumes(
    serve: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryTaskStore()
    client = await serve(store)
    token = await now(store)
    real = store.changes

    async def unavailable(user_id: str, since: str | None = None, *, limit: int = 100) -> Any:
        raise StoreUnavailable("away")

    async with opened(client, f"{EVENTS}?since={token}") as stream:
        monkeypatch.setattr(store, "changes", unavailable)
        second = await store.create(ALICE, TaskCreate(title="during the outage"))
        assert await stream.until_end(WITHIN)
        assert stream.events == []
    assert (await client.get(f"{EVENTS}?since={token}")).status == 503
    monkeypatch.setattr(store, "changes", real)
    async with opened(client, f"{EVENTS}?since={token}") as stream:
        event = await stream.next(WITHIN)
    assert event is not None
    assert event.data["task"]["id"] == str(second.id)


async def test_every_timestamp_of_an_event_has_six_fractional_digits(serve: ClientFactory) -> None:
    store = MemoryTaskStore(clock=SteppingClock(datetime(2026, 1, 1, tzinfo=UTC)))
    client = await serve(store)
    token = await now(store)
    task = await store.create(ALICE, TaskCreate(title="on the second"))
    await store.delete(ALICE, task.id)
    async with opened(client, f"{EVENTS}?since={token}") as stream:
        event = await stream.next(WITHIN)
    assert event is not None
    assert event.data["deleted_at"] == "2026-01-01T00:00:00.000000Z"


async def test_an_expired_token_is_a_410_even_with_every_slot_taken(
    store_factory: StoreFactory, serve: ClientFactory
) -> None:
    clock = SteppingClock()
    async with store_factory(clock=clock, retention=timedelta(days=1)) as store:
        client = await serve(store, Settings(max_streams_per_user=1))
        token = await now(store)
        clock.now += timedelta(days=2)
        async with opened(client):
            assert (await client.get(EVENTS)).status == 429
            reply = await client.get(f"{EVENTS}?since={token}")
            assert reply.status == 410
            assert reply.code == "SYNC_TOKEN_EXPIRED"
