"""The two dialects: SQLAlchemy's compilers, and how each driver takes and returns values.

``compile_statement`` is the one place a SQLAlchemy expression becomes a ``Statement``:
the text, the parameters in driver order with the conversion each needs, and a row
decoder built from the statement's own result columns, so rows are read by column
name and type, never by an assumed position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal
from uuid import UUID, SafeUUID

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import visitors
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.selectable import CTE

from todo_core.models import PRIORITIES
from todo_core.schema import DueTimestamp, PriorityLevel, TagList, UTCTimestamp
from todo_core.sql.statement import Binder, RowDecoder, Statement
from todo_core.timestamps import from_micros, to_micros

__all__ = ["DialectName", "compile_statement"]

DialectName = Literal["postgresql", "sqlite"]
Kind = Literal["uuid", "timestamp", "due", "boolean", "priority", "list"]

# The asyncpg dialect, not plain PostgreSQL's: it casts every parameter ($1::UUID),
# so the server never has to guess a parameter's type from its context.
_DIALECTS: Final[Mapping[DialectName, Dialect]] = {
    "postgresql": PGDialect_asyncpg(),  # type: ignore[no-untyped-call]
    "sqlite": SQLiteDialect_aiosqlite(),
}

_UNKNOWN_SAFETY: Final = SafeUUID.unknown  # looked up once: enum attributes are slow
_new_object = object.__new__  # bound once, like it: every row of a listing calls them
_set_attribute = object.__setattr__


def _uuid_from_int(number: int) -> UUID:
    # What UUID.__init__ ends with, minus its argument checks (the number is a UUID's).
    plain = _new_object(UUID)
    _set_attribute(plain, "int", number)
    _set_attribute(plain, "is_safe", _UNKNOWN_SAFETY)
    return plain


def _plain_uuid(value: UUID) -> UUID:
    # asyncpg's own UUID subclass is refused by orjson and others: a Task holds a plain one.
    return _uuid_from_int(value.int)


def _uuid_from_hex(value: str) -> UUID:
    return _uuid_from_int(int(value, 16))


def _hex(value: UUID) -> str:
    return value.hex


_RANKS: Final[Mapping[str, int]] = {level: rank for rank, level in enumerate(PRIORITIES)}


def _rank(level: str) -> int:
    return _RANKS[level]


def _level(rank: int) -> str:
    return PRIORITIES[rank]


def _aware_end(moment: datetime) -> datetime:
    # asyncpg's -infinity and infinity (see schema.DueTimestamp) come back naive.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _json_list(values: Sequence[Any]) -> str:
    return orjson.dumps(list(values)).decode()


# How each kind of value reaches each driver and comes back. asyncpg takes and returns
# UUIDs and aware datetimes; on SQLite (see schema.py) UUIDs are 32 hex digits,
# timestamps integer microseconds and booleans 0/1, as SQLAlchemy's types write them.
# Priorities are ranks on both; lists are arrays for asyncpg and JSON text on SQLite.
_BINDERS: Final[Mapping[DialectName, Mapping[Kind, Binder]]] = {
    "postgresql": {"priority": _rank},
    "sqlite": {
        "uuid": _hex,
        "timestamp": to_micros,
        "due": to_micros,
        "priority": _rank,
        "list": _json_list,
    },
}
_DECODERS: Final[Mapping[DialectName, Mapping[Kind | None, Binder]]] = {
    "postgresql": {"uuid": _plain_uuid, "due": _aware_end, "priority": _level},
    "sqlite": {
        "uuid": _uuid_from_hex,
        "timestamp": from_micros,
        "due": from_micros,
        "boolean": bool,
        "priority": _level,
        "list": orjson.loads,
    },
}


# For list_fields (FieldsPage), which lets a UUID stay the driver's subclass of it.
_FIELD_DECODERS: Final[Mapping[DialectName, Mapping[Kind | None, Binder]]] = {
    "postgresql": {kind: f for kind, f in _DECODERS["postgresql"].items() if kind != "uuid"},
    "sqlite": _DECODERS["sqlite"],
}


def _kind(type_: sa.types.TypeEngine[Any]) -> Kind | None:
    """What a value of ``type_`` may need converting as, on its way in or out."""
    if isinstance(type_, DueTimestamp):
        return "due"
    if isinstance(type_, UTCTimestamp):
        return "timestamp"
    if isinstance(type_, sa.Uuid):
        return "uuid"
    if isinstance(type_, sa.Boolean):
        return "boolean"
    if isinstance(type_, PriorityLevel):
        return "priority"
    if isinstance(type_, TagList):
        return "list"
    return None


def _row_decoder(columns: Sequence[tuple[str, Binder | None, bool]]) -> RowDecoder:
    """A row's values by column name: ``columns`` holds each one's name, conversion (or
    None) and whether it may be NULL, in the row's order.

    Written out once per shape as a single dict display, ``{"id": convert(row[0]),
    "user_id": row[1], ...}``: a listing decodes every row of its page, and this costs
    a third of ``dict(zip(names, row))`` followed by a loop over the conversions.
    """
    namespace: dict[str, Any] = {}
    items = []
    for index, (name, convert, nullable) in enumerate(columns):
        value = f"row[{index}]"
        if convert is not None:
            namespace[f"convert_{index}"] = convert
            converted = f"convert_{index}({value})"
            value = f"(None if {value} is None else {converted})" if nullable else converted
        items.append(f"{name!r}: {value}")
    decode: RowDecoder = eval(f"lambda row: {{{', '.join(items)}}}", namespace)
    return decode


def _writes(statement: sa.ClauseElement) -> bool:
    """Whether ``statement`` changes rows: it is an INSERT, UPDATE or DELETE, or holds
    one in a CTE (a SELECT over an ``UPDATE ... RETURNING``, as ``shapes.completion``)."""
    dml = sa.Insert | sa.Update | sa.Delete
    return isinstance(statement, dml) or any(
        isinstance(node, CTE) and isinstance(node.element, dml)
        for node in visitors.iterate(statement)
    )


def compile_statement(
    statement: sa.ClauseElement, dialect: DialectName, *, scans: bool = False
) -> Statement:
    """``statement`` compiled for ``dialect``; ``scans``: see ``Statement.scans``."""
    compiled = statement.compile(dialect=_DIALECTS[dialect])
    assert isinstance(compiled, SQLCompiler)
    binders = _BINDERS[dialect]
    parameters = []
    for name in compiled.positiontup or ():
        kind = _kind(compiled.binds[name].type)
        parameters.append((name, None if kind is None else binders.get(kind)))
    writes = _writes(statement)
    columns = getattr(statement, "exported_columns", ())
    # Plain str: SQLAlchemy's names are a subclass of it, which orjson refuses as a key.
    names = tuple(str(column.key) for column in columns)
    kinds = [
        (name, _kind(column.type), getattr(column, "nullable", True))
        for name, column in zip(names, columns, strict=True)
    ]

    def decoder(decoders: Mapping[Kind | None, Binder]) -> RowDecoder:
        return _row_decoder([(name, decoders.get(kind), null) for name, kind, null in kinds])

    decode = decoder(_DECODERS[dialect])
    field_decoders = _FIELD_DECODERS[dialect]
    return Statement(
        sql=str(compiled),
        writes=writes,
        _parameters=tuple(parameters),
        _defaults=dict(compiled.params),  # literals the statement binds itself
        columns=names,
        decode=decode,
        decode_fields=decode if field_decoders is _DECODERS[dialect] else decoder(field_decoders),
        scans=scans,
    )
