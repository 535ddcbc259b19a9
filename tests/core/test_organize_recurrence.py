"""Completing a recurring task, through every store: exactly one successor, when the
contract says so and never otherwise, due where the wall clock of its zone says."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import StoreFactory
from tests.listing import walk
from tests.successors import next_due_at
from tests.values import ALICE, BOB, DUE_ATS, EPOCH_2024, RECURRENCES, TIME_ZONES, SteppingClock
from todo_core import (
    InvalidPatch,
    PreconditionFailed,
    Task,
    TaskCreate,
    TaskNotFound,
    TaskPatch,
    TaskReplace,
    TaskStore,
)

ONE_SECOND = timedelta(seconds=1)
DUE = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)  # before EPOCH_2024, the stores' clock
RECURRING: dict[str, Any] = {
    "title": "water the plants",
    "description": "all of them",
    "due_at": DUE,
    "priority": "medium",
    "tags": ["home", "garden"],
    "recurrence": "daily",
    "time_zone": "Europe/Paris",
}
COPIED = ("user_id", "title", "description", "priority", "tags", "recurrence", "time_zone")


@pytest.fixture
async def clocked(store_factory: StoreFactory) -> Any:
    """A store whose clock starts at EPOCH_2024 and moves a second per call."""
    async with store_factory(clock=SteppingClock(EPOCH_2024, ONE_SECOND)) as store:
        yield store


async def successor_of(store: TaskStore, done: Task) -> Task:
    """The successor ``done`` names, checked to be stored, listed, and a copy of it."""
    assert done.next_occurrence_id is not None, "completing a recurring task spawns one"
    successor = await store.get(done.user_id, done.next_occurrence_id)
    for name in COPIED:
        assert getattr(successor, name) == getattr(done, name), name
    assert (successor.completed, successor.completed_at, successor.next_occurrence_id) == (
        False,
        None,
        None,
    )
    assert successor.version == 1
    assert successor.due_at is not None
    assert done.completed_at is not None
    assert successor.due_at > done.completed_at
    assert successor.id in {task.id for task in await walk(store, done.user_id)}
    return successor


async def task_count(store: TaskStore, user_id: str = ALICE) -> int:
    return len(await walk(store, user_id))


class TestSpawning:
    async def test_completing_spawns_one_successor(self, clocked: TaskStore) -> None:
        task = await clocked.create(ALICE, TaskCreate(**RECURRING))
        done = await clocked.patch(ALICE, task.id, TaskPatch(completed=True))
        assert done.completed_at == done.updated_at
        successor = await successor_of(clocked, done)
        assert done.completed_at is not None
        # Daily in Paris, due 10:00 local: the first 10:00 after the completion.
        assert successor.due_at == next_due_at(DUE, "daily", "Europe/Paris", done.completed_at)
        assert successor.due_at == datetime(2024, 1, 2, 9, 0, tzinfo=UTC)
        assert await clocked.get(ALICE, task.id) == done
        assert await task_count(clocked) == 2
        assert await task_count(clocked, BOB) == 0

    @pytest.mark.parametrize("how", ["patch", "replace"])
    async def test_a_task_spawns_at_most_once(self, clocked: TaskStore, how: str) -> None:
        """Un-completing and completing again creates nothing more; the link stays."""
        task = await clocked.create(ALICE, TaskCreate(**RECURRING))
        done = await clocked.patch(ALICE, task.id, TaskPatch(completed=True))
        for completed in (False, True, False, True):
            if how == "patch":
                again = await clocked.patch(ALICE, task.id, TaskPatch(completed=completed))
            else:
                fields = RECURRING | {"completed": completed}
                again = await clocked.replace(ALICE, task.id, TaskReplace(**fields))
            assert again.next_occurrence_id == done.next_occurrence_id
        assert await task_count(clocked) == 2

    async def test_completing_with_a_new_due_at_advances_the_new_one(
        self, clocked: TaskStore
    ) -> None:
        task = await clocked.create(ALICE, TaskCreate(**RECURRING))
        new_due = datetime(2023, 6, 15, 22, 30, tzinfo=UTC)
        done = await clocked.patch(ALICE, task.id, TaskPatch(completed=True, due_at=new_due))
        successor = await successor_of(clocked, done)
        assert done.completed_at is not None
        assert successor.due_at == next_due_at(new_due, "daily", "Europe/Paris", done.completed_at)
        # 00:30 in Paris (winter), every day: the first after EPOCH_2024 is on Jan 2.
        assert successor.due_at == datetime(2024, 1, 2, 23, 30, tzinfo=UTC)

    async def test_the_write_as_a_whole_counts(self, clocked: TaskStore) -> None:
        """A PUT that completes and changes every copied field gives them to the successor."""
        task = await clocked.create(ALICE, TaskCreate(**RECURRING))
        fields = RECURRING | {
            "completed": True,
            "title": "new",
            "tags": ["x"],
            "priority": "low",
            "recurrence": "weekly",
            "time_zone": "UTC",
        }
        done = await clocked.replace(ALICE, task.id, TaskReplace(**fields))
        successor = await successor_of(clocked, done)
        assert (successor.title, successor.tags, successor.recurrence) == ("new", ["x"], "weekly")
        assert successor.due_at == datetime(2024, 1, 8, 9, 0, tzinfo=UTC)

    async def test_expected_version_is_honoured(self, clocked: TaskStore) -> None:
        """A stale version refuses the completing write and spawns nothing; the current
        one completes it."""
        task = await clocked.create(ALICE, TaskCreate(**RECURRING))
        with pytest.raises(PreconditionFailed):
            await clocked.patch(ALICE, task.id, TaskPatch(completed=True), expected_version=2)
        assert await clocked.get(ALICE, task.id) == task
        assert await task_count(clocked) == 1
        done = await clocked.patch(ALICE, task.id, TaskPatch(completed=True), expected_version=1)
        await successor_of(clocked, done)

    async def test_concurrent_completions_spawn_one(self, store: TaskStore) -> None:
        """Completions racing each other leave one successor, named by every answer."""
        task = await store.create(ALICE, TaskCreate(**RECURRING))
        answers = await asyncio.gather(
            *(store.patch(ALICE, task.id, TaskPatch(completed=True)) for _ in range(5))
        )
        stored = await store.get(ALICE, task.id)
        await successor_of(store, stored)
        assert {answer.next_occurrence_id for answer in answers} == {stored.next_occurrence_id}
        assert await task_count(store) == 2

    async def test_conditional_completions_racing(self, store: TaskStore) -> None:
        """Of completions racing on the same version, one wins and spawns; the rest are
        refused and spawn nothing."""
        task = await store.create(ALICE, TaskCreate(**RECURRING))
        answers = await asyncio.gather(
            *(
                store.patch(ALICE, task.id, TaskPatch(completed=True), expected_version=1)
                for _ in range(5)
            ),
            return_exceptions=True,
        )
        won = [answer for answer in answers if isinstance(answer, Task)]
        assert len(won) == 1, answers
        assert all(isinstance(answer, (Task, PreconditionFailed)) for answer in answers)
        await successor_of(store, won[0])
        assert await task_count(store) == 2

    async def test_a_successor_completes_into_its_own(self, clocked: TaskStore) -> None:
        task = await clocked.create(ALICE, TaskCreate(**RECURRING))
        done = await clocked.patch(ALICE, task.id, TaskPatch(completed=True))
        first = await successor_of(clocked, done)
        first_done = await clocked.patch(ALICE, first.id, TaskPatch(completed=True))
        second = await successor_of(clocked, first_done)
        assert first.due_at is not None
        assert second.due_at == first.due_at + timedelta(days=1)
        assert await task_count(clocked) == 3


class TestNoSuccessor:
    @pytest.mark.parametrize(
        "write",
        [
            TaskPatch(completed=True, recurrence=None),
            TaskReplace(title="t", completed=True, due_at=DUE),
            TaskReplace(title="t", completed=True),
        ],
        ids=["patch clearing recurrence", "put without recurrence", "put without both"],
    )
    async def test_a_write_that_clears_recurrence(
        self, clocked: TaskStore, write: TaskPatch | TaskReplace
    ) -> None:
        task = await clocked.create(ALICE, TaskCreate(**RECURRING))
        if isinstance(write, TaskPatch):
            done = await clocked.patch(ALICE, task.id, write)
        else:
            done = await clocked.replace(ALICE, task.id, write)
        assert (done.completed, done.next_occurrence_id) == (True, None)
        assert await task_count(clocked) == 1

    async def test_creating_completed(self, clocked: TaskStore) -> None:
        task = await clocked.create(ALICE, TaskCreate(**RECURRING, completed=True))
        assert (task.next_occurrence_id, task.completed_at) == (None, task.created_at)
        assert await task_count(clocked) == 1

    async def test_deleting(self, clocked: TaskStore) -> None:
        task = await clocked.create(ALICE, TaskCreate(**RECURRING))
        await clocked.delete(ALICE, task.id)
        assert await task_count(clocked) == 0

    async def test_completing_without_recurrence(self, clocked: TaskStore) -> None:
        task = await clocked.create(ALICE, TaskCreate(title="t", due_at=DUE))
        done = await clocked.patch(ALICE, task.id, TaskPatch(completed=True))
        assert (done.completed, done.next_occurrence_id) == (True, None)
        assert await task_count(clocked) == 1

    async def test_a_write_that_keeps_it_completed(self, clocked: TaskStore) -> None:
        """Adding a recurrence to a completed task completes nothing: no successor."""
        task = await clocked.create(ALICE, TaskCreate(title="t", due_at=DUE, completed=True))
        patched = await clocked.patch(ALICE, task.id, TaskPatch(recurrence="daily"))
        assert patched.next_occurrence_id is None
        assert await task_count(clocked) == 1

    async def test_successor_beyond_the_range(self, clocked: TaskStore) -> None:
        """A successor due after 9999-12-31 is not made; the write succeeds."""
        last = datetime(9999, 12, 31, 12, 0, tzinfo=UTC)
        task = await clocked.create(ALICE, TaskCreate(**RECURRING | {"due_at": last}))
        done = await clocked.patch(ALICE, task.id, TaskPatch(completed=True))
        assert (done.completed, done.next_occurrence_id) == (True, None)
        assert done.completed_at == done.updated_at
        assert await clocked.get(ALICE, task.id) == done
        assert await task_count(clocked) == 1


class TestRecurrenceNeedsDueAt:
    @pytest.mark.parametrize(
        ("start", "patch", "field"),
        [
            ({"title": "t"}, TaskPatch(recurrence="daily"), "recurrence"),
            (RECURRING, TaskPatch(due_at=None), "due_at"),
            (RECURRING, TaskPatch(due_at=None, completed=True), "due_at"),
        ],
        ids=["recurrence without due_at", "due_at cleared", "due_at cleared completing"],
    )
    async def test_invalid_patch_changes_nothing(
        self, clocked: TaskStore, start: dict[str, Any], patch: TaskPatch, field: str
    ) -> None:
        task = await clocked.create(ALICE, TaskCreate(**start))
        with pytest.raises(InvalidPatch) as refused:
            await clocked.patch(ALICE, task.id, patch)
        assert refused.value.field == field
        assert await clocked.get(ALICE, task.id) == task
        assert await task_count(clocked) == 1

    async def test_not_found_comes_first(self, clocked: TaskStore) -> None:
        task = await clocked.create(ALICE, TaskCreate(title="t"))
        with pytest.raises(TaskNotFound):
            await clocked.patch(ALICE, uuid4(), TaskPatch(recurrence="daily"))
        with pytest.raises(TaskNotFound):
            await clocked.patch(BOB, task.id, TaskPatch(recurrence="daily"))

    async def test_precondition_comes_first(self, clocked: TaskStore) -> None:
        task = await clocked.create(ALICE, TaskCreate(title="t"))
        with pytest.raises(PreconditionFailed):
            await clocked.patch(ALICE, task.id, TaskPatch(recurrence="daily"), expected_version=7)
        assert await clocked.get(ALICE, task.id) == task


class TestSuccessorDueAt:
    @settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        due_at=DUE_ATS,
        recurrence=RECURRENCES,
        zone=TIME_ZONES,
        later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=800)),
    )
    async def test_matches_the_wall_clock(
        self,
        store_factory: StoreFactory,
        due_at: datetime,
        recurrence: str,
        zone: str,
        later: timedelta,
    ) -> None:
        """The successor is due n periods later on the zone's wall clock, the smallest n
        that is after the completion (computed here from the contract, independently)."""
        now = due_at + later if due_at.year < 2190 else due_at
        async with store_factory(clock=SteppingClock(now)) as store:
            fields = {"title": "t", "due_at": due_at, "recurrence": recurrence}
            task = await store.create(
                ALICE, TaskCreate.model_validate(fields | {"time_zone": zone})
            )
            done = await store.patch(ALICE, task.id, TaskPatch(completed=True))
            assert done.completed_at is not None
            expected = next_due_at(due_at, recurrence, zone, done.completed_at)
            assert expected is not None
            successor = await successor_of(store, done)
            assert successor.due_at == expected

    @pytest.mark.parametrize(
        ("due_at", "recurrence", "zone", "expected"),
        [
            # Jan 31 + 1 month clamps to Feb 29 in a leap year.
            ("2024-01-31T10:00:00Z", "monthly", "UTC", "2024-02-29T10:00:00Z"),
            # Feb 29 + 1 year is Feb 28.
            ("2024-02-29T10:00:00Z", "yearly", "UTC", "2025-02-28T10:00:00Z"),
            # 09:00 in Paris stays 09:00 across the change to summer time.
            ("2024-03-30T08:00:00Z", "daily", "Europe/Paris", "2024-03-31T07:00:00Z"),
            # 02:30 does not exist on 2024-03-31 in Paris: it moves forward to 03:30.
            ("2024-03-30T01:30:00Z", "daily", "Europe/Paris", "2024-03-31T01:30:00Z"),
            # 02:30 happens twice on 2024-10-27 in Paris: the first one.
            ("2024-10-26T00:30:00Z", "daily", "Europe/Paris", "2024-10-27T00:30:00Z"),
        ],
    )
    async def test_calendar_cases(
        self,
        store_factory: StoreFactory,
        due_at: str,
        recurrence: str,
        zone: str,
        expected: str,
    ) -> None:
        """Completed just after it was due: the next period, on the zone's calendar."""
        due = datetime.fromisoformat(due_at)
        async with store_factory(clock=SteppingClock(due + ONE_SECOND)) as store:
            task = await store.create(
                ALICE,
                TaskCreate.model_validate(
                    {"title": "t", "due_at": due, "recurrence": recurrence, "time_zone": zone}
                ),
            )
            done = await store.patch(ALICE, task.id, TaskPatch(completed=True))
            successor = await successor_of(store, done)
        assert successor.due_at == datetime.fromisoformat(expected)
        assert done.completed_at is not None
        assert successor.due_at == next_due_at(due, recurrence, zone, done.completed_at)
