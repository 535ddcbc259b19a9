"""Seeded tasks with the fields of "Organizing tasks", and the ``list_filtered`` request.

``bench.py seed`` creates tasks with a title and a description only. ``organize_seeded``
then gives every task it seeded (the list user's 50 and the 1,000 of the other users) a
priority, tags and a due date through our API, one ``PATCH`` each, so that the
harness's scenarios read and write tasks that carry them. Task ``n`` gets ``fields(n)``;
the scale suite's filler rows follow the same rule in SQL (``benchmarks.databases``).
The filter then matches 15 of the list user's 50 tasks, 30 % of any user's.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from benchmarks.errors import BenchError
from todo_core.models import PRIORITIES

__all__ = [
    "FILTER",
    "FILTER_PRIORITIES",
    "FILTER_TAG",
    "NO_DUE_EVERY",
    "OTHER_TAGS",
    "Organized",
    "fields",
    "matches",
    "organize_seeded",
]

# Every task of a user carries one of these; three in five also carry FILTER_TAG.
OTHER_TAGS: Final = ("home", "errand", "health")
FILTER_TAG: Final = "work"
FILTER_TAG_IN_FIVE: Final = 3
FILTER_PRIORITIES: Final = ("high", "medium")
FILTER: Final = f"tag={FILTER_TAG}&priority={','.join(FILTER_PRIORITIES)}&sort=due_at"
# One task in six has no due date: the filtered list ends with those (nulls last).
NO_DUE_EVERY: Final = 6
DUE_SPREAD_DAYS: Final = 30
PATCH_WORKERS: Final = 8
_TIMEOUT: Final = 30.0


def fields(index: int, now: datetime) -> dict[str, Any]:
    """The priority, tags and due date of the ``index``-th seeded task, as a PATCH body.

    Priority cycles through all four levels; due dates spread over a month from ``now``.
    """
    tags = [FILTER_TAG] if index % 5 < FILTER_TAG_IN_FIVE else []
    tags.append(OTHER_TAGS[index % len(OTHER_TAGS)])
    due = None
    if index % NO_DUE_EVERY != NO_DUE_EVERY - 1:
        at = now + timedelta(days=index % DUE_SPREAD_DAYS, minutes=index)
        due = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"priority": PRIORITIES[index % len(PRIORITIES)], "tags": tags, "due_at": due}


def matches(count: int) -> int:
    """How many of ``count`` tasks given ``fields(0..count-1)`` the filter returns."""
    now = datetime.now(UTC)
    return sum(
        FILTER_TAG in found["tags"] and found["priority"] in FILTER_PRIORITIES
        for found in (fields(index, now) for index in range(count))
    )


@dataclass(frozen=True)
class Organized:
    """What the list scenarios of our own wrk runs load, on one seeded server."""

    list_url: str
    filtered_url: str
    list_items: int
    filtered_items: int


class _Connection:
    """One keep-alive connection to the server under test; JSON in, JSON out."""

    def __init__(self, base: str) -> None:
        parsed = urllib.parse.urlsplit(base)
        self._http = http.client.HTTPConnection(parsed.hostname or "", parsed.port, _TIMEOUT)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {} if body is None else {"Content-Type": "application/json"}
        payload = None if body is None else json.dumps(body).encode()
        try:
            self._http.request(method, path, payload, headers)
            response = self._http.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as error:
            raise BenchError(f"{method} {path} failed: {error}") from error
        if response.status != 200:
            raise BenchError(f"{method} {path} answered {response.status}: {answer[:300]!r}")
        return json.loads(answer)["data"]

    def close(self) -> None:
        self._http.close()


def _tasks_path(user_id: str, task_id: str | None = None) -> str:
    path = f"/api/{urllib.parse.quote(user_id, safe='')}/tasks"
    return path if task_id is None else f"{path}/{urllib.parse.quote(task_id, safe='')}"


def _patch_all(base: str, patches: Sequence[tuple[str, dict[str, Any]]]) -> None:
    def patch_share(share: Sequence[tuple[str, dict[str, Any]]]) -> None:
        connection = _Connection(base)
        try:
            for path, body in share:
                connection.call("PATCH", path, body)
        finally:
            connection.close()

    shares = [patches[worker::PATCH_WORKERS] for worker in range(PATCH_WORKERS)]
    with ThreadPoolExecutor(PATCH_WORKERS) as pool:
        for _done in pool.map(patch_share, shares):
            pass  # map re-raises a worker's error here


def organize_seeded(base: str, state: Path) -> Organized:
    """PATCH every task ``bench.py seed`` created on ``base`` (its state file ``state``)
    with ``fields``; check that the list user's listing and its filtered listing return
    what those fields make them return; the URLs of both."""
    seeded = json.loads(state.read_text())
    users = [user["user_id"] for user in seeded["users"]]
    if any(user.get("headers") for user in seeded["users"]):
        raise BenchError("seeded users with headers (authentication) are not supported here")
    list_user = users[seeded["list_user"]]
    connection = _Connection(base)
    try:
        listed = connection.call("GET", _tasks_path(list_user) + "?limit=500")
        now = datetime.now(UTC)
        # The list user's tasks in the order listed (bench.py does not record their ids),
        # then the others in the state file's order.
        paths = [_tasks_path(list_user, task["id"]) for task in listed]
        paths += [_tasks_path(users[task["user"]], task["id"]) for task in seeded["tasks"]]
        _patch_all(base, [(path, fields(index, now)) for index, path in enumerate(paths)])
        filtered_path = f"{_tasks_path(list_user)}?{FILTER}"
        filtered = connection.call("GET", filtered_path)
    finally:
        connection.close()
    expected = matches(len(listed))
    wrong = [
        task["id"]
        for task in filtered
        if FILTER_TAG not in task["tags"] or task["priority"] not in FILTER_PRIORITIES
    ]
    if wrong or len(filtered) != expected:
        raise BenchError(
            f"GET {filtered_path} returned {len(filtered)} tasks on {base}, not the "
            f"{expected} of the list user's {len(listed)} that match ({len(wrong)} do not)"
        )
    return Organized(
        list_url=f"{base}{_tasks_path(list_user)}",
        filtered_url=f"{base}{filtered_path}",
        list_items=len(listed),
        filtered_items=len(filtered),
    )
