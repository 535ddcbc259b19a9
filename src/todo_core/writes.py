"""What a write does to a task beyond the fields it sets: ``completed_at``, recurrence.

Every store applies these same rules; the memory store to every write, the SQL store
to the writes whose outcome depends on the stored task (``depends_on_stored``), which
it reads first and then writes on the condition that the task has not changed since.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from uuid import uuid4

from todo_core.models import Task
from todo_core.recurrence import next_due

__all__ = ["Settled", "depends_on_stored", "next_stamp", "settle"]

_MICROSECOND: Final = timedelta(microseconds=1)
_ABSENT: Final = object()


def next_stamp(previous: datetime, now: datetime) -> datetime:
    """A write's ``updated_at``: ``now``, or just after ``previous`` if the clock lags."""
    return max(now, previous + _MICROSECOND)


def depends_on_stored(changes: Mapping[str, Any]) -> bool:
    """Whether a write of ``changes`` needs the stored task to decide its outcome.

    It does when it completes a task that may recur (a successor may be due), or when
    it may leave a recurrence without a ``due_at`` through a field it does not set.
    Any other write is decided by its own fields, and needs no read.
    """
    recurrence = changes.get("recurrence", _ABSENT)
    if recurrence is None:  # cleared: nothing recurs, and nothing needs a due date
        return False
    if changes.get("completed") is True:
        return True
    if "due_at" in changes:
        return changes["due_at"] is None and recurrence is _ABSENT
    return recurrence is not _ABSENT


@dataclass(frozen=True, slots=True)
class Settled:
    """A write's outcome: the task's new fields, and the successor it spawns (or None)."""

    fields: dict[str, Any]
    successor: Task | None


def settle(current: Task, fields: Mapping[str, Any], stamp: datetime) -> Settled:
    """The outcome of writing ``fields`` (every writable field) over ``current`` at
    ``stamp``, the write's ``updated_at``.

    ``completed_at`` becomes ``stamp`` when ``completed`` turns true, is kept while it
    stays true, and is cleared otherwise. A task that turns completed with a recurrence
    and no successor yet spawns one, due at the next period after ``stamp``, unless that
    would fall outside the range ``due_at`` allows.
    """
    settled = dict(fields)
    completing = bool(settled["completed"]) and not current.completed
    if not settled["completed"]:
        settled["completed_at"] = None
    elif completing or current.completed_at is None:
        settled["completed_at"] = stamp
    else:
        settled["completed_at"] = current.completed_at
    settled["next_occurrence_id"] = current.next_occurrence_id
    successor = None
    if completing and current.next_occurrence_id is None and settled["recurrence"] is not None:
        successor = _successor(current, settled, stamp)
        if successor is not None:
            settled["next_occurrence_id"] = successor.id
    return Settled(settled, successor)


def _successor(current: Task, fields: Mapping[str, Any], stamp: datetime) -> Task | None:
    due_at = next_due(fields["due_at"], fields["recurrence"], fields["time_zone"], stamp)
    if due_at is None:
        return None
    return Task.model_construct(
        id=uuid4(),
        user_id=current.user_id,
        title=fields["title"],
        description=fields["description"],
        completed=False,
        due_at=due_at,
        priority=fields["priority"],
        tags=list(fields["tags"]),
        recurrence=fields["recurrence"],
        time_zone=fields["time_zone"],
        completed_at=None,
        next_occurrence_id=None,
        created_at=stamp,
        updated_at=stamp,
        version=1,
    )
