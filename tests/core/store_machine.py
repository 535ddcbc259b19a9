"""The store state machine's own state: the model, the simulated clock and ids, the
feed's followers, and the checks the rules of tests/core/test_stateful.py and
tests/core/trash_rules.py share (test_stateful.py's docstring tells the whole story).

The rules live beside it by subject, each class adding its own to the one below; the
bundles are module values because Hypothesis finds a bundle by its name.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import shutil
import tempfile
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar, get_args
from unittest import mock
from uuid import UUID

import pytest
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, MultipleResults, RuleBasedStateMachine, initialize, multiple

from tests.backends import open_backend
from tests.core.feed_model import FeedModel, seen
from tests.core.machine_inputs import CREATES, DEFAULTS, WRITABLE
from tests.listing import expected_order, kept_by
from tests.replica import Replica, SubscribedReplica
from tests.successors import next_due_at
from tests.values import normalized_tags
from todo_core import (
    InvalidPatch,
    ListQuery,
    PreconditionFailed,
    SortOrder,
    Task,
    TaskCreate,
    TaskNotFound,
    TaskStore,
    subscribe,
)
from todo_core.feed import DEFAULT_RETENTION, TrashedTask, TrashQuery

T = TypeVar("T")

USERS = ("alice", "b.o_b@x-1")
# Idempotency keys: few, so that they are reused; keys are per user, so both users share them.
KEYS = ("k", "7c0e6f0e-retry", "ключ 🔑 " + "x" * 246)
KEY_LIFETIME = timedelta(hours=24)
SORTS: tuple[SortOrder, ...] = get_args(SortOrder)
# How far the simulated clock moves per call: stalled, barely, or like a real one.
TICKS = st.sampled_from([timedelta(0), timedelta(microseconds=1), timedelta(milliseconds=1)])
# The stores' own retention window: the machine lets it pass with its clock.
RETENTION = DEFAULT_RETENTION
# How many changes a follower reads at a time: mostly a few, so that it pages.
FEED_LIMITS = st.sampled_from([1, 1, 2, 3, 4, 100])


@dataclass(frozen=True)
class Ref:
    """A task some user created; it may since have been deleted."""

    user_id: str
    task_id: UUID


def fields_of(task: Task) -> dict[str, Any]:
    return task.model_dump()


def check_timestamps(task: Task) -> None:
    for moment in (task.created_at, task.updated_at):
        assert moment.tzinfo is not None, task
        assert moment.utcoffset() == timedelta(0), task
    assert task.updated_at >= task.created_at, task


def other_user(user_id: str) -> str:
    return USERS[1] if user_id == USERS[0] else USERS[0]


def normalised(fields: dict[str, Any]) -> dict[str, Any]:
    """The values a write of ``fields`` stores: the title stripped, the tags normalised."""
    stored = dict(fields)
    if "title" in stored:
        stored["title"] = stored["title"].strip()
    if "tags" in stored:
        stored["tags"] = normalized_tags(stored["tags"])
    return stored


def request_of(fields: dict[str, Any]) -> tuple[Any, ...]:
    """What a create asks for, as validated: a retry spelled otherwise is the same."""
    stored = DEFAULTS | normalised(fields)
    return tuple(stored[name] if name != "tags" else tuple(stored[name]) for name in WRITABLE)


REFS = Bundle("refs")
TRASHED_REFS = Bundle("trashed_refs")  # tasks once moved to the trash (maybe back since)


class ModelledStore(RuleBasedStateMachine):
    """A store of ``backend`` driven beside a plain model: the state, the model and the
    checks that every rule shares, and the start every run makes (``seed``)."""

    backend: ClassVar[str] = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[tuple[str, UUID], Task] = {}
        # (user_id, key) -> what the keyed create asked for, and the task it made
        self.keys: dict[tuple[str, str], tuple[tuple[Any, ...], dict[str, Any], Task]] = {}
        self.walks = 0
        self.feed = FeedModel()
        # The clients following each user's feed, and the model's number of the last
        # change each has read: ("pages" or "events", user_id) -> number.
        self.replicas: dict[str, Replica] = {}
        self.subscribed: dict[str, SubscribedReplica] = {}
        self.positions: dict[tuple[str, str], int] = {}
        # When each subscription was last woken without a change (see ``refresh``).
        self.woken_at: dict[str, datetime] = {}
        self.feed_limits: Iterator[int] = itertools.cycle([100])
        # The tokens taken at the start, and when: they expire as the clock moves on.
        self.origins: dict[str, tuple[str, datetime]] = {}
        self.readings: list[datetime] = []  # what the clock gave (see ``timed``)
        # A simulated clock: the same steps give the same order of timestamps, so a
        # failure replays while Hypothesis shrinks it.
        self.now = datetime.now(UTC)
        self.tick = timedelta(milliseconds=1)
        # Ids decide the order of ties, so they come from a generator seeded by the
        # example too (see ``seed``): random-looking, yet the same on every replay.
        self.ids = random.Random(0)
        self.patches = ExitStack()
        self.patches.enter_context(mock.patch("todo_core.models.uuid4", self.new_id))
        self.directory = Path(tempfile.mkdtemp(prefix="todo-stateful-"))
        self.loop = asyncio.new_event_loop()
        self.stack = AsyncExitStack()
        try:
            opening = open_backend(self.backend, self.directory, clock=self.clock)
            self.store: TaskStore = self.run(self.stack.enter_async_context(opening))
        except BaseException:
            self.teardown()
            raise

    def teardown(self) -> None:
        try:
            self.run(self.stack.aclose())
            self.run(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()
            self.patches.close()
            shutil.rmtree(self.directory, ignore_errors=True)

    def run(self, awaitable: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(awaitable)

    def new_id(self) -> UUID:
        """The stores' source of task ids, in place of ``uuid.uuid4``."""
        return UUID(int=self.ids.getrandbits(128), version=4)

    def clock(self) -> datetime:
        """The stores' time source: moves on by ``tick`` at every call."""
        moment = self.now
        self.now += self.tick
        self.readings.append(moment)
        return moment

    def timed(self, awaitable: Coroutine[Any, Any, T]) -> tuple[T, list[datetime]]:
        """Run a store call; also return the times the clock gave it."""
        self.readings = []
        return self.run(awaitable), self.readings

    def stalled(self, awaitable: Coroutine[Any, Any, T]) -> T:
        """Run a store call with the clock stopped: every time it reads is ``self.now``."""
        tick, self.tick = self.tick, timedelta(0)
        try:
            return self.run(awaitable)
        finally:
            self.tick = tick

    # -- the model ----------------------------------------------------------------------

    def expected(self, user_id: str, query: ListQuery) -> list[Task]:
        """The user's tasks the contract lists for ``query``, in order."""
        chosen = [
            task
            for (owner, _), task in self.model.items()
            if owner == user_id and kept_by(task, query)
        ]
        return expected_order(chosen, query.sort)

    def resolve(self, ref: Ref, choice: str | int | None) -> int | None:
        if choice is None or isinstance(choice, int):
            return choice
        current = self.model.get((ref.user_id, ref.task_id))
        version = current.version if current else 1
        return {"current": version, "previous": version - 1, "next": version + 1}[choice]

    def walk(self, user_id: str, first: ListQuery | None, limits: Sequence[int] = ()) -> None:
        """Follow next_cursor to the end; every page must be the model's next slice."""
        query = first or ListQuery()
        expected = self.expected(user_id, query)
        listed: list[Task] = []
        for number in range(len(expected) + 1):
            page = self.run(self.store.list(user_id, first if number == 0 else query))
            for task in page.items:
                assert task.user_id == user_id, f"{user_id} was shown {task}"
                check_timestamps(task)
            want = expected[len(listed) : len(listed) + query.limit]
            assert [fields_of(t) for t in page.items] == [fields_of(t) for t in want], (
                f"page {number} of {query!r}"
            )
            listed.extend(page.items)
            if len(listed) == len(expected):
                assert page.next_cursor is None, f"a cursor past the end of {query!r}"
                return
            assert page.next_cursor is not None, f"the walk of {query!r} stopped early"
            limit = limits[min(number, len(limits) - 1)] if limits else query.limit
            query = query.model_copy(update={"limit": limit, "cursor": page.next_cursor})
        raise AssertionError(f"the walk of {first!r} did not end")

    def write(
        self,
        ref: Ref,
        expected_version: int | None,
        call: Coroutine[Any, Any, Task],
        changes: dict[str, Any] | None,
        *,
        whole: bool = False,
    ) -> list[Ref]:
        """Run a write and check it against the model; ``changes`` None means delete,
        ``whole`` a replacement (omitted fields take their defaults). Returns the
        successor it spawned, if any."""
        key = (ref.user_id, ref.task_id)
        current = self.model.get(key)
        if current is None:
            with pytest.raises(TaskNotFound):
                self.run(call)
            return []
        if expected_version is not None and expected_version != current.version:
            with pytest.raises(PreconditionFailed) as refused:
                self.run(call)
            assert refused.value.expected_version == expected_version
            return []
        if changes is None:
            result, readings = self.timed(call)
            check_timestamps(result)
            assert fields_of(result) == fields_of(current), "delete returns the task as it was"
            del self.model[key]
            self.trashed(current, readings)
            return []
        before = DEFAULTS if whole else {name: getattr(current, name) for name in WRITABLE}
        after = before | normalised(changes)
        if after["recurrence"] is not None and after["due_at"] is None:
            event("patch: recurrence without due_at refused")
            with pytest.raises(InvalidPatch):
                self.run(call)
            return []
        result = self.run(call)
        check_timestamps(result)
        assert (result.id, result.user_id) == (current.id, current.user_id)
        assert result.created_at == current.created_at
        assert result.version == current.version + 1, "every write bumps the version"
        assert result.updated_at > current.updated_at, "updated_at must strictly increase"
        for name in WRITABLE:
            assert getattr(result, name) == after[name], name
        completing = after["completed"] and not current.completed
        if not after["completed"]:
            assert result.completed_at is None, "un-completing clears completed_at"
        elif completing:
            assert result.completed_at == result.updated_at, "completed_at is the write's"
        else:
            assert result.completed_at == current.completed_at, "kept while completed"
        self.model[key] = result
        self.feed.moved(ref.user_id, ref.task_id)
        if completing and current.next_occurrence_id is None and after["recurrence"]:
            return self.spawned(result)
        assert result.next_occurrence_id == current.next_occurrence_id, "at most one, ever"
        return []

    def spawned(self, done: Task) -> list[Ref]:
        """Check the successor completing ``done`` made (or did not), and model it."""
        assert done.due_at is not None
        assert done.recurrence is not None
        assert done.completed_at is not None
        due_at = next_due_at(done.due_at, done.recurrence, done.time_zone, done.completed_at)
        if due_at is None:
            event("recurrence: successor out of range")
            assert done.next_occurrence_id is None, "no successor beyond 9999-12-31"
            return []
        event(f"recurrence: {done.recurrence} successor")
        assert done.next_occurrence_id is not None, "completing a recurring task spawns one"
        successor = self.run(self.store.get(done.user_id, done.next_occurrence_id))
        check_timestamps(successor)
        expected = {name: getattr(done, name) for name in WRITABLE} | {
            "completed": False,
            "due_at": due_at,
        }
        assert {name: getattr(successor, name) for name in WRITABLE} == expected
        assert (successor.completed_at, successor.next_occurrence_id) == (None, None)
        assert (successor.version, successor.created_at) == (1, successor.updated_at)
        assert all(successor.id != other for _, other in self.model), "ids are unique"
        self.model[(done.user_id, successor.id)] = successor
        self.feed.moved(done.user_id, successor.id)
        return [Ref(done.user_id, successor.id)]

    def created(self, user_id: str, fields: dict[str, Any]) -> Ref:
        """Create a task and check it against what was asked for."""
        task = self.run(self.store.create(user_id, TaskCreate.model_validate(fields)))
        return self.record(user_id, fields, task)

    def record(self, user_id: str, fields: dict[str, Any], task: Task) -> Ref:
        """Check a new task against what was asked for, and add it to the model."""
        assert task.created_at.tzinfo is not None
        assert task.created_at.utcoffset() == timedelta(0)
        assert task.created_at == task.updated_at
        assert task.user_id == user_id
        assert task.version == 1
        assert task.title == fields["title"].strip()
        assert task.description == fields.get("description")
        assert task.completed is fields.get("completed", False)
        stored = DEFAULTS | normalised(fields)
        for name in WRITABLE:
            assert getattr(task, name) == stored[name], name
        assert task.completed_at == (task.created_at if task.completed else None)
        assert task.next_occurrence_id is None, "a task created completed spawns nothing"
        assert all(task.id != other for _, other in self.model), "ids are unique"
        self.model[(user_id, task.id)] = task
        self.feed.moved(user_id, task.id)
        return Ref(user_id, task.id)

    def trashed(self, task: Task, readings: list[datetime]) -> None:
        """Model the move of ``task`` to the trash. Its ``deleted_at`` is a time the
        clock gave the delete; which one, the trash says."""
        found = [item for item in self.whole_trash(task.user_id) if item.id == task.id]
        assert len(found) == 1, "a deleted task is in its user's trash, once"
        assert found[0].deleted_at in readings, "deleted_at is the time of the delete"
        assert fields_of(found[0]) == fields_of(task) | {"deleted_at": found[0].deleted_at}
        self.feed.trashed(task, found[0].deleted_at)

    def whole_trash(self, user_id: str, limits: Sequence[int] = (100,)) -> list[TrashedTask]:
        """Every page of the user's trash, ``limits`` in turn (the last one repeated)."""
        items: list[TrashedTask] = []
        query = TrashQuery(limit=limits[0])
        for number in range(1, 10_000):
            page = self.run(self.store.trash(user_id, query))
            assert len(page.items) <= query.limit
            items.extend(page.items)
            if page.next_cursor is None:
                return items
            assert page.items, "a trash page with a next_cursor must not be empty"
            query = TrashQuery(limit=limits[min(number, len(limits) - 1)], cursor=page.next_cursor)
        raise AssertionError("the walk of the trash did not end")

    def live(self, user_id: str) -> dict[UUID, Task]:
        return {task_id: task for (owner, task_id), task in self.model.items() if owner == user_id}

    def refresh(self, user_id: str) -> None:
        """Wake the user's subscription without a change, as another process's watcher
        may: it reads the feed, and its position takes the time of that read. A
        subscription that nothing wakes keeps the time of its last read, and so would
        expire once the clock passes the retention window, idle as it was: a wake-up
        comes too late once that has happened."""
        self.store.signal.notify(user_id)
        self.woken_at[user_id] = self.now

    def follow(self, user_id: str) -> None:
        """Both of the user's followers read to the end of the feed; each must have read
        exactly the changes the model numbered since, in number order, and must then
        hold exactly the user's tasks, every field."""
        replica = self.replicas[user_id]
        expected = self.feed.after(user_id, self.positions["pages", user_id], self.model)
        for _ in range(len(expected) + 1):
            limit = next(self.feed_limits)
            page = self.run(replica.read(self.store, limit))
            assert [seen(item) for item in page.items] == [view for _, view in expected[:limit]]
            assert page.has_more == (len(expected) > limit), "has_more: more is there now"
            if page.items:
                self.positions["pages", user_id] = expected[len(page.items) - 1][0]
            expected = expected[limit:]
            if not page.has_more:
                break
        assert replica.tasks == self.live(user_id), "the paged follower's copy"
        if self.now - self.woken_at[user_id] > RETENTION / 2:
            self.refresh(user_id)
        subscribed = self.subscribed[user_id]
        expected = self.feed.after(user_id, self.positions["events", user_id], self.model)
        changes = self.run(subscribed.catch_up())
        assert [seen(change) for change in changes] == [view for _, view in expected]
        if expected:
            self.positions["events", user_id] = expected[-1][0]
        assert subscribed.tasks == self.live(user_id), "the subscriber's copy"

    @initialize(
        target=REFS,
        id_seed=st.integers(0, 2**32 - 1),
        tick=TICKS,
        batch=st.lists(st.tuples(st.sampled_from(USERS), CREATES), min_size=2, max_size=10),
        feed_limits=st.lists(FEED_LIMITS, min_size=1, max_size=4),
        subscription_limit=FEED_LIMITS,
    )
    def seed(
        self,
        id_seed: int,
        tick: timedelta,
        batch: list[tuple[str, dict[str, Any]]],
        feed_limits: list[int],
        subscription_limit: int,
    ) -> MultipleResults[Ref]:
        """Seed the ids, set the clock going, start following each user's feed (paged
        ``feed_limits`` changes at a time in turn), and start with some tasks, so that
        listings have pages and filters have matches."""
        self.ids.seed(id_seed)
        self.tick = tick
        self.feed_limits = itertools.cycle(feed_limits)
        for user_id in USERS:
            token = self.stalled(self.store.changes(user_id)).next_since
            self.origins[user_id] = (token, self.now)
            self.replicas[user_id] = Replica(user_id, token)
            following = subscribe(self.store, user_id, token, limit=subscription_limit)
            self.subscribed[user_id] = SubscribedReplica(
                self.run(self.stack.enter_async_context(following))
            )
            self.positions["pages", user_id] = self.positions["events", user_id] = 0
            self.woken_at[user_id] = self.now
        return multiple(*(self.created(user_id, fields) for user_id, fields in batch))
