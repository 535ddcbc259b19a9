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
from sqlalchemy.dialects import postgresql, sqlite
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
    idempotency_keys,
    next_stamp,
    settings,
    tasks,
)
from todo_core.statements import (
    TASK_FIELDS,
    CompiledStatement,
    create_once_key,
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


# What an idempotency key keeps of the task it created, beside its id.
_SNAPSHOT: Final = ("title", "description", "completed", "created_at")


def _claim(dialect: str) -> sa.Insert:
    """Claim a key for the task being created: a new row, or a dead (expired) one
    taken over; a live row is left alone, and then nothing is claimed."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values: dict[str, Any] = {
        "user_id": sa.bindparam("user_id", type_=idempotency_keys.c.user_id.type),
        "key": sa.bindparam("key", type_=idempotency_keys.c.key.type),
        "fingerprint": sa.bindparam("fingerprint", type_=idempotency_keys.c.fingerprint.type),
        "task_id": sa.bindparam("id", type_=sa.Uuid()),
        **{name: sa.bindparam(name, type_=idempotency_keys.c[name].type) for name in _SNAPSHOT},
        "expires_at": sa.bindparam("expires_at", type_=UTCTimestamp()),
    }
    if dialect == "postgresql":
        # One claim per key at a time across every process: a create that finds the
        # key's lock taken claims nothing, instead of waiting for the other to commit,
        # and the store answers that the key is in use.
        lock = sa.func.pg_try_advisory_xact_lock(
            sa.func.hashtextextended(sa.func.concat_ws(" ", values["user_id"], values["key"]), 0)
        )
        statement = insert(idempotency_keys).from_select(
            list(values), sa.select(*values.values()).where(lock)
        )
    else:
        statement = insert(idempotency_keys).values(values)
    taken_over = (*(name for name in values if name not in ("user_id", "key")),)
    return statement.on_conflict_do_update(
        index_elements=[idempotency_keys.c.user_id, idempotency_keys.c.key],
        set_={name: statement.excluded[name] for name in taken_over},
        where=idempotency_keys.c.expires_at <= statement.excluded.created_at,
    )


def _create_once(dialect: str) -> Iterator[sa.ClauseElement]:
    """A create under an idempotency key, as statements run in one transaction; the
    last returns the new task, or nothing when the key was not claimed.

    PostgreSQL does it in one statement (the claim is a data-modifying CTE); SQLite has
    no such CTEs, and claims first, then inserts if the claim names this task.
    """
    columns = [column.name for column in tasks.c]
    values: dict[str, Any] = {
        name: sa.bindparam(name, type_=tasks.c[name].type) for name in columns
    }
    if dialect == "postgresql":
        claimed = _claim(dialect).returning(idempotency_keys.c.task_id).cte("claimed")
        rows = sa.select(*{**values, "id": claimed.c.task_id}.values()).select_from(claimed)
    else:
        yield _claim(dialect)
        rows = sa.select(*values.values()).where(
            sa.exists().where(
                idempotency_keys.c.user_id == values["user_id"],
                idempotency_keys.c.key == sa.bindparam("key"),
                idempotency_keys.c.task_id == values["id"],
            )
        )
    yield sa.insert(tasks).from_select(columns, rows).returning(*_TASK_COLUMNS)


def _replay() -> sa.ClauseElement:
    """A live key's fingerprint, then its task as created (the fields of ``Task``)."""
    keys = idempotency_keys.c
    return sa.select(
        keys.fingerprint,
        keys.task_id,
        keys.user_id,
        keys.title,
        keys.description,
        keys.completed,
        keys.created_at,
        keys.created_at,  # updated_at: a task is created with both the same
        sa.literal_column("1"),  # version
    ).where(
        keys.user_id == sa.bindparam("user_id"),
        keys.key == sa.bindparam("key"),
        keys.expires_at > sa.bindparam("now", type_=UTCTimestamp()),
    )


def _purge(dialect: str) -> sa.ClauseElement:
    """Delete at most ``limit`` dead keys; a row per key deleted."""
    keys = idempotency_keys.c
    dead = (
        sa.select(keys.user_id, keys.key)
        .where(keys.expires_at <= sa.bindparam("now", type_=UTCTimestamp()))
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )
    if dialect == "postgresql":
        # Rows a create is taking over right now are skipped, never waited for.
        dead = dead.with_for_update(skip_locked=True)
    return (
        sa.delete(idempotency_keys)
        .where(sa.tuple_(keys.user_id, keys.key).in_(dead))
        .returning(sa.literal_column("1"))
    )


def _field_sets() -> Iterator[frozenset[str]]:
    """Every set of stored fields a replace or patch can write."""
    for size in range(1, len(_WRITABLE) + 1):
        for chosen in itertools.combinations(_WRITABLE, size):
            yield frozenset(chosen) | {_FOLDED[name] for name in chosen if name in _FOLDED}


def _shapes(dialect: str) -> Iterator[tuple[str, sa.ClauseElement]]:
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
    for step, statement in enumerate(_create_once(dialect)):
        yield create_once_key(step), statement
    yield "replay", _replay()
    yield "purge", _purge(dialect)


def generate() -> dict[str, dict[str, CompiledStatement]]:
    """Every statement shape, compiled for each dialect."""
    return {
        name: {key: compile_statement(statement, dialect) for key, statement in _shapes(name)}
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
