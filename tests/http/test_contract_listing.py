"""Listing: filters, sorts, limits, keyset pages with Link headers, and cursors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from yarl import URL

from tests.backends import backend_url
from tests.http.api_client import ApiClient, ClientFactory, Reply, task_path, tasks_path
from todo_core import TaskCreate, TaskPatch, TaskStore, open_store

ALICE = "alice"
BOB = "bob"
SORTS = ["created_at", "-created_at", "updated_at", "-updated_at", "title", "-title"]
LINK = re.compile(r'<([^<>]+)>; rel="next"')


def expected_order(tasks: list[dict[str, Any]], sort: str) -> list[str]:
    """The ids of ``tasks`` in ``sort`` order, ties broken by id in the same direction."""
    key = sort.removeprefix("-")
    ordered = sorted(tasks, key=lambda task: (task[key], task["id"]), reverse=sort[0] == "-")
    return [task["id"] for task in ordered]


def meta(reply: Reply) -> dict[str, Any]:
    envelope = reply.json()
    assert set(envelope) == {"success", "data", "message", "meta"}, envelope
    assert set(envelope["meta"]) == {"limit", "next_cursor"}, envelope
    result: dict[str, Any] = envelope["meta"]
    return result


def next_link(reply: Reply) -> str | None:
    """The rel="next" target, checked against meta.next_cursor."""
    cursor = meta(reply)["next_cursor"]
    link = reply.headers.get("Link")
    if cursor is None:
        assert link is None, link
        return None
    assert link is not None
    match = LINK.fullmatch(link)
    assert match is not None, link
    target = match.group(1)
    assert URL(target).query["cursor"] == cursor
    return target


async def walk(
    client: ApiClient, user_id: str, params: dict[str, str], *, limits: list[int] | None = None
) -> tuple[list[dict[str, Any]], list[Reply]]:
    """Every page of one listing, following Link rel="next" (with ``limits`` per page)."""
    replies = [await client.get(tasks_path(user_id), params=params)]
    while True:
        reply = replies[-1]
        assert reply.status == 200, reply
        page_limit = meta(reply)["limit"]
        assert len(reply.data) <= page_limit
        target = next_link(reply)
        if target is None:
            break
        assert len(reply.data) == page_limit, "only the last page may be short"
        assert len(replies) < 1000, "a walk that never ends"
        if limits:
            target = str(URL(target).update_query(limit=limits[len(replies) % len(limits)]))
        replies.append(await client.get(target))
    return [task for reply in replies for task in reply.data], replies


async def make(store: TaskStore, user_id: str, count: int, **fields: Any) -> None:
    """``count`` tasks straight into the store (faster than over HTTP)."""
    for n in range(count):
        await store.create(user_id, TaskCreate(**{"title": f"task {n}", **fields}))


async def each_refused(
    client: ApiClient, subtests: pytest.Subtests, field: str, values: list[str]
) -> None:
    """Each of ``values`` as the query parameter ``field`` is a 422 naming only it."""
    for value in values:
        with subtests.test(**{field: value[:60]}):
            reply = await client.get(tasks_path(ALICE), params={field: value})
            assert reply.status == 422, reply
            assert reply.code == "VALIDATION_ERROR"
            assert reply.fields == [field]


class TestDefaults:
    """Without parameters: newest first, limit 100, meta and no Link on the last page."""

    async def test_empty_listing(self, client: ApiClient) -> None:
        """An unknown user has an empty first page with next_cursor null."""
        reply = await client.get(tasks_path(ALICE))
        assert reply.status == 200
        assert reply.data == []
        assert meta(reply) == {"limit": 100, "next_cursor": None}
        assert "Link" not in reply.headers
        assert isinstance(reply.json()["message"], str)

    async def test_newest_first(self, client: ApiClient) -> None:
        """The default sort is -created_at."""
        created = [await client.create(ALICE, title=f"t{n}") for n in range(4)]
        reply = await client.get(tasks_path(ALICE))
        assert [task["id"] for task in reply.data] == expected_order(created, "-created_at")

    async def test_default_limit_is_100(self, client: ApiClient, store: TaskStore) -> None:
        """101 tasks make a first page of 100 with a next link, then a page of 1."""
        await make(store, ALICE, 101)
        first = await client.get(tasks_path(ALICE))
        assert len(first.data) == 100
        assert meta(first)["limit"] == 100
        target = next_link(first)
        assert target is not None
        second = await client.get(target)
        assert len(second.data) == 1
        assert meta(second) == {"limit": 100, "next_cursor": None}
        assert second.data[0]["id"] not in {task["id"] for task in first.data}


class TestLimit:
    """limit is an integer from 1 to 500; anything else is 422 naming limit."""

    async def test_bounds_are_accepted(self, client: ApiClient, store: TaskStore) -> None:
        """limit=1 gives one task and a next link; limit=500 gives all."""
        await make(store, ALICE, 3)
        one = await client.get(tasks_path(ALICE), params={"limit": "1"})
        assert len(one.data) == 1
        assert meta(one)["limit"] == 1
        assert next_link(one) is not None
        every = await client.get(tasks_path(ALICE), params={"limit": "500"})
        assert len(every.data) == 3
        assert meta(every) == {"limit": 500, "next_cursor": None}

    async def test_500_is_a_full_page(self, client: ApiClient, store: TaskStore) -> None:
        """501 tasks walk in pages of 500 and 1."""
        await make(store, ALICE, 501)
        tasks, replies = await walk(client, ALICE, {"limit": "500"})
        assert [len(reply.data) for reply in replies] == [500, 1]
        assert len({task["id"] for task in tasks}) == 501

    async def test_rejects_anything_else(
        self, client: ApiClient, subtests: pytest.Subtests
    ) -> None:
        """0, 501, non-integers, signs, spaces and huge numbers are 422."""
        await each_refused(
            client,
            subtests,
            "limit",
            [
                "0",
                "501",
                "abc",
                "-1",
                "1.5",
                "1e2",
                "+5",
                " 5",
                "5 ",
                "0x10",
                "",
                "2147483648",
                "99999999999999999999",
                "\uff15",
                "\u0661",
            ],
        )


class TestParameters:
    """Unknown parameters are ignored; a repeated known one and a bad value are 422."""

    async def test_repeated_known_parameter_is_422(
        self, client: ApiClient, subtests: pytest.Subtests
    ) -> None:
        """Even the same value twice is refused, naming the parameter."""
        for name, value in [
            ("completed", "true"),
            ("q", "x"),
            ("sort", "title"),
            ("limit", "5"),
            ("cursor", "abc"),
        ]:
            with subtests.test(name=name):
                reply = await client.get(tasks_path(ALICE), params=[(name, value), (name, value)])
                assert reply.status == 422, reply
                assert reply.fields == [name]

    async def test_unknown_parameters_are_ignored(
        self, client: ApiClient, store: TaskStore
    ) -> None:
        """Names the contract does not list, in any case, change nothing."""
        await make(store, ALICE, 3)
        plain = await client.get(tasks_path(ALICE))
        noisy = await client.get(
            tasks_path(ALICE),
            params=[("foo", "bar"), ("page", "2"), ("LIMIT", "0"), ("Sort", "x"), ("page", "3")],
        )
        assert noisy.status == 200
        assert noisy.data == plain.data
        assert meta(noisy) == meta(plain)

    async def test_completed_is_exactly_true_or_false(
        self, client: ApiClient, subtests: pytest.Subtests
    ) -> None:
        """True, 1, yes, empty and the like are 422 naming completed."""
        await each_refused(
            client,
            subtests,
            "completed",
            ["True", "TRUE", "False", "1", "0", "yes", "", "null", "t"],
        )

    async def test_sort_is_one_of_six(self, client: ApiClient, subtests: pytest.Subtests) -> None:
        """Any other sort value is 422 naming sort."""
        await each_refused(
            client,
            subtests,
            "sort",
            [
                "id",
                "-id",
                "created",
                "",
                "+title",
                "TITLE",
                "title,-created_at",
                "--title",
            ],
        )

    async def test_q_that_no_backend_can_hold(
        self, client: ApiClient, subtests: pytest.Subtests
    ) -> None:
        """q with NUL is 422 naming q; undecodable bytes are 422 or no match, never 500."""
        await client.create(ALICE)
        nul = await client.get(tasks_path(ALICE) + "?q=a%00b")
        assert nul.status == 422, nul
        assert nul.fields == ["q"]
        for raw in ["%ED%A0%80", "%FF", "%C0%AF", "%"]:
            with subtests.test(q=raw):
                reply = await client.get(tasks_path(ALICE) + "?q=" + raw)
                assert reply.status in {200, 422}, reply
                if reply.status == 200:
                    assert reply.data == []
                else:
                    assert reply.fields == ["q"]


class TestFilters:
    """completed filters by state; q is a case-insensitive substring of title or description."""

    async def test_completed(self, client: ApiClient) -> None:
        """completed=true and completed=false split the tasks."""
        done = await client.create(ALICE, completed=True)
        todo = await client.create(ALICE)
        assert await client.ids(ALICE, completed="true") == [done["id"]]
        assert await client.ids(ALICE, completed="false") == [todo["id"]]

    async def test_q_searches_title_and_description(self, client: ApiClient) -> None:
        """A match in either field counts, in any letter case; null descriptions are fine."""
        in_title = await client.create(ALICE, title="Buy MILK")
        in_description = await client.create(ALICE, title="x", description="oat milk please")
        await client.create(ALICE, title="nothing", description=None)
        await client.create(BOB, title="milk too")
        found = await client.ids(ALICE, q="mIlK", sort="created_at")
        assert found == [in_title["id"], in_description["id"]]

    async def test_empty_q_means_no_filter(self, client: ApiClient, store: TaskStore) -> None:
        """q= lists everything."""
        await make(store, ALICE, 3)
        assert len(await client.ids(ALICE, q="")) == 3

    async def test_q_combines_with_completed(self, client: ApiClient) -> None:
        """Both filters apply together."""
        await client.create(ALICE, title="report", completed=True)
        wanted = await client.create(ALICE, title="Report draft")
        await client.create(ALICE, title="other")
        assert await client.ids(ALICE, q="REPORT", completed="false") == [wanted["id"]]

    async def test_q_is_literal_and_lowercases_like_python(
        self, client: ApiClient, subtests: pytest.Subtests
    ) -> None:
        """%, _ and \\ are literal; case folding is str.lower(), identically on every backend."""
        titles = [
            "100% done",
            "a_b",
            "back\\slash",
            "ÅNGSTRÖM",
            "\u03a3\u0391\u03a3",
            "İstanbul",
            "straße",
        ]
        titles += ["STRASSE", "ǅemal"]
        for title in titles:
            await client.create(ALICE, title=title)
        for q, matching in [
            ("%", ["100% done"]),
            ("_", ["a_b"]),
            ("\\", ["back\\slash"]),
            ("%_", []),
            ("*", []),
            ("ångström", ["ÅNGSTRÖM"]),
            ("\u03c3\u03b1\u03c2", ["\u03a3\u0391\u03a3"]),
            ("\u03c3\u03b1\u03c3", []),
            ("i\u0307stanbul", ["İstanbul"]),
            ("istanbul", []),
            ("ß", ["straße"]),
            ("ss", ["STRASSE"]),
            ("ǆ", ["ǅemal"]),
        ]:
            with subtests.test(q=q):
                reply = await client.get(tasks_path(ALICE), params={"q": q, "sort": "title"})
                assert reply.status == 200
                assert sorted(matching) == sorted(t for t in titles if q.lower() in t.lower())
                assert sorted(task["title"] for task in reply.data) == sorted(matching)


class TestSorts:
    """Six sorts; ties are broken by id in the sort's direction; titles by code point."""

    async def make_varied(self, client: ApiClient, store: TaskStore) -> list[dict[str, Any]]:
        """Tasks with duplicate titles, mixed case and updates out of creation order."""
        titles = ["b", "B", "a", "é", "a", "Z", "b", "a", "ß", "A"]
        tasks = [await client.create(ALICE, title=title) for title in titles]
        for index in [3, 0, 7, 5]:
            await store.patch(ALICE, UUID(tasks[index]["id"]), TaskPatch(completed=True))
        listed: list[dict[str, Any]] = (
            await client.get(tasks_path(ALICE), params={"limit": "500"})
        ).data
        return listed

    @pytest.mark.parametrize("sort", SORTS)
    async def test_order(self, client: ApiClient, store: TaskStore, sort: str) -> None:
        """One page and a walk in pages of 3 both follow the sort exactly."""
        tasks = await self.make_varied(client, store)
        expected = expected_order(tasks, sort)
        page = await client.get(tasks_path(ALICE), params={"sort": sort, "limit": "500"})
        assert [task["id"] for task in page.data] == expected
        walked, replies = await walk(client, ALICE, {"sort": sort, "limit": "3"})
        assert [task["id"] for task in walked] == expected
        assert len(replies) == 4


class TestWalks:
    """Following Link rel="next" returns each matching task exactly once, in order."""

    @pytest.mark.parametrize("sort", SORTS)
    async def test_each_task_once_with_filters(self, client: ApiClient, sort: str) -> None:
        """The Link keeps q, completed and sort; pages that fit exactly leave no empty page."""
        created = []
        for n in range(14):
            created.append(await client.create(ALICE, title=f"Item {n % 4}", completed=n % 3 == 0))
        await client.create(ALICE, title="unrelated")
        wanted = [task for task in created if task["completed"] is False]
        params = {"sort": sort, "limit": "3", "q": "item", "completed": "false"}
        walked, replies = await walk(client, ALICE, params)
        assert [task["id"] for task in walked] == expected_order(wanted, sort)
        assert len(replies) == 3

    async def test_link_carries_the_other_parameters(self, client: ApiClient) -> None:
        """The next link repeats q, sort, completed and limit with the new cursor."""
        for _ in range(3):
            await client.create(ALICE, title="match me")
        reply = await client.get(
            tasks_path(ALICE),
            params={"q": "match", "sort": "title", "completed": "false", "limit": "2"},
        )
        target = next_link(reply)
        assert target is not None
        url = URL(target)
        assert url.path == tasks_path(ALICE)
        assert dict(url.query) == {
            "q": "match",
            "sort": "title",
            "completed": "false",
            "limit": "2",
            "cursor": meta(reply)["next_cursor"],
        }

    async def test_limit_may_change_mid_walk(self, client: ApiClient, store: TaskStore) -> None:
        """A cursor stays valid with another limit."""
        await make(store, ALICE, 20)
        full = await client.ids(ALICE, limit="500")
        walked, replies = await walk(client, ALICE, {"limit": "3"}, limits=[5, 1, 7])
        assert [task["id"] for task in walked] == full
        assert [meta(reply)["limit"] for reply in replies[:4]] == [3, 1, 7, 5]

    async def test_exact_fit_has_no_next_page(self, client: ApiClient, store: TaskStore) -> None:
        """Six tasks in pages of three are two pages, the second without a Link."""
        await make(store, ALICE, 6)
        _, replies = await walk(client, ALICE, {"limit": "3"})
        assert [len(reply.data) for reply in replies] == [3, 3]

    async def test_creates_and_deletes_during_a_walk(self, client: ApiClient) -> None:
        """A new task appears exactly when it sorts after the last one returned."""
        tasks = [await client.create(ALICE, title=f"t{n}") for n in range(6)]
        first = await client.get(tasks_path(ALICE), params={"sort": "created_at", "limit": "3"})
        target = next_link(first)
        assert target is not None
        await client.delete(task_path(ALICE, tasks[4]["id"]))  # not yet returned
        await client.delete(task_path(ALICE, tasks[0]["id"]))  # already returned
        await client.delete(task_path(ALICE, tasks[2]["id"]))  # the cursor's own task
        late = await client.create(ALICE, title="late")
        rest = []
        reply = await client.get(target)
        while True:
            rest.extend(reply.data)
            target = next_link(reply)
            if target is None:
                break
            reply = await client.get(target)
        assert [task["id"] for task in first.data] == [task["id"] for task in tasks[:3]]
        assert [task["id"] for task in rest] == [tasks[3]["id"], tasks[5]["id"], late["id"]]

    async def test_new_tasks_before_the_position_are_not_returned(self, client: ApiClient) -> None:
        """Newest first: a task created mid-walk sorts before the position and is skipped."""
        tasks = [await client.create(ALICE, title=f"t{n}") for n in range(4)]
        walked_ids: list[str] = []
        reply = await client.get(tasks_path(ALICE), params={"limit": "2"})
        walked_ids += [task["id"] for task in reply.data]
        await client.create(ALICE, title="newer")
        target = next_link(reply)
        assert target is not None
        reply = await client.get(target)
        walked_ids += [task["id"] for task in reply.data]
        assert walked_ids == [task["id"] for task in reversed(tasks)]

    async def test_title_walk_sees_a_later_title(self, client: ApiClient) -> None:
        """Sorted by title, a task created mid-walk appears iff its title sorts later."""
        for title in ["a", "c", "e", "g"]:
            await client.create(ALICE, title=title)
        reply = await client.get(tasks_path(ALICE), params={"sort": "title", "limit": "2"})
        await client.create(ALICE, title="b")  # before the position: skipped
        await client.create(ALICE, title="f")  # after it: returned
        target = next_link(reply)
        assert target is not None
        titles = [task["title"] for task in reply.data]
        while target is not None:
            reply = await client.get(target)
            titles += [task["title"] for task in reply.data]
            target = next_link(reply)
        assert titles == ["a", "c", "e", "f", "g"]


class TestCursors:
    """Cursors are integrity-protected and bound to user, sort, completed and q."""

    async def first_cursor(self, client: ApiClient, user_id: str, **params: str) -> str:
        reply = await client.get(tasks_path(user_id), params={"limit": "1", **params})
        cursor = meta(reply)["next_cursor"]
        assert isinstance(cursor, str)
        return cursor

    async def test_tampered_cursors_are_422(
        self, client: ApiClient, store: TaskStore, subtests: pytest.Subtests
    ) -> None:
        """Any change to a cursor, or garbage, is 422 naming cursor (never 500)."""
        await make(store, ALICE, 3)
        cursor = await self.first_cursor(client, ALICE)
        payload, _, mac = cursor.partition(".")
        flipped = "A" if payload[0] != "A" else "B"
        await each_refused(
            client,
            subtests,
            "cursor",
            [
                flipped + payload[1:] + "." + mac,
                payload + "." + ("A" if mac[0] != "A" else "B") + mac[1:],
                payload + "." + mac[:-2],
                cursor + "A",
                payload,
                "." + mac,
                cursor + "." + mac,
                "",
                "abc",
                "a.b",
                "..",
                "%%%",
                "😀.😀",
                "x" * 4_000,
                "eyJhIjoxfQ.AAAAAAAAAAAAAAAAAAAAAA",
            ],
        )

    async def test_foreign_cursors_are_422(
        self, client: ApiClient, store: TaskStore, subtests: pytest.Subtests
    ) -> None:
        """A cursor used for another user, sort, q or completed is refused."""
        await make(store, ALICE, 3, description="both")
        await make(store, BOB, 3, description="both")
        for issued, used, user_id in [
            ({}, {}, BOB),
            ({}, {"sort": "created_at"}, ALICE),
            ({"sort": "title"}, {"sort": "-title"}, ALICE),
            ({"sort": "updated_at"}, {"sort": "created_at"}, ALICE),
            ({"q": "both"}, {"q": "BOTH"}, ALICE),
            ({"q": "both"}, {}, ALICE),
            ({}, {"q": "both"}, ALICE),
            ({"completed": "false"}, {"completed": "true"}, ALICE),
            ({"completed": "false"}, {}, ALICE),
            ({}, {"completed": "false"}, ALICE),
        ]:
            with subtests.test(issued=issued, used=used, user_id=user_id):
                cursor = await self.first_cursor(client, ALICE, **issued)
                reply = await client.get(
                    tasks_path(user_id), params={"limit": "1", **used, "cursor": cursor}
                )
                assert reply.status == 422, reply
                assert reply.fields == ["cursor"]

    async def test_cursor_outlives_its_task(self, client: ApiClient) -> None:
        """Deleting the task a cursor points at does not break the walk."""
        tasks = [await client.create(ALICE, title=f"t{n}") for n in range(3)]
        reply = await client.get(tasks_path(ALICE), params={"sort": "created_at", "limit": "1"})
        target = next_link(reply)
        assert target is not None
        await client.delete(task_path(ALICE, tasks[0]["id"]))
        assert [task["id"] for task in (await client.get(target)).data] == [tasks[1]["id"]]


async def _first_page(backend: str, store: TaskStore, client: ApiClient) -> tuple[Reply, str]:
    """Alice's first page of three tasks, one per page, and the link to the next."""
    if backend == "memory":
        pytest.skip("the memory store keeps nothing across a restart")
    await make(store, ALICE, 3)
    first = await client.get(tasks_path(ALICE), params={"limit": "1"})
    target = next_link(first)
    assert target is not None
    return first, target


class TestCursorsAcrossRestarts:
    """A cursor stays valid for another server over the same database and configuration."""

    async def test_a_restarted_server_continues_the_walk(
        self,
        backend: str,
        tmp_path: Path,
        store: TaskStore,
        client: ApiClient,
        serve: ClientFactory,
    ) -> None:
        """The secret lives in the database (or configuration), not in the process."""
        first, target = await _first_page(backend, store, client)
        async with open_store(backend_url(backend, tmp_path)) as restarted:
            later = await serve(restarted)
            reply = await later.get(target)
            assert reply.status == 200, reply
            assert reply.data[0]["id"] not in {task["id"] for task in first.data}
            assert len(reply.data) == 1

    async def test_another_secret_refuses_the_cursor(
        self,
        backend: str,
        tmp_path: Path,
        store: TaskStore,
        client: ApiClient,
        serve: ClientFactory,
    ) -> None:
        """A deployment configured with another secret answers 422, not a wrong page."""
        _first, target = await _first_page(backend, store, client)
        url = backend_url(backend, tmp_path)
        async with open_store(url, cursor_secret="a-different-secret-0123456789") as other:
            reply = await (await serve(other)).get(target)
            assert reply.status == 422, reply
            assert reply.fields == ["cursor"]
