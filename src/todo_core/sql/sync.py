"""The SQL store's change feed and trash: the calls of ``TaskStore`` that ``feed`` defines.

Every task write takes its user's next change number inside its own transaction (the
write itself on SQLite, a trigger on PostgreSQL and for any writer that did not:
migrations 0005 and 0006), under a lock held until it commits, so the numbers become
visible in number order and a reader that has seen change n can never later find a
change below n committed behind it. The feed is therefore one indexed read, "the
user's rows numbered after the token's, in number order": a task appears once, at its
latest change, live or deleted. See ``docs/library.md``, "The change feed" and "The
trash".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from todo_core.errors import StoreUnavailable, TaskNotFound
from todo_core.feed import (
    PURGE_GRACE,
    Change,
    ChangePage,
    Deleted,
    FeedPosition,
    FeedTokens,
    Sealer,
    TrashedTask,
    TrashPage,
    TrashQuery,
    Upserted,
    validate_changes_limit,
)
from todo_core.models import Task, trusted_task, validate_user_id
from todo_core.signal import ChangeSignal
from todo_core.sql.completion import ATTEMPTS
from todo_core.sql.database import Database

__all__ = ["FeedAndTrash"]

_DEFAULT_TRASH_QUERY: Final = TrashQuery()


class FeedAndTrash:
    """The feed and the trash of one SQL store, on its database, tokens and clock."""

    def __init__(
        self,
        database: Database,
        tokens: FeedTokens,
        clock: Callable[[], datetime],
        signal: ChangeSignal,
    ) -> None:
        self._database = database
        self._statements = database.statements
        self._tokens = tokens
        self._clock = clock
        self._signal = signal

    async def changes(self, user_id: str, since: str | None, limit: int) -> ChangePage:
        validate_user_id(user_id)
        validate_changes_limit(limit)
        now = self._clock()
        if since is None:
            rows = await self._database.fetch(self._statements.feed_head, {"user_id": user_id})
            head = int(rows[0][0]) if rows else 0
            return ChangePage([], self._tokens.encode(user_id, FeedPosition(head, now)), False)
        after = self._tokens.decode(user_id, since, now).seq
        statement = self._statements.changes
        values = {"user_id": user_id, "since": after, "limit": limit + 1}
        rows = await self._database.fetch(statement, values)
        seal = self._tokens.sealer(user_id)
        items = [_change(statement.decode(row), seal) for row in rows[:limit]]
        if len(rows) > limit:
            return ChangePage(items, items[-1].token, True)
        # The reader has reached the end at ``now``: no number below the last it saw
        # can commit later, so this position misses nothing.
        last = items[-1].position.seq if items else after
        return ChangePage(items, self._tokens.encode(user_id, FeedPosition(last, now)), False)

    async def trash(self, user_id: str, query: TrashQuery | None) -> TrashPage:
        validate_user_id(user_id)
        query = query or _DEFAULT_TRASH_QUERY
        after = self._tokens.decode_trash(user_id, query.cursor)
        statement = self._statements.trash(after=after is not None)
        values: dict[str, Any] = {"user_id": user_id, "limit": query.limit + 1}
        if after is not None:
            values["after_deleted_at"], values["after_id"] = after
        rows = await self._database.fetch(statement, values)
        items = [
            TrashedTask.model_construct(**statement.decode(row)) for row in rows[: query.limit]
        ]
        if len(rows) <= query.limit:
            return TrashPage(items, None)
        last = items[-1]
        return TrashPage(items, self._tokens.encode_trash(user_id, last.deleted_at, last.id))

    async def restore(self, user_id: str, task_id: UUID) -> Task:
        validate_user_id(user_id)
        statement = self._statements.restore
        values = {"scope_user": user_id, "scope_task": task_id, "now": self._clock()}
        rows = await self._database.fetch(statement, values)
        if not rows:
            raise TaskNotFound(task_id)
        self._signal.notify(user_id)
        return trusted_task(statement.decode(rows[0]))

    async def purge(self, user_id: str, task_id: UUID) -> TrashedTask:
        """Read the trashed task, then wipe it on the condition that it is still the
        one read (restored and trashed again meanwhile, it is read again)."""
        validate_user_id(user_id)
        scope = {"scope_user": user_id, "scope_task": task_id}
        for _ in range(ATTEMPTS):
            fields = await self._trashed(scope)
            if fields is None:
                raise TaskNotFound(task_id)
            condition = {"expected_version": fields["version"], "deleted_at": fields["deleted_at"]}
            if await self._database.fetch(self._statements.purge_task, scope | condition):
                return TrashedTask.model_construct(**fields)
        raise StoreUnavailable(
            f"task {task_id} kept changing under this purge ({ATTEMPTS} attempts): try again"
        )

    async def _trashed(self, scope: Mapping[str, Any]) -> dict[str, Any] | None:
        statement = self._statements.trashed
        rows = await self._database.fetch(statement, scope)
        return statement.decode(rows[0]) if rows else None

    async def empty_trash(self, user_id: str) -> int:
        validate_user_id(user_id)
        return len(await self._database.fetch(self._statements.empty_trash, {"user_id": user_id}))

    async def purge_expired(self, limit: int) -> int:
        cutoff = self._clock() - self._tokens.retention - PURGE_GRACE
        values = {"cutoff": cutoff, "limit": limit}
        return len(await self._database.fetch(self._statements.purge_expired, values))


def _change(fields: dict[str, Any], seal: Sealer) -> Change:
    """The change a feed row reports."""
    seq = int(fields.pop("change_seq"))
    deleted_at: datetime | None = fields.pop("deleted_at")
    if deleted_at is None:
        task = trusted_task(fields)
        return Upserted(task, FeedPosition(seq, task.updated_at), seal)
    return Deleted(fields["id"], deleted_at, FeedPosition(seq, deleted_at), seal)
