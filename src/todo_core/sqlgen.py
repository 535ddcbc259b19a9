"""The store's SQL, written in SQLAlchemy Core and compiled for both dialects.

Every statement shape a SQL store runs is enumerated here and compiled into
``todo_core/_sql.py``, which the store loads instead of SQLAlchemy: a serving process
then never imports SQLAlchemy (16 MiB of its memory; see docs/performance.md). A test
compiles them again and fails if that file is out of date; after changing a statement,
the schema or the migrations, regenerate it:

    python -m todo_core.sqlgen
"""

from __future__ import annotations

import itertools
import pprint
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, get_args

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

from todo_core.listing import SORTS
from todo_core.models import SortOrder
from todo_core.schema import (
    UTCTimestamp,
    alembic_version,
    contains_text,
    next_stamp,
    settings,
    tasks,
)
from todo_core.statements import (
    TASK_FIELDS,
    CompiledStatement,
    delete_key,
    list_key,
    update_key,
)

__all__ = ["compile_statement", "generate", "main", "source"]

_TASK_COLUMNS: Final = tuple(tasks.c[field] for field in TASK_FIELDS)
# Bind names differ from the column names: UPDATE reserves those for its SET clause.
_SCOPE: Final = sa.and_(
    tasks.c.user_id == sa.bindparam("scope_user"), tasks.c.id == sa.bindparam("scope_task")
)
_VERSION_MATCHES: Final = tasks.c.version == sa.bindparam("expected_version")
# Fields a write can change, and the folded copies that go with them.
_WRITABLE: Final = ("title", "description", "completed")
_FOLDED: Final = {"title": "title_folded", "description": "description_folded"}
DIALECTS: Final[dict[str, Dialect]] = {
    "postgresql": PGDialect_asyncpg(),  # type: ignore[no-untyped-call]
    "sqlite": SQLiteDialect_aiosqlite(),
}
OUTPUT: Final = Path(__file__).with_name("_sql.py")


def _kind(bind: sa.BindParameter[Any]) -> str | None:
    """What a value needs before the driver takes it, by the parameter's type."""
    if isinstance(bind.type, UTCTimestamp):
        return "timestamp"
    if isinstance(bind.type, sa.Uuid):
        return "uuid"
    return None


def compile_statement(statement: sa.ClauseElement, dialect: Dialect) -> CompiledStatement:
    """``statement`` as SQL text for ``dialect``, its parameters in driver order."""
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    names = compiled.positiontup or ()
    parameters = tuple((name, _kind(compiled.binds[name])) for name in names)
    defaults = dict(compiled.params)  # literals the statement binds itself, e.g. "+ 1"
    writes = isinstance(statement, sa.Insert | sa.Update | sa.Delete)
    return CompiledStatement(str(compiled), writes, parameters, defaults)


def _update(fields: frozenset[str], conditional: bool) -> sa.ClauseElement:
    changes: dict[str, Any] = {name: sa.bindparam(name) for name in sorted(fields)}
    changes["updated_at"] = next_stamp(
        tasks.c.updated_at, sa.bindparam("now", type_=UTCTimestamp())
    )
    changes["version"] = tasks.c.version + 1
    statement = sa.update(tasks).where(_SCOPE).values(changes)
    if conditional:
        statement = statement.where(_VERSION_MATCHES)
    return statement.returning(*_TASK_COLUMNS)


def _delete(conditional: bool) -> sa.ClauseElement:
    statement = sa.delete(tasks).where(_SCOPE)
    if conditional:
        statement = statement.where(_VERSION_MATCHES)
    return statement.returning(*_TASK_COLUMNS)


def _list(sort: SortOrder, completed: bool, search: bool, after: bool) -> sa.ClauseElement:
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
        statement = statement.where(row_key < position if spec.descending else row_key > position)
    order = (key.desc(), tasks.c.id.desc()) if spec.descending else (key, tasks.c.id)
    return statement.order_by(*order).limit(sa.bindparam("limit", type_=sa.Integer()))


def _field_sets() -> Iterator[frozenset[str]]:
    """Every set of stored fields a replace or patch can write."""
    for size in range(1, len(_WRITABLE) + 1):
        for chosen in itertools.combinations(_WRITABLE, size):
            yield frozenset(chosen) | {_FOLDED[name] for name in chosen if name in _FOLDED}


def _shapes() -> Iterator[tuple[str, sa.ClauseElement]]:
    yield "get", sa.select(*_TASK_COLUMNS).where(_SCOPE)
    yield "version", sa.select(tasks.c.version).where(_SCOPE)
    insert_values: dict[str, Any] = {column.name: sa.bindparam(column.name) for column in tasks.c}
    yield "insert", sa.insert(tasks).values(insert_values)
    yield "ping", sa.select(sa.literal_column("1"))
    yield "revision", sa.select(alembic_version.c.version_num)
    yield "secret", sa.select(settings.c.value).where(settings.c.name == "cursor_secret")
    for conditional in (False, True):
        yield delete_key(conditional), _delete(conditional)
        for fields in _field_sets():
            yield update_key(fields, conditional), _update(fields, conditional)
    for sort, *flags in itertools.product(get_args(SortOrder), *[(False, True)] * 3):
        yield list_key(sort, *flags), _list(sort, *flags)


def generate() -> dict[str, dict[str, CompiledStatement]]:
    """Every statement shape, compiled for each dialect."""
    return {
        name: {key: compile_statement(statement, dialect) for key, statement in _shapes()}
        for name, dialect in DIALECTS.items()
    }


def source() -> str:
    """The text of ``_sql.py``: the compiled statements and the schema revision."""
    from todo_core.migrate import head_revision

    statements = {
        dialect: {key: tuple(compiled) for key, compiled in shapes.items()}
        for dialect, shapes in generate().items()
    }
    return (
        '"""Generated by ``python -m todo_core.sqlgen`` from ``sqlgen.py``: do not edit."""\n\n'
        "from typing import Any, Final\n\n"
        f"SCHEMA_REVISION: Final = {head_revision()!r}\n\n"
        f"STATEMENTS: Final[dict[str, dict[str, Any]]] = {pprint.pformat(statements, width=99)}\n"
    )


def main() -> None:
    """Rewrite ``_sql.py``."""
    OUTPUT.write_text(source())
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
