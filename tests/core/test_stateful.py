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

from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any
from unittest import TestCase
from uuid import UUID

import pydantic
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import MultipleResults, invariant, multiple, rule

from tests.backends import pgbouncer_url, postgres_url
from tests.core.machine_inputs import (
    BAD_USERS,
    CASINGS,
    CREATES,
    DEFAULT_DUE,
    DUE_TIMES,
    INVALID_INPUTS,
    PATCHES,
    PIECES,
    VERSIONS,
    substrings,
)
from tests.core.store_machine import (
    KEY_LIFETIME,
    KEYS,
    REFS,
    SORTS,
    TICKS,
    TRASHED_REFS,
    USERS,
    Ref,
    check_timestamps,
    fields_of,
    other_user,
    request_of,
)
from tests.core.trash_rules import TrashAndFeedRules
from tests.values import LAST_DAY, PRIORITY_LEVELS
from todo_core import (
    IdempotencyKeyReused,
    InvalidCursor,
    ListQuery,
    SortOrder,
    TagCount,
    TagQuery,
    Task,
    TaskCreate,
    TaskNotFound,
    TaskPatch,
    TaskReplace,
)


class StoreMachine(TrashAndFeedRules):
    """Drives one store of ``backend`` and a model through the same operations."""

    @rule(target=REFS, user_id=st.sampled_from(USERS), fields=CREATES)
    def create(self, user_id: str, fields: dict[str, Any]) -> Ref:
        return self.created(user_id, fields)

    @rule(
        target=REFS,
        user_id=st.sampled_from(USERS),
        batch=st.lists(CREATES, min_size=2, max_size=4),
    )
    def create_several(self, user_id: str, batch: list[dict[str, Any]]) -> MultipleResults[Ref]:
        return multiple(*(self.created(user_id, fields) for fields in batch))

    @rule(
        target=REFS,
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
        request = request_of(fields)
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
            assert fields_of(replayed.task) == fields_of(kept[2]), "the task as first created"
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

    @rule(ref=REFS)
    def get(self, ref: Ref) -> None:
        current = self.model.get((ref.user_id, ref.task_id))
        if current is None:
            with pytest.raises(TaskNotFound):
                self.run(self.store.get(ref.user_id, ref.task_id))
        else:
            task = self.run(self.store.get(ref.user_id, ref.task_id))
            check_timestamps(task)
            assert fields_of(task) == fields_of(current)

    @rule(
        ref=REFS,
        operation=st.sampled_from(["get", "replace", "patch", "delete", "restore", "purge"]),
    )
    def touch_as_other_user(self, ref: Ref, operation: str) -> None:
        """Another user's task does not exist for you, whatever you try."""
        other = other_user(ref.user_id)
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

    @rule(target=REFS, ref=REFS, fields=CREATES, version=VERSIONS)
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
        target=REFS, ref=REFS, edits=st.lists(st.tuples(PATCHES, VERSIONS), min_size=1, max_size=3)
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
        target=REFS,
        ref=REFS,
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

    @rule(target=TRASHED_REFS, ref=REFS, version=VERSIONS)
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
                self.run(self.store.list_tags(other_user(user_id), query))

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
            "other user": (other_user(user_id), ListQuery(sort=sort, cursor=cursor)),
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
        ref=REFS,
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
    def small_pages_add_up(self) -> None:
        """Pages of 1-5 tasks, in each sort in turn, add up to the model's order.

        ``list_pages`` explores filters and changing limits at random; this makes sure
        every step is also followed by a paged walk.
        """
        self.walks += 1
        sort, limit = SORTS[self.walks % len(SORTS)], 1 + self.walks // len(SORTS) % 5
        for user_id in USERS:
            self.walk(user_id, ListQuery(sort=sort, limit=limit))


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
