"""The store's SQL at run time: compiled text, parameter order and value conversion.

SQLAlchemy writes every statement (``sqlgen.py``), compiled ahead of time into
``_sql.py`` for both dialects; the SQL stores hand that text and positional arguments
straight to the driver (asyncpg or sqlite3). Nothing here imports SQLAlchemy, so a
serving process does without its memory and its per-statement overhead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NamedTuple
from uuid import UUID, SafeUUID

from todo_core import _sql
from todo_core.models import SortOrder, Task, trusted_task
from todo_core.timestamps import from_micros, to_micros

if TYPE_CHECKING:
    from sqlalchemy.sql import ClauseElement

__all__ = [
    "TASK_FIELDS",
    "CompiledStatement",
    "Statement",
    "Statements",
    "create_once_key",
    "delete_key",
    "list_key",
    "update_key",
]

TASK_FIELDS: Final = tuple(Task.model_fields)
"""The fields of ``Task``, in the order every task-returning statement selects them."""

Binder = Callable[[Any], Any]
_UNKNOWN_SAFETY: Final = SafeUUID.unknown  # looked up once: enum attributes are slow
_new_object = object.__new__  # bound once, like it: every row of a listing calls them
_set_attribute = object.__setattr__


class CompiledStatement(NamedTuple):
    """A statement as ``sqlgen`` compiles it: what ``_sql.py`` holds for each shape."""

    sql: str
    writes: bool
    parameters: tuple[tuple[str, str | None], ...]  # name and kind, in driver order
    defaults: dict[str, Any]


def update_key(fields: frozenset[str], conditional: bool) -> str:
    """The name of the UPDATE shape writing ``fields`` (stored column names)."""
    return f"update {','.join(sorted(fields))}{' if version' if conditional else ''}"


def delete_key(conditional: bool) -> str:
    return f"delete{' if version' if conditional else ''}"


def create_once_key(step: int) -> str:
    """The name of a create-once shape's ``step``-th statement (from 0)."""
    return f"create once {step}"


def list_key(sort: SortOrder, completed: bool, search: bool, after: bool) -> str:
    flags = [name for name, on in (("completed", completed), ("q", search), ("after", after)) if on]
    return " ".join(["list", sort, *flags])


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
            arguments.append(value if bind is None or value is None else bind(value))
        return arguments


def _hex(value: UUID) -> str:
    return value.hex


# How each kind of value reaches each driver. asyncpg takes UUIDs and aware datetimes
# as they are; on SQLite (see schema.py) UUIDs are stored as 32 hex digits and
# timestamps as integer microseconds, exactly as SQLAlchemy's types write them.
_BINDERS: Final[dict[str, dict[str, Binder]]] = {
    "postgresql": {},
    "sqlite": {"uuid": _hex, "timestamp": to_micros},
}


def _statement(compiled: Sequence[Any], binders: Mapping[str, Binder]) -> Statement:
    sql, writes, parameters, defaults = CompiledStatement(*compiled)
    bound = tuple((name, None if kind is None else binders.get(kind)) for name, kind in parameters)
    return Statement(sql, writes, bound, defaults)


class Statements:
    """Every statement a SQL store runs, for one dialect (``postgresql`` or ``sqlite``)."""

    def __init__(self, dialect: str) -> None:
        self._dialect = dialect
        binders = _BINDERS[dialect]
        self._shapes = {
            key: _statement(compiled, binders) for key, compiled in _sql.STATEMENTS[dialect].items()
        }
        self.task: Callable[[Sequence[Any]], Task] = (
            _read_sqlite if dialect == "sqlite" else _read_postgresql
        )
        # A row's values by field name, without the model (``TaskStore.list_fields``).
        self.fields: Callable[[Sequence[Any]], dict[str, Any]] = (
            _sqlite_fields if dialect == "sqlite" else _postgresql_fields
        )
        # The SQL of the listings that search (``q``): they may scan a user's whole set.
        self.searches = frozenset(
            statement.sql for statement in self._shapes.values() if "needle" in statement.names
        )
        self.get = self._shapes["get"]
        self.version = self._shapes["version"]
        self.insert = self._shapes["insert"]
        self.ping = self._shapes["ping"]
        self.revision = self._shapes["revision"]
        self.secret = self._shapes["secret"]
        self.replay = self._shapes["replay"]
        self.purge = self._shapes["purge"]
        # One statement on PostgreSQL, two on SQLite: run them in one transaction.
        self.create_once = tuple(
            statement for key, statement in self._shapes.items() if key.startswith("create once ")
        )

    def update(self, fields: frozenset[str], *, conditional: bool) -> Statement:
        """UPDATE of ``fields`` (stored names), stamping ``updated_at`` from bind ``now``."""
        return self._shapes[update_key(fields, conditional)]

    def delete(self, *, conditional: bool) -> Statement:
        return self._shapes[delete_key(conditional)]

    def list(self, sort: SortOrder, *, completed: bool, search: bool, after: bool) -> Statement:
        """One page in ``sort`` order; binds ``user_id``, ``limit`` and per flag
        ``completed``, ``needle`` (folded ``q``) and ``after_key``/``after_id``."""
        return self._shapes[list_key(sort, completed, search, after)]

    def compile(self, statement: ClauseElement) -> Statement:
        """Any other SQLAlchemy statement, for this dialect (tests, maintenance).

        Loads SQLAlchemy: not for the request path.
        """
        from todo_core.sqlgen import DIALECTS, compile_statement

        compiled = compile_statement(statement, DIALECTS[self._dialect])
        return _statement(compiled, _BINDERS[self._dialect])


def _uuid_from_int(number: int) -> UUID:
    # What UUID.__init__ ends with, minus its argument checks (the number is a UUID's).
    plain = _new_object(UUID)
    _set_attribute(plain, "int", number)
    _set_attribute(plain, "is_safe", _UNKNOWN_SAFETY)
    return plain


def _postgresql_fields(row: Sequence[Any]) -> dict[str, Any]:
    # Unpacked and written out: half the cost of dict(zip(TASK_FIELDS, row)), paid by
    # every task of a listing. TASK_FIELDS is the order; the store tests pin the result.
    task_id, user_id, title, description, completed, created_at, updated_at, version = row
    return {
        "id": task_id,  # asyncpg's own subclass of UUID
        "user_id": user_id,
        "title": title,
        "description": description,
        "completed": completed,
        "created_at": created_at,
        "updated_at": updated_at,
        "version": version,
    }


def _read_postgresql(row: Sequence[Any]) -> Task:
    fields = _postgresql_fields(row)
    # asyncpg's UUID subclass is refused by orjson and others: a Task holds a plain one.
    fields["id"] = _uuid_from_int(fields["id"].int)
    return trusted_task(fields)


def _sqlite_fields(row: Sequence[Any]) -> dict[str, Any]:
    # What SQLAlchemy's types do for these columns on SQLite (hex UUIDs, 0/1 booleans,
    # integer microseconds), written out: the store tests pin the result.
    task_id, user_id, title, description, completed, created_at, updated_at, version = row
    return {
        "id": _uuid_from_int(int(task_id, 16)),
        "user_id": user_id,
        "title": title,
        "description": description,
        "completed": bool(completed),
        "created_at": from_micros(created_at),
        "updated_at": from_micros(updated_at),
        "version": version,
    }


def _read_sqlite(row: Sequence[Any]) -> Task:
    return trusted_task(_sqlite_fields(row))
