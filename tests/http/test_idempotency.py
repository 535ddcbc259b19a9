"""``Idempotency-Key`` on ``POST /api/{user_id}/tasks`` (contract: "Exactly-once creates"),
on every backend: replays, refusals, bad keys, and a burst of retries with one key.

The killed server between commit and answer is in tests/faults/test_lost_answer.py;
several worker processes in tests/core/test_idempotency.py (two stores on one database)
and below through ``serve --workers 2``.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.backends import postgres_url
from tests.http.api_client import NO_BODY, ApiClient, ClientFactory, padded_json
from tests.http.server_process import ServerProcess
from tests.values import ALICE, EPOCH_2024, SteppingClock
from todo_core import MemoryTaskStore, TaskCreate
from todo_core.idempotency import IDEMPOTENCY_TTL
from todo_http import Settings
from todo_http.housekeeping import purge_expired_keys

TASKS = f"/api/{ALICE}/tasks"
BODY = {"title": "Call the plumber", "description": "kitchen sink"}
KEY = {"Idempotency-Key": "0b9c6a1e-5d2f-4f7e-9a51-1c3b7f0d2e44"}
REPLAYED = "Idempotent-Replayed"


class TestReplay:
    async def test_a_retry_replays_the_first_answer_byte_for_byte(self, client: ApiClient) -> None:
        first = await client.post(TASKS, json=BODY, headers=KEY)
        retry = await client.post(TASKS, json=BODY, headers=KEY)
        assert first.status == retry.status == 201
        assert REPLAYED not in first.headers
        assert retry.headers[REPLAYED] == "true"
        assert retry.body == first.body
        for header in ("Location", "ETag", "Content-Type"):
            assert retry.headers[header] == first.headers[header], header
        assert retry.request_id != first.request_id, "each request keeps its own id"
        assert await client.ids(ALICE) == [first.data["id"]]

    async def test_a_retry_spelled_differently_is_the_same_request(self, client: ApiClient) -> None:
        first = await client.post(TASKS, json=BODY, headers=KEY)
        spelled = (
            b'{ "description":"kitchen sink",\n "title":"  Call the plumber ", "completed": false}'
        )
        retry = await client.post(TASKS, body=spelled, headers=KEY)
        assert retry.headers[REPLAYED] == "true"
        assert retry.body == first.body

    async def test_replays_the_created_task_after_it_changed(self, client: ApiClient) -> None:
        first = await client.post(TASKS, json=BODY, headers=KEY)
        done = await client.patch(f"{TASKS}/{first.data['id']}", json={"completed": True})
        assert done.status == 200
        retry = await client.post(TASKS, json=BODY, headers=KEY)
        assert retry.body == first.body, "the answer the client missed, not today's task"
        assert (await client.fetch("alice", first.data["id"])).data["completed"] is True

    async def test_another_body_with_the_key_is_refused(self, client: ApiClient) -> None:
        first = await client.post(TASKS, json=BODY, headers=KEY)
        other = await client.post(TASKS, json={**BODY, "completed": True}, headers=KEY)
        assert other.status == 422
        assert other.code == "IDEMPOTENCY_KEY_REUSED"
        assert other.error["details"] == []
        assert REPLAYED not in other.headers
        assert await client.ids(ALICE) == [first.data["id"]]

    async def test_keys_are_per_user(self, client: ApiClient) -> None:
        alices = await client.post(TASKS, json=BODY, headers=KEY)
        bobs = await client.post("/api/bob/tasks", json=BODY, headers=KEY)
        assert bobs.status == 201
        assert REPLAYED not in bobs.headers
        assert bobs.data["id"] != alices.data["id"]

    async def test_creates_without_a_key_are_not_deduplicated(self, client: ApiClient) -> None:
        await client.post(TASKS, json=BODY)
        await client.post(TASKS, json=BODY)
        assert len(await client.ids(ALICE)) == 2


class TestBadKeys:
    @pytest.mark.parametrize("key", ["", "k" * 256], ids=["empty", "256 characters"])
    async def test_a_key_out_of_bounds_is_422(self, client: ApiClient, key: str) -> None:
        reply = await client.post(TASKS, json=BODY, headers={"Idempotency-Key": key})
        assert reply.status == 422
        assert reply.code == "VALIDATION_ERROR"
        assert reply.fields == ["Idempotency-Key"]
        assert await client.ids(ALICE) == []

    async def test_255_characters_are_a_key(self, client: ApiClient) -> None:
        key = {"Idempotency-Key": "k" * 255}
        first = await client.post(TASKS, json=BODY, headers=key)
        assert (await client.post(TASKS, json=BODY, headers=key)).body == first.body

    async def test_two_keys_are_422(self, client: ApiClient) -> None:
        reply = await client.raw.post(
            TASKS, json=BODY, headers=[("Idempotency-Key", "a"), ("Idempotency-Key", "b")]
        )
        assert reply.status == 422
        assert (await reply.json())["error"]["details"][0]["field"] == "Idempotency-Key"
        assert await client.ids(ALICE) == []

    async def test_the_body_is_checked_first(self, client: ApiClient) -> None:
        """413, 415, 400 and the body's 422 come before the key's 422, as for any create."""
        bad_key = {"Idempotency-Key": ""}
        big = await client.post(TASKS, body=padded_json(BODY, 65_537), headers=bad_key)
        assert big.status == 413
        text = await client.post(TASKS, json=BODY, content_type="text/plain", headers=bad_key)
        assert text.status == 415
        broken = await client.post(TASKS, body=b"{", headers=bad_key)
        assert broken.status == 400
        invalid = await client.post(TASKS, json={"title": ""}, headers=bad_key)
        assert invalid.fields == ["title"]

    async def test_other_methods_ignore_the_header(self, client: ApiClient) -> None:
        task = (await client.post(TASKS, json=BODY)).data
        path = f"{TASKS}/{task['id']}"
        for method in ("GET", "PUT", "PATCH", "DELETE"):
            body: object = {"title": "x"} if method in ("PUT", "PATCH") else NO_BODY
            reply = await client.request(method, path, json=body, headers={"Idempotency-Key": ""})
            assert reply.status == 200, (method, reply)


class TestConcurrentRetries:
    async def test_twenty_at_once_make_one_task(self, client: ApiClient) -> None:
        replies = await asyncio.gather(
            *(client.post(TASKS, json=BODY, headers=KEY) for _ in range(20))
        )
        created = [r for r in replies if r.status == 201 and REPLAYED not in r.headers]
        replayed = [r for r in replies if r.status == 201 and REPLAYED in r.headers]
        conflicts = [r for r in replies if r.status == 409]
        assert len(created) == 1, Counter(r.status for r in replies)
        assert len(created) + len(replayed) + len(conflicts) == 20
        assert all(r.body == created[0].body for r in replayed)
        for conflict in conflicts:
            assert conflict.code == "CONFLICT"
            assert int(conflict.headers["Retry-After"]) >= 1
        assert await client.ids(ALICE) == [created[0].data["id"]]


class TestExpiry:
    async def test_after_24_hours_the_key_creates_again(self, serve: ClientFactory) -> None:
        clock = SteppingClock(EPOCH_2024)
        client = await serve(MemoryTaskStore(clock=clock))
        first = await client.post(TASKS, json=BODY, headers=KEY)
        clock.now += IDEMPOTENCY_TTL - timedelta(microseconds=1)
        assert (await client.post(TASKS, json=BODY, headers=KEY)).headers[REPLAYED] == "true"
        clock.now += timedelta(microseconds=1)
        again = await client.post(TASKS, json=BODY, headers=KEY)
        assert REPLAYED not in again.headers
        assert again.data["id"] != first.data["id"]

    async def test_the_app_purges_expired_keys_in_the_background(
        self, serve: ClientFactory
    ) -> None:
        clock = SteppingClock(EPOCH_2024)
        store = MemoryTaskStore(clock=clock)
        client = await serve(store, Settings(purge_interval=0.02))
        await client.post(TASKS, json=BODY, headers=KEY)
        await client.post(TASKS, json=BODY, headers={"Idempotency-Key": "other"})
        clock.now += IDEMPOTENCY_TTL
        for _ in range(200):
            if not store._keys:
                break
            await asyncio.sleep(0.01)
        assert not store._keys, "expired keys were purged without a request"
        assert len(await client.ids(ALICE)) == 2, "and the tasks stay"

    async def test_purging_goes_on_after_a_failure(self, serve: ClientFactory) -> None:
        """A purge that fails (the database is away) is logged; the next one runs."""
        clock = SteppingClock(EPOCH_2024)
        store = MemoryTaskStore(clock=clock)
        failures = 0
        purge = store.purge_idempotency_keys

        async def flaky_purge(*, limit: int = 1000) -> int:
            nonlocal failures
            if failures < 2:
                failures += 1
                raise RuntimeError("database away")
            return await purge(limit=limit)

        store.purge_idempotency_keys = flaky_purge  # type: ignore[method-assign]
        client = await serve(store, Settings(purge_interval=0.02))
        await client.post(TASKS, json=BODY, headers=KEY)
        clock.now += IDEMPOTENCY_TTL
        for _ in range(200):
            if not store._keys:
                break
            await asyncio.sleep(0.01)
        assert failures == 2
        assert not store._keys

    async def test_purge_expired_keys_works_in_batches(self) -> None:
        clock = SteppingClock(EPOCH_2024)
        store = MemoryTaskStore(clock=clock)
        for number in range(7):
            await store.create_once("alice", TaskCreate(title="t"), key=f"k{number}")
        clock.now += IDEMPOTENCY_TTL
        assert await purge_expired_keys(store, batch=3) == 7
        assert await purge_expired_keys(store, batch=3) == 0


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_bursts_across_two_workers_make_one_task_per_key(backend: str, tmp_path: Path) -> None:
    """``serve --workers 2``: rounds of 20 requests, released together on 20 connections
    that the kernel shares out between the workers, each round with its own key."""
    url = postgres_url() if backend == "postgres" else f"sqlite:///{tmp_path / 'tasks.db'}"
    user = f"burst-{uuid.uuid4().hex[:12]}"  # the PostgreSQL database is shared
    path = f"/api/{user}/tasks"
    rounds, burst = 5, 20
    with ServerProcess("--workers", "2", "--database-url", url, cwd=tmp_path) as server:
        server.wait_ready()
        statuses: Counter[str] = Counter()
        for number in range(rounds):
            start = threading.Barrier(burst)
            key = {"Idempotency-Key": f"round-{number}"}

            def send(_: int, key: dict[str, str] = key, start: threading.Barrier = start) -> Any:
                start.wait()
                return server.request("POST", path, {"title": "burst"}, key)

            with ThreadPoolExecutor(burst) as pool:
                replies = list(pool.map(send, range(burst)))
            fresh = [r for r in replies if r.status == 201 and REPLAYED.lower() not in r.headers]
            assert len(fresh) == 1, [r.status for r in replies]
            for reply in replies:
                assert reply.status in (201, 409), reply
                if reply.status == 201:
                    assert reply.body == fresh[0].body
                statuses[
                    "replayed" if REPLAYED.lower() in reply.headers else str(reply.status)
                ] += 1
        listing = server.request("GET", f"{path}?limit=500")
    assert len(listing.json()["data"]) == rounds
    print(f"{backend}: {dict(statuses)} over {rounds} rounds of {burst}")
