"""A client's copy of one user's tasks, kept by following the change feed.

What the contract promises a client: take a token, walk the list, then apply each
feed item by ``id`` (an upsert replaces, a delete removes); once writes stop and the
feed is drained, the copy equals the tasks. The feed, trash and concurrency tests
and the store state machine check that promise with it: ``Replica`` reads pages of
``TaskStore.changes``, ``SubscribedReplica`` takes what ``todo_core.subscribe`` hands out.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from tests.listing import walk
from todo_core import Subscription, Task, TaskStore
from todo_core.feed import Change, ChangePage, Deleted, Upserted


def applied(tasks: dict[UUID, Task], changes: Sequence[Change]) -> None:
    """Apply ``changes`` read in one go (each task at most once) to ``tasks`` by id."""
    ids = [change.task_id for change in changes]
    assert len(ids) == len(set(ids)), f"a task twice in one read: {ids}"
    check_successors_follow(changes)
    for change in changes:
        if isinstance(change, Upserted):
            tasks[change.task_id] = change.task
        else:
            assert isinstance(change, Deleted)
            tasks.pop(change.task_id, None)


def check_successors_follow(changes: Sequence[Change]) -> None:
    """A completed recurring task comes before the successor its completion created,
    when one read holds both and the completion is still the task's latest write (its
    ``updated_at`` is the successor's ``created_at``)."""
    places = {change.task_id: place for place, change in enumerate(changes)}
    for place, change in enumerate(changes):
        if not isinstance(change, Upserted) or change.task.next_occurrence_id is None:
            continue
        after = places.get(change.task.next_occurrence_id)
        if after is None:
            continue
        successor = changes[after]
        if isinstance(successor, Upserted) and successor.task.created_at == change.task.updated_at:
            assert place < after, f"successor {successor.task_id} before {change.task_id}"


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
        applied(self.tasks, page.items)
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


class SubscribedReplica:
    """One user's tasks as a client of ``todo_core.subscribe`` holds them: every change
    the subscription hands out, applied by id."""

    def __init__(self, subscription: Subscription, tasks: dict[UUID, Task] | None = None) -> None:
        self.subscription = subscription
        self.tasks: dict[UUID, Task] = dict(tasks or {})

    async def catch_up(self) -> list[Change]:
        """Take every change there is now, apply them, and return them in order; with
        no write meanwhile, so each task comes at most once.

        ``next(0)`` waits for nothing: after a write in this process the store has
        already woken the subscription, so what is not handed out now was missed.
        """
        changes: list[Change] = []
        for _ in range(100_000):
            change = await self.subscription.next(0)
            if change is None:
                applied(self.tasks, changes)
                return changes
            changes.append(change)
        raise AssertionError("the subscription never ran dry")
