"""The store state machine's model of the change feed and the trash (test_stateful.py).

Written from the contract alone, as plainly as the machine's dict of tasks, so that it
is an oracle for every store, the memory store included: each user's changes are
numbered 1, 2, 3...; the feed reports a task once, at the number of its latest change,
as an upsert while it lives and as a delete (with its ``deleted_at``) once trashed or
purged, until the retention window forgets it. Kept apart so that the machine reads as
rules and checks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from todo_core import Task
from todo_core.feed import Change, Upserted

Key = tuple[str, UUID]  # (user_id, task_id)
# What a client learns from one feed item, comparable between the model and a store.
ItemView = tuple[str, UUID, Any]


def seen(change: Change) -> ItemView:
    """What ``change`` tells a client: a task's every field, or its deletion time."""
    if isinstance(change, Upserted):
        return ("upsert", change.task_id, change.task.model_dump())
    return ("delete", change.task_id, change.deleted_at)


@dataclass
class Gone:
    """A task out of the live set: in the trash, or purged from it (still a deletion
    the feed reports)."""

    task: Task
    deleted_at: datetime
    purged: bool = False


class FeedModel:
    """Each user's change numbers, each task's latest one, and the trash."""

    def __init__(self) -> None:
        self.heads: Counter[str] = Counter()
        self.numbers: dict[Key, int] = {}  # every task the feed reports: its latest change
        self.gone: dict[Key, Gone] = {}

    def moved(self, user_id: str, task_id: UUID) -> None:
        """A write of the task: the user's next number is now its latest change."""
        self.heads[user_id] += 1
        self.numbers[user_id, task_id] = self.heads[user_id]

    def trashed(self, task: Task, deleted_at: datetime) -> None:
        self.gone[task.user_id, task.id] = Gone(task, deleted_at)
        self.moved(task.user_id, task.id)

    def in_trash(self, user_id: str, task_id: UUID) -> Gone | None:
        """The trash's entry of the task, or None when it is not in the user's trash."""
        gone = self.gone.get((user_id, task_id))
        return None if gone is None or gone.purged else gone

    def restored(self, user_id: str, task_id: UUID) -> None:
        del self.gone[user_id, task_id]
        self.moved(user_id, task_id)

    def purged(self, user_id: str, task_id: UUID) -> None:
        """Out of the trash for good; not a change: the feed reported the deletion."""
        self.gone[user_id, task_id].purged = True

    def trash(self, user_id: str) -> list[dict[str, Any]]:
        """The user's trash as pages list it: most recently deleted first, equal times
        by id descending; each the task as it was, with its ``deleted_at``."""
        entries = [
            gone for (owner, _), gone in self.gone.items() if owner == user_id and not gone.purged
        ]
        entries.sort(key=lambda gone: (gone.deleted_at, gone.task.id), reverse=True)
        return [gone.task.model_dump() | {"deleted_at": gone.deleted_at} for gone in entries]

    def expire(self, cutoff: datetime) -> int:
        """Forget the tasks deleted before ``cutoff``, trashed or purged; how many."""
        expired = [key for key, gone in self.gone.items() if gone.deleted_at < cutoff]
        for key in expired:
            del self.gone[key]
            del self.numbers[key]
        return len(expired)

    def after(
        self, user_id: str, position: int, live: Mapping[Key, Task]
    ) -> list[tuple[int, ItemView]]:
        """What the user's feed holds after change ``position``, in order, numbered."""
        later = sorted(
            (number, task_id)
            for (owner, task_id), number in self.numbers.items()
            if owner == user_id and number > position
        )
        return [(number, self.view(user_id, task_id, live)) for number, task_id in later]

    def view(self, user_id: str, task_id: UUID, live: Mapping[Key, Task]) -> ItemView:
        task = live.get((user_id, task_id))
        if task is not None:
            return ("upsert", task_id, task.model_dump())
        return ("delete", task_id, self.gone[user_id, task_id].deleted_at)
