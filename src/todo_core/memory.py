"""A store that keeps tasks in process memory: the test oracle and the no-database demo."""

from __future__ import annotations

import operator
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from todo_core.errors import IdempotencyKeyReused, PreconditionFailed, TaskNotFound
from todo_core.feed import (
    DEFAULT_RETENTION,
    PURGE_GRACE,
    Change,
    ChangePage,
    Deleted,
    FeedPosition,
    FeedTokens,
    TrashedTask,
    TrashPage,
    TrashQuery,
    Upserted,
    validate_changes_limit,
)
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
from todo_core.signal import ChangeSignal
from todo_core.timestamps import utc_now
from todo_core.writes import next_stamp, settle

__all__ = ["MemoryTaskStore"]

_DEFAULT_QUERY = ListQuery()
_DEFAULT_TAG_QUERY = TagQuery()
_DEFAULT_TRASH_QUERY = TrashQuery()


@dataclass(slots=True)
class _Gone:
    """A task out of the live set: in the trash, or purged and kept for the feed."""

    task: Task
    deleted_at: datetime
    purged: bool = False


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


def _trashed(gone: _Gone) -> TrashedTask:
    return TrashedTask.model_construct(**gone.task.__dict__, deleted_at=gone.deleted_at)


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
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self._tasks: dict[str, dict[UUID, Task]] = {}
        self._gone: dict[str, dict[UUID, _Gone]] = {}
        # The feed: each user's last change number, and each task's latest one.
        self._heads: dict[str, int] = {}
        self._changed: dict[str, dict[UUID, int]] = {}
        self.signal = ChangeSignal()
        # (user_id, key) -> the request's fingerprint and the task it created; the key
        # lives until IDEMPOTENCY_TTL after that task's created_at
        self._keys: dict[tuple[str, str], tuple[str, Task]] = {}
        self._cursors = CursorCodec(cursor_secret or secrets.token_bytes(32))
        self._tokens = FeedTokens(self._cursors, retention)
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
        self._gone.setdefault(user_id, {})[task_id] = _Gone(current, self._clock())
        self._moved(user_id, task_id)
        return current

    async def changes(
        self, user_id: str, since: str | None = None, *, limit: int = 100
    ) -> ChangePage:
        validate_user_id(user_id)
        validate_changes_limit(limit)
        now = self._clock()
        head = self._heads.get(user_id, 0)
        if since is None:
            return ChangePage([], self._tokens.encode(user_id, FeedPosition(head, now)), False)
        after = self._tokens.decode(user_id, since, now).seq
        changed = sorted(
            (seq, task_id) for task_id, seq in self._changed.get(user_id, {}).items() if seq > after
        )
        items = [self._change(user_id, task_id, seq) for seq, task_id in changed[:limit]]
        has_more = len(changed) > limit
        if has_more:
            next_since = items[-1].token
        else:
            last = changed[-1][0] if changed else after
            next_since = self._tokens.encode(user_id, FeedPosition(max(last, after), now))
        return ChangePage(items, next_since, has_more)

    async def trash(self, user_id: str, query: TrashQuery | None = None) -> TrashPage:
        validate_user_id(user_id)
        query = query or _DEFAULT_TRASH_QUERY
        after = self._tokens.decode_trash(user_id, query.cursor)
        trashed = sorted(
            (_trashed(gone) for gone in self._gone.get(user_id, {}).values() if not gone.purged),
            key=lambda task: (task.deleted_at, task.id),
            reverse=True,
        )
        if after is not None:
            trashed = [task for task in trashed if (task.deleted_at, task.id) < after]
        items = trashed[: query.limit]
        more = len(trashed) > query.limit
        last = items[-1] if more else None
        cursor = (
            None if last is None else self._tokens.encode_trash(user_id, last.deleted_at, last.id)
        )
        return TrashPage(items, cursor)

    async def restore(self, user_id: str, task_id: UUID) -> Task:
        gone = self._in_trash(user_id, task_id)
        stamp = next_stamp(gone.task.updated_at, self._clock())
        task = gone.task.model_copy(update={"updated_at": stamp, "version": gone.task.version + 1})
        del self._gone[user_id][task_id]
        self._tasks.setdefault(user_id, {})[task_id] = task
        self._moved(user_id, task_id)
        return task

    async def purge(self, user_id: str, task_id: UUID) -> TrashedTask:
        gone = self._in_trash(user_id, task_id)
        gone.purged = True
        return _trashed(gone)

    async def empty_trash(self, user_id: str) -> int:
        validate_user_id(user_id)
        trashed = [gone for gone in self._gone.get(user_id, {}).values() if not gone.purged]
        for gone in trashed:
            gone.purged = True
        return len(trashed)

    async def purge_expired(self, *, limit: int = 1000) -> int:
        cutoff = self._clock() - self._tokens.retention - PURGE_GRACE
        expired = [
            (user_id, task_id)
            for user_id, gone in self._gone.items()
            for task_id, entry in gone.items()
            if entry.deleted_at < cutoff
        ][:limit]
        for user_id, task_id in expired:
            del self._gone[user_id][task_id]
            del self._changed[user_id][task_id]
        return len(expired)

    async def ping(self) -> None:
        return None

    def _moved(self, user_id: str, task_id: UUID) -> None:
        """Give the task's latest change the user's next number, and wake readers."""
        head = self._heads.get(user_id, 0) + 1
        self._heads[user_id] = head
        self._changed.setdefault(user_id, {})[task_id] = head
        self.signal.notify(user_id)

    def _change(self, user_id: str, task_id: UUID, seq: int) -> Change:
        seal = self._tokens.sealer(user_id)
        task = self._tasks.get(user_id, {}).get(task_id)
        if task is not None:
            return Upserted(task, FeedPosition(seq, task.updated_at), seal)
        deleted_at = self._gone[user_id][task_id].deleted_at
        return Deleted(task_id, deleted_at, FeedPosition(seq, deleted_at), seal)

    def _in_trash(self, user_id: str, task_id: UUID) -> _Gone:
        validate_user_id(user_id)
        gone = self._gone.get(user_id, {}).get(task_id)
        if gone is None or gone.purged:
            raise TaskNotFound(task_id)
        return gone

    def _create(self, user_id: str, data: TaskCreate, now: datetime) -> Task:
        task = new_task(user_id, data, now)
        self._tasks.setdefault(user_id, {})[task.id] = task
        self._moved(user_id, task.id)
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
        self._moved(current.user_id, current.id)
        if settled.successor is not None:  # after the task: the feed's order says so
            tasks[settled.successor.id] = settled.successor
            self._moved(current.user_id, settled.successor.id)
        return task
