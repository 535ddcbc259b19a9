"""A Hypothesis state machine over HTTP: two users, every endpoint, pagination walks,
the trash, and a client per user following the change feed, checked step by step
against a plain model of what the server must hold."""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections import Counter
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar, Final, TypeVar

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from yarl import URL

from tests.backends import BACKENDS, POSTGRES_BACKENDS, open_backend, postgres_backend_url
from tests.http.api_client import TIMESTAMP, ApiClient, Reply, task_path, tasks_path
from tests.http.feed_replica import FeedReplica
from tests.listing import SORTS
from tests.successors import next_due_at
from tests.values import (
    DUE_ATS,
    LAST_DAY,
    PRIORITY_LEVELS,
    RECURRENCES,
    TAG_LISTS,
    TIME_ZONES,
    WRITABLE_DEFAULTS,
    normalized_tags,
)
from todo_http import create_app

T = TypeVar("T")
USERS = ["alice", "Alice"]  # two users whose ids differ only in case
PRIORITY_RANK = {"none": 0, "low": 1, "medium": 2, "high": 3}
LINK = re.compile(r'<([^<>]+)>; rel="next"')

text_characters = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
titles = st.one_of(
    st.sampled_from(["a", "A", "b", " b ", "é", "e\u0301", "milk", "MILK", "😀", "Zz"]),
    st.text(text_characters, min_size=1, max_size=8).filter(lambda text: bool(text.strip())),
)
descriptions = st.one_of(
    st.none(), st.sampled_from(["", "milk", "Oat MILK"]), st.text(text_characters, max_size=8)
)
queries = st.one_of(st.none(), st.sampled_from(["", "a", "MI", "é", "%", "b "]))

# The organizing fields as a client writes them: due times with any offset, some on
# the last day due_at allows (completing those makes no successor).
_moments = st.one_of(DUE_ATS, st.just(LAST_DAY))
_offsets = st.sampled_from([timedelta(0), timedelta(hours=1), timedelta(hours=-5, minutes=-30)])
due_texts = st.builds(
    lambda moment, offset: moment.astimezone(timezone(offset)).isoformat(), _moments, _offsets
)
ORGANIZING = {
    "due_at": st.one_of(st.none(), due_texts),
    "priority": PRIORITY_LEVELS,
    "tags": TAG_LISTS,
    "recurrence": st.one_of(st.none(), RECURRENCES),
    "time_zone": TIME_ZONES,
}
WRITABLE = ("title", "description", "completed", *ORGANIZING)
DEFAULTS: Final = WRITABLE_DEFAULTS


def _due_if_recurring(body: dict[str, Any]) -> dict[str, Any]:
    """A recurring task needs a due_at (a body without one is the contract tests' 422)."""
    if body.get("recurrence") is not None and body.get("due_at") is None:
        return body | {"due_at": "2026-12-24T18:00:00Z"}
    return body


def _not_self_contradictory(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("recurrence") is not None and "due_at" in body and body["due_at"] is None:
        return {name: value for name, value in body.items() if name != "recurrence"}
    return body


organizing = st.fixed_dictionaries({}, optional=ORGANIZING).map(_due_if_recurring)


def utc_text(moment: datetime) -> str:
    """A time as the server answers it: UTC, six fractional digits, Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parsed(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def stored(body: dict[str, Any]) -> dict[str, Any]:
    """The values a write of ``body`` stores: title stripped, due_at in UTC, tags
    normalised."""
    values = dict(body)
    if "title" in values:
        values["title"] = values["title"].strip()
    if values.get("due_at") is not None:
        values["due_at"] = utc_text(datetime.fromisoformat(values["due_at"]))
    if "tags" in values:
        values["tags"] = normalized_tags(values["tags"])
    return values


def kept(task: dict[str, Any], filters: dict[str, Any]) -> bool:
    """The model's priority, tag and due filters (a task without due_at matches no bound)."""
    if "priority" in filters and task["priority"] not in filters["priority"]:
        return False
    if "tag" in filters and not set(normalized_tags(filters["tag"])) <= set(task["tags"]):
        return False
    due = parsed(task["due_at"]) if task["due_at"] else None
    if "due_min" in filters and (due is None or due < filters["due_min"]):
        return False
    return "due_max" not in filters or (due is not None and due < filters["due_max"])


def in_order(tasks: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    """The contract's order: key then id in the sort's direction, null due_at last."""
    key, descending = sort.removeprefix("-"), sort.startswith("-")
    keyed = [task for task in tasks if task[key] is not None]
    keyless = [task for task in tasks if task[key] is None]
    rank = (lambda value: PRIORITY_RANK[value]) if key == "priority" else (lambda value: value)
    keyed.sort(key=lambda task: (rank(task[key]), task["id"]), reverse=descending)
    keyless.sort(key=lambda task: task["id"], reverse=descending)
    return keyed + keyless


def matches(task: dict[str, Any], q: str | None, completed: bool | None) -> bool:
    """The model's filter: the contract's q and completed rules."""
    if completed is not None and task["completed"] is not completed:
        return False
    if not q:
        return True
    needle = q.lower()
    description = task["description"] or ""
    return needle in task["title"].lower() or needle in description.lower()


class HttpMachine(RuleBasedStateMachine):
    """The server, driven over HTTP, must agree with ``self.tasks`` after every step."""

    refs = Bundle("refs")
    backend: ClassVar[str] = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.stack = AsyncExitStack()
        self.directory = tempfile.TemporaryDirectory()
        self.tasks: dict[str, dict[str, dict[str, Any]]] = {user: {} for user in USERS}
        self.etags: dict[str, str] = {}
        self.stale: dict[str, str] = {}
        # (user, Idempotency-Key) -> the create's fields as stored, and its first reply
        self.keyed: dict[tuple[str, str], tuple[tuple[Any, ...], Reply]] = {}
        # Each user's trash: the tasks as they were deleted.
        self.trash: dict[str, dict[str, dict[str, Any]]] = {user: {} for user in USERS}
        self.api = self.run(self.start(self.backend))
        # A client per user that took a token, walked the (empty) list, and then only
        # follows the feed.
        self.replicas = {user: FeedReplica(self.api, user) for user in USERS}
        for replica in self.replicas.values():
            self.run(replica.start())

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    async def start(self, backend: str) -> ApiClient:
        store = await self.stack.enter_async_context(
            open_backend(backend, Path(self.directory.name))
        )
        client = TestClient(TestServer(create_app(store)))
        await self.stack.enter_async_context(client)
        return ApiClient(client)

    def teardown(self) -> None:
        try:
            self.run(self.stack.aclose())
        finally:
            self.loop.close()
            self.directory.cleanup()
        assert not self.api.check.unchecked, self.api.check.problem

    def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        return self.run(self.api.request(method, path, **kwargs))

    def every_item(self, path: str, limit: int) -> list[dict[str, Any]]:
        """Every item of a listing at ``path``, ``limit`` a page, following ``Link``."""
        reply = self.request("GET", path, params={"limit": str(limit)})
        walked: list[dict[str, Any]] = []
        for _ in range(100):
            assert reply.status == 200, reply
            walked += reply.data
            link = reply.headers.get("Link")
            if link is None:
                break
            match = LINK.fullmatch(link)
            assert match is not None, link
            reply = self.request("GET", match.group(1))
        return walked

    def owner(self, task_id: str) -> str | None:
        return next((user for user in USERS if task_id in self.tasks[user]), None)

    def settle(self, reply: Reply, user: str, before: dict[str, Any]) -> list[str]:
        """Record a successful PUT or PATCH, checking completed_at and recurrence;
        returns the id of the successor it spawned, if any."""
        data = reply.data
        completing = data["completed"] and not before["completed"]
        if not data["completed"]:
            assert data["completed_at"] is None, "un-completing clears completed_at"
        elif completing:
            assert data["completed_at"] == data["updated_at"]
        else:
            assert data["completed_at"] == before["completed_at"], "kept while completed"
        self.accept(reply, user, before)
        if not (completing and before["next_occurrence_id"] is None and data["recurrence"]):
            assert data["next_occurrence_id"] == before["next_occurrence_id"], "one, ever"
            return []
        due_at = next_due_at(
            parsed(data["due_at"]),
            data["recurrence"],
            data["time_zone"],
            parsed(data["completed_at"]),
        )
        if due_at is None:
            assert data["next_occurrence_id"] is None, "no successor beyond 9999-12-31"
            return []
        successor_id = data["next_occurrence_id"]
        assert successor_id is not None, "completing a recurring task spawns one"
        successor = self.request("GET", task_path(user, successor_id))
        assert successor.status == 200, successor
        expected = {name: data[name] for name in WRITABLE} | {
            "completed": False,
            "due_at": utc_text(due_at),
        }
        assert {name: successor.data[name] for name in WRITABLE} == expected
        assert (successor.data["completed_at"], successor.data["next_occurrence_id"]) == (
            None,
            None,
        )
        self.accept(successor, user, None)
        return [successor_id]

    def accept(self, reply: Reply, user: str, before: dict[str, Any] | None) -> None:
        """Record a successful write's task, checking what every write must do."""
        data = reply.data
        tag = reply.headers["ETag"]
        assert TIMESTAMP.fullmatch(data["updated_at"])
        assert data["user_id"] == user
        if before is not None:
            assert data["id"] == before["id"]
            assert data["created_at"] == before["created_at"]
            assert data["updated_at"] > before["updated_at"]
            assert tag != self.etags[data["id"]]
            self.stale[data["id"]] = self.etags[data["id"]]
        self.tasks[user][data["id"]] = data
        self.etags[data["id"]] = tag

    @rule(
        target=refs,
        user=st.sampled_from(USERS),
        title=titles,
        description=descriptions,
        completed=st.booleans(),
        more=organizing,
    )
    def create(
        self,
        user: str,
        title: str,
        description: str | None,
        completed: bool,
        more: dict[str, Any],
    ) -> str:
        body = {"title": title, "description": description, "completed": completed} | more
        reply = self.request("POST", tasks_path(user), json=body)
        assert reply.status == 201, reply
        data = reply.data
        assert {name: data[name] for name in WRITABLE} == DEFAULTS | stored(body)
        assert data["created_at"] == data["updated_at"]
        assert data["completed_at"] == (data["created_at"] if completed else None)
        assert data["next_occurrence_id"] is None
        assert reply.headers["Location"] == task_path(user, data["id"])
        self.accept(reply, user, None)
        task_id: str = data["id"]
        return task_id

    @rule(
        target=refs,
        user=st.sampled_from(USERS),
        key=st.sampled_from(["k", "K", "retry 1"]),
        title=titles,
        description=descriptions,
        completed=st.booleans(),
    )
    def create_with_key(
        self, user: str, key: str, title: str, description: str | None, completed: bool
    ) -> MultipleResults[str]:
        """A keyed create, mixed with unkeyed ones: the first creates; a retry of the
        same request (as stored) replays the first answer byte for byte, even after the
        task changed or went; another request with the key is refused."""
        fields = {"title": title, "description": description, "completed": completed}
        reply = self.request(
            "POST", tasks_path(user), json=fields, headers={"Idempotency-Key": key}
        )
        request = (title.strip(), description, completed)
        kept = self.keyed.get((user, key))
        if kept is None:
            assert reply.status == 201, reply
            assert "Idempotent-Replayed" not in reply.headers
            self.keyed[user, key] = (request, reply)
            self.accept(reply, user, None)
            return multiple(reply.data["id"])
        if kept[0] != request:
            assert reply.status == 422, reply
            assert reply.code == "IDEMPOTENCY_KEY_REUSED"
            return multiple()
        assert reply.status == 201, reply
        assert reply.headers["Idempotent-Replayed"] == "true"
        assert reply.body == kept[1].body
        for header in ("Location", "ETag"):
            assert reply.headers[header] == kept[1].headers[header]
        return multiple()

    @rule(task_id=refs, user=st.sampled_from(USERS), upper=st.booleans())
    def get(self, task_id: str, user: str, upper: bool) -> None:
        reply = self.request("GET", task_path(user, task_id.upper() if upper else task_id))
        if self.owner(task_id) == user:
            assert reply.status == 200, reply
            assert reply.data == self.tasks[user][task_id]
            assert reply.headers["ETag"] == self.etags[task_id]
        else:
            assert reply.status == 404, reply

    @rule(
        target=refs,
        task_id=refs,
        user=st.sampled_from(USERS),
        title=titles,
        description=st.one_of(st.just(...), descriptions),
        completed=st.one_of(st.just(...), st.booleans()),
        conditional=st.booleans(),
        more=organizing,
    )
    def put(
        self,
        task_id: str,
        user: str,
        title: str,
        description: Any,
        completed: Any,
        conditional: bool,
        more: dict[str, Any],
    ) -> MultipleResults[str]:
        body: dict[str, Any] = {"title": title} | more
        if description is not ...:
            body["description"] = description
        if completed is not ...:
            body["completed"] = completed
        headers = {"If-Match": self.etags[task_id]} if conditional else {}
        reply = self.request("PUT", task_path(user, task_id), json=body, headers=headers)
        if self.owner(task_id) != user:
            assert reply.status == 404, reply
            return multiple()
        assert reply.status == 200, reply
        data = reply.data
        assert {name: data[name] for name in WRITABLE} == DEFAULTS | stored(body)
        return multiple(*self.settle(reply, user, self.tasks[user][task_id]))

    @rule(
        target=refs,
        task_id=refs,
        user=st.sampled_from(USERS),
        patch=st.fixed_dictionaries(
            {},
            optional={
                "title": titles,
                "description": descriptions,
                "completed": st.booleans(),
                **ORGANIZING,
            },
        )
        .map(_not_self_contradictory)
        .filter(bool),
    )
    def patch(self, task_id: str, user: str, patch: dict[str, Any]) -> MultipleResults[str]:
        reply = self.request("PATCH", task_path(user, task_id), json=patch)
        if self.owner(task_id) != user:
            assert reply.status == 404, reply
            return multiple()
        before = self.tasks[user][task_id]
        expected = {name: before[name] for name in WRITABLE} | stored(patch)
        if expected["recurrence"] is not None and expected["due_at"] is None:
            assert reply.status == 422, reply  # and nothing changed:
            assert self.request("GET", task_path(user, task_id)).data == before
            return multiple()
        assert reply.status == 200, reply
        data = reply.data
        assert {name: data[name] for name in WRITABLE} == expected
        assert (data["id"], data["created_at"]) == (before["id"], before["created_at"])
        return multiple(*self.settle(reply, user, before))

    @rule(task_id=refs, user=st.sampled_from(USERS))
    def delete(self, task_id: str, user: str) -> None:
        reply = self.request("DELETE", task_path(user, task_id))
        if self.owner(task_id) != user:
            assert reply.status == 404, reply
            return
        assert reply.status == 200, reply
        assert reply.data == self.tasks[user][task_id]
        self.trash[user][task_id] = self.tasks[user].pop(task_id)

    @rule(task_id=refs, user=st.sampled_from(USERS))
    def restore(self, task_id: str, user: str) -> None:
        reply = self.request("POST", f"/api/{user}/trash/{task_id}/restore")
        before = self.trash[user].pop(task_id, None)
        if before is None:
            assert reply.status == 404, reply
            return
        assert reply.status == 200, reply
        assert reply.data == before | {"updated_at": reply.data["updated_at"]}
        self.accept(reply, user, before)

    @rule(task_id=refs, user=st.sampled_from(USERS))
    def purge(self, task_id: str, user: str) -> None:
        reply = self.request("DELETE", f"/api/{user}/trash/{task_id}")
        before = self.trash[user].pop(task_id, None)
        if before is None:
            assert reply.status == 404, reply
            return
        assert reply.status == 200, reply
        data = dict(reply.data)
        assert TIMESTAMP.fullmatch(data.pop("deleted_at"))
        assert data == before

    @rule(user=st.sampled_from(USERS))
    def empty_trash(self, user: str) -> None:
        reply = self.request("DELETE", f"/api/{user}/trash")
        assert reply.status == 200, reply
        assert reply.data == {"purged": len(self.trash[user])}
        self.trash[user].clear()

    @rule(user=st.sampled_from(USERS), limit=st.integers(1, 3))
    def list_trash(self, user: str, limit: int) -> None:
        """Every page of the user's trash: the model's, most recently deleted first."""
        walked = self.every_item(f"/api/{user}/trash", limit)
        order = [(task["deleted_at"], task["id"]) for task in walked]
        assert order == sorted(order, reverse=True)
        shown = {
            task["id"]: {k: v for k, v in task.items() if k != "deleted_at"} for task in walked
        }
        assert shown == self.trash[user]

    @invariant()
    def followers_are_in_step(self) -> None:
        """Each user's feed follower, having read to the end, holds the model's tasks."""
        for user, replica in self.replicas.items():
            self.run(replica.follow(limit=3))
            assert replica.tasks == self.tasks[user]

    @precondition(lambda self: bool(self.stale))
    @rule(data=st.data(), method=st.sampled_from(["PUT", "PATCH", "DELETE"]))
    def stale_write(self, data: st.DataObject, method: str) -> None:
        task_id = data.draw(st.sampled_from(sorted(self.stale)))
        owner = self.owner(task_id)
        user = owner or USERS[0]
        body = None if method == "DELETE" else {"title": "stale"}
        reply = self.request(
            method,
            task_path(user, task_id),
            json=body,
            headers={"If-Match": self.stale[task_id]},
        )
        if owner is None:
            assert reply.status == 404, reply
            return
        assert reply.status == 412, reply
        current = self.request("GET", task_path(user, task_id))
        assert current.data == self.tasks[user][task_id]
        assert current.headers["ETag"] == self.etags[task_id]

    @rule(
        user=st.sampled_from(USERS),
        sort=st.sampled_from(SORTS),
        limits=st.lists(st.integers(1, 4), min_size=1, max_size=3),
        q=queries,
        completed=st.one_of(st.none(), st.booleans()),
        filters=st.fixed_dictionaries(
            {},
            optional={
                "priority": st.lists(PRIORITY_LEVELS, min_size=1, max_size=4, unique=True),
                "tag": TAG_LISTS.filter(bool),
                "due_min": _moments,
                "due_max": _moments,
            },
        ),
    )
    def walk(
        self,
        user: str,
        sort: str,
        limits: list[int],
        q: str | None,
        completed: bool | None,
        filters: dict[str, Any],
    ) -> None:
        params = {"sort": sort, "limit": str(limits[0])}
        for name in ("priority", "tag"):
            if name in filters:
                params[name] = ",".join(filters[name])
        for name in ("due_min", "due_max"):
            if name in filters:
                params[name] = utc_text(filters[name])
        if q is not None:
            params["q"] = q
        if completed is not None:
            params["completed"] = "true" if completed else "false"
        reply = self.request("GET", tasks_path(user), params=params)
        walked: list[dict[str, Any]] = []
        for page in range(1, 200):
            assert reply.status == 200, reply
            walked += reply.data
            link = reply.headers.get("Link")
            if link is None:
                assert reply.json()["meta"]["next_cursor"] is None
                break
            match = LINK.fullmatch(link)
            assert match is not None, link
            target = URL(match.group(1)).update_query(limit=limits[page % len(limits)])
            reply = self.request("GET", str(target))
        expected = in_order(
            [
                task
                for task in self.tasks[user].values()
                if matches(task, q, completed) and kept(task, filters)
            ],
            sort,
        )
        assert walked == expected

    @rule(user=st.sampled_from(USERS), limit=st.integers(1, 3))
    def tags(self, user: str, limit: int) -> None:
        """Every page of the user's tags: the model's counts, in code point order."""
        walked = self.every_item(f"/api/{user}/tags", limit)
        counts = Counter(tag for task in self.tasks[user].values() for tag in task["tags"])
        assert walked == [{"tag": tag, "count": counts[tag]} for tag in sorted(counts)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_http_agrees_with_the_model(backend: str) -> None:
    """Any sequence of requests by two users leaves the server where the model is."""
    if backend in POSTGRES_BACKENDS:
        postgres_backend_url(backend)  # skips (or fails in CI) before Hypothesis starts
    examples = 15 if backend in POSTGRES_BACKENDS else 25

    class Machine(HttpMachine):
        pass

    Machine.backend = backend
    run_state_machine_as_test(
        Machine,
        settings=settings(max_examples=examples, stateful_step_count=30, deadline=None),
    )
