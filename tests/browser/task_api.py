"""``TaskApi``: one user's tasks through the real server's HTTP API, for seeding what a
browser test shows and checking what it did. Every reply is checked against the
server's OpenAPI document (``ServerProcess.request``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from tests.http.server_process import Reply, ServerProcess

__all__ = ["TaskApi"]


class TaskApi:
    def __init__(self, server: ServerProcess, user: str, token: str | None = None) -> None:
        self.server = server
        self.user = user
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    def request(self, method: str, path: str, body: Any = None) -> Reply:
        """``path`` below ``/api/{user}``, with the user's token if it has one."""
        return self.server.request(
            method, f"/api/{quote(self.user)}{path}", body, headers=self._headers
        )

    def _data(self, method: str, path: str, status: int, body: Any = None) -> Any:
        reply = self.request(method, path, body)
        assert reply.status == status, (method, path, reply.status, reply.body)
        return reply.json()["data"]

    def create(self, title: str, **fields: Any) -> dict[str, Any]:
        data: dict[str, Any] = self._data("POST", "/tasks", 201, {"title": title, **fields})
        return data

    def task(self, task_id: str) -> dict[str, Any] | None:
        """The task, or None when it is not among the user's tasks (404)."""
        reply = self.request("GET", f"/tasks/{task_id}")
        if reply.status == 404:
            return None
        assert reply.status == 200, reply
        data: dict[str, Any] = reply.json()["data"]
        return data

    def patch(self, task_id: str, **fields: Any) -> dict[str, Any]:
        data: dict[str, Any] = self._data("PATCH", f"/tasks/{task_id}", 200, fields)
        return data

    def delete(self, task_id: str) -> None:
        self._data("DELETE", f"/tasks/{task_id}", 200)

    def _walk(self, path: str, query: Mapping[str, str], limit: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = {**query, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
            reply = self.request("GET", f"{path}?{urlencode(page)}")
            assert reply.status == 200, (path, query, reply.body)
            found.extend(reply.json()["data"])
            cursor = reply.json()["meta"]["next_cursor"]
            if cursor is None:
                return found

    def tasks(self, **query: str) -> list[dict[str, Any]]:
        """Every task the listing with ``query`` returns, in its order, over all pages."""
        return self._walk("/tasks", query, 500)

    def trash(self) -> list[dict[str, Any]]:
        return self._walk("/trash", {}, 100)

    def titled(self, title: str) -> list[dict[str, Any]]:
        """The user's tasks with exactly this title."""
        return [task for task in self.tasks(q=title) if task["title"] == title]
