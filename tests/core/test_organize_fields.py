"""The fields of "Organizing tasks" through every store: defaults, PUT, PATCH, tags, and
``completed_at``. Validation of the values themselves is in test_models.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, settings

from tests.conftest import StoreFactory
from tests.values import (
    ALICE,
    EPOCH_2024,
    OPTIONAL_DUE_ATS,
    ORGANIZING_DEFAULTS,
    PRIORITY_LEVELS,
    RFC3339_UTC,
    TAG_LISTS,
    TIME_ZONES,
    SteppingClock,
    normalized_tags,
)
from todo_core import Task, TaskCreate, TaskPatch, TaskReplace, TaskStore

# A task with every new field away from its default.
FULL: dict[str, Any] = {
    "title": "t",
    "due_at": datetime(2026, 12, 24, 18, 0, tzinfo=UTC),
    "priority": "high",
    "tags": ["home", "work"],
    "recurrence": "weekly",
    "time_zone": "Europe/Paris",
}
DEFAULTS: Final = ORGANIZING_DEFAULTS
ONE_SECOND = timedelta(seconds=1)


def organizing_fields(task: Task) -> dict[str, Any]:
    return {name: getattr(task, name) for name in DEFAULTS}


class TestDefaults:
    async def test_a_new_task_has_every_default(self, store: TaskStore) -> None:
        """A task created with a title only has the contract's defaults, read back too."""
        task = await store.create(ALICE, TaskCreate(title="t"))
        assert organizing_fields(task) == DEFAULTS
        assert organizing_fields(await store.get(ALICE, task.id)) == DEFAULTS

    async def test_every_field_is_stored(self, store: TaskStore) -> None:
        """Every writable field is stored as given and read back alike."""
        task = await store.create(ALICE, TaskCreate(**FULL))
        expected = DEFAULTS | {name: FULL[name] for name in FULL if name != "title"}
        assert organizing_fields(task) == expected
        fetched = await store.get(ALICE, task.id)
        assert fetched == task
        assert fetched.due_at is not None
        assert fetched.due_at.utcoffset() == timedelta(0)

    async def test_due_at_serialises_like_created_at(self, store: TaskStore) -> None:
        """due_at is answered in UTC with six fractional digits and Z."""
        due = datetime(2026, 12, 24, 19, 0, 0, 500000, tzinfo=timezone(timedelta(hours=1)))
        task = await store.create(ALICE, TaskCreate(title="t", due_at=due))
        data = (await store.get(ALICE, task.id)).model_dump(mode="json")
        assert data["due_at"] == "2026-12-24T18:00:00.500000Z"
        assert data["completed_at"] is None

    @settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(due_at=OPTIONAL_DUE_ATS, priority=PRIORITY_LEVELS, tags=TAG_LISTS, zone=TIME_ZONES)
    async def test_any_values_round_trip(
        self,
        store: TaskStore,
        due_at: datetime | None,
        priority: str,
        tags: list[str],
        zone: str,
    ) -> None:
        """Any valid values come back exactly, tags normalised, to the microsecond."""
        task = await store.create(
            ALICE,
            TaskCreate.model_validate(
                {"title": "t", "due_at": due_at, "priority": priority, "tags": tags}
                | {"time_zone": zone}
            ),
        )
        fetched = await store.get(ALICE, task.id)
        assert fetched == task
        assert (fetched.due_at, fetched.priority, fetched.tags, fetched.time_zone) == (
            due_at,
            priority,
            normalized_tags(tags),
            zone,
        )


class TestWrites:
    async def test_put_resets_omitted_fields(self, store: TaskStore) -> None:
        """A PUT that omits the new fields sets their defaults."""
        task = await store.create(ALICE, TaskCreate(**FULL))
        replaced = await store.replace(ALICE, task.id, TaskReplace(title="again"))
        assert organizing_fields(replaced) == DEFAULTS
        assert await store.get(ALICE, task.id) == replaced

    async def test_put_sets_every_field(self, store: TaskStore) -> None:
        task = await store.create(ALICE, TaskCreate(title="t"))
        replaced = await store.replace(ALICE, task.id, TaskReplace(**FULL))
        assert organizing_fields(replaced) == organizing_fields(await store.get(ALICE, task.id))
        assert (replaced.due_at, replaced.priority, replaced.tags) == (
            FULL["due_at"],
            "high",
            ["home", "work"],
        )
        assert (replaced.recurrence, replaced.time_zone) == ("weekly", "Europe/Paris")

    @pytest.mark.parametrize(
        "changes",
        [
            {"priority": "low"},
            {"tags": ["Other"]},
            {"tags": []},
            {"time_zone": "Asia/Kolkata"},
            {"recurrence": None},
            {"recurrence": "yearly"},
            {"due_at": datetime(2030, 1, 1, tzinfo=UTC)},
            {"due_at": None, "recurrence": None},
            {"title": "renamed"},
        ],
        ids=lambda changes: ",".join(changes),
    )
    async def test_patch_merges(self, store: TaskStore, changes: dict[str, Any]) -> None:
        """A PATCH changes the fields it names; a tags array replaces the whole list."""
        task = await store.create(ALICE, TaskCreate(**FULL))
        patched = await store.patch(ALICE, task.id, TaskPatch(**changes))
        expected = organizing_fields(task) | {
            name: normalized_tags(value) if name == "tags" else value
            for name, value in changes.items()
            if name != "title"
        }
        assert organizing_fields(patched) == expected
        assert await store.get(ALICE, task.id) == patched

    async def test_tags_are_normalised_in_order(self, store: TaskStore) -> None:
        """Tags are stripped and lower-cased; repeats after that go, keeping the first."""
        raw = [" Work ", "home", "WORK", "Été", "été\t", "x"]
        task = await store.create(ALICE, TaskCreate(title="t", tags=raw))
        assert task.tags == ["work", "home", "été", "x"]
        assert (await store.get(ALICE, task.id)).tags == task.tags


class TestCompletedAt:
    async def test_created_completed_is_completed_at_creation(self, store: TaskStore) -> None:
        task = await store.create(ALICE, TaskCreate(title="t", completed=True))
        assert task.completed_at == task.created_at
        assert (await store.get(ALICE, task.id)).completed_at == task.created_at

    async def test_follows_completed_through_writes(self, store_factory: StoreFactory) -> None:
        """Set to the write's updated_at when completed turns true, kept while it stays
        true (PATCH and PUT of other fields), null when it turns false."""
        async with store_factory(clock=SteppingClock(EPOCH_2024, ONE_SECOND)) as store:
            task = await store.create(ALICE, TaskCreate(title="t"))
            done = await store.patch(ALICE, task.id, TaskPatch(completed=True))
            assert done.completed_at == done.updated_at > task.updated_at
            renamed = await store.patch(ALICE, task.id, TaskPatch(title="renamed"))
            assert renamed.completed_at == done.completed_at < renamed.updated_at
            again = await store.patch(ALICE, task.id, TaskPatch(completed=True))
            assert again.completed_at == done.completed_at
            replaced = await store.replace(ALICE, task.id, TaskReplace(title="x", completed=True))
            assert replaced.completed_at == done.completed_at
            undone = await store.patch(ALICE, task.id, TaskPatch(completed=False))
            assert undone.completed_at is None
            redone = await store.replace(ALICE, task.id, TaskReplace(title="x", completed=True))
            assert redone.completed_at == redone.updated_at > done.completed_at
            assert await store.get(ALICE, task.id) == redone
            reset = await store.replace(ALICE, task.id, TaskReplace(title="x"))
            assert reset.completed_at is None
            assert (await store.get(ALICE, task.id)).completed_at is None

    async def test_serialises_like_created_at(self, store: TaskStore) -> None:
        task = await store.create(ALICE, TaskCreate(title="t"))
        done = await store.patch(ALICE, task.id, TaskPatch(completed=True))
        data = (await store.get(ALICE, done.id)).model_dump(mode="json")
        assert RFC3339_UTC.match(data["completed_at"])
        assert data["completed_at"] == data["updated_at"]
