"""The storage contract every backend honours, and the factory that opens one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable
from uuid import UUID

from todo_core.feed import DEFAULT_RETENTION, ChangePage, TrashedTask, TrashPage, TrashQuery
from todo_core.idempotency import Created
from todo_core.models import (
    FieldsPage,
    ListQuery,
    Page,
    TagPage,
    TagQuery,
    Task,
    TaskCreate,
    TaskPatch,
    TaskReplace,
)
from todo_core.signal import ChangeSignal

__all__ = ["TaskStore", "open_store"]


@runtime_checkable
class TaskStore(Protocol):
    """Tasks of many users. Every call is scoped by ``user_id``.

    A task of another user is indistinguishable from one that does not exist. A bad
    ``user_id`` raises ``pydantic.ValidationError``. Writes are atomic: a write that
    raises changed nothing, and one that returned is durable. Each write makes
    ``updated_at`` strictly later and ``version`` one higher. Database failures raise
    ``StoreUnavailable`` (transient) or ``StoreError``; nothing else escapes.
    """

    signal: ChangeSignal
    """Wakes readers of a user's feed after each write this store commits."""

    async def create(self, user_id: str, data: TaskCreate) -> Task:
        """Store a new task (version 1) and return it."""
        ...

    async def create_once(self, user_id: str, data: TaskCreate, *, key: str) -> Created:
        """Create a task at most once per ``key`` (per user), for 24 hours.

        The first call with a key creates the task and keeps it with the key, in the same
        transaction. A later call with the key and an equal ``data`` creates nothing and
        returns that task as it was created, with ``replayed=True``. Raises
        ``IdempotencyKeyReused`` when ``data`` differs, ``IdempotencyKeyInUse`` while the
        first call has not finished, ``pydantic.ValidationError`` for a key that is not
        1-255 characters.
        """
        ...

    async def purge_idempotency_keys(self, *, limit: int = 1000) -> int:
        """Delete at most ``limit`` expired keys; returns how many went.

        Expired keys never replay, purged or not: this only reclaims their space. It
        never waits for a create, so it can run beside requests (``todo_http`` runs it
        periodically; an embedding application should too).
        """
        ...

    async def get(self, user_id: str, task_id: UUID) -> Task:
        """Return one task. Raises ``TaskNotFound``."""
        ...

    async def list(self, user_id: str, query: ListQuery | None = None) -> Page:
        """Return one keyset page of the user's tasks. Raises ``InvalidCursor``."""
        ...

    async def list_fields(self, user_id: str, query: ListQuery | None = None) -> FieldsPage:
        """``list``'s page, as each task's field values instead of ``Task`` models."""
        ...

    async def list_tags(self, user_id: str, query: TagQuery | None = None) -> TagPage:
        """One keyset page of the tags the user's tasks carry, with their counts, in code
        point order. Raises ``InvalidCursor``."""
        ...

    async def replace(
        self,
        user_id: str,
        task_id: UUID,
        data: TaskReplace,
        *,
        expected_version: int | None = None,
    ) -> Task:
        """Replace every writable field. Raises ``TaskNotFound``, ``PreconditionFailed``.

        Completing a recurring task creates its next occurrence in the same transaction
        (``Task.next_occurrence_id`` names it); see ``todo_core.writes``.
        """
        ...

    async def patch(
        self,
        user_id: str,
        task_id: UUID,
        data: TaskPatch,
        *,
        expected_version: int | None = None,
    ) -> Task:
        """Change only the fields set, as ``replace`` would the merged task. Raises
        ``TaskNotFound``, ``PreconditionFailed``, then ``InvalidPatch``."""
        ...

    async def delete(
        self, user_id: str, task_id: UUID, *, expected_version: int | None = None
    ) -> Task:
        """Move a task to the trash and return it as it was (no ``deleted_at``, the same
        ``updated_at``); from then on it is absent from every other call but ``trash``,
        ``restore``, ``purge`` and ``changes``. Raises ``TaskNotFound``,
        ``PreconditionFailed``."""
        ...

    async def changes(
        self, user_id: str, since: str | None = None, *, limit: int = 100
    ) -> ChangePage:
        """The user's tasks that changed after ``since``, each once at its latest change,
        oldest change first, at most ``limit`` (1-500) of them.

        Without ``since``: no items, and a token for the present moment (take it before
        listing the tasks, then follow the feed from it). Every write, the trashing,
        restoring and purging of tasks and a successor's creation included, moves the
        feed; a client following ``next_since`` misses none, whatever runs concurrently.
        Raises ``InvalidSyncToken``, ``SyncTokenExpired``.
        """
        ...

    async def trash(self, user_id: str, query: TrashQuery | None = None) -> TrashPage:
        """One keyset page of the user's trash, most recently deleted first.
        Raises ``InvalidCursor``."""
        ...

    async def restore(self, user_id: str, task_id: UUID) -> Task:
        """Bring a trashed task back (same ``id``, later ``updated_at``, next version).
        Raises ``TaskNotFound`` when it is not in the user's trash."""
        ...

    async def purge(self, user_id: str, task_id: UUID) -> TrashedTask:
        """Remove a task from the trash for good and return it as the trash held it.
        The feed keeps reporting it deleted until the retention window passes.
        Raises ``TaskNotFound`` when it is not in the user's trash."""
        ...

    async def empty_trash(self, user_id: str) -> int:
        """Purge every task in the user's trash; returns how many."""
        ...

    async def purge_expired(self, *, limit: int = 1000) -> int:
        """Forget at most ``limit`` trashed tasks and deletion records older than the
        retention window; returns how many went. One call at a time does the work
        across every process (the others return 0 at once); it never blocks writes
        for long, so it can run beside requests, as ``todo_http`` runs it."""
        ...

    async def ping(self) -> None:
        """Return when the database answers. Raises ``StoreUnavailable``."""
        ...


@asynccontextmanager
async def open_store(
    url: str,
    *,
    create_schema: bool = False,
    cursor_secret: bytes | str | None = None,
    clock: Callable[[], datetime] | None = None,
    retention: timedelta = DEFAULT_RETENTION,
    **options: object,
) -> AsyncIterator[TaskStore]:
    """Open a store for ``url`` and close everything it opened on exit.

    ``url`` picks the backend: ``postgresql://`` or ``postgresql+asyncpg://`` (asyncpg),
    ``sqlite:///path``, ``sqlite+aiosqlite:///path`` or ``:memory:`` (aiosqlite), and
    ``memory://`` (a process-local store for demos and tests, nothing persisted).

    ``create_schema`` creates or upgrades the schema to the version this package ships;
    without it the schema must already be current (``todo_core.migrate.migrate``).
    ``cursor_secret`` signs pagination cursors; a SQL store without one uses a secret
    generated once and kept in its database, so cursors survive restarts and stay valid
    across processes. ``retention`` is how long trashed tasks and the records of
    deletions that the change feed needs are kept, and so how long a feed token stays
    valid. ``clock`` replaces the time source (tests). Other ``options`` tune
    the SQL engine; see ``todo_core.engine.EngineOptions``.

    Raises:
        StoreUnavailable: the database cannot be reached.
        StoreError: the schema is missing or out of date and ``create_schema`` is False.
        ValueError: the URL or an option is not understood.
    """
    secret = cursor_secret.encode() if isinstance(cursor_secret, str) else cursor_secret
    if url.startswith("memory:"):
        from todo_core.memory import MemoryTaskStore

        if options:
            raise ValueError(f"the memory store takes no engine options: {sorted(options)}")
        yield MemoryTaskStore(cursor_secret=secret, clock=clock, retention=retention)
        return

    from todo_core.sql import open_sql_store

    async with open_sql_store(
        url,
        create_schema=create_schema,
        cursor_secret=secret,
        clock=clock,
        retention=retention,
        **options,
    ) as store:
        yield store
