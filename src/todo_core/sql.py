"""The SQL store: one SQLAlchemy Core code path for PostgreSQL (asyncpg) and SQLite.

Every write is a single conditional statement (``UPDATE``/``DELETE ... RETURNING``),
never a read followed by a write, so concurrent writers cannot lose each other's work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from todo_core.engine import EngineOptions, create_engine, statement_timeout_sql, translate_errors
from todo_core.errors import PreconditionFailed, StoreError, TaskNotFound
from todo_core.listing import SORTS, CursorCodec, fold
from todo_core.migrate import require_current_schema, upgrade_schema
from todo_core.models import (
    ListQuery,
    Page,
    Task,
    TaskCreate,
    TaskPatch,
    TaskReplace,
    validate_user_id,
)
from todo_core.schema import UTCTimestamp, contains_text, next_stamp, settings, tasks
from todo_core.timestamps import utc_now

__all__ = ["SqlTaskStore", "open_sql_store"]

_DEFAULT_QUERY = ListQuery()
_TASK_COLUMNS = (
    tasks.c.id,
    tasks.c.user_id,
    tasks.c.title,
    tasks.c.description,
    tasks.c.completed,
    tasks.c.created_at,
    tasks.c.updated_at,
    tasks.c.version,
)
# Bind names differ from the column names: UPDATE reserves those for its SET clause.
_SCOPE = sa.and_(
    tasks.c.user_id == sa.bindparam("scope_user"), tasks.c.id == sa.bindparam("scope_task")
)
_VERSION_MATCHES = tasks.c.version == sa.bindparam("expected_version")
# Every version a row can hold: they start at 1 in a 32-bit INTEGER column. Any other
# expected_version cannot match, and binding it would overflow the driver.
_POSSIBLE_VERSIONS = range(1, 2**31)
_SELECT_ONE = sa.select(*_TASK_COLUMNS).where(_SCOPE)
_SELECT_VERSION = sa.select(tasks.c.version).where(_SCOPE)


def _row_to_task(row: sa.Row[*tuple[Any, ...]]) -> Task:
    # Rows come from our own table through typed columns: no need to validate again.
    return Task.model_construct(**row._mapping)


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
    """A ``TaskStore`` on a SQLAlchemy async engine. Open it with ``open_store``."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        cursor_secret: bytes,
        clock: Callable[[], datetime] | None = None,
        options: EngineOptions | None = None,
    ) -> None:
        self._engine = engine
        self._cursors = CursorCodec(cursor_secret)
        self._clock = clock or utc_now
        self._prelude = statement_timeout_sql(engine, options or EngineOptions())

    @property
    def engine(self) -> AsyncEngine:
        """The engine underneath, for health checks and tests; its pool is shared."""
        return self._engine

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        with translate_errors():
            async with self._engine.begin() as connection:
                if self._prelude is not None:
                    await connection.execute(self._prelude)
                yield connection

    async def create(self, user_id: str, data: TaskCreate) -> Task:
        validate_user_id(user_id)
        now = self._clock()
        task = Task.model_construct(
            id=uuid4(),
            user_id=user_id,
            title=data.title,
            description=data.description,
            completed=data.completed,
            created_at=now,
            updated_at=now,
            version=1,
        )
        async with self._transaction() as connection:
            await connection.execute(sa.insert(tasks), _stored_fields(task.model_dump()))
        return task

    async def get(self, user_id: str, task_id: UUID) -> Task:
        validate_user_id(user_id)
        async with self._transaction() as connection:
            row = (
                await connection.execute(
                    _SELECT_ONE, {"scope_user": user_id, "scope_task": task_id}
                )
            ).first()
        if row is None:
            raise TaskNotFound(task_id)
        return _row_to_task(row)

    async def list(self, user_id: str, query: ListQuery | None = None) -> Page:
        validate_user_id(user_id)
        query = query or _DEFAULT_QUERY
        spec = SORTS[query.sort]
        position = self._cursors.decode(user_id, query)
        key = tasks.c[spec.field]
        statement = sa.select(*_TASK_COLUMNS).where(tasks.c.user_id == user_id)
        if query.completed is not None:
            statement = statement.where(tasks.c.completed == query.completed)
        if query.q is not None:
            needle = sa.literal(fold(query.q), sa.Text())
            statement = statement.where(
                sa.or_(
                    contains_text(tasks.c.title_folded, needle),
                    contains_text(tasks.c.description_folded, needle),
                )
            )
        if position is not None:
            row_key = sa.tuple_(key, tasks.c.id)
            after = sa.tuple_(
                sa.literal(position.key, key.type), sa.literal(position.task_id, sa.Uuid())
            )
            statement = statement.where(row_key < after if spec.descending else row_key > after)
        order = (
            (key.desc(), tasks.c.id.desc()) if spec.descending else (key.asc(), tasks.c.id.asc())
        )
        statement = statement.order_by(*order).limit(query.limit + 1)
        async with self._transaction() as connection:
            rows = (await connection.execute(statement)).all()
        items = [_row_to_task(row) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        next_cursor = self._cursors.encode(user_id, query, items[-1]) if more else None
        return Page(items=items, next_cursor=next_cursor)

    async def replace(
        self,
        user_id: str,
        task_id: UUID,
        data: TaskReplace,
        *,
        expected_version: int | None = None,
    ) -> Task:
        return await self._update(user_id, task_id, data.model_dump(), expected_version)

    async def patch(
        self,
        user_id: str,
        task_id: UUID,
        data: TaskPatch,
        *,
        expected_version: int | None = None,
    ) -> Task:
        return await self._update(user_id, task_id, data.changes(), expected_version)

    async def delete(
        self, user_id: str, task_id: UUID, *, expected_version: int | None = None
    ) -> Task:
        statement = sa.delete(tasks).where(_SCOPE).returning(*_TASK_COLUMNS)
        return await self._write(statement, {}, user_id, task_id, expected_version)

    async def ping(self) -> None:
        async with self._transaction() as connection:
            await connection.execute(sa.select(1))

    async def _update(
        self,
        user_id: str,
        task_id: UUID,
        changes: Mapping[str, Any],
        expected_version: int | None,
    ) -> Task:
        statement = (
            sa.update(tasks)
            .where(_SCOPE)
            .values(
                {
                    **_stored_fields(changes),
                    "updated_at": next_stamp(
                        tasks.c.updated_at, sa.bindparam("now", type_=UTCTimestamp())
                    ),
                    "version": tasks.c.version + 1,
                }
            )
            .returning(*_TASK_COLUMNS)
        )
        return await self._write(
            statement, {"now": self._clock()}, user_id, task_id, expected_version
        )

    async def _write(
        self,
        statement: sa.Update | sa.Delete,
        parameters: dict[str, Any],
        user_id: str,
        task_id: UUID,
        expected_version: int | None,
    ) -> Task:
        """Run one conditional write; tell a missing task from a stale version after."""
        validate_user_id(user_id)
        parameters |= {"scope_user": user_id, "scope_task": task_id}
        if expected_version is not None and expected_version not in _POSSIBLE_VERSIONS:
            statement = statement.where(sa.false())
        elif expected_version is not None:
            statement = statement.where(_VERSION_MATCHES)
            parameters["expected_version"] = expected_version
        async with self._transaction() as connection:
            row = (await connection.execute(statement, parameters)).first()
            if row is not None:
                return _row_to_task(row)
            if expected_version is not None:
                exists = await connection.execute(_SELECT_VERSION, parameters)
                if exists.first() is not None:
                    raise PreconditionFailed(task_id, expected_version)
        raise TaskNotFound(task_id)


async def _stored_cursor_secret(engine: AsyncEngine) -> bytes:
    async with engine.connect() as connection:
        value = await connection.scalar(
            sa.select(settings.c.value).where(settings.c.name == "cursor_secret")
        )
    if value is None:
        raise StoreError("the database has no cursor secret: run `todo-http migrate`")
    return bytes.fromhex(value)


@asynccontextmanager
async def open_sql_store(
    url: str,
    *,
    create_schema: bool = False,
    cursor_secret: bytes | None = None,
    clock: Callable[[], datetime] | None = None,
    **options: object,
) -> AsyncIterator[SqlTaskStore]:
    """Open a ``SqlTaskStore`` on ``url``; see ``todo_core.open_store``."""
    engine_options = EngineOptions.from_mapping(options)
    engine = create_engine(url, engine_options)
    try:
        with translate_errors():
            if create_schema:
                await upgrade_schema(engine)
            else:
                await require_current_schema(engine)
            secret = cursor_secret or await _stored_cursor_secret(engine)
        yield SqlTaskStore(engine, cursor_secret=secret, clock=clock, options=engine_options)
    finally:
        await engine.dispose()
