"""``FeedReplica``: a client's copy of one user's tasks, kept the way the contract tells
clients to keep one ("take a token, walk the list, follow the feed"), over HTTP; and
``altered``, a feed token or trash cursor with one character changed.

The sync and trash contract tests and the HTTP state machine share them: each checks
that the copy equals the server's tasks after the writes they make, and that a token
the server did not issue is refused.
"""

from __future__ import annotations

from typing import Any, Final

from tests.http.api_client import ApiClient, tasks_path

__all__ = ["FeedReplica", "altered", "changes_path"]

LIST_LIMIT: Final = "500"


def changes_path(user_id: str) -> str:
    return f"/api/{user_id}/changes"


def altered(token: str) -> str:
    """``token`` with the character in its middle changed."""
    middle = len(token) // 2
    return token[:middle] + ("B" if token[middle] != "B" else "C") + token[middle + 1 :]


class FeedReplica:
    """The tasks of ``user_id`` as a client following the change feed knows them."""

    def __init__(self, client: ApiClient, user_id: str) -> None:
        self.client = client
        self.user_id = user_id
        self.tasks: dict[str, dict[str, Any]] = {}
        self.since: str | None = None

    async def start(self) -> None:
        """Take a token for the present, then walk every page of the task list."""
        reply = await self.client.get(changes_path(self.user_id))
        assert reply.status == 200, reply
        assert reply.data == [], reply
        self.since = reply.json()["meta"]["next_since"]
        self.tasks = {task["id"]: task for task in await self.listed()}

    async def listed(self) -> list[dict[str, Any]]:
        """Every task of the user's list, page after page."""
        tasks: list[dict[str, Any]] = []
        params = {"limit": LIST_LIMIT}
        while True:
            reply = await self.client.get(tasks_path(self.user_id), params=params)
            assert reply.status == 200, reply
            tasks.extend(reply.data)
            cursor = reply.json()["meta"]["next_cursor"]
            if cursor is None:
                return tasks
            params = {"limit": LIST_LIMIT, "cursor": cursor}

    async def follow(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Read the feed from ``since`` until it has no more, applying each item by
        ``id``; returns the items in the order they came."""
        assert self.since is not None, "start() first"
        seen: list[dict[str, Any]] = []
        while True:
            params = {"since": self.since}
            if limit is not None:
                params["limit"] = str(limit)
            reply = await self.client.get(changes_path(self.user_id), params=params)
            assert reply.status == 200, reply
            meta = reply.json()["meta"]
            for item in reply.data:
                if item["type"] == "upsert":
                    self.tasks[item["task"]["id"]] = item["task"]
                else:
                    self.tasks.pop(item["id"], None)
            seen.extend(reply.data)
            self.since = meta["next_since"]
            if not meta["has_more"]:
                return seen

    async def assert_in_step(self) -> None:
        """Follow the feed to its end: the copy equals the server's list exactly."""
        await self.follow()
        listed = {task["id"]: task for task in await self.listed()}
        assert self.tasks == listed
