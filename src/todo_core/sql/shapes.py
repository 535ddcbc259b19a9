"""Every statement shape the SQL store runs, written in SQLAlchemy Core.

Each function returns one shape's expression; ``statements.Statements`` compiles it
for its dialect the first time the shape is used. Column lists come from ``Task``'s
fields and the ``tasks`` table, so a new nullable field is the model, the table and
one migration. Binds that share a name with a column are renamed (``scope_user``,
``expected_version``): UPDATE reserves the column names for its SET clause.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from todo_core.listing import SortSpec
from todo_core.models import Task
from todo_core.schema import (
    UTCTimestamp,
    alembic_version,
    idempotency_keys,
    next_stamp,
    settings,
    tasks,
)
from todo_core.sql.dialects import DialectName
from todo_core.sql.filters import FILTERS
from todo_core.sql.sorts import After, after_position, order_by

__all__ = [
    "TASK_COLUMNS",
    "create_once",
    "delete",
    "get",
    "insert",
    "listing",
    "ping",
    "purge",
    "replay",
    "revision",
    "secret",
    "update",
    "version",
]

TASK_COLUMNS: Final = tuple(tasks.c[field] for field in Task.model_fields)
"""What every statement that returns tasks selects: the columns of ``Task``'s fields."""
_SCOPE: Final = sa.and_(
    tasks.c.user_id == sa.bindparam("scope_user"), tasks.c.id == sa.bindparam("scope_task")
)
_VERSION_MATCHES: Final = tasks.c.version == sa.bindparam("expected_version")
# What an idempotency key keeps of the task it created: the columns of both tables
# that are fields of a task, beside the key's own task_id and user_id.
_SNAPSHOT: Final = tuple(
    name for name in Task.model_fields if name in idempotency_keys.c and name != "user_id"
)


def get() -> sa.Select[Any]:
    return sa.select(*TASK_COLUMNS).where(_SCOPE)


def version() -> sa.Select[Any]:
    """The version of a task, to tell a stale ``expected_version`` from a missing task."""
    return sa.select(tasks.c.version).where(_SCOPE)


def insert() -> sa.Insert:
    return sa.insert(tasks).values({column.name: sa.bindparam(column.name) for column in tasks.c})


def ping() -> sa.Select[Any]:
    return sa.select(sa.literal_column("1"))


def revision() -> sa.Select[Any]:
    return sa.select(alembic_version.c.version_num)


def secret() -> sa.Select[Any]:
    return sa.select(settings.c.value).where(settings.c.name == "cursor_secret")


def update(fields: Iterable[str], conditional: bool) -> sa.ClauseElement:
    """Write ``fields`` (stored column names), stamping ``updated_at`` from bind ``now``."""
    changes: dict[str, Any] = {name: sa.bindparam(name) for name in sorted(fields)}
    changes["updated_at"] = next_stamp(
        tasks.c.updated_at, sa.bindparam("now", type_=UTCTimestamp())
    )
    changes["version"] = tasks.c.version + 1
    statement = sa.update(tasks).where(_SCOPE).values(changes)
    if conditional:
        statement = statement.where(_VERSION_MATCHES)
    return statement.returning(*TASK_COLUMNS)


def delete(conditional: bool) -> sa.ClauseElement:
    statement = sa.delete(tasks).where(_SCOPE)
    if conditional:
        statement = statement.where(_VERSION_MATCHES)
    return statement.returning(*TASK_COLUMNS)


def listing(spec: SortSpec, filters: Iterable[str], after: After) -> sa.Select[Any]:
    """One page of a user's tasks in ``spec``'s order, one more row than ``limit`` asks
    for; ``filters`` name entries of ``FILTERS``, ``after`` a cursor's position."""
    chosen = frozenset(filters)
    statement = sa.select(*TASK_COLUMNS).where(tasks.c.user_id == sa.bindparam("user_id"))
    for name, entry in FILTERS.items():
        if name in chosen:
            statement = statement.where(entry.condition)
    if after is not None:
        statement = statement.where(after_position(spec, after))
    return statement.order_by(*order_by(spec)).limit(sa.bindparam("limit", type_=sa.Integer()))


def _claim(dialect: DialectName) -> sa.Insert:
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


def create_once(dialect: DialectName) -> tuple[sa.ClauseElement, ...]:
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
        first: tuple[sa.ClauseElement, ...] = ()
    else:
        first = (_claim(dialect),)
        rows = sa.select(*values.values()).where(
            sa.exists().where(
                idempotency_keys.c.user_id == values["user_id"],
                idempotency_keys.c.key == sa.bindparam("key"),
                idempotency_keys.c.task_id == values["id"],
            )
        )
    return (*first, sa.insert(tasks).from_select(columns, rows).returning(*TASK_COLUMNS))


def replay() -> sa.Select[Any]:
    """A live key's fingerprint, and its task as created (the fields of ``Task``)."""
    keys = idempotency_keys.c
    snapshot = {
        "id": keys.task_id,
        "user_id": keys.user_id,
        **{name: keys[name] for name in _SNAPSHOT},
        "updated_at": keys.created_at,  # a task is created with both the same
        "version": sa.literal_column("1"),
    }
    return sa.select(
        keys.fingerprint, *(snapshot[name].label(name) for name in Task.model_fields)
    ).where(
        keys.user_id == sa.bindparam("user_id"),
        keys.key == sa.bindparam("key"),
        keys.expires_at > sa.bindparam("now", type_=UTCTimestamp()),
    )


def purge(dialect: DialectName) -> sa.ClauseElement:
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
