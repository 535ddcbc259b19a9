"""Organizing tasks over HTTP: the listing's new filters and sorts walked through Link,
cursors bound to them, and GET /api/{user_id}/tags."""

from __future__ import annotations

from typing import Any

import pytest
from yarl import URL

from tests.http.api_client import ApiClient, task_path, tasks_path
from tests.http.test_contract_listing import meta, next_link, walk
from todo_core import PRIORITIES

ALICE = "alice"
RANK = {level: rank for rank, level in enumerate(PRIORITIES)}
# Priorities, tags and due times spread so that every filter keeps some and drops some,
# with ties on each sort key and tasks without due_at.
SPREAD: list[dict[str, Any]] = [
    {
        "priority": PRIORITIES[n % 4],
        "tags": [["home"], ["work", "home"], [], ["Work"], ["errand", "home"]][n % 5],
        "due_at": None if n % 3 == 0 else f"2030-01-{1 + n % 7:02d}T09:00:00+01:00",
    }
    for n in range(23)
]


def tags_path(user_id: str) -> str:
    return f"/api/{user_id}/tags"


async def spread(client: ApiClient) -> list[dict[str, Any]]:
    return [await client.create(ALICE, title=f"t{n}", **fields) for n, fields in enumerate(SPREAD)]


def expected(tasks: list[dict[str, Any]], sort: str) -> list[str]:
    """Ids in ``sort`` order: key, then id, same direction; no due_at last both ways."""
    field, descending = sort.removeprefix("-"), sort.startswith("-")
    valued = [task for task in tasks if task[field] is not None]
    key = (lambda t: (RANK[t[field]], t["id"])) if field == "priority" else None

    def order(task: dict[str, Any]) -> tuple[Any, str]:
        return key(task) if key else (task[field], task["id"])

    ordered = sorted(valued, key=order, reverse=descending)
    nulls = sorted(
        (t for t in tasks if t[field] is None), key=lambda t: t["id"], reverse=descending
    )
    return [task["id"] for task in ordered + nulls]


class TestFilters:
    """Each filter keeps exactly the tasks its rule names, on every page."""

    @pytest.mark.parametrize(
        ("params", "keep"),
        [
            ({"priority": "high,medium"}, lambda t: t["priority"] in ("high", "medium")),
            ({"priority": "none"}, lambda t: t["priority"] == "none"),
            ({"tag": "home"}, lambda t: "home" in t["tags"]),
            ({"tag": "%20WORK%20,home,Home"}, lambda t: {"work", "home"} <= set(t["tags"])),
            (
                {"due_min": "2030-01-03T08:00:00Z"},
                lambda t: t["due_at"] is not None and t["due_at"] >= "2030-01-03T08:00:00",
            ),
            (
                {"due_max": "2030-01-03T09:00:00%2B01:00"},
                lambda t: t["due_at"] is not None and t["due_at"] < "2030-01-03T08:00:00",
            ),
            ({"due_min": "2030-01-05T00:00:00Z", "due_max": "2030-01-05T00:00:00Z"}, None),
            ({"due_min": "2030-01-06T00:00:00Z", "due_max": "2030-01-02T00:00:00Z"}, None),
            (
                {"priority": "low,high", "tag": "home", "completed": "false"},
                lambda t: t["priority"] in ("low", "high") and "home" in t["tags"],
            ),
        ],
    )
    async def test_filters_walk_to_the_end(
        self, client: ApiClient, params: dict[str, str], keep: Any
    ) -> None:
        tasks = await spread(client)
        query = "&".join(f"{name}={value}" for name, value in params.items())
        # Pages of 4 reach the end only if each Link carries the filters on.
        walked = await walk_query(client, f"{tasks_path(ALICE)}?{query}&limit=4")
        wanted = [t for t in tasks if keep is not None and keep(t)]
        assert [t["id"] for t in walked] == expected(wanted, "-created_at")

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("priority=urgent", "priority"),
            ("priority=high,high", "priority"),
            ("priority=", "priority"),
            ("priority=High", "priority"),
            ("tag=", "tag"),
            ("tag=a,,b", "tag"),
            ("tag=" + ",".join(f"t{n}" for n in range(21)), "tag"),
            ("tag=" + "x" * 41, "tag"),
            ("tag=a%00", "tag"),
            ("due_min=2030-01-01", "due_min"),
            ("due_max=2030-01-01T00:00:00", "due_max"),
            ("due_min=soon", "due_min"),
            ("sort=urgency", "sort"),
            ("priority=low&priority=high", "priority"),
            ("tag=a&tag=b", "tag"),
            ("due_min=2030-01-01T00:00:00Z&due_min=2030-01-02T00:00:00Z", "due_min"),
        ],
    )
    async def test_bad_values_are_422_naming_the_parameter(
        self, client: ApiClient, query: str, field: str
    ) -> None:
        reply = await client.get(f"{tasks_path(ALICE)}?{query}")
        assert (reply.status, reply.code) == (422, "VALIDATION_ERROR"), reply
        assert reply.fields == [field]

    async def test_a_literal_plus_is_422_that_says_to_send_percent_2b(
        self, client: ApiClient
    ) -> None:
        reply = await client.get(f"{tasks_path(ALICE)}?due_min=2030-01-01T00:00:00+01:00")
        assert reply.status == 422
        assert reply.fields == ["due_min"]
        assert "%2B" in reply.error["details"][0]["message"]


async def walk_query(client: ApiClient, first: str) -> list[dict[str, Any]]:
    """Every page from ``first``, following Link rel="next"."""
    replies = [await client.get(first)]
    while (target := next_link(replies[-1])) is not None:
        assert replies[-1].status == 200, replies[-1]
        assert len(replies) < 100, "a walk that never ends"
        replies.append(await client.get(target))
    assert replies[-1].status == 200, replies[-1]
    return [task for reply in replies for task in reply.data]


class TestSorts:
    """due_at and priority sorts: key, then id; tasks without due_at last both ways."""

    @pytest.mark.parametrize("sort", ["due_at", "-due_at", "priority", "-priority"])
    async def test_every_page_in_order(self, client: ApiClient, sort: str) -> None:
        tasks = await spread(client)
        for limit in (1, 5, 100):
            walked, _ = await walk(client, ALICE, {"sort": sort, "limit": str(limit)})
            assert [t["id"] for t in walked] == expected(tasks, sort), limit

    async def test_a_cursor_serves_the_same_filter_spelled_otherwise(
        self, client: ApiClient
    ) -> None:
        tasks = await spread(client)
        first = await client.get(tasks_path(ALICE), params={"priority": "high,low", "limit": "2"})
        cursor = meta(first)["next_cursor"]
        assert cursor is not None
        rest, _ = await walk(client, ALICE, {"priority": "low,high", "cursor": cursor})
        wanted = expected([t for t in tasks if t["priority"] in ("high", "low")], "-created_at")
        assert [t["id"] for t in first.data + rest] == wanted
        tagged = await client.get(tasks_path(ALICE), params={"tag": "Work,home", "limit": "1"})
        again = await client.get(
            tasks_path(ALICE),
            params={"tag": "home, work", "cursor": meta(tagged)["next_cursor"]},
        )
        assert again.status == 200, again

    @pytest.mark.parametrize(
        "changed",
        [
            {"priority": "high"},
            {"priority": "high,low,none"},
            {"tag": "home"},
            {"due_min": "2030-01-01T00:00:00Z"},
            {"due_max": "2030-01-01T00:00:00Z"},
            {"sort": "priority"},
        ],
    )
    async def test_a_cursor_is_bound_to_every_filter(
        self, client: ApiClient, changed: dict[str, str]
    ) -> None:
        await spread(client)
        params = {"priority": "high,low", "sort": "due_at", "limit": "1"}
        cursor = meta(await client.get(tasks_path(ALICE), params=params))["next_cursor"]
        reply = await client.get(tasks_path(ALICE), params={**params, **changed, "cursor": cursor})
        assert (reply.status, reply.fields) == (422, ["cursor"])


class TestTags:
    """GET /api/{user_id}/tags: every tag in use with its count, by code point, paged."""

    async def test_counts_in_code_point_order(self, client: ApiClient) -> None:
        tasks = await spread(client)
        await client.create("bob", tags=["bob-only"])
        counts: dict[str, int] = {}
        for task in tasks:
            for tag in task["tags"]:
                counts[tag] = counts.get(tag, 0) + 1
        reply = await client.get(tags_path(ALICE))
        assert reply.status == 200
        assert reply.json()["message"] == "Tags retrieved"
        assert reply.data == [{"tag": tag, "count": counts[tag]} for tag in sorted(counts)]
        assert meta(reply) == {"limit": 100, "next_cursor": None}
        assert "Link" not in reply.headers
        assert (await client.get(tags_path("carol"))).data == []

    async def test_a_deleted_task_no_longer_counts(self, client: ApiClient) -> None:
        task = await client.create(ALICE, tags=["gone"])
        await client.create(ALICE, tags=["kept", "Gone"])
        await client.delete(task_path(ALICE, task["id"]))
        assert (await client.get(tags_path(ALICE))).data == [
            {"tag": "gone", "count": 1},
            {"tag": "kept", "count": 1},
        ]

    async def test_pages_follow_link_to_the_end(self, client: ApiClient) -> None:
        names = ["b", "a", "é", "Z", "z0", "10", "1", "home"]
        for name in names:
            await client.create(ALICE, tags=[name])
        replies = [await client.get(tags_path(ALICE), params={"limit": "3"})]
        while (target := next_link(replies[-1])) is not None:
            assert URL(target).path == tags_path(ALICE)
            assert URL(target).query["limit"] == "3"
            replies.append(await client.get(target))
        walked = [item["tag"] for reply in replies for item in reply.data]
        assert walked == sorted({name.lower() for name in names})
        assert [len(reply.data) for reply in replies] == [3, 3, 2]

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("limit=0", "limit"),
            ("limit=501", "limit"),
            ("limit=x", "limit"),
            ("limit=1&limit=2", "limit"),
            ("cursor=forged", "cursor"),
        ],
    )
    async def test_bad_parameters_are_422(self, client: ApiClient, query: str, field: str) -> None:
        reply = await client.get(f"{tags_path(ALICE)}?{query}")
        assert (reply.status, reply.fields) == (422, [field])

    async def test_a_task_cursor_is_not_a_tag_cursor(self, client: ApiClient) -> None:
        await client.create(ALICE, tags=["a"])
        await client.create(ALICE, tags=["b"])
        tag_cursor = meta(await client.get(tags_path(ALICE), params={"limit": "1"}))["next_cursor"]
        reply = await client.get(tasks_path(ALICE), params={"cursor": tag_cursor})
        assert (reply.status, reply.fields) == (422, ["cursor"])
        bob = await client.get(tags_path("bob"), params={"cursor": tag_cursor})
        assert (bob.status, bob.fields) == (422, ["cursor"])

    async def test_methods_paths_and_users(self, client: ApiClient) -> None:
        refused = await client.post(tags_path(ALICE), json={"tag": "x"})
        assert (refused.status, refused.code) == (405, "METHOD_NOT_ALLOWED")
        assert set(refused.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}
        head = await client.head(tags_path(ALICE))
        assert (head.status, head.body) == (200, b"")
        bad_user = await client.get(tags_path("not%20valid"))
        assert (bad_user.status, bad_user.fields) == (422, ["user_id"])
        unknown = await client.get(f"{tags_path(ALICE)}/home")
        assert (unknown.status, unknown.code) == (404, "NOT_FOUND")
