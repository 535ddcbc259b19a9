"""The store's SQL: written once in SQLAlchemy Core, compiled once per dialect and shape.

SQLAlchemy's cost is in building, compiling and executing statements through its
layers, not in the SQL it writes. So the SQL store compiles each statement shape the
first time it needs it and from then on hands the SQL text and positional arguments
straight to the driver (asyncpg or sqlite3), with SQLAlchemy's own type processing
applied on the way in and out.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID, SafeUUID

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

from todo_core.listing import SORTS
from todo_core.models import SortOrder, Task, trusted_task
from todo_core.schema import UTCTimestamp, contains_text, next_stamp, tasks
from todo_core.timestamps import from_micros

__all__ = ["TASK_FIELDS", "Statement", "Statements"]

_TASK_COLUMNS: Final = (
    tasks.c.id,
    tasks.c.user_id,
    tasks.c.title,
    tasks.c.description,
    tasks.c.completed,
    tasks.c.created_at,
    tasks.c.updated_at,
    tasks.c.version,
)
TASK_FIELDS: Final = tuple(str(column.name) for column in _TASK_COLUMNS)  # not quoted_name
"""The fields of ``Task``, in the order every task-returning statement selects them."""

# Bind names differ from the column names: UPDATE reserves those for its SET clause.
_SCOPE: Final = sa.and_(
    tasks.c.user_id == sa.bindparam("scope_user"), tasks.c.id == sa.bindparam("scope_task")
)
_VERSION_MATCHES: Final = tasks.c.version == sa.bindparam("expected_version")

Binder = Callable[[Any], Any]
_UNKNOWN_SAFETY: Final = SafeUUID.unknown  # looked up once: enum attributes are slow


@dataclass(frozen=True, slots=True)
class Statement:
    """One compiled statement: SQL text for the driver and how to order its arguments."""

    sql: str
    writes: bool
    _parameters: tuple[tuple[str, Binder | None], ...]
    _defaults: Mapping[str, Any]

    @property
    def names(self) -> tuple[str, ...]:
        """The parameter names, in the order of the driver's positional arguments."""
        return tuple(name for name, _ in self._parameters)

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        """Positional driver arguments from named ``values``, converted for the dialect."""
        arguments = []
        for name, bind in self._parameters:
            value = values[name] if name in values else self._defaults[name]
            arguments.append(value if bind is None else bind(value))
        return arguments


def _compile(statement: sa.ClauseElement, dialect: Dialect) -> Statement:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    names = compiled.positiontup or ()
    parameters = tuple(
        (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
        for name in names
    )
    writes = isinstance(statement, sa.Insert | sa.Update | sa.Delete)
    return Statement(str(compiled), writes, parameters, compiled.params)


def _row_reader(dialect: Dialect) -> Callable[[Sequence[Any]], Task]:
    processors = [
        column.type.dialect_impl(dialect).result_processor(dialect, None)
        for column in _TASK_COLUMNS
    ]
    if not any(processors):  # PostgreSQL: asyncpg returns the Python types, nearly

        def read(row: Sequence[Any]) -> Task:
            values = dict(zip(TASK_FIELDS, row, strict=True))
            # asyncpg's own UUID subclass, which orjson and others refuse: a plain one.
            values["id"] = plain_uuid(values["id"])
            return trusted_task(values)

        return read

    if dialect.name == "sqlite":
        return _read_sqlite

    def read_converted(row: Sequence[Any]) -> Task:
        values = {
            field: value if process is None else process(value)
            for field, process, value in zip(TASK_FIELDS, processors, row, strict=True)
        }
        return trusted_task(values)

    return read_converted


def _read_sqlite(row: Sequence[Any]) -> Task:
    # What SQLAlchemy's result processors do for these columns on SQLite (hex UUIDs,
    # 0/1 booleans, integer microseconds), without three calls per value: on a page of
    # a hundred tasks that was a fifth of the request. The store tests pin the result.
    task_id, user_id, title, description, completed, created_at, updated_at, version = row
    return trusted_task(
        {
            "id": _uuid_from_int(int(task_id, 16)),
            "user_id": user_id,
            "title": title,
            "description": description,
            "completed": bool(completed),
            "created_at": from_micros(created_at),
            "updated_at": from_micros(updated_at),
            "version": version,
        }
    )


def plain_uuid(value: UUID) -> UUID:
    """``value`` as ``uuid.UUID`` itself, from any subclass, without re-parsing it."""
    return _uuid_from_int(value.int)


def _uuid_from_int(number: int) -> UUID:
    # What UUID.__init__ ends with, minus its argument checks (the number is a UUID's).
    plain = object.__new__(UUID)
    object.__setattr__(plain, "int", number)
    object.__setattr__(plain, "is_safe", _UNKNOWN_SAFETY)
    return plain


class Statements:
    """Every statement a SQL store runs, compiled for one dialect on first use.

    The cache is bounded by construction: its keys are combinations of a few flags.
    """

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._cache: dict[Hashable, Statement] = {}
        self.task = _row_reader(dialect)
        self.get = _compile(sa.select(*_TASK_COLUMNS).where(_SCOPE), dialect)
        self.version = _compile(sa.select(tasks.c.version).where(_SCOPE), dialect)
        self.insert = _compile(
            sa.insert(tasks).values({column.name: sa.bindparam(column.name) for column in tasks.c}),
            dialect,
        )
        self.ping = _compile(sa.select(sa.literal_column("1")), dialect)

    def compile(self, statement: sa.ClauseElement) -> Statement:
        """Any other statement, compiled for this dialect (tests, maintenance)."""
        return _compile(statement, self._dialect)

    def _cached(self, key: Hashable, build: Callable[[], sa.ClauseElement]) -> Statement:
        statement = self._cache.get(key)
        if statement is None:
            statement = self._cache[key] = _compile(build(), self._dialect)
        return statement

    def update(self, fields: frozenset[str], *, conditional: bool) -> Statement:
        """UPDATE of ``fields`` (stored names), stamping ``updated_at`` from bind ``now``."""

        def build() -> sa.ClauseElement:
            changes: dict[str, Any] = {name: sa.bindparam(name) for name in sorted(fields)}
            now = sa.bindparam("now", type_=UTCTimestamp())
            changes["updated_at"] = next_stamp(tasks.c.updated_at, now)
            changes["version"] = tasks.c.version + 1
            statement = sa.update(tasks).where(_SCOPE).values(changes)
            if conditional:
                statement = statement.where(_VERSION_MATCHES)
            return statement.returning(*_TASK_COLUMNS)

        return self._cached(("update", fields, conditional), build)

    def delete(self, *, conditional: bool) -> Statement:
        def build() -> sa.ClauseElement:
            statement = sa.delete(tasks).where(_SCOPE)
            if conditional:
                statement = statement.where(_VERSION_MATCHES)
            return statement.returning(*_TASK_COLUMNS)

        return self._cached(("delete", conditional), build)

    def list(self, sort: SortOrder, *, completed: bool, search: bool, after: bool) -> Statement:
        """One page in ``sort`` order; binds ``user_id``, ``limit`` and per flag
        ``completed``, ``needle`` (folded ``q``) and ``after_key``/``after_id``."""

        def build() -> sa.Select[Any]:
            spec = SORTS[sort]
            key = tasks.c[spec.field]
            statement = sa.select(*_TASK_COLUMNS).where(tasks.c.user_id == sa.bindparam("user_id"))
            if completed:
                statement = statement.where(tasks.c.completed == sa.bindparam("completed"))
            if search:
                needle = sa.bindparam("needle", type_=sa.Text())
                statement = statement.where(
                    sa.or_(
                        contains_text(tasks.c.title_folded, needle),
                        contains_text(tasks.c.description_folded, needle),
                    )
                )
            if after:
                row_key = sa.tuple_(key, tasks.c.id)
                position = sa.tuple_(
                    sa.bindparam("after_key", type_=key.type),
                    sa.bindparam("after_id", type_=sa.Uuid()),
                )
                statement = statement.where(
                    row_key < position if spec.descending else row_key > position
                )
            order = (key.desc(), tasks.c.id.desc()) if spec.descending else (key, tasks.c.id)
            limit = sa.bindparam("limit", type_=sa.Integer())
            return statement.order_by(*order).limit(limit)

        return self._cached(("list", sort, completed, search, after), build)
