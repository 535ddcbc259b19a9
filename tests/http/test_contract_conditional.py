"""ETags, If-Match and If-None-Match on single tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.http.api_client import NO_BODY, ApiClient, task_path, tasks_path

ALICE = "alice"
WRITES: list[tuple[str, object]] = [
    ("PUT", {"title": "new"}),
    ("PATCH", {"completed": True}),
    ("DELETE", NO_BODY),
]


def weak(tag: str) -> str:
    return f"W/{tag}"


class TestETag:
    """POST, GET, PUT and PATCH carry the task's strong ETag, which changes on every write."""

    async def test_every_single_task_response_carries_it(self, client: ApiClient) -> None:
        """The ETag of each answer is the one a GET then sees."""
        created = await client.post(tasks_path(ALICE), json={"title": "t"})
        path = created.headers["Location"]
        tags = [created.headers["ETag"]]
        assert (await client.get(path)).headers["ETag"] == tags[-1]
        assert (await client.head(path)).headers["ETag"] == tags[-1]
        for method, body in [("PUT", {"title": "t"}), ("PATCH", {"title": "t"})]:
            reply = await client.request(method, path, json=body)
            assert reply.status == 200
            tags.append(reply.headers["ETag"])
            assert (await client.get(path)).headers["ETag"] == tags[-1]
        for tag in tags:
            assert tag.startswith('"')
            assert tag.endswith('"')
            assert len(tag) > 2
        assert len(set(tags)) == len(tags), "every write, even of equal values, changes it"

    async def test_tasks_have_their_own_tags(self, client: ApiClient) -> None:
        """Unchanged tasks keep their tag while another task is written."""
        first = await client.create(ALICE)
        second = await client.create(ALICE)
        tag = (await client.fetch(ALICE, first["id"])).headers["ETag"]
        await client.patch(task_path(ALICE, second["id"]), json={"title": "x"})
        assert (await client.fetch(ALICE, first["id"])).headers["ETag"] == tag


class TestIfMatch:
    """PUT, PATCH and DELETE honour If-Match with strong comparison; a miss is 412."""

    async def tagged(self, client: ApiClient) -> tuple[str, str, bytes]:
        created = await client.create(ALICE, description="d")
        reply = await client.fetch(ALICE, created["id"])
        return task_path(ALICE, created["id"]), reply.headers["ETag"], reply.body

    @pytest.mark.parametrize(("method", "body"), WRITES)
    async def test_matching_values_allow_the_write(
        self, client: ApiClient, subtests: pytest.Subtests, method: str, body: object
    ) -> None:
        """The current tag, *, or a list holding the current tag lets the write through."""
        headers: list[Callable[[str], str]] = [
            lambda tag: tag,
            lambda tag: "*",
            lambda tag: f'"v999", {tag}',
            lambda tag: f'{tag}, "nope"',
            lambda tag: f'W/"x",{tag}',
            lambda tag: f"  {tag}  ",
        ]
        for make_header in headers:
            path, tag, _ = await self.tagged(client)
            header = make_header(tag)
            with subtests.test(if_match=header):
                reply = await client.request(method, path, json=body, headers={"If-Match": header})
                assert reply.status == 200, reply
                if method == "DELETE":
                    assert (await client.get(path)).status == 404
                else:
                    assert reply.headers["ETag"] != tag

    @pytest.mark.parametrize(("method", "body"), WRITES)
    async def test_other_values_are_412_and_change_nothing(
        self, client: ApiClient, subtests: pytest.Subtests, method: str, body: object
    ) -> None:
        """Stale, weak, foreign, malformed and empty tags never match."""
        path, tag, before = await self.tagged(client)
        await client.patch(path, json={"description": "d2"})
        stale = tag
        current = (await client.get(path)).headers["ETag"]
        before = (await client.get(path)).body
        for header in [
            stale,
            weak(current),
            f"{weak(current)}, {stale}",
            '"v999"',
            '"v0"',
            '"v99999999999"',
            current.strip('"'),
            '""',
            "",
            "garbage",
            '"*"',
            "W/*",
        ]:
            with subtests.test(if_match=header):
                reply = await client.request(method, path, json=body, headers={"If-Match": header})
                assert reply.status == 412, reply
                assert reply.code == "PRECONDITION_FAILED"
                assert reply.error["details"] == []
                after = await client.get(path)
                assert after.body == before
                assert after.headers["ETag"] == current

    async def test_etag_of_a_deleted_and_another_task_do_not_match(self, client: ApiClient) -> None:
        """Tags are per task version: another task's current tag is just a stale one here."""
        path, tag, before = await self.tagged(client)
        other = await client.create(ALICE)
        await client.patch(task_path(ALICE, other["id"]), json={"title": "x"})
        other_tag = (await client.fetch(ALICE, other["id"])).headers["ETag"]
        assert other_tag != tag
        reply = await client.put(path, json={"title": "x"}, headers={"If-Match": other_tag})
        assert reply.status == 412
        assert (await client.get(path)).body == before

    async def test_concurrent_writes_with_one_tag(self, client: ApiClient) -> None:
        """Two PUTs with the same If-Match: one 200, one 412; the winner's body stays."""
        path, tag, _ = await self.tagged(client)
        replies = await asyncio.gather(
            *(
                client.put(path, json={"title": f"writer {n}"}, headers={"If-Match": tag})
                for n in range(2)
            )
        )
        assert sorted(reply.status for reply in replies) == [200, 412]
        winner = next(reply for reply in replies if reply.status == 200)
        final = await client.get(path)
        assert final.data == winner.data
        assert final.headers["ETag"] == winner.headers["ETag"]

    async def test_lost_update_is_prevented_across_methods(self, client: ApiClient) -> None:
        """A PATCH with a tag read before a PUT fails, and a DELETE with it too."""
        path, tag, _ = await self.tagged(client)
        assert (
            await client.put(path, json={"title": "a"}, headers={"If-Match": tag})
        ).status == 200
        patch = await client.patch(path, json={"title": "b"}, headers={"If-Match": tag})
        assert patch.status == 412
        delete = await client.delete(path, headers={"If-Match": tag})
        assert delete.status == 412
        assert (await client.get(path)).data["title"] == "a"


class TestIfNoneMatch:
    """GET and HEAD of one task honour If-None-Match with weak comparison: 304."""

    async def test_matching_values_are_304_without_a_body(
        self, client: ApiClient, subtests: pytest.Subtests
    ) -> None:
        """The tag, its weak form, * and lists holding it give 304 with ETag and request id."""
        created = await client.create(ALICE)
        path = task_path(ALICE, created["id"])
        tag = (await client.get(path)).headers["ETag"]
        for method in ["GET", "HEAD"]:
            for header in [tag, weak(tag), "*", f'"v999", {tag}', f'W/"x", {weak(tag)}']:
                with subtests.test(method=method, if_none_match=header):
                    reply = await client.request(
                        method,
                        path,
                        headers={"If-None-Match": header, "X-Request-ID": "cond-1"},
                    )
                    assert reply.status == 304, reply
                    assert reply.body == b""
                    assert reply.headers["ETag"] == tag
                    assert reply.request_id == "cond-1"

    async def test_other_values_answer_the_task(
        self, client: ApiClient, subtests: pytest.Subtests
    ) -> None:
        """A stale or unknown tag gives 200 with the task and its current tag."""
        created = await client.create(ALICE)
        path = task_path(ALICE, created["id"])
        stale = (await client.get(path)).headers["ETag"]
        await client.patch(path, json={"title": "changed"})
        current = await client.get(path)
        for header in [stale, weak(stale), '"v999"', "garbage", '""']:
            with subtests.test(if_none_match=header):
                reply = await client.get(path, headers={"If-None-Match": header})
                assert reply.status == 200, reply
                assert reply.data == current.data
                assert reply.headers["ETag"] == current.headers["ETag"]

    async def test_missing_task_is_404_even_with_star(self, client: ApiClient) -> None:
        """If-None-Match: * on a task that does not exist is still 404."""
        created = await client.create(ALICE)
        path = task_path(ALICE, created["id"])
        await client.delete(path)
        reply = await client.get(path, headers={"If-None-Match": "*"})
        assert reply.status == 404
        assert reply.code == "NOT_FOUND"

    async def test_a_write_makes_the_old_tag_miss(self, client: ApiClient) -> None:
        """A cached tag revalidates until the next write, then the new task is sent."""
        created = await client.create(ALICE)
        path = task_path(ALICE, created["id"])
        tag = (await client.get(path)).headers["ETag"]
        assert (await client.get(path, headers={"If-None-Match": tag})).status == 304
        updated = await client.put(path, json={"title": "new"})
        reply = await client.get(path, headers={"If-None-Match": tag})
        assert reply.status == 200
        data: dict[str, Any] = reply.data
        assert data == updated.data
