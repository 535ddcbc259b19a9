"""Concurrent writers on every backend: no lost updates, no lost creates."""

from __future__ import annotations

import asyncio

from tests.backends import stored_task_count
from tests.listing import expected_order, walk
from tests.values import ALICE
from todo_core import (
    ListQuery,
    PreconditionFailed,
    Task,
    TaskCreate,
    TaskNotFound,
    TaskPatch,
    TaskReplace,
    TaskStore,
)

WRITERS = 50


def split(results: list[Task | BaseException]) -> tuple[list[Task], list[BaseException]]:
    """Successful results and raised errors of an ``asyncio.gather(return_exceptions=True)``."""
    wins = [result for result in results if isinstance(result, Task)]
    errors = [result for result in results if not isinstance(result, Task)]
    return wins, errors


class TestConditionalWrites:
    async def test_one_of_50_patches_with_the_same_version_wins(self, store: TaskStore) -> None:
        """50 concurrent patches expecting version 1: one wins, 49 are PreconditionFailed."""
        task = await store.create(ALICE, TaskCreate(title="start"))
        results = await asyncio.gather(
            *(
                store.patch(ALICE, task.id, TaskPatch(title=f"writer {n}"), expected_version=1)
                for n in range(WRITERS)
            ),
            return_exceptions=True,
        )
        wins, errors = split(results)
        assert len(wins) == 1
        assert len(errors) == WRITERS - 1
        assert all(isinstance(error, PreconditionFailed) for error in errors), errors
        final = await store.get(ALICE, task.id)
        assert final == wins[0]
        assert final.version == 2

    async def test_one_of_50_replaces_with_the_same_version_wins(self, store: TaskStore) -> None:
        """50 concurrent replacements expecting version 1: the winner's body is what is stored."""
        task = await store.create(ALICE, TaskCreate(title="start", completed=True))
        results = await asyncio.gather(
            *(
                store.replace(ALICE, task.id, TaskReplace(title=f"writer {n}"), expected_version=1)
                for n in range(WRITERS)
            ),
            return_exceptions=True,
        )
        wins, errors = split(results)
        assert len(wins) == 1
        assert all(isinstance(error, PreconditionFailed) for error in errors), errors
        final = await store.get(ALICE, task.id)
        assert (final.title, final.completed, final.version) == (wins[0].title, False, 2)

    async def test_50_patches_with_a_stale_version_all_fail(self, store: TaskStore) -> None:
        """50 concurrent patches expecting a version already gone all fail; nothing changes."""
        task = await store.create(ALICE, TaskCreate(title="start"))
        task = await store.patch(ALICE, task.id, TaskPatch(title="second"))
        results = await asyncio.gather(
            *(
                store.patch(ALICE, task.id, TaskPatch(title=f"writer {n}"), expected_version=1)
                for n in range(WRITERS)
            ),
            return_exceptions=True,
        )
        assert all(isinstance(result, PreconditionFailed) for result in results), results
        assert await store.get(ALICE, task.id) == task

    async def test_one_of_50_deletes_wins(self, store: TaskStore) -> None:
        """50 concurrent deletes expecting version 1: one returns the task, the rest find
        no task."""
        task = await store.create(ALICE, TaskCreate(title="start"))
        results = await asyncio.gather(
            *(store.delete(ALICE, task.id, expected_version=1) for _ in range(WRITERS)),
            return_exceptions=True,
        )
        wins, errors = split(results)
        assert wins == [task]
        assert all(isinstance(error, TaskNotFound) for error in errors), errors
        assert await stored_task_count(store) == 0

    async def test_unconditional_patches_are_all_applied(self, store: TaskStore) -> None:
        """50 concurrent unconditional patches each get their own version: none is lost."""
        task = await store.create(ALICE, TaskCreate(title="start"))
        results = await asyncio.gather(
            *(store.patch(ALICE, task.id, TaskPatch(title=f"w{n}")) for n in range(WRITERS))
        )
        assert sorted(result.version for result in results) == list(range(2, WRITERS + 2))
        by_version = sorted(results, key=lambda result: result.version)
        stamps = [result.updated_at for result in by_version]
        assert stamps == sorted(set(stamps))  # strictly increasing with the version
        assert await store.get(ALICE, task.id) == by_version[-1]


class TestConcurrentCreates:
    async def test_no_create_is_lost(self, store: TaskStore) -> None:
        """200 concurrent creates give 200 distinct tasks, all found by a listing walk."""
        creates = 200
        created = await asyncio.gather(
            *(store.create(ALICE, TaskCreate(title=f"task {n}")) for n in range(creates))
        )
        created_ids = {task.id for task in created}
        assert len(created_ids) == creates
        listed = await walk(store, ALICE, ListQuery(sort="created_at", limit=37))
        assert len(listed) == creates
        assert {task.id for task in listed} == created_ids
        assert {task.title for task in listed} == {f"task {n}" for n in range(creates)}
        assert listed == expected_order(listed, "created_at")
        assert await stored_task_count(store) == creates
