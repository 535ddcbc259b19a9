"""Writer processes for the change feed's concurrency proof (test_feed_concurrency).

Each runs in a process of its own (multiprocessing, spawned), opens its own store on
the shared database, waits for a common start instant, then makes random writes of
every kind for a few users at once: creates, patches (conditional ones too),
completions of recurring tasks (a successor each), deletes, restores and purges. A
write that loses a race to another process (the task gone or changed meanwhile) is
part of the game; any other error fails the process.

On PostgreSQL some writes also hold their transaction open for a few milliseconds
after writing (``WriterPlan.slow_commits``), as a commit delayed by the network, a
pooler or a slow disk does: the window in which a change numbered earlier can commit
later, were the numbering not serialised per user.

Some users only ever get creates (``WriterPlan.append_only``): a change a follower
missed there is never made good by a later change of the same task, so any gap in
their feeds shows in the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from todo_core import (
    ListQuery,
    PreconditionFailed,
    TaskCreate,
    TaskNotFound,
    TaskPatch,
    TaskStore,
    open_store,
)
from todo_core.sql import SqlTaskStore

__all__ = ["WriterPlan", "write_randomly"]

_DUE = datetime(2026, 12, 24, 18, 0, tzinfo=UTC)
_KINDS = ("create", "patch", "conditional", "complete", "delete", "restore", "purge")
_WEIGHTS = (3, 3, 1, 2, 3, 2, 1)


@dataclass(frozen=True)
class WriterPlan:
    """What one writer process does: where, for whom, how much, from when."""

    url: str
    users: tuple[str, ...]
    writes: int
    seed: int
    start: float  # time.time() at which every writer begins
    append_only: tuple[str, ...] = ()
    slow_commits: bool = False
    options: dict[str, Any] = field(default_factory=dict)


def write_randomly(plan: WriterPlan) -> None:
    """The process's target: ``plan.writes`` random writes, then exit (0 if all went)."""
    asyncio.run(_write(plan))


async def _write(plan: WriterPlan) -> None:
    rng = random.Random(plan.seed)
    async with open_store(plan.url, **plan.options) as store:
        await asyncio.sleep(max(0.0, plan.start - time.time()))
        for number in range(plan.writes):
            user = rng.choice(plan.users + plan.append_only)
            (kind,) = ("create",) if user in plan.append_only else rng.choices(_KINDS, _WEIGHTS)
            if plan.slow_commits and user not in plan.append_only and rng.random() < 0.2:
                kind = "slow " + kind
            # Losing a race to another writer (the task gone or changed) is expected.
            with contextlib.suppress(TaskNotFound, PreconditionFailed):
                await _one_write(store, rng, user, kind, f"{plan.seed}-{number}")


async def _one_write(store: TaskStore, rng: random.Random, user: str, kind: str, name: str) -> None:
    if kind == "create":
        recurring = rng.random() < 0.5
        data = TaskCreate(
            title=f"task {name}",
            due_at=_DUE if recurring else None,
            recurrence="daily" if recurring else None,
        )
        await store.create(user, data)
        return
    if kind in ("restore", "purge"):
        trashed = (await store.trash(user)).items
        if trashed:
            task_id = rng.choice(trashed).id
            await (store.restore if kind == "restore" else store.purge)(user, task_id)
        return
    live = (await store.list(user, ListQuery(limit=100))).items
    if not live:
        return
    task = rng.choice(live)
    if kind == "patch":
        await store.patch(user, task.id, TaskPatch(title=f"patched {name}"))
    elif kind == "conditional":
        patch = TaskPatch(description=f"by {name}")
        await store.patch(user, task.id, patch, expected_version=task.version)
    elif kind == "complete":
        await store.patch(user, task.id, TaskPatch(completed=not task.completed))
    elif kind.startswith("slow"):
        await _slow_retitle(store, rng, user, task.id, f"slow {name}")
    else:
        await store.delete(user, task.id)


async def _slow_retitle(
    store: TaskStore, rng: random.Random, user: str, task_id: UUID, title: str
) -> None:
    """Retitle a task with the store's own UPDATE, then wait a little before the
    transaction commits."""
    assert isinstance(store, SqlTaskStore)
    statements = store.database.statements
    update = statements.update(frozenset({"title", "title_folded"}), conditional=False)
    pause = sa.select(sa.func.pg_sleep(sa.bindparam("pause", type_=sa.Float())))
    values = {
        "title": title,
        "title_folded": title,
        "now": datetime.now(UTC),
        "scope_user": user,
        "scope_task": task_id,
        "pause": rng.uniform(0.001, 0.02),
    }
    await store.database.transaction([update, statements.compile(pause)], values)
