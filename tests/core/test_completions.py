"""Completing a recurring task spawns exactly one successor, however many complete it.

The SQL store reads the task, then writes on the condition that it is unchanged, and
inserts the successor in the same transaction only if that write applied: of writers
that complete the same task at once, in one process or several, one spawns.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.backends import backend_url, open_backend
from tests.values import ALICE
from todo_core import ListQuery, Task, TaskCreate, TaskPatch, TaskStore
from todo_core.sql import Statements
from todo_core.sql.dialects import DialectName

DUE = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
RECURRING = TaskCreate(title="water the plants", due_at=DUE, recurrence="weekly")


async def all_tasks(store: TaskStore) -> list[Task]:
    page = await store.list(ALICE, ListQuery(limit=500))
    assert page.next_cursor is None
    return page.items


async def test_concurrent_completions_in_one_process_spawn_one(store: TaskStore) -> None:
    """20 patches completing the same recurring task at once all succeed; one successor."""
    task = await store.create(ALICE, RECURRING)
    results = await asyncio.gather(
        *(store.patch(ALICE, task.id, TaskPatch(completed=True)) for _ in range(20))
    )
    assert all(result.completed for result in results)
    tasks = await all_tasks(store)
    assert len(tasks) == 2
    completed = await store.get(ALICE, task.id)
    assert completed.next_occurrence_id is not None
    successor = await store.get(ALICE, completed.next_occurrence_id)
    assert (successor.completed, successor.recurrence) == (False, "weekly")
    assert successor.due_at is not None
    assert successor.due_at > DUE


async def test_completing_again_after_reopening_spawns_nothing(store: TaskStore) -> None:
    """Un-completing and completing again keeps the one successor (the task names it)."""
    task = await store.create(ALICE, RECURRING)
    first = await store.patch(ALICE, task.id, TaskPatch(completed=True))
    await store.patch(ALICE, task.id, TaskPatch(completed=False))
    again = await store.patch(ALICE, task.id, TaskPatch(completed=True))
    assert again.next_occurrence_id == first.next_occurrence_id is not None
    assert len(await all_tasks(store)) == 2


async def test_a_direct_completion_answers_its_completed_at(store: TaskStore) -> None:
    """A task that does not recur completes in one statement: completed_at is the
    write's updated_at, kept by a later write that leaves it completed, cleared after."""
    task = await store.create(ALICE, TaskCreate(title="once"))
    done = await store.patch(ALICE, task.id, TaskPatch(completed=True))
    assert done.completed_at == done.updated_at
    renamed = await store.patch(ALICE, task.id, TaskPatch(title="still done", completed=True))
    assert renamed.completed_at == done.completed_at
    reopened = await store.patch(ALICE, task.id, TaskPatch(completed=False))
    assert reopened.completed_at is None
    assert await store.get(ALICE, task.id) == reopened


# Each process opens its own store, then completes task n at start + n * PACE seconds.
COMPLETER = """
import asyncio, sys, time, uuid
from todo_core import open_store
from todo_core.models import TaskPatch
async def main():
    url, start, ids = sys.argv[1], float(sys.argv[2]), sys.argv[3].split(",")
    async with open_store(url) as store:
        await store.ping()
        for n, task_id in enumerate(ids):
            time.sleep(max(0.0, start + n * {pace} - time.time()))
            await store.patch({user!r}, uuid.UUID(task_id), TaskPatch(completed=True))
asyncio.run(main())
"""
PACE = 0.2
TASKS = 8


@pytest.mark.parametrize(
    ("backend", "processes"),
    [
        ("sqlite", 2),
        pytest.param("postgres", 4, marks=pytest.mark.postgres),
        pytest.param("pgbouncer", 4, marks=pytest.mark.postgres),
    ],
)
async def test_processes_completing_at_once_spawn_one_successor_each(
    backend: str, processes: int, tmp_path: Path
) -> None:
    """Several processes, each with its own store on one database, complete the same
    recurring task at the same moment, task after task: exactly one successor each."""
    async with open_backend(backend, tmp_path) as store:
        originals = [(await store.create(ALICE, RECURRING)).id for _ in range(TASKS)]
        script = COMPLETER.format(pace=PACE, user=ALICE)
        start = str(time.time() + 3.0)  # after every process has started and connected
        ids = ",".join(str(task_id) for task_id in originals)
        url = backend_url(backend, tmp_path)
        workers = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", script, url, start, ids, stderr=asyncio.subprocess.PIPE
            )
            for _ in range(processes)
        ]
        outcomes = [await worker.communicate() for worker in workers]
        assert [worker.returncode for worker in workers] == [0] * processes, outcomes
        tasks = await all_tasks(store)
        assert len(tasks) == 2 * TASKS
        by_id = {task.id: task for task in tasks}
        for original in originals:
            completed = by_id[original]
            assert completed.completed
            assert completed.next_occurrence_id in by_id
            successor = by_id[completed.next_occurrence_id]
            assert not successor.completed
            assert successor.next_occurrence_id is None


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_a_completion_is_a_write_never_run_again(dialect: DialectName) -> None:
    """Each statement of a completion counts as a write, also PostgreSQL's SELECT over
    its UPDATE and INSERT: a backend never runs it again after a lost answer."""
    statements = Statements(dialect).completion(frozenset({"title", "completed"}))
    assert statements
    assert all(statement.writes for statement in statements)
