"""Every store against a plain model: random operations by two users, on every backend.

The model is a dict keyed by ``(user_id, task_id)`` and a few lines of sorting and
matching written from the contract, not the memory store, so the memory store is
checked too. After every step each user's whole listing must equal the model, which
also proves that no user ever sees another's task and that refused writes changed
nothing. Deletes move tasks to the trash, which the machine restores, purges, empties
and lets the retention window pass over; the model numbers every change as the
contract's feed does (tests/core/feed_model.py). Two clients of each user follow the
feed from the machine's start, one by pages of ``changes`` and one by
``todo_core.subscribe``: after every step each has read exactly the model's changes,
in order, and holds exactly the model's tasks.

Rules cannot be coroutines (HypothesisWorks/hypothesis#4107), so each machine owns an
event loop and runs every store call to completion on it. Its clock is simulated and
its task ids come from a generator seeded by the example, so that a failing sequence
replays identically while Hypothesis shrinks it (ids decide the order of ties).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar, get_args
from unittest import TestCase, mock
from uuid import UUID

import pydantic
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from tests.backends import open_backend, pgbouncer_url, postgres_url
from tests.core.feed_model import FeedModel, seen
from tests.core.machine_inputs import (
    BAD_USERS,
    CASINGS,
    CREATES,
    DEFAULT_DUE,
    DEFAULTS,
    DUE_TIMES,
    INVALID_INPUTS,
    PATCHES,
    PIECES,
    VERSIONS,
    WRITABLE,
    substrings,
)
from tests.listing import expected_order, kept_by
from tests.replica import Replica, SubscribedReplica
from tests.successors import next_due_at
from tests.values import LAST_DAY, PRIORITY_LEVELS, normalized_tags
from todo_core import (
    IdempotencyKeyReused,
    InvalidCursor,
    InvalidPatch,
    ListQuery,
    PreconditionFailed,
    SortOrder,
    TagCount,
    TagQuery,
    Task,
    TaskCreate,
    TaskNotFound,
    TaskPatch,
    TaskReplace,
    TaskStore,
    subscribe,
)
from todo_core.errors import InvalidSyncToken, SyncTokenExpired
from todo_core.feed import DEFAULT_RETENTION, PURGE_GRACE, TrashedTask, TrashQuery

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


def _fields(task: Task) -> dict[str, Any]:
    return task.model_dump()


def _check_timestamps(task: Task) -> None:
    for moment in (task.created_at, task.updated_at):
        assert moment.tzinfo is not None, task
        assert moment.utcoffset() == timedelta(0), task
    assert task.updated_at >= task.created_at, task


def _other(user_id: str) -> str:
    return USERS[1] if user_id == USERS[0] else USERS[0]


def _normalised(fields: dict[str, Any]) -> dict[str, Any]:
    """The values a write of ``fields`` stores: the title stripped, the tags normalised."""
    stored = dict(fields)
    if "title" in stored:
        stored["title"] = stored["title"].strip()
    if "tags" in stored:
        stored["tags"] = normalized_tags(stored["tags"])
    return stored


def _request(fields: dict[str, Any]) -> tuple[Any, ...]:
    """What a create asks for, as validated: a retry spelled otherwise is the same."""
    stored = DEFAULTS | _normalised(fields)
    return tuple(stored[name] if name != "tags" else tuple(stored[name]) for name in WRITABLE)


class StoreMachine(RuleBasedStateMachine):
    """Drives one store of ``backend`` and a model through the same operations."""

    backend: ClassVar[str] = "memory"
    refs = Bundle("refs")
    trashed_refs = Bundle("trashed_refs")  # tasks once moved to the trash (maybe back since)

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
                _check_timestamps(task)
            want = expected[len(listed) : len(listed) + query.limit]
            assert [_fields(t) for t in page.items] == [_fields(t) for t in want], (
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
            _check_timestamps(result)
            assert _fields(result) == _fields(current), "delete returns the task as it was"
            del self.model[key]
            self.trashed(current, readings)
            return []
        before = DEFAULTS if whole else {name: getattr(current, name) for name in WRITABLE}
        after = before | _normalised(changes)
        if after["recurrence"] is not None and after["due_at"] is None:
            event("patch: recurrence without due_at refused")
            with pytest.raises(InvalidPatch):
                self.run(call)
            return []
        result = self.run(call)
        _check_timestamps(result)
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
        _check_timestamps(successor)
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
        stored = DEFAULTS | _normalised(fields)
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
        assert _fields(found[0]) == _fields(task) | {"deleted_at": found[0].deleted_at}
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

    # -- rules --------------------------------------------------------------------------

    @rule(target=refs, user_id=st.sampled_from(USERS), fields=CREATES)
    def create(self, user_id: str, fields: dict[str, Any]) -> Ref:
        return self.created(user_id, fields)

    @initialize(
        target=refs,
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

    @rule(
        target=refs,
        user_id=st.sampled_from(USERS),
        batch=st.lists(CREATES, min_size=2, max_size=4),
    )
    def create_several(self, user_id: str, batch: list[dict[str, Any]]) -> MultipleResults[Ref]:
        return multiple(*(self.created(user_id, fields) for fields in batch))

    @rule(
        target=refs,
        user_id=st.sampled_from(USERS),
        key=st.sampled_from(KEYS),
        fields=CREATES,
        again=st.booleans(),
        later=st.sampled_from([timedelta(0), timedelta(0), timedelta(hours=23), KEY_LIFETIME]),
    )
    def create_once(
        self, user_id: str, key: str, fields: dict[str, Any], again: bool, later: timedelta
    ) -> MultipleResults[Ref]:
        """A keyed create, ``later`` (the retry of a phone that was off for a day): new,
        replayed (the same request, spelled alike or not), or refused (another request);
        a key dies 24 hours after its create."""
        self.now += later
        kept = self.keys.get((user_id, key))
        if again and kept is not None:  # the retry of a create, its title padded anew
            fields = kept[1] | {"title": " " + kept[1]["title"] + "\t"}
        request = _request(fields)
        live = kept is not None and kept[2].created_at + KEY_LIFETIME > self.now
        call = self.store.create_once(user_id, TaskCreate.model_validate(fields), key=key)
        if live and kept is not None:
            if kept[0] != request:
                event("create_once: key reused")
                with pytest.raises(IdempotencyKeyReused):
                    self.run(call)
                return multiple()
            event("create_once: replayed")
            replayed = self.run(call)
            assert replayed.replayed, "a retry within 24 hours replays"
            assert _fields(replayed.task) == _fields(kept[2]), "the task as first created"
            return multiple()
        event("create_once: created" if kept is None else "create_once: key expired, created")
        created = self.run(call)
        assert not created.replayed
        self.keys[user_id, key] = (request, fields, created.task)
        return multiple(self.record(user_id, fields, created.task))

    @rule()
    def purge_keys(self) -> None:
        """Purging deletes exactly the dead keys; live ones still replay after."""
        dead = [
            claim
            for claim, kept in self.keys.items()
            if kept[2].created_at + KEY_LIFETIME <= self.now
        ]
        assert self.run(self.store.purge_idempotency_keys()) == len(dead)
        for claim in dead:
            del self.keys[claim]

    @rule(ref=refs)
    def get(self, ref: Ref) -> None:
        current = self.model.get((ref.user_id, ref.task_id))
        if current is None:
            with pytest.raises(TaskNotFound):
                self.run(self.store.get(ref.user_id, ref.task_id))
        else:
            task = self.run(self.store.get(ref.user_id, ref.task_id))
            _check_timestamps(task)
            assert _fields(task) == _fields(current)

    @rule(
        ref=refs,
        operation=st.sampled_from(["get", "replace", "patch", "delete", "restore", "purge"]),
    )
    def touch_as_other_user(self, ref: Ref, operation: str) -> None:
        """Another user's task does not exist for you, whatever you try."""
        other = _other(ref.user_id)
        current = self.model.get((ref.user_id, ref.task_id))
        version = current.version if current else 1
        calls: dict[str, Callable[[], Coroutine[Any, Any, Task]]] = {
            "get": lambda: self.store.get(other, ref.task_id),
            "replace": lambda: self.store.replace(
                other, ref.task_id, TaskReplace(title="stolen"), expected_version=version
            ),
            "patch": lambda: self.store.patch(other, ref.task_id, TaskPatch(completed=True)),
            "delete": lambda: self.store.delete(other, ref.task_id),
            "restore": lambda: self.store.restore(other, ref.task_id),
            "purge": lambda: self.store.purge(other, ref.task_id),
        }
        with pytest.raises(TaskNotFound):
            self.run(calls[operation]())

    @rule(user_id=st.sampled_from(USERS), task_id=st.uuids())
    def get_unknown(self, user_id: str, task_id: UUID) -> None:
        with pytest.raises(TaskNotFound):
            self.run(self.store.get(user_id, task_id))

    @rule(target=refs, ref=refs, fields=CREATES, version=VERSIONS)
    def replace(
        self, ref: Ref, fields: dict[str, Any], version: str | int | None
    ) -> MultipleResults[Ref]:
        expected_version = self.resolve(ref, version)
        call = self.store.replace(
            ref.user_id,
            ref.task_id,
            TaskReplace.model_validate(fields),
            expected_version=expected_version,
        )
        return multiple(*self.write(ref, expected_version, call, fields, whole=True))

    @rule(
        target=refs, ref=refs, edits=st.lists(st.tuples(PATCHES, VERSIONS), min_size=1, max_size=3)
    )
    def patch(
        self, ref: Ref, edits: list[tuple[dict[str, Any], str | int | None]]
    ) -> MultipleResults[Ref]:
        """Patch one task up to three times in a row, as an editing client would."""
        spawned: list[Ref] = []
        for fields, version in edits:
            expected_version = self.resolve(ref, version)
            call = self.store.patch(
                ref.user_id,
                ref.task_id,
                TaskPatch.model_validate(fields),
                expected_version=expected_version,
            )
            spawned += self.write(ref, expected_version, call, fields)
        return multiple(*spawned)

    @rule(
        target=refs,
        ref=refs,
        due_at=st.one_of(st.none(), DUE_TIMES),
        toggles=st.integers(0, 2),
        version=st.sampled_from([None, "current"]),
    )
    def complete(
        self, ref: Ref, due_at: datetime | None, toggles: int, version: str | None
    ) -> MultipleResults[Ref]:
        """Complete a task (a recurring one spawns its successor), sometimes with a new
        due_at, after un-completing and completing it ``toggles`` times."""
        spawned: list[Ref] = []
        for completed in [False, True] * toggles + [True]:
            changes: dict[str, Any] = {"completed": completed}
            if due_at is not None and completed:
                changes["due_at"] = due_at
            expected_version = self.resolve(ref, version)
            call = self.store.patch(
                ref.user_id, ref.task_id, TaskPatch(**changes), expected_version=expected_version
            )
            spawned += self.write(ref, expected_version, call, changes)
        return multiple(*spawned)

    @rule(target=trashed_refs, ref=refs, version=VERSIONS)
    def delete(self, ref: Ref, version: str | int | None) -> MultipleResults[Ref]:
        expected_version = self.resolve(ref, version)
        existed = (ref.user_id, ref.task_id) in self.model
        call = self.store.delete(ref.user_id, ref.task_id, expected_version=expected_version)
        self.write(ref, expected_version, call, None)
        if existed and (ref.user_id, ref.task_id) not in self.model:
            with pytest.raises(TaskNotFound):  # deleting twice
                self.run(self.store.delete(ref.user_id, ref.task_id))
            with pytest.raises(TaskNotFound):
                self.run(self.store.get(ref.user_id, ref.task_id))
            return multiple(ref)
        return multiple()

    @rule(
        user_id=st.sampled_from(USERS),
        sort=st.sampled_from(SORTS),
        completed=st.sampled_from([None, True, False]),
        limits=st.lists(st.integers(1, 5), min_size=1, max_size=3),
        data=st.data(),
    )
    def list_pages(
        self,
        user_id: str,
        sort: SortOrder,
        completed: bool | None,
        limits: list[int],
        data: st.DataObject,
    ) -> None:
        """Walk a filtered listing page by page; ``limit`` may change between pages."""
        queries: list[st.SearchStrategy[str | None]] = [
            st.none(),
            st.just(""),
            st.lists(PIECES, min_size=1, max_size=3).map("".join),
        ]
        # Mostly pieces of the user's own texts, so that q finds something; sometimes
        # of anyone's, so that it must not find the other user's tasks.
        own = [task for (owner, _), task in self.model.items() if owner == user_id]
        for tasks in (own, own, own, list(self.model.values())):
            texts = [task.title for task in tasks]
            texts += [task.description for task in tasks if task.description]
            if texts:
                queries.append(
                    st.tuples(
                        st.sampled_from(texts).flatmap(substrings),
                        st.sampled_from(sorted(CASINGS)),
                    ).map(lambda pair: CASINGS[pair[1]](pair[0]))
                )
        q = data.draw(st.one_of(queries), label="q")
        filters = data.draw(self.organizing_filters(user_id), label="organizing filters")
        first = ListQuery(sort=sort, completed=completed, q=q, limit=limits[0], **filters)
        self.walk(user_id, first, limits[1:])

    def organizing_filters(self, user_id: str) -> st.SearchStrategy[dict[str, Any]]:
        """Priority, tag and due filters, mostly from the user's own tasks' values so
        that they keep some, spelled as a client might."""
        own = [task for (owner, _), task in self.model.items() if owner == user_id]
        tags = sorted({tag for task in own for tag in task.tags}) or ["home"]
        dues = sorted({task.due_at for task in own if task.due_at is not None}) or [DEFAULT_DUE]
        bounds = st.one_of(
            st.sampled_from(dues),
            st.sampled_from(dues).map(lambda due: due + timedelta(microseconds=1)),
            DUE_TIMES,
        )
        spelled_tags = st.lists(
            st.sampled_from(tags).map(lambda tag: st.sampled_from([tag, tag.upper(), f" {tag}"])),
            min_size=1,
            max_size=2,
        ).flatmap(lambda choices: st.tuples(*choices))
        return st.fixed_dictionaries(
            {},
            optional={
                "priority": st.lists(PRIORITY_LEVELS, min_size=1, unique=True).map(tuple),
                "tag": spelled_tags,
                "due_min": bounds,
                "due_max": bounds,
            },
        )

    @rule(user_id=st.sampled_from(USERS), limit=st.integers(1, 4))
    def list_tags(self, user_id: str, limit: int) -> None:
        """Every page of the user's tags: the model's counts, in code point order."""
        counts = Counter(
            tag for (owner, _), task in self.model.items() if owner == user_id for tag in task.tags
        )
        expected = [TagCount(tag, counts[tag]) for tag in sorted(counts)]
        listed: list[TagCount] = []
        query = TagQuery(limit=limit)
        for _ in range(len(expected) + 1):
            page = self.run(self.store.list_tags(user_id, query))
            listed.extend(page.items)
            if page.next_cursor is None:
                break
            query = TagQuery(limit=limit, cursor=page.next_cursor)
        assert listed == expected
        if query.cursor is not None:
            with pytest.raises(InvalidCursor):  # a tag cursor is the user's own
                self.run(self.store.list_tags(_other(user_id), query))

    @rule(
        user_id=st.sampled_from(USERS),
        sort=st.sampled_from(SORTS),
        misuse=st.sampled_from(
            [
                "other user",
                "other sort",
                "other filter",
                "other q",
                "other priority",
                "other tag",
                "other due",
                "tampered",
                "garbage",
            ]
        ),
    )
    def misuse_cursor(self, user_id: str, sort: SortOrder, misuse: str) -> None:
        """A cursor works only for the user, sort and filters that produced it."""
        page = self.run(self.store.list(user_id, ListQuery(sort=sort, limit=1)))
        cursor = page.next_cursor
        if cursor is None or misuse == "garbage":  # fewer than two tasks: only garbage
            misuse, cursor = "garbage", "not-a-cursor"
        flipped = "B" if cursor[0] == "A" else "A"  # the first character is payload
        other_sort = SORTS[(SORTS.index(sort) + 1) % len(SORTS)]
        attempts: dict[str, tuple[str, ListQuery]] = {
            "other user": (_other(user_id), ListQuery(sort=sort, cursor=cursor)),
            "other sort": (user_id, ListQuery(sort=other_sort, cursor=cursor)),
            "other filter": (user_id, ListQuery(sort=sort, completed=False, cursor=cursor)),
            "other q": (user_id, ListQuery(sort=sort, q="a", cursor=cursor)),
            "other priority": (user_id, ListQuery(sort=sort, priority=("none",), cursor=cursor)),
            "other tag": (user_id, ListQuery(sort=sort, tag=("home",), cursor=cursor)),
            "other due": (user_id, ListQuery(sort=sort, due_max=LAST_DAY, cursor=cursor)),
            "tampered": (user_id, ListQuery(sort=sort, cursor=flipped + cursor[1:])),
            "garbage": (user_id, ListQuery(sort=sort, cursor="not-a-cursor")),
        }
        owner, query = attempts[misuse]
        with pytest.raises(InvalidCursor):
            self.run(self.store.list(owner, query))

    @rule(case=st.sampled_from(sorted(INVALID_INPUTS)))
    def reject_invalid_input(self, case: str) -> None:
        with pytest.raises(pydantic.ValidationError):
            INVALID_INPUTS[case]()

    @rule(
        ref=refs,
        user_id=st.sampled_from(BAD_USERS),
        operation=st.sampled_from(
            [
                "create",
                "get",
                "list",
                "replace",
                "patch",
                "delete",
                "changes",
                "trash",
                "restore",
                "purge",
                "empty trash",
            ]
        ),
    )
    def reject_bad_user_id(self, ref: Ref, user_id: str, operation: str) -> None:
        calls: dict[str, Callable[[], Coroutine[Any, Any, object]]] = {
            "create": lambda: self.store.create(user_id, TaskCreate(title="x")),
            "get": lambda: self.store.get(user_id, ref.task_id),
            "list": lambda: self.store.list(user_id),
            "replace": lambda: self.store.replace(user_id, ref.task_id, TaskReplace(title="x")),
            "patch": lambda: self.store.patch(user_id, ref.task_id, TaskPatch(completed=True)),
            "delete": lambda: self.store.delete(user_id, ref.task_id),
            "changes": lambda: self.store.changes(user_id),
            "trash": lambda: self.store.trash(user_id),
            "restore": lambda: self.store.restore(user_id, ref.task_id),
            "purge": lambda: self.store.purge(user_id, ref.task_id),
            "empty trash": lambda: self.store.empty_trash(user_id),
        }
        with pytest.raises(pydantic.ValidationError):
            self.run(calls[operation]())

    # -- the trash and the feed ---------------------------------------------------------

    @rule(ref=st.one_of(trashed_refs, refs))
    def restore(self, ref: Ref) -> None:
        """A trashed task comes back as it was, at its next version and a later
        updated_at; anything else is not in the trash."""
        gone = self.feed.in_trash(ref.user_id, ref.task_id)
        call = self.store.restore(ref.user_id, ref.task_id)
        if gone is None:
            with pytest.raises(TaskNotFound):
                self.run(call)
            return
        event("trash: restored")
        restored = self.run(call)
        _check_timestamps(restored)
        before = gone.task
        assert restored.updated_at > before.updated_at, "a restore is a write"
        assert _fields(restored) == _fields(before) | {
            "updated_at": restored.updated_at,
            "version": before.version + 1,
        }
        self.feed.restored(ref.user_id, ref.task_id)
        self.model[ref.user_id, ref.task_id] = restored

    @rule(ref=st.one_of(trashed_refs, refs))
    def purge(self, ref: Ref) -> None:
        """A trashed task leaves the trash for good, answered as the trash showed it."""
        gone = self.feed.in_trash(ref.user_id, ref.task_id)
        call = self.store.purge(ref.user_id, ref.task_id)
        if gone is None:
            with pytest.raises(TaskNotFound):
                self.run(call)
            return
        event("trash: purged one")
        purged = self.run(call)
        assert _fields(purged) == _fields(gone.task) | {"deleted_at": gone.deleted_at}
        self.feed.purged(ref.user_id, ref.task_id)
        with pytest.raises(TaskNotFound):  # purging twice
            self.run(self.store.purge(ref.user_id, ref.task_id))
        with pytest.raises(TaskNotFound):  # nor can it come back
            self.run(self.store.restore(ref.user_id, ref.task_id))

    @rule(user_id=st.sampled_from(USERS))
    def empty_trash(self, user_id: str) -> None:
        trash = self.feed.trash(user_id)
        event(f"trash: emptied {min(len(trash), 3)}{'+' if len(trash) > 3 else ''}")
        assert self.run(self.store.empty_trash(user_id)) == len(trash)
        for entry in trash:
            self.feed.purged(user_id, entry["id"])

    @rule(
        user_id=st.sampled_from(USERS), limits=st.lists(st.integers(1, 4), min_size=1, max_size=3)
    )
    def trash_pages(self, user_id: str, limits: list[int]) -> None:
        """The trash page by page, ``limit`` changing between pages; a trash cursor is
        the user's own."""
        items = self.whole_trash(user_id, limits)
        assert [_fields(item) for item in items] == self.feed.trash(user_id)
        page = self.run(self.store.trash(user_id, TrashQuery(limit=1)))
        if page.next_cursor is not None:
            with pytest.raises(InvalidCursor):
                self.run(self.store.trash(_other(user_id), TrashQuery(cursor=page.next_cursor)))

    @rule(
        leg=st.integers(1, 29).map(lambda days: timedelta(days=days)),
        rest=st.sampled_from([timedelta(0), timedelta(microseconds=1), timedelta(hours=1)]),
        limit=st.integers(1, 3),
        data=st.data(),
    )
    def expire(self, leg: timedelta, rest: timedelta, limit: int, data: st.DataObject) -> None:
        """Let the retention window pass: the followers read, the clock moves ``leg`` on,
        the followers read again (so their tokens stay young), then the clock moves on
        to ``rest`` past the window of a pivot:
        now, or a deletion's time (the edge: exactly at the window is not past it).
        ``purge_expired``, ``limit`` at a time, then forgets exactly the tasks deleted
        before the window and its grace, and tokens older than the window are refused."""
        start = self.now
        old = {user_id: self.stalled(self.store.changes(user_id)).next_since for user_id in USERS}
        pivots = [start, *sorted(gone.deleted_at for gone in self.feed.gone.values())]
        pivot = data.draw(st.sampled_from(pivots), label="pivot")
        for moved in (timedelta(0), leg):
            self.now += moved
            for user_id in USERS:
                self.refresh(user_id)
                self.follow(user_id)
        # Deletions are kept PURGE_GRACE past the window (feed.py says why): land
        # within the grace or past it.
        grace = data.draw(st.sampled_from([timedelta(0), PURGE_GRACE]), label="grace")
        self.now = max(self.now, pivot + RETENTION + grace + rest)
        cutoff = self.now - RETENTION
        purged = 0
        for _ in range(10_000):
            count = self.stalled(self.store.purge_expired(limit=limit))
            assert 0 <= count <= limit
            purged += count
            if count == 0:
                break
        expected = self.feed.expire(cutoff - PURGE_GRACE)
        event(f"expire: {'none' if not expected else 'some'} purged")
        for user_id in USERS:
            self.refresh(user_id)  # read by the invariant, at this time
        assert purged == expected, "purge_expired forgets exactly what is past the window"
        tokens = [(user_id, token, start) for user_id, token in old.items()]
        tokens += [(user_id, *origin) for user_id, origin in self.origins.items()]
        for user_id, token, taken_at in tokens:
            if taken_at < cutoff:
                with pytest.raises(SyncTokenExpired):
                    self.stalled(self.store.changes(user_id, token))
                with pytest.raises(SyncTokenExpired):
                    self.stalled(_opened(self.store, user_id, token))
            else:  # at the window's edge, or younger: still good
                event(f"expire: token {'at the edge' if taken_at == cutoff else 'young'}")
                self.stalled(self.store.changes(user_id, token))

    @rule(
        user_id=st.sampled_from(USERS),
        misuse=st.sampled_from(["tampered", "other user", "garbage", "empty", "trash cursor"]),
    )
    def misuse_token(self, user_id: str, misuse: str) -> None:
        """A feed token works only as the user's own, as issued; a subscription refuses
        the same tokens when it opens."""
        token = self.replicas[user_id].token
        flipped = "B" if token[0] == "A" else "A"  # the first character is payload
        cursor = self.run(self.store.trash(user_id, TrashQuery(limit=1))).next_cursor
        attempts = {
            "tampered": (user_id, flipped + token[1:]),
            "other user": (_other(user_id), token),
            "garbage": (user_id, "not-a-token"),
            "empty": (user_id, ""),
            "trash cursor": (user_id, cursor or "no-cursor"),
        }
        owner, bad = attempts[misuse]
        with pytest.raises(InvalidSyncToken):
            self.run(self.store.changes(owner, bad))
        with pytest.raises(InvalidSyncToken):
            self.run(_opened(self.store, owner, bad))

    @rule(
        user_id=st.sampled_from(USERS),
        limit=st.one_of(st.sampled_from([0, 501]), st.integers(max_value=0), st.integers(501)),
    )
    def reject_bad_limit(self, user_id: str, limit: int) -> None:
        """A feed page holds 1-500 changes; a subscription refuses any other size too."""
        token = self.replicas[user_id].token
        with pytest.raises(pydantic.ValidationError):
            self.run(self.store.changes(user_id, token, limit=limit))
        with pytest.raises(pydantic.ValidationError):
            self.run(_opened(self.store, user_id, token, limit=limit))

    @rule(micros=st.integers(-3_000_000, 3_000_000))
    def shift_clock(self, micros: int) -> None:
        """Move the clock, backwards too: updated_at must still strictly increase."""
        self.now += timedelta(microseconds=micros)

    @rule(tick=TICKS)
    def set_clock_speed(self, tick: timedelta) -> None:
        """A stalled clock gives equal timestamps, so ties are broken by id, and makes
        writes move updated_at on by one microsecond themselves."""
        self.tick = tick

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def listings_equal_the_model(self) -> None:
        """Each user's whole default listing is exactly their tasks in the model."""
        for user_id in USERS:
            self.walk(user_id, None)

    @invariant()
    def trash_equals_the_model(self) -> None:
        for user_id in USERS:
            assert [_fields(item) for item in self.whole_trash(user_id)] == self.feed.trash(user_id)

    @invariant()
    def followers_equal_the_model(self) -> None:
        """Checked after every step: see ``follow``."""
        if self.replicas:  # not before ``seed`` has run
            for user_id in USERS:
                self.follow(user_id)

    @invariant()
    def small_pages_add_up(self) -> None:
        """Pages of 1-5 tasks, in each sort in turn, add up to the model's order.

        ``list_pages`` explores filters and changing limits at random; this makes sure
        every step is also followed by a paged walk.
        """
        self.walks += 1
        sort, limit = SORTS[self.walks % len(SORTS)], 1 + self.walks // len(SORTS) % 5
        for user_id in USERS:
            self.walk(user_id, ListQuery(sort=sort, limit=limit))


async def _opened(store: TaskStore, user_id: str, since: str, limit: int = 100) -> None:
    """Open a subscription from ``since``, and close it at once."""
    async with subscribe(store, user_id, since, limit=limit):
        pass


def machine_for(backend: str, *, max_examples: int, steps: int) -> type[StoreMachine]:
    """The machine bound to ``backend``, with its Hypothesis budget."""

    class Machine(StoreMachine):
        pass

    Machine.backend = backend
    Machine.__name__ = Machine.__qualname__ = f"{backend.capitalize()}StoreMachine"
    Machine.TestCase.settings = settings(
        max_examples=max_examples,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    return Machine


@pytest.fixture
def postgres_configured() -> None:
    """Skip (or fail in CI) before a PostgreSQL machine starts when none is configured."""
    postgres_url()


@pytest.fixture
def pgbouncer_configured() -> None:
    """Skip (or fail in CI) before a machine through PgBouncer starts without one."""
    pgbouncer_url()


def on_postgres(backend: str, configured: str) -> type[TestCase]:
    """``backend``'s machine with the PostgreSQL budget, marked ``postgres``; the
    ``configured`` fixture skips it before Hypothesis starts when its server is missing."""
    case = machine_for(backend, max_examples=40, steps=30).TestCase
    return pytest.mark.usefixtures(configured)(pytest.mark.postgres(case))


TestStoreMemory = machine_for("memory", max_examples=200, steps=50).TestCase
TestStoreSqlite = machine_for("sqlite", max_examples=40, steps=30).TestCase
TestStorePostgres = on_postgres("postgres", "postgres_configured")
# The same server through PgBouncer in transaction mode, with the store's defaults.
TestStorePgbouncer = on_postgres("pgbouncer", "pgbouncer_configured")
