"""Contract, "Sync: the change feed", over HTTP on every backend: tokens for the present,
the changes after a token (each task once, at its latest change, in order), paging with
``has_more``, every kind of write moving the feed, purged tasks still reported deleted,
422 for empty, tampered and foreign tokens, and 410 once a position is older than the
retention window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest

from tests.conftest import StoreFactory
from tests.http.api_client import ApiClient, ClientFactory, task_path, tasks_path
from tests.http.feed_replica import FeedReplica, altered, changes_path
from tests.http.tokens import assert_forbidden, assert_unauthorized, bearer, claims, hs, hs_settings
from tests.values import ALICE, EPOCH_2024, SteppingClock
from todo_core import MemoryTaskStore
from todo_core.feed import FeedPosition, FeedTokens
from todo_core.listing import CursorCodec
from todo_http import Settings
from todo_http.app import open_settings_store

BOB: Final = "bob"
CHANGES: Final = changes_path(ALICE)
DUE_AT: Final = "2030-01-01T09:00:00.000000Z"


async def present(client: ApiClient, user_id: str = ALICE) -> str:
    """A token for the present moment of ``user_id``'s feed."""
    reply = await client.get(changes_path(user_id))
    assert reply.status == 200, reply
    token: str = reply.json()["meta"]["next_since"]
    return token


async def changes(client: ApiClient, since: str, **params: str) -> tuple[list[Any], Any]:
    """One page of the feed after ``since``: its items and its meta."""
    reply = await client.get(CHANGES, params={"since": since, **params})
    assert reply.status == 200, reply
    assert reply.json()["message"] == "Changes retrieved"
    return reply.data, reply.json()["meta"]


def upserted(task: dict[str, Any]) -> dict[str, Any]:
    return {"type": "upsert", "task": task}


class TestToken:
    async def test_without_since_no_items_and_a_token_for_the_present(
        self, client: ApiClient
    ) -> None:
        await client.create(ALICE)
        reply = await client.get(CHANGES)
        assert reply.status == 200
        assert reply.json()["message"] == "Changes retrieved"
        assert reply.data == []
        meta = reply.json()["meta"]
        assert set(meta) == {"limit", "next_since", "has_more"}
        assert meta["limit"] == 100
        assert meta["has_more"] is False
        # The present: what was written before it is not reported after it.
        items, later = await changes(client, meta["next_since"])
        assert items == []
        assert later["has_more"] is False

    async def test_head_answers_like_get_without_a_body(self, client: ApiClient) -> None:
        reply = await client.head(CHANGES)
        assert reply.status == 200
        assert reply.body == b""

    @pytest.mark.parametrize(
        "params",
        [
            pytest.param({"since": ""}, id="empty since"),
            pytest.param({"since": "not-a-token"}, id="garbage"),
            pytest.param([("since", "x"), ("since", "y")], id="repeated"),
        ],
    )
    async def test_a_bad_since_is_a_422_naming_it(self, client: ApiClient, params: Any) -> None:
        reply = await client.get(CHANGES, params=params)
        assert reply.status == 422
        assert reply.code == "VALIDATION_ERROR"
        assert reply.fields == ["since"]

    async def test_a_tampered_token_is_a_422(self, client: ApiClient) -> None:
        token = await present(client)
        reply = await client.get(CHANGES, params={"since": altered(token)})
        assert (reply.status, reply.code, reply.fields) == (422, "VALIDATION_ERROR", ["since"])

    async def test_another_users_token_is_a_422(self, client: ApiClient) -> None:
        await client.create(BOB)
        bobs = await present(client, BOB)
        reply = await client.get(CHANGES, params={"since": bobs})
        assert (reply.status, reply.code, reply.fields) == (422, "VALIDATION_ERROR", ["since"])

    async def test_a_list_cursor_is_no_token(self, client: ApiClient) -> None:
        for _ in range(2):
            await client.create(ALICE)
        cursor = (await client.get(tasks_path(ALICE), params={"limit": "1"})).json()["meta"][
            "next_cursor"
        ]
        reply = await client.get(CHANGES, params={"since": cursor})
        assert (reply.status, reply.fields) == (422, ["since"])

    @pytest.mark.parametrize("limit", ["0", "501", "-1", "ten", "1.5", ""])
    async def test_limit_outside_1_to_500_is_a_422(self, client: ApiClient, limit: str) -> None:
        reply = await client.get(CHANGES, params={"since": await present(client), "limit": limit})
        assert (reply.status, reply.fields) == (422, ["limit"])

    async def test_a_bad_user_id_is_a_422(self, client: ApiClient) -> None:
        reply = await client.get(changes_path("not%20valid"))
        assert (reply.status, reply.fields) == (422, ["user_id"])


class TestItems:
    async def test_each_write_is_reported_with_the_tasks_latest_state(
        self, client: ApiClient
    ) -> None:
        since = await present(client)
        first = await client.create(ALICE, title="first")
        second = await client.create(ALICE, title="second")
        items, meta = await changes(client, since)
        assert items == [upserted(first), upserted(second)]
        assert meta["has_more"] is False
        # A task changed again moves to the position of its latest change, once.
        patched = (await client.patch(task_path(ALICE, first["id"]), json={"title": "1st"})).data
        items, _ = await changes(client, since)
        assert items == [upserted(second), upserted(patched)]
        # From the page's token on, only the newer change.
        items, _ = await changes(client, meta["next_since"])
        assert items == [upserted(patched)]

    async def test_every_kind_of_write_moves_the_feed(self, client: ApiClient) -> None:
        task = await client.create(ALICE)
        path = task_path(ALICE, task["id"])
        writes = [
            ("PUT", path, {"title": "replaced"}),
            ("PATCH", path, {"completed": True}),
            ("DELETE", path, None),
            ("POST", f"/api/{ALICE}/trash/{task['id']}/restore", None),
        ]
        for method, write_path, body in writes:
            since = await present(client)
            kwargs: dict[str, Any] = {} if body is None else {"json": body}
            assert (await client.request(method, write_path, **kwargs)).status == 200
            items, _ = await changes(client, since)
            assert len(items) == 1, (method, items)
            kind = "delete" if method == "DELETE" else "upsert"
            assert items[0]["type"] == kind, (method, items)

    async def test_a_delete_carries_the_id_and_when(self, client: ApiClient) -> None:
        task = await client.create(ALICE)
        since = await present(client)
        await client.delete(task_path(ALICE, task["id"]))
        items, _ = await changes(client, since)
        trashed = (await client.get(f"/api/{ALICE}/trash")).data
        assert items == [
            {"type": "delete", "id": task["id"], "deleted_at": trashed[0]["deleted_at"]}
        ]

    async def test_a_completed_recurring_task_comes_before_its_successor(
        self, client: ApiClient
    ) -> None:
        task = await client.create(ALICE, due_at=DUE_AT, recurrence="daily")
        since = await present(client)
        done = (await client.patch(task_path(ALICE, task["id"]), json={"completed": True})).data
        successor = (await client.fetch(ALICE, done["next_occurrence_id"])).data
        items, _ = await changes(client, since)
        assert items == [upserted(done), upserted(successor)]

    async def test_a_purged_task_is_still_reported_deleted(self, client: ApiClient) -> None:
        before_create = await present(client)
        task = await client.create(ALICE)
        before_delete = await present(client)
        await client.delete(task_path(ALICE, task["id"]))
        assert (await client.delete(f"/api/{ALICE}/trash/{task['id']}")).status == 200
        for since in (before_create, before_delete):
            items, _ = await changes(client, since)
            assert [(item["type"], item["id"]) for item in items] == [("delete", task["id"])]

    async def test_users_feeds_are_apart(self, client: ApiClient) -> None:
        since = await present(client)
        await client.create(BOB)
        assert (await changes(client, since))[0] == []


class TestPaging:
    async def test_has_more_until_the_feed_is_drained(self, client: ApiClient) -> None:
        since = await present(client)
        created = [await client.create(ALICE, title=f"t{n}") for n in range(5)]
        seen: list[Any] = []
        pages = 0
        while True:
            items, meta = await changes(client, since, limit="2")
            assert meta["limit"] == 2
            assert len(items) <= 2
            seen.extend(items)
            since, pages = meta["next_since"], pages + 1
            if not meta["has_more"]:
                break
            assert len(items) == 2
        assert seen == [upserted(task) for task in created]
        assert pages == 3
        assert (await changes(client, since))[0] == []

    async def test_a_task_reappears_only_if_it_changed_again(self, client: ApiClient) -> None:
        since = await present(client)
        first = await client.create(ALICE, title="first")
        await client.create(ALICE, title="second")
        items, meta = await changes(client, since, limit="1")
        assert items == [upserted(first)]
        assert meta["has_more"] is True
        # Changed before the next page is read: it comes again, at its new position.
        patched = (await client.patch(task_path(ALICE, first["id"]), json={"title": "new"})).data
        items, meta = await changes(client, meta["next_since"])
        assert [item["task"]["title"] for item in items] == ["second", "new"]
        assert items[-1] == upserted(patched)

    async def test_a_follower_ends_with_the_servers_tasks(self, client: ApiClient) -> None:
        for n in range(3):
            await client.create(ALICE, title=f"old {n}")
        replica = FeedReplica(client, ALICE)
        await replica.start()
        tasks = [await client.create(ALICE, title=f"new {n}") for n in range(4)]
        await client.patch(task_path(ALICE, tasks[0]["id"]), json={"completed": True})
        await client.delete(task_path(ALICE, tasks[1]["id"]))
        await client.put(task_path(ALICE, tasks[2]["id"]), json={"title": "put"})
        await client.delete(task_path(ALICE, tasks[3]["id"]))
        await client.post(f"/api/{ALICE}/trash/{tasks[3]['id']}/restore")
        await replica.follow(limit=1)
        await replica.assert_in_step()


class TestRetention:
    async def test_a_position_older_than_the_window_is_a_410(
        self, store_factory: StoreFactory, serve: ClientFactory
    ) -> None:
        clock = SteppingClock(EPOCH_2024)
        async with store_factory(clock=clock, retention=timedelta(days=1)) as store:
            client = await serve(store)
            since = await present(client)
            await client.create(ALICE, title="a")
            await client.create(ALICE, title="b")
            clock.now += timedelta(hours=12)
            # Handed out now, but it names the first task's change, made 12 hours ago.
            _, meta = await changes(client, since, limit="1")
            assert meta["has_more"] is True
            handed_out = meta["next_since"]
            clock.now += timedelta(hours=13)
            reply = await client.get(CHANGES, params={"since": handed_out})
            assert (reply.status, reply.code) == (410, "SYNC_TOKEN_EXPIRED")
            assert reply.error["details"] == []
            # A drained feed's token names the present: still good for a day.
            fresh = await present(client)
            clock.now += timedelta(hours=23)
            assert (await changes(client, fresh))[0] == []

    async def test_within_the_window_a_token_stays_valid(
        self, store_factory: StoreFactory, serve: ClientFactory
    ) -> None:
        clock = SteppingClock(EPOCH_2024)
        async with store_factory(clock=clock, retention=timedelta(days=1)) as store:
            client = await serve(store)
            since = await present(client)
            task = await client.create(ALICE)
            clock.now += timedelta(hours=23)
            assert (await changes(client, since))[0] == [upserted(task)]


class TestAuthentication:
    async def test_the_feed_needs_the_users_own_token(self, serve: ClientFactory) -> None:
        client = await serve(MemoryTaskStore(), hs_settings())
        assert_unauthorized(await client.get(CHANGES), token_given=False)
        assert_forbidden(await client.get(CHANGES, headers=bearer(hs(claims(BOB)))))
        assert (await client.get(CHANGES, headers=bearer(hs(claims())))).status == 200


class TestConfiguredRetention:
    """``--retention-days`` (``Settings.retention_days``) is the window the app's own
    store applies: a position two days old is 410 with one day, and good with three."""

    @pytest.mark.parametrize(("days", "status"), [(1, 410), (3, 200)])
    async def test_the_settings_window_decides(
        self, serve: ClientFactory, days: int, status: int
    ) -> None:
        secret = "s" * 32
        settings = Settings(database_url="memory://", cursor_secret=secret, retention_days=days)
        async with open_settings_store(settings) as store:
            client = await serve(store, settings)
            old = FeedTokens(CursorCodec(secret.encode())).encode(
                ALICE, FeedPosition(0, datetime.now(UTC) - timedelta(days=2))
            )
            assert (await client.get(CHANGES, params={"since": old})).status == status


class TestAcrossWorkers:
    async def test_a_token_from_one_worker_is_good_at_another(
        self, backend: str, store_factory: StoreFactory, serve: ClientFactory
    ) -> None:
        """Two stores on one database, as two worker processes have: a token one hands
        out reads the other's feed (the memory store has no second worker)."""
        if backend == "memory":
            pytest.skip("a memory store is one process's own")
        async with store_factory() as first_store, store_factory() as second_store:
            first, second = await serve(first_store), await serve(second_store)
            since = await present(first)
            task = await second.create(ALICE)
            assert (await changes(first, since))[0] == [upserted(task)]
            assert (await changes(second, since))[0] == [upserted(task)]
