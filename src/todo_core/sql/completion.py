"""Writes whose outcome depends on the stored task: read it, settle, write if unchanged.

Completing a task that recurs spawns its successor, and whether it does depends on the
task as stored (``writes.depends_on_stored``). Such a write reads the task, applies
``writes.settle`` to it, and writes the outcome in one transaction on the condition that
the task's version is still the one read; the successor is inserted only if that write
applied. Of several writers completing the same task at once, in any number of
processes, one applies and spawns; the others find a new version and start over from
the read, and by then the task names its successor, so at most one is ever spawned.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from todo_core.errors import PreconditionFailed, StoreUnavailable
from todo_core.models import Task, trusted_task
from todo_core.sql.statement import Statement
from todo_core.writes import next_stamp, settle

__all__ = ["ATTEMPTS", "SettledWrite", "returning"]

ATTEMPTS: Final = 20
"""How often a write without ``expected_version`` starts over after losing a race."""


def returning(statements: Sequence[Statement]) -> Statement:
    """The statement whose rows a transaction of ``statements`` returns: the last that
    has result columns (``Database.transaction``)."""
    return next(statement for statement in reversed(statements) if statement.columns)


class SettledWrite:
    """One such write of a store: how it reads, stores its fields and runs statements."""

    def __init__(
        self,
        *,
        read: Callable[[str, UUID], Awaitable[Task]],
        stored: Callable[[Mapping[str, Any]], dict[str, Any]],
        statements: Callable[[frozenset[str], bool], tuple[Statement, ...]],
        run: Callable[[Sequence[Statement], Mapping[str, Any]], Awaitable[list[Sequence[Any]]]],
        clock: Callable[[], datetime],
    ) -> None:
        self._read = read
        self._stored = stored
        self._statements = statements
        self._run = run
        self._clock = clock

    async def __call__(
        self,
        user_id: str,
        task_id: UUID,
        fields_of: Callable[[Task], dict[str, Any]],
        expected_version: int | None,
    ) -> Task:
        """Write ``fields_of(task)`` (every writable field) over the stored ``task``.

        Raises:
            TaskNotFound, PreconditionFailed: as any write.
            InvalidPatch: from ``fields_of``.
            StoreUnavailable: other writers kept changing the task.
        """
        for _ in range(ATTEMPTS):
            task = await self._read(user_id, task_id)
            if expected_version is not None and task.version != expected_version:
                raise PreconditionFailed(task_id, expected_version)
            written = await self._attempt(task, fields_of(task))
            if written is not None:
                return written
            if expected_version is not None:
                # Changed or deleted since the read: the next read says which.
                await self._read(user_id, task_id)
                raise PreconditionFailed(task_id, expected_version)
        raise StoreUnavailable(
            f"task {task_id} kept changing under this write ({ATTEMPTS} attempts): try again"
        )

    async def _attempt(self, task: Task, fields: dict[str, Any]) -> Task | None:
        """Write ``fields`` if ``task`` is still as read; None if it is not."""
        # The version condition guarantees the stored updated_at is the one read, so
        # the statement's next_stamp of it with "now" bound to stamp yields stamp.
        stamp = next_stamp(task.updated_at, self._clock())
        settled = settle(task, fields, stamp)
        values = self._stored(settled.fields)
        successor = settled.successor
        statements = self._statements(frozenset(values), successor is not None)
        values |= {
            "now": stamp,
            "scope_user": task.user_id,
            "scope_task": task.id,
            "expected_version": task.version,
        }
        if successor is not None:
            stored = self._stored(successor.__dict__)
            values |= {f"successor_{name}": value for name, value in stored.items()}
        rows = await self._run(statements, values)
        return trusted_task(returning(statements).decode(rows[0])) if rows else None
