"""The SQL store: one code path for PostgreSQL (asyncpg) and SQLite (sqlite3).

Every write is a single conditional statement (``UPDATE``/``INSERT ... RETURNING``),
never a read followed by a write, so concurrent writers cannot lose each other's work;
but for a write whose outcome depends on the stored task (completing one that recurs):
that one reads, then writes on the condition that the task is unchanged
(``sql/completion.py``), and purging a task from the trash (``sql/sync.py``, which
holds the change feed and the trash). Every write is numbered for the feed inside its
own transaction: by the write itself on SQLite, by a trigger on PostgreSQL (migrations
0005 and 0006; ``sql/shapes.py``); the store wakes ``signal`` after each.
See the package's docstring for the path of a statement from here to the driver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from importlib.resources import files
from typing import Any, Final
from uuid import UUID

from todo_core.engine import EngineOptions
from todo_core.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    PreconditionFailed,
    SchemaNotCurrent,
    StoreError,
    StoreUnavailable,
    TaskNotFound,
)
from todo_core.feed import (
    DEFAULT_RETENTION,
    ChangePage,
    FeedTokens,
    TrashedTask,
    TrashPage,
    TrashQuery,
)
from todo_core.idempotency import (
    IDEMPOTENCY_TTL,
    Created,
    fingerprint,
    validate_idempotency_key,
)
from todo_core.listing import CursorCodec, fold
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
    trusted_task,
    validate_user_id,
)
from todo_core.signal import ChangeSignal
from todo_core.sql.completion import SettledWrite
from todo_core.sql.database import Database, EchoingDatabase
from todo_core.sql.filters import applied_filters
from todo_core.sql.sorts import After, position_kind
from todo_core.sql.statement import Statement
from todo_core.sql.sync import FeedAndTrash
from todo_core.sql.wakeups import feed_wakeups
from todo_core.timestamps import utc_now
from todo_core.urls import DatabaseURL, parse_database_url
from todo_core.writes import depends_on_stored

__all__ = ["SCHEMA_REVISION", "Database", "SqlTaskStore", "open_sql_store"]

_DEFAULT_QUERY = ListQuery()
_DEFAULT_TAG_QUERY = TagQuery()
# Every version a row can hold: they start at 1 in a 32-bit INTEGER column. Any other
# expected_version cannot match, and binding it would overflow the driver.
_POSSIBLE_VERSIONS = range(1, 2**31)
_Items = list[dict[str, Any]]  # a page's tasks by field (``list`` is a method below)


def _newest_migration() -> str:
    # Read from the file names (NNNN_what.py, revision NNNN; a test holds them to it),
    # so that opening a store whose schema is current never loads Alembic.
    versions = files("todo_core").joinpath("migrations", "versions")
    return max(entry.name[:4] for entry in versions.iterdir() if entry.name[:4].isdigit())


SCHEMA_REVISION: Final = _newest_migration()
"""The schema revision this package needs: its newest migration's."""


async def _first_row(
    database: Database, statement: Statement, values: Mapping[str, Any]
) -> Sequence[Any] | None:
    rows = await database.fetch(statement, values)
    return rows[0] if rows else None


def _stored_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Writable fields plus the folded copies that ``q`` searches."""
    values = dict(fields)
    if "title" in values:
        values["title_folded"] = fold(values["title"])
    if "description" in values:
        description = values["description"]
        values["description_folded"] = None if description is None else fold(description)
    return values


class SqlTaskStore:
    """A ``TaskStore`` on PostgreSQL or SQLite. Open it with ``open_store``."""

    def __init__(
        self,
        database: Database,
        *,
        cursor_secret: bytes,
        clock: Callable[[], datetime] | None = None,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self._database = database
        self._statements = database.statements
        self._cursors = CursorCodec(cursor_secret)
        self._clock = clock or utc_now
        self.signal = ChangeSignal()
        tokens = FeedTokens(self._cursors, retention)
        self._sync = FeedAndTrash(database, tokens, self._clock, self.signal)
        self._settled_write = SettledWrite(
            read=self.get,
            stored=_stored_fields,
            statements=self._completion_statements,
            run=self._database.transaction,
            clock=self._clock,
        )
        # Keys of this process's creates in flight: a retry that overtakes its original
        # is told so at once. Other processes' are seen by the claim (on PostgreSQL) or
        # waited for (SQLite's file lock).
        self._claiming: set[tuple[str, str]] = set()

    def _completion_statements(self, fields: frozenset[str], spawns: bool) -> tuple[Statement, ...]:
        if spawns:
            return self._statements.completion(fields)
        return (self._statements.update(fields, conditional=True),)

    @property
    def database(self) -> Database:
        """The backend underneath, for tests and health checks."""
        return self._database

    async def create(self, user_id: str, data: TaskCreate) -> Task:
        validate_user_id(user_id)
        task = new_task(user_id, data, self._clock())
        await self._database.fetch(self._statements.insert, _stored_fields(task.__dict__))
        self.signal.notify(user_id)
        return task

    async def create_once(self, user_id: str, data: TaskCreate, *, key: str) -> Created:
        validate_user_id(user_id)
        validate_idempotency_key(key)
        claim = (user_id, key)
        if claim in self._claiming:
            raise IdempotencyKeyInUse(key)
        self._claiming.add(claim)
        try:
            return await self._create_once(user_id, data, key)
        finally:
            self._claiming.discard(claim)

    async def _create_once(self, user_id: str, data: TaskCreate, key: str) -> Created:
        now = self._clock()
        task = new_task(user_id, data, now)
        request = fingerprint(data)
        values = _stored_fields(task.__dict__)
        values |= {"key": key, "fingerprint": request, "expires_at": now + IDEMPOTENCY_TTL}
        if await self._database.transaction(self._statements.create_once, values):
            self.signal.notify(user_id)
            return Created(task, replayed=False)
        # Not claimed: the key is live, or (PostgreSQL) another process is claiming it.
        row = await _first_row(
            self._database, self._statements.replay, {"user_id": user_id, "key": key, "now": now}
        )
        if row is None:
            raise IdempotencyKeyInUse(key)
        fields = self._statements.replay.decode(row)
        if fields.pop("fingerprint") != request:
            raise IdempotencyKeyReused(key)
        return Created(trusted_task(fields), replayed=True)

    async def purge_idempotency_keys(self, *, limit: int = 1000) -> int:
        rows = await self._database.fetch(
            self._statements.purge, {"now": self._clock(), "limit": limit}
        )
        return len(rows)

    async def get(self, user_id: str, task_id: UUID) -> Task:
        validate_user_id(user_id)
        statement = self._statements.get
        row = await _first_row(
            self._database, statement, {"scope_user": user_id, "scope_task": task_id}
        )
        if row is None:
            raise TaskNotFound(task_id)
        return trusted_task(statement.decode(row))

    async def list(self, user_id: str, query: ListQuery | None = None) -> Page:
        items, cursor = await self._page(user_id, query or _DEFAULT_QUERY, fields=False)
        return Page(items=[trusted_task(fields) for fields in items], next_cursor=cursor)

    async def list_fields(self, user_id: str, query: ListQuery | None = None) -> FieldsPage:
        return FieldsPage(*await self._page(user_id, query or _DEFAULT_QUERY, fields=True))

    async def _page(
        self, user_id: str, query: ListQuery, *, fields: bool
    ) -> tuple[_Items, str | None]:
        """The tasks of ``query``'s page by field (decoded for ``list_fields`` if
        ``fields``), and the cursor of the next page."""
        validate_user_id(user_id)
        position = self._cursors.decode(user_id, query)
        filters, values = applied_filters(query)
        values |= {"user_id": user_id, "limit": query.limit + 1}  # one more: is there a next?
        after: After = None
        if position is not None:
            after = position_kind(position.key)
            values["after_key"], values["after_id"] = position.key, position.task_id
        statement = self._statements.list(query.sort, filters, after=after)
        rows = await self._database.fetch(statement, values)
        decode = statement.decode_fields if fields else statement.decode
        items = [decode(row) for row in rows[: query.limit]]
        if len(rows) <= query.limit:
            return items, None
        return items, self._cursors.encode(user_id, query, trusted_task(items[-1]))

    async def list_tags(self, user_id: str, query: TagQuery | None = None) -> TagPage:
        validate_user_id(user_id)
        query = query or _DEFAULT_TAG_QUERY
        after = self._cursors.decode_tag(user_id, query.cursor)
        statement = self._statements.tags(after=after is not None)
        values = {"user_id": user_id, "limit": query.limit + 1, "after_tag": after}
        rows = await self._database.fetch(statement, values)
        items = [TagCount(str(tag), int(count)) for tag, count in rows[: query.limit]]
        if len(rows) <= query.limit:
            return TagPage(items, None)
        return TagPage(items, self._cursors.encode_tag(user_id, items[-1].tag))

    async def replace(
        self,
        user_id: str,
        task_id: UUID,
        data: TaskReplace,
        *,
        expected_version: int | None = None,
    ) -> Task:
        fields = data.model_dump()
        if depends_on_stored(fields):
            return await self._settled(user_id, task_id, lambda _: dict(fields), expected_version)
        return await self._update(user_id, task_id, fields, expected_version)

    async def patch(
        self,
        user_id: str,
        task_id: UUID,
        data: TaskPatch,
        *,
        expected_version: int | None = None,
    ) -> Task:
        changes = data.changes()
        if depends_on_stored(changes):
            return await self._settled(user_id, task_id, data.applied_to, expected_version)
        return await self._update(user_id, task_id, changes, expected_version)

    async def _settled(
        self,
        user_id: str,
        task_id: UUID,
        fields_of: Callable[[Task], dict[str, Any]],
        expected_version: int | None,
    ) -> Task:
        validate_user_id(user_id)
        if expected_version is not None and expected_version not in _POSSIBLE_VERSIONS:
            await self.get(user_id, task_id)  # TaskNotFound first, as a direct write
            raise PreconditionFailed(task_id, expected_version)
        task = await self._settled_write(user_id, task_id, fields_of, expected_version)
        self.signal.notify(user_id)
        return task

    async def delete(
        self, user_id: str, task_id: UUID, *, expected_version: int | None = None
    ) -> Task:
        statement = self._statements.delete(conditional=expected_version is not None)
        values = {"now": self._clock()}
        return await self._write(statement, values, user_id, task_id, expected_version)

    async def changes(
        self, user_id: str, since: str | None = None, *, limit: int = 100
    ) -> ChangePage:
        return await self._sync.changes(user_id, since, limit)

    async def trash(self, user_id: str, query: TrashQuery | None = None) -> TrashPage:
        return await self._sync.trash(user_id, query)

    async def restore(self, user_id: str, task_id: UUID) -> Task:
        return await self._sync.restore(user_id, task_id)

    async def purge(self, user_id: str, task_id: UUID) -> TrashedTask:
        return await self._sync.purge(user_id, task_id)

    async def empty_trash(self, user_id: str) -> int:
        return await self._sync.empty_trash(user_id)

    async def purge_expired(self, *, limit: int = 1000) -> int:
        return await self._sync.purge_expired(limit)

    async def ping(self) -> None:
        await self._database.fetch(self._statements.ping, {})

    async def _update(
        self,
        user_id: str,
        task_id: UUID,
        changes: Mapping[str, Any],
        expected_version: int | None,
    ) -> Task:
        values = _stored_fields(changes)
        statement = self._statements.update(
            frozenset(values), conditional=expected_version is not None
        )
        values["now"] = self._clock()
        return await self._write(statement, values, user_id, task_id, expected_version)

    async def _write(
        self,
        statement: Statement,
        values: dict[str, Any],
        user_id: str,
        task_id: UUID,
        expected_version: int | None,
    ) -> Task:
        """Run one conditional write; tell a missing task from a stale version after."""
        validate_user_id(user_id)
        values |= {"scope_user": user_id, "scope_task": task_id}
        if expected_version is None or expected_version in _POSSIBLE_VERSIONS:
            values["expected_version"] = expected_version
            row = await _first_row(self._database, statement, values)
            if row is not None:
                self.signal.notify(user_id)
                return trusted_task(statement.decode(row))
        # A separate read, not a transaction: had the row changed in between, the write
        # would have failed the same way a moment later.
        if (
            expected_version is not None
            and await _first_row(self._database, self._statements.version, values) is not None
        ):
            raise PreconditionFailed(task_id, expected_version)
        raise TaskNotFound(task_id)


async def _schema_revision(database: Database) -> str | None:
    """The revision the database is at, or None when it has no schema yet."""
    try:
        row = await _first_row(database, database.statements.revision, {})
    except StoreUnavailable:
        raise
    except StoreError:  # no alembic_version table: nothing was ever migrated
        return None
    return None if row is None else str(row[0])


async def _stored_cursor_secret(database: Database) -> bytes:
    row = await _first_row(database, database.statements.secret, {})
    if row is None:
        raise StoreError(
            "the database has no cursor secret (the first migration stores one): "
            "pass cursor_secret or restore the todo_settings row"
        )
    return bytes.fromhex(row[0])


@asynccontextmanager
async def open_sql_store(
    url: str,
    *,
    create_schema: bool = False,
    cursor_secret: bytes | None = None,
    clock: Callable[[], datetime] | None = None,
    retention: timedelta = DEFAULT_RETENTION,
    **options: object,
) -> AsyncIterator[SqlTaskStore]:
    """Open a ``SqlTaskStore`` on ``url``; see ``todo_core.open_store``."""
    engine_options = EngineOptions.from_mapping(options)
    target = parse_database_url(url)
    database: Database
    if target.backend == "sqlite":
        from todo_core.sqlite import SqliteDatabase

        database = await SqliteDatabase.open(target, engine_options)
    else:
        from todo_core.postgres import PostgresDatabase

        database = await PostgresDatabase.open(target, engine_options)
    try:
        secret = await _prepare_schema(
            database, target, engine_options, create_schema, cursor_secret
        )
        if engine_options.echo:
            database = EchoingDatabase(database)
        store = SqlTaskStore(database, cursor_secret=secret, clock=clock, retention=retention)
        # Other processes' writes wake this store's watchers too (sql/wakeups.py).
        async with feed_wakeups(database, target, engine_options, store.signal):
            yield store
    finally:
        await database.close()


async def _prepare_schema(
    database: Database,
    target: DatabaseURL,
    options: EngineOptions,
    create_schema: bool,
    cursor_secret: bytes | None,
) -> bytes:
    """Check (or migrate) the schema and find the cursor secret.

    Alembic and SQLAlchemy's engine are loaded only when there is something to migrate:
    a server whose schema is current never holds them in memory.
    """
    revision = await _schema_revision(database)
    if revision != SCHEMA_REVISION:
        if not create_schema:
            raise SchemaNotCurrent(revision, SCHEMA_REVISION)
        from todo_core.migrate import migrate

        await migrate(target.engine_url, options)
    return cursor_secret or await _stored_cursor_secret(database)
