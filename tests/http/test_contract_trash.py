"""Contract, "Trash", over HTTP on every backend: a v1 DELETE answers as before but
trashes the task, which every task endpoint, listing and tag count then treats as
absent; the trash's pages and order; restore, purge and emptying; an idempotent create
replayed after its task was deleted; and the purge past the retention window."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Final

import pytest

from tests.conftest import StoreFactory
from tests.http.api_client import TIMESTAMP, ApiClient, ClientFactory, task_path, tasks_path
from tests.http.feed_replica import altered
from tests.http.tokens import assert_forbidden, assert_unauthorized, bearer, claims, hs, hs_settings
from tests.values import ALICE, EPOCH_2024, SteppingClock
from todo_core import MemoryTaskStore
from todo_http import Settings

BOB: Final = "bob"
TRASH: Final = f"/api/{ALICE}/trash"
MISSING: Final = "0b9a3f5e-8f4c-4d2a-9c71-3e5f2a1b7c64"


def trashed_path(task_id: str, user_id: str = ALICE) -> str:
    return f"/api/{user_id}/trash/{task_id}"


def restore_path(task_id: str, user_id: str = ALICE) -> str:
    return f"{trashed_path(task_id, user_id)}/restore"


async def trashed(client: ApiClient, user_id: str = ALICE, **params: str) -> list[Any]:
    reply = await client.get(f"/api/{user_id}/trash", params=params)
    assert reply.status == 200, reply
    assert reply.json()["message"] == "Trash retrieved"
    items: list[Any] = reply.data
    return items


async def trash_task(client: ApiClient, user_id: str = ALICE, **fields: Any) -> dict[str, Any]:
    """Create a task and delete it; returns it as the trash shows it."""
    task = await client.create(user_id, **fields)
    assert (await client.delete(task_path(user_id, task["id"]))).status == 200
    (shown,) = [item for item in await trashed(client, user_id) if item["id"] == task["id"]]
    return dict(shown)


class TestDelete:
    async def test_answers_as_v1_and_moves_the_task_to_the_trash(self, client: ApiClient) -> None:
        task = await client.create(ALICE, title="Buy milk", tags=["home"])
        reply = await client.delete(task_path(ALICE, task["id"]))
        assert reply.status == 200
        assert reply.json()["message"] == "Task deleted"
        assert reply.data == task  # no deleted_at, updated_at unchanged
        (shown,) = await trashed(client)
        deleted_at = shown.pop("deleted_at")
        assert TIMESTAMP.fullmatch(deleted_at)
        assert deleted_at >= task["updated_at"]
        assert shown == task

    async def test_a_stale_if_match_still_is_a_412_that_trashes_nothing(
        self, client: ApiClient
    ) -> None:
        task = await client.create(ALICE)
        reply = await client.delete(task_path(ALICE, task["id"]), headers={"If-Match": '"v9"'})
        assert reply.status == 412
        assert await trashed(client) == []
        assert (await client.fetch(ALICE, task["id"])).data == task

    async def test_a_trashed_task_is_absent_from_every_task_endpoint(
        self, client: ApiClient
    ) -> None:
        kept = await client.create(ALICE, title="kept", tags=["home", "work"])
        gone = await trash_task(client, title="gone", tags=["home", "errand"])
        path = task_path(ALICE, gone["id"])
        attempts: list[tuple[str, dict[str, Any]]] = [
            ("GET", {}),
            ("HEAD", {}),
            ("PUT", {"json": {"title": "back?"}}),
            ("PATCH", {"json": {"completed": True}}),
            ("DELETE", {}),
            ("PUT", {"json": {"title": "back?"}, "headers": {"If-Match": "*"}}),
        ]
        for method, kwargs in attempts:
            reply = await client.request(method, path, **kwargs)
            assert reply.status == 404, (method, reply)
            if method != "HEAD":
                assert reply.code == "NOT_FOUND"
        assert await client.ids(ALICE) == [kept["id"]]
        assert await client.ids(ALICE, completed="false") == [kept["id"]]
        assert await client.ids(ALICE, q="gone") == []
        assert await client.ids(ALICE, tag="errand") == []
        tags = (await client.get(f"/api/{ALICE}/tags")).data
        assert tags == [{"tag": "home", "count": 1}, {"tag": "work", "count": 1}]
        # Nothing about it changed while it was refused.
        assert await trashed(client) == [gone]


class TestListing:
    async def test_most_recently_deleted_first(self, client: ApiClient) -> None:
        first = await trash_task(client, title="first")
        second = await trash_task(client, title="second")
        assert [task["id"] for task in await trashed(client)] == [second["id"], first["id"]]

    async def test_equal_deletion_times_are_ordered_by_id_descending(
        self, store_factory: StoreFactory, serve: ClientFactory
    ) -> None:
        async with store_factory(clock=SteppingClock(EPOCH_2024)) as store:  # a stalled clock
            client = await serve(store)
            ids = [(await trash_task(client, title=f"t{n}"))["id"] for n in range(4)]
            listed = await trashed(client)
            assert {task["deleted_at"] for task in listed} == {listed[0]["deleted_at"]}
            assert [task["id"] for task in listed] == sorted(ids, reverse=True)

    async def test_pages_walk_the_whole_trash_once(self, client: ApiClient) -> None:
        tasks = [await trash_task(client, title=f"t{n}") for n in range(5)]
        seen: list[str] = []
        params = {"limit": "2"}
        while True:
            reply = await client.get(TRASH, params=params)
            assert reply.status == 200
            meta = reply.json()["meta"]
            assert meta["limit"] == 2
            seen.extend(task["id"] for task in reply.data)
            if meta["next_cursor"] is None:
                assert "Link" not in reply.headers
                break
            assert reply.headers["Link"] == (
                f'<{TRASH}?limit=2&cursor={meta["next_cursor"]}>; rel="next"'
            )
            params = {"limit": "2", "cursor": meta["next_cursor"]}
        assert seen == [task["id"] for task in reversed(tasks)]

    async def test_the_default_page_is_20(self, client: ApiClient) -> None:
        for n in range(21):
            await trash_task(client, title=f"t{n}")
        reply = await client.get(TRASH)
        assert len(reply.data) == 20
        assert reply.json()["meta"]["limit"] == 20
        assert reply.json()["meta"]["next_cursor"] is not None

    @pytest.mark.parametrize("limit", ["0", "101", "x", ""])
    async def test_a_limit_outside_1_to_100_is_a_422(self, client: ApiClient, limit: str) -> None:
        reply = await client.get(TRASH, params={"limit": limit})
        assert reply.status == 422
        assert reply.fields == ["limit"]

    async def test_a_tampered_or_foreign_cursor_is_a_422(self, client: ApiClient) -> None:
        for user_id in (ALICE, BOB):
            for n in range(2):
                await trash_task(client, user_id, title=f"t{n}")
        bobs = (await client.get(f"/api/{BOB}/trash", params={"limit": "1"})).json()["meta"]
        alices = (await client.get(TRASH, params={"limit": "1"})).json()["meta"]
        list_cursor = (await client.get(tasks_path(ALICE))).json()["meta"]["next_cursor"]
        for cursor in (bobs["next_cursor"], altered(alices["next_cursor"]), list_cursor):
            if cursor is None:
                continue
            reply = await client.get(TRASH, params={"cursor": cursor})
            assert reply.status == 422
            assert reply.fields == ["cursor"]

    async def test_each_user_sees_only_their_trash(self, client: ApiClient) -> None:
        await trash_task(client, BOB)
        assert await trashed(client) == []

    async def test_head_answers_without_a_body(self, client: ApiClient) -> None:
        await trash_task(client)
        reply = await client.head(TRASH)
        assert reply.status == 200
        assert reply.body == b""


class TestRestore:
    async def test_brings_the_task_back_with_a_later_updated_at(self, client: ApiClient) -> None:
        task = await client.create(ALICE, title="back", priority="high")
        await client.delete(task_path(ALICE, task["id"]))
        reply = await client.post(restore_path(task["id"]))
        assert reply.status == 200
        assert reply.json()["message"] == "Task restored"
        restored = reply.data
        assert restored["updated_at"] > task["updated_at"]
        assert {**restored, "updated_at": task["updated_at"]} == task
        fetched = await client.fetch(ALICE, task["id"])
        assert fetched.data == restored
        assert fetched.headers["ETag"] == reply.headers["ETag"]
        assert await client.ids(ALICE) == [task["id"]]
        assert await trashed(client) == []

    async def test_its_etag_guards_the_next_write(self, client: ApiClient) -> None:
        task = await client.create(ALICE)
        etag = (await client.fetch(ALICE, task["id"])).headers["ETag"]
        await client.delete(task_path(ALICE, task["id"]))
        restored = await client.post(restore_path(task["id"]))
        assert restored.headers["ETag"] != etag
        stale = await client.patch(
            task_path(ALICE, task["id"]), json={"title": "x"}, headers={"If-Match": etag}
        )
        assert stale.status == 412
        fresh = await client.patch(
            task_path(ALICE, task["id"]),
            json={"title": "x"},
            headers={"If-Match": restored.headers["ETag"]},
        )
        assert fresh.status == 200

    @pytest.mark.parametrize("case", ["live", "missing", "other user's", "malformed", "twice"])
    async def test_a_task_not_in_the_users_trash_is_a_404(
        self, client: ApiClient, case: str
    ) -> None:
        live = await client.create(ALICE)
        bobs = await trash_task(client, BOB)
        mine = await trash_task(client)
        await client.post(restore_path(mine["id"]))
        task_id = {
            "live": live["id"],
            "missing": MISSING,
            "other user's": bobs["id"],
            "malformed": "not-a-uuid",
            "twice": mine["id"],
        }[case]
        reply = await client.post(restore_path(task_id))
        assert reply.status == 404
        assert reply.code == "NOT_FOUND"
        assert await trashed(client, BOB) == [bobs]

    async def test_a_bad_user_id_is_a_422(self, client: ApiClient) -> None:
        reply = await client.post(restore_path(MISSING, "a%20b"))
        assert (reply.status, reply.fields) == (422, ["user_id"])


class TestPurge:
    async def test_answers_the_task_as_the_trash_showed_it_then_forgets_it(
        self, client: ApiClient
    ) -> None:
        shown = await trash_task(client, title="gone", description="for good")
        reply = await client.delete(trashed_path(shown["id"]))
        assert reply.status == 200
        assert reply.json()["message"] == "Task purged"
        assert reply.data == shown
        assert await trashed(client) == []
        for method, path in (
            ("POST", restore_path(shown["id"])),
            ("DELETE", trashed_path(shown["id"])),
        ):
            assert (await client.request(method, path)).status == 404
        assert (await client.get(task_path(ALICE, shown["id"]))).status == 404

    @pytest.mark.parametrize("case", ["live", "missing", "other user's", "malformed"])
    async def test_a_task_not_in_the_users_trash_is_a_404_and_stays(
        self, client: ApiClient, case: str
    ) -> None:
        live = await client.create(ALICE)
        bobs = await trash_task(client, BOB)
        task_id = {
            "live": live["id"],
            "missing": MISSING,
            "other user's": bobs["id"],
            "malformed": "xyz",
        }[case]
        reply = await client.delete(trashed_path(task_id))
        assert reply.status == 404
        assert reply.code == "NOT_FOUND"
        assert (await client.fetch(ALICE, live["id"])).data == live
        assert await trashed(client, BOB) == [bobs]


class TestEmpty:
    async def test_purges_every_task_in_the_users_trash(self, client: ApiClient) -> None:
        kept = await client.create(ALICE)
        for n in range(3):
            await trash_task(client, title=f"t{n}")
        bobs = await trash_task(client, BOB)
        reply = await client.delete(TRASH)
        assert reply.status == 200
        assert reply.json()["message"] == "Trash emptied"
        assert reply.data == {"purged": 3}
        assert await trashed(client) == []
        assert await client.ids(ALICE) == [kept["id"]]
        assert await trashed(client, BOB) == [bobs]
        assert (await client.delete(TRASH)).data == {"purged": 0}

    async def test_wrong_methods_are_405(self, client: ApiClient) -> None:
        for method, path in (
            ("POST", TRASH),
            ("PUT", TRASH),
            ("GET", trashed_path(MISSING)),
            ("GET", restore_path(MISSING)),
        ):
            reply = await client.request(method, path)
            assert reply.status == 405, (method, path)
            assert reply.code == "METHOD_NOT_ALLOWED"


class TestIdempotency:
    async def test_a_replay_after_delete_answers_the_original_response(
        self, client: ApiClient
    ) -> None:
        key = {"Idempotency-Key": "trash-then-retry"}
        body = {"title": "once"}
        first = await client.post(tasks_path(ALICE), json=body, headers=key)
        await client.delete(task_path(ALICE, first.data["id"]))
        replay = await client.post(tasks_path(ALICE), json=body, headers=key)
        assert replay.status == 201
        assert replay.data == first.data
        assert replay.headers["Location"] == first.headers["Location"]
        assert replay.headers["ETag"] == first.headers["ETag"]
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert await client.ids(ALICE) == []
        assert [task["id"] for task in await trashed(client)] == [first.data["id"]]


class TestRetention:
    async def test_the_app_purges_the_trash_past_the_window_by_itself(
        self, store_factory: StoreFactory, serve: ClientFactory
    ) -> None:
        clock = SteppingClock(EPOCH_2024)
        async with store_factory(clock=clock, retention=timedelta(days=1)) as store:
            client = await serve(store, Settings(purge_interval=0.02))
            old = await trash_task(client, title="old")
            clock.now += timedelta(hours=20)
            recent = await trash_task(client, title="recent")
            clock.now += timedelta(hours=5)
            for _ in range(300):
                if [task["id"] for task in await trashed(client)] == [recent["id"]]:
                    break
                await asyncio.sleep(0.01)
            assert await trashed(client) == [recent], "only the old one went"
            assert old["id"] != recent["id"]


async def test_the_trash_needs_the_users_own_token(serve: ClientFactory) -> None:
    client = await serve(MemoryTaskStore(), hs_settings())
    alice, bob = bearer(hs(claims())), bearer(hs(claims(BOB)))
    task = (await client.post(tasks_path(ALICE), json={"title": "t"}, headers=alice)).data
    await client.delete(task_path(ALICE, task["id"]), headers=alice)
    for method, path in (
        ("GET", TRASH),
        ("DELETE", TRASH),
        ("DELETE", trashed_path(task["id"])),
        ("POST", restore_path(task["id"])),
    ):
        assert_unauthorized(await client.request(method, path), token_given=False)
        assert_forbidden(await client.request(method, path, headers=bob))
    assert (await client.post(restore_path(task["id"]), headers=alice)).status == 200
