"""A client's copy of one user's tasks, kept by following the change feed.

What the contract promises a client: take a token, walk the list, then apply each
feed item by ``id`` (an upsert replaces, a delete removes); once writes stop and the
feed is drained, the copy equals the tasks. The feed, trash and concurrency tests
all check that promise with it.
"""

from __future__ import annotations

from uuid import UUID

from tests.listing import walk
from todo_core import Task, TaskStore
from todo_core.feed import ChangePage, Deleted, Upserted


class Replica:
    """One user's tasks as a client following the feed from ``token`` holds them."""

    def __init__(self, user_id: str, token: str, tasks: dict[UUID, Task] | None = None) -> None:
        self.user_id = user_id
        self.token = token
        self.tasks: dict[UUID, Task] = dict(tasks or {})
        self.pages = 0
        self.applied = 0  # items applied, over every page

    @classmethod
    async def start(cls, store: TaskStore, user_id: str) -> Replica:
        """As a client begins: a token for now first, then the whole list."""
        token = (await store.changes(user_id)).next_since
        tasks = await walk(store, user_id)
        return cls(user_id, token, {task.id: task for task in tasks})

    def apply(self, page: ChangePage) -> None:
        """Apply one page and move on to its ``next_since``; each task at most once."""
        ids = [change.task_id for change in page.items]
        assert len(ids) == len(set(ids)), f"a task twice on one page: {ids}"
        for change in page.items:
            if isinstance(change, Upserted):
                self.tasks[change.task_id] = change.task
            else:
                assert isinstance(change, Deleted)
                self.tasks.pop(change.task_id, None)
        self.token = page.next_since
        self.pages += 1
        self.applied += len(page.items)

    async def read(self, store: TaskStore, limit: int = 100) -> ChangePage:
        """Read and apply the next page."""
        page = await store.changes(self.user_id, self.token, limit=limit)
        self.apply(page)
        return page

    async def drain(self, store: TaskStore, limit: int = 100) -> None:
        """Read until the feed says nothing more is there right now."""
        for _ in range(100_000):
            if not (await self.read(store, limit)).has_more:
                return
        raise AssertionError("the feed never ran dry")

    async def matches(self, store: TaskStore) -> None:
        """Assert the copy equals the user's tasks as ``list`` answers them, every field."""
        listed = {task.id: task for task in await walk(store, self.user_id)}
        assert self.tasks == listed
