"""A store that keeps tasks in process memory: the test oracle and the no-database demo."""

from __future__ import annotations

import operator
import secrets
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from todo_core.errors import IdempotencyKeyReused, PreconditionFailed, TaskNotFound
from todo_core.idempotency import (
    IDEMPOTENCY_TTL,
    Created,
    fingerprint,
    validate_idempotency_key,
)
from todo_core.listing import SORTS, CursorCodec, SortSpec, fold, ordinal, sort_key
from todo_core.models import (
    FieldsPage,
    ListQuery,
    Page,
    TagCount,
    TagPage,
    TagQuery,
    Task,
    TaskCreate,
    TaskPatch,
    TaskReplace,
    new_task,
    validate_user_id,
)
from todo_core.timestamps import utc_now
from todo_core.writes import next_stamp, settle

__all__ = ["MemoryTaskStore"]

_DEFAULT_QUERY = ListQuery()
_DEFAULT_TAG_QUERY = TagQuery()


def _matches(task: Task, query: ListQuery) -> bool:
    if query.completed is not None and task.completed is not query.completed:
        return False
    if query.priority is not None and task.priority not in query.priority:
        return False
    if query.tag is not None and not set(query.tag) <= set(task.tags):
        return False
    if query.due_min is not None and (task.due_at is None or task.due_at < query.due_min):
        return False
    if query.due_max is not None and (task.due_at is None or task.due_at >= query.due_max):
        return False
    if query.q is None:
        return True
    needle = fold(query.q)
    return needle in fold(task.title) or (
        task.description is not None and needle in fold(task.description)
    )


def _in_order(tasks: list[Task], spec: SortSpec) -> list[Task]:
    """``tasks`` in ``spec``'s order: by key then id, those without a key last."""
    keyed = [task for task in tasks if sort_key(task, spec) is not None]
    keyless = [task for task in tasks if sort_key(task, spec) is None]
    keyed.sort(key=lambda task: (ordinal(sort_key(task, spec), spec), task.id))
    keyless.sort(key=lambda task: task.id)
    if spec.descending:
        keyed.reverse()
        keyless.reverse()
    return keyed + keyless


def _beyond(task: Task, spec: SortSpec, key: object, task_id: UUID) -> bool:
    """Whether ``task`` comes after the position (``key``, ``task_id``) in ``spec``'s order."""
    later = operator.lt if spec.descending else operator.gt
    own = sort_key(task, spec)
    if key is None:  # among the keyless, which come last: only they remain
        return own is None and later(task.id, task_id)
    if own is None:
        return True
    position = (ordinal(key, spec), task_id)  # type: ignore[arg-type]
    return bool(later((ordinal(own, spec), task.id), position))


def _live(created: Task, now: datetime) -> bool:
    """Whether the key that created ``created`` still replays it at ``now``."""
    return created.created_at + IDEMPOTENCY_TTL > now


class MemoryTaskStore:
    """A ``TaskStore`` backed by a dict: same rules, same errors, nothing persisted.

    Every method runs without awaiting anything, so each call is atomic under asyncio.
    """

    def __init__(
        self,
        *,
        cursor_secret: bytes | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._tasks: dict[str, dict[UUID, Task]] = {}
        # (user_id, key) -> the request's fingerprint and the task it created; the key
        # lives until IDEMPOTENCY_TTL after that task's created_at
        self._keys: dict[tuple[str, str], tuple[str, Task]] = {}
        self._cursors = CursorCodec(cursor_secret or secrets.token_bytes(32))
        self._clock = clock or utc_now

    async def create(self, user_id: str, data: TaskCreate) -> Task:
        validate_user_id(user_id)
        return self._create(user_id, data, self._clock())

    async def create_once(self, user_id: str, data: TaskCreate, *, key: str) -> Created:
        validate_user_id(user_id)
        validate_idempotency_key(key)
        now = self._clock()
        request = fingerprint(data)
        kept = self._keys.get((user_id, key))
        if kept is not None and _live(kept[1], now):
            if kept[0] != request:
                raise IdempotencyKeyReused(key)
            return Created(kept[1], replayed=True)
        task = self._create(user_id, data, now)
        self._keys[user_id, key] = (request, task)
        return Created(task, replayed=False)

    async def purge_idempotency_keys(self, *, limit: int = 1000) -> int:
        now = self._clock()
        dead = [claim for claim, (_, task) in self._keys.items() if not _live(task, now)][:limit]
        for claim in dead:
            del self._keys[claim]
        return len(dead)

    async def get(self, user_id: str, task_id: UUID) -> Task:
        return self._current(user_id, task_id, None)

    async def list(self, user_id: str, query: ListQuery | None = None) -> Page:
        validate_user_id(user_id)
        query = query or _DEFAULT_QUERY
        spec = SORTS[query.sort]
        position = self._cursors.decode(user_id, query)
        tasks = _in_order(
            [task for task in self._tasks.get(user_id, {}).values() if _matches(task, query)],
            spec,
        )
        if position is not None:
            tasks = [task for task in tasks if _beyond(task, spec, position.key, position.task_id)]
        items = tasks[: query.limit]
        more = len(tasks) > query.limit
        next_cursor = self._cursors.encode(user_id, query, items[-1]) if more else None
        return Page(items=items, next_cursor=next_cursor)

    async def list_fields(self, user_id: str, query: ListQuery | None = None) -> FieldsPage:
        page = await self.list(user_id, query)
        return FieldsPage([dict(task.__dict__) for task in page.items], page.next_cursor)

    async def list_tags(self, user_id: str, query: TagQuery | None = None) -> TagPage:
        validate_user_id(user_id)
        query = query or _DEFAULT_TAG_QUERY
        after = self._cursors.decode_tag(user_id, query.cursor)
        counts = Counter(tag for task in self._tasks.get(user_id, {}).values() for tag in task.tags)
        tags = sorted(tag for tag in counts if after is None or tag > after)
        items = [TagCount(tag, counts[tag]) for tag in tags[: query.limit]]
        more = len(tags) > query.limit
        return TagPage(items, self._cursors.encode_tag(user_id, items[-1].tag) if more else None)

    async def replace(
        self,
        user_id: str,
        task_id: UUID,
        data: TaskReplace,
        *,
        expected_version: int | None = None,
    ) -> Task:
        current = self._current(user_id, task_id, expected_version)
        return self._write(current, data.model_dump())

    async def patch(
        self,
        user_id: str,
        task_id: UUID,
        data: TaskPatch,
        *,
        expected_version: int | None = None,
    ) -> Task:
        current = self._current(user_id, task_id, expected_version)
        return self._write(current, data.applied_to(current))

    async def delete(
        self, user_id: str, task_id: UUID, *, expected_version: int | None = None
    ) -> Task:
        current = self._current(user_id, task_id, expected_version)
        del self._tasks[user_id][task_id]
        return current

    async def ping(self) -> None:
        return None

    def _create(self, user_id: str, data: TaskCreate, now: datetime) -> Task:
        task = new_task(user_id, data, now)
        self._tasks.setdefault(user_id, {})[task.id] = task
        return task

    def _current(self, user_id: str, task_id: UUID, expected_version: int | None) -> Task:
        validate_user_id(user_id)
        task = self._tasks.get(user_id, {}).get(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        if expected_version is not None and task.version != expected_version:
            raise PreconditionFailed(task_id, expected_version)
        return task

    def _write(self, current: Task, fields: dict[str, Any]) -> Task:
        """Write every writable field of ``fields`` over ``current``."""
        # A clock that stalls or steps back must still move updated_at forward.
        updated_at = next_stamp(current.updated_at, self._clock())
        settled = settle(current, fields, updated_at)
        task = current.model_copy(
            update={**settled.fields, "updated_at": updated_at, "version": current.version + 1}
        )
        tasks = self._tasks[current.user_id]
        tasks[current.id] = task
        if settled.successor is not None:
            tasks[settled.successor.id] = settled.successor
        return task
