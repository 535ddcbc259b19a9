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
    feed_heads,
    idempotency_keys,
    next_stamp,
    no_tags,
    settings,
    tasks,
)
from todo_core.sql.dialects import DialectName
from todo_core.sql.filters import FILTERS
from todo_core.sql.sorts import After, after_position, order_by

__all__ = [
    "TASK_COLUMNS",
    "changes",
    "completion",
    "create_once",
    "delete",
    "empty_trash",
    "feed_head",
    "get",
    "insert",
    "listing",
    "ping",
    "purge",
    "purge_expired",
    "purge_task",
    "replay",
    "restore",
    "revision",
    "secret",
    "tags",
    "trash",
    "trashed",
    "update",
    "version",
]

# Migration 0004 backfills nothing: a task completed before it (or by a worker of the
# previous release during a rolling upgrade) has no completed_at, and answers the time
# it last changed; one un-completed by such a worker keeps a stale value, hidden here.
_COMPLETED_AT: Final = sa.type_coerce(
    sa.case(
        (tasks.c.completed, sa.func.coalesce(tasks.c.completed_at, tasks.c.updated_at)),
        else_=sa.null(),
    ),
    UTCTimestamp(),
).label("completed_at")
TASK_COLUMNS: Final = tuple(
    _COMPLETED_AT if field == "completed_at" else tasks.c[field] for field in Task.model_fields
)
"""What every statement that returns tasks selects: the columns of ``Task``'s fields."""
# The columns a write of a task's fields names: not those of the feed and the trash,
# which the numbering (change_seq, below) and the trash's own statements write.
_WRITTEN: Final = tuple(
    column for column in tasks.c if column.name not in ("change_seq", "deleted_at", "purged")
)
# A task in the trash (or purged) is absent from every statement but the feed's and the
# trash's: this is the only place the tasks' statements learn it.
_LIVE: Final = tasks.c.deleted_at.is_(None)
_TRASHED: Final = sa.and_(tasks.c.deleted_at.is_not(None), sa.not_(tasks.c.purged))
_OWNED: Final = tasks.c.user_id == sa.bindparam("user_id")
_SCOPE_USER: Final = sa.bindparam("scope_user", type_=tasks.c.user_id.type)
_ONE: Final = sa.and_(tasks.c.user_id == _SCOPE_USER, tasks.c.id == sa.bindparam("scope_task"))
_SCOPE: Final = sa.and_(_ONE, _LIVE)
_VERSION_MATCHES: Final = tasks.c.version == sa.bindparam("expected_version")
# What an idempotency key keeps of the task it created: the columns of both tables
# that are fields of a task, beside the key's own task_id and user_id.
_SNAPSHOT: Final = tuple(
    name for name in Task.model_fields if name in idempotency_keys.c and name != "user_id"
)


def _numbered(
    values: dict[str, Any], user: sa.ColumnElement[Any], dialect: DialectName
) -> dict[str, Any]:
    """``values`` of a write of ``user``'s task that is a change of the feed, numbered.

    On SQLite the write takes the user's next change number itself: the head in
    ``feed_heads`` plus one, read inside the same statement, under the database's one
    write lock; migration 0006's trigger then moves the head to it. (The trigger that
    numbers a write which did not, an older worker's, would write the row a second
    time.) On PostgreSQL the ``BEFORE`` trigger sets it in the row being written.
    """
    if dialect != "sqlite":
        return values
    head = sa.select(feed_heads.c.seq).where(feed_heads.c.user_id == user).scalar_subquery()
    return values | {"change_seq": sa.func.coalesce(head, 0) + 1}


def get() -> sa.Select[Any]:
    return sa.select(*TASK_COLUMNS).where(_SCOPE)


def version() -> sa.Select[Any]:
    """The version of a task, to tell a stale ``expected_version`` from a missing task."""
    return sa.select(tasks.c.version).where(_SCOPE)


def insert(dialect: DialectName) -> sa.Insert:
    values = {column.name: sa.bindparam(column.name, type_=column.type) for column in _WRITTEN}
    return sa.insert(tasks).values(_numbered(values, values["user_id"], dialect))


def ping() -> sa.Select[Any]:
    return sa.select(sa.literal_column("1"))


def revision() -> sa.Select[Any]:
    return sa.select(alembic_version.c.version_num)


def secret() -> sa.Select[Any]:
    return sa.select(settings.c.value).where(settings.c.name == "cursor_secret")


def update(fields: Iterable[str], conditional: bool, dialect: DialectName) -> sa.Update:
    """Write ``fields`` (stored column names), stamping ``updated_at`` from bind ``now``.

    A write of ``completed`` without ``completed_at`` sets that too, by the rule of
    ``writes.settle``: the new ``updated_at`` when it completes the task, the time it
    was completed when it already was, nothing when it is not.
    """
    changes: dict[str, Any] = {
        name: sa.bindparam(name, type_=tasks.c[name].type) for name in sorted(fields)
    }
    stamp = next_stamp(tasks.c.updated_at, sa.bindparam("now", type_=UTCTimestamp()))
    if "completed" in changes and "completed_at" not in changes:
        changes["completed_at"] = sa.case(
            (
                changes["completed"],
                sa.case(
                    (tasks.c.completed, sa.func.coalesce(tasks.c.completed_at, tasks.c.updated_at)),
                    else_=stamp,
                ),
            ),
            else_=sa.null(),
        )
    changes["updated_at"] = stamp
    changes["version"] = tasks.c.version + 1
    statement = sa.update(tasks).where(_SCOPE).values(_numbered(changes, _SCOPE_USER, dialect))
    if conditional:
        statement = statement.where(_VERSION_MATCHES)
    return statement.returning(*TASK_COLUMNS)


def _successor_values(dialect: DialectName) -> dict[str, Any]:
    """A successor task's columns as binds named ``successor_<column>``, numbered."""
    values = {
        column.name: sa.bindparam(f"successor_{column.name}", type_=column.type)
        for column in _WRITTEN
    }
    return _numbered(values, values["user_id"], dialect)


def completion(fields: Iterable[str], dialect: DialectName) -> tuple[sa.ClauseElement, ...]:
    """A conditional ``update`` of ``fields`` that also inserts the successor it names
    (binds ``successor_<column>``), only if the update applied; one transaction.

    PostgreSQL does it in one statement (the insert selects from the update, a
    data-modifying CTE); SQLite has no such CTEs, and inserts if the task now names
    the successor.
    """
    changed = update(fields, conditional=True, dialect=dialect)
    successor = _successor_values(dialect)
    columns = list(successor)
    if dialect == "postgresql":
        updated = changed.cte("updated")
        spawned = sa.insert(tasks).from_select(
            columns, sa.select(*successor.values()).select_from(updated)
        )
        spawn = spawned.cte("spawned")
        return (sa.select(*updated.c).add_cte(spawn),)
    applied = sa.exists().where(_SCOPE, tasks.c.next_occurrence_id == successor["id"])
    spawned = sa.insert(tasks).from_select(columns, sa.select(*successor.values()).where(applied))
    return changed, spawned


def delete(conditional: bool, dialect: DialectName) -> sa.ClauseElement:
    """Move a task to the trash (bind ``now``), returning it as it was: neither its
    ``version`` nor its ``updated_at`` changes, ``deleted_at`` numbers the change."""
    trashed = {"deleted_at": sa.bindparam("now", type_=UTCTimestamp())}
    statement = sa.update(tasks).where(_SCOPE).values(_numbered(trashed, _SCOPE_USER, dialect))
    if conditional:
        statement = statement.where(_VERSION_MATCHES)
    return statement.returning(*TASK_COLUMNS)


def listing(spec: SortSpec, filters: Iterable[str], after: After) -> sa.Select[Any]:
    """One page of a user's tasks in ``spec``'s order, one more row than ``limit`` asks
    for; ``filters`` name entries of ``FILTERS``, ``after`` a cursor's position."""
    chosen = frozenset(filters)
    statement = sa.select(*TASK_COLUMNS).where(_OWNED, _LIVE)
    for name, entry in FILTERS.items():
        if name in chosen:
            statement = statement.where(entry.condition)
    if after is not None:
        statement = statement.where(after_position(spec, after))
    return statement.order_by(*order_by(spec)).limit(sa.bindparam("limit", type_=sa.Integer()))


def tags(dialect: DialectName, after: bool) -> sa.TextualSelect:
    """A page of a user's tags with how many tasks carry each, in code point order,
    one more than ``limit`` asks for; ``after``: only tags beyond bind ``after_tag``.

    A task's tags are distinct, so counting rows counts tasks. The user's rows are
    found by an index (the primary key's ``user_id``); their tags are unnested.
    """
    if dialect == "postgresql":
        source = "tasks CROSS JOIN LATERAL unnest(tasks.tags) AS tag"
        tag = 'tag COLLATE "C"'
    else:  # json_each's values compare in BINARY collation: code point order too
        source = "tasks, json_each(tasks.tags) AS each_tag"
        tag = "each_tag.value"
    beyond = f" AND {tag} > :after_tag" if after else ""
    live = _LIVE.compile(compile_kwargs={"literal_binds": True})
    text = (
        f"SELECT {tag} AS tag, count(*) AS count FROM {source} "
        f"WHERE tasks.user_id = :user_id AND {live}{beyond} "
        f"GROUP BY {tag} ORDER BY {tag} LIMIT :limit"
    )
    binds: list[sa.BindParameter[Any]] = [
        sa.bindparam("user_id", type_=sa.String()),
        sa.bindparam("limit", type_=sa.Integer()),
    ]
    if after:
        binds.append(sa.bindparam("after_tag", type_=sa.Text()))
    return sa.text(text).bindparams(*binds).columns(tag=sa.Text(), count=sa.Integer())


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
    values: dict[str, Any] = {
        column.name: sa.bindparam(column.name, type_=column.type) for column in _WRITTEN
    }
    values = _numbered(values, values["user_id"], dialect)
    columns = list(values)
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
        "completed_at": sa.type_coerce(
            sa.case((keys.completed, keys.created_at), else_=sa.null()), UTCTimestamp()
        ),
        "next_occurrence_id": sa.type_coerce(sa.null(), sa.Uuid()),
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


# The change feed and the trash (todo_core.feed; sql/sync.py runs them).

# The retention purge's lock: a two-key advisory lock (0x70D0 is the migrations'),
# which lives apart from the one-key space of the idempotency claims' hashes.
_PURGE_LOCK: Final = (0x70D0, 1)
_SEQ: Final = sa.BigInteger()


def changes() -> sa.Select[Any]:
    """The user's tasks changed after change ``since``, in change order, at most
    ``limit``: a live task as a task, a trashed or purged one by its ``deleted_at``."""
    return (
        sa.select(*TASK_COLUMNS, tasks.c.change_seq, tasks.c.deleted_at)
        .where(_OWNED, tasks.c.change_seq > sa.bindparam("since", type_=_SEQ))
        .order_by(tasks.c.change_seq)
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )


def feed_head() -> sa.Select[Any]:
    """The number of the user's latest committed change; no row before the first."""
    return sa.select(feed_heads.c.seq).where(feed_heads.c.user_id == sa.bindparam("user_id"))


def trash(after: bool) -> sa.Select[Any]:
    """A page of the user's trash, most recently deleted first, then by ``id``
    descending, one more than ``limit``; ``after``: beyond (``after_deleted_at``,
    ``after_id``)."""
    statement = sa.select(*TASK_COLUMNS, tasks.c.deleted_at).where(_OWNED, _TRASHED)
    if after:
        position = sa.tuple_(
            sa.bindparam("after_deleted_at", type_=UTCTimestamp()),
            sa.bindparam("after_id", type_=sa.Uuid()),
        )
        statement = statement.where(sa.tuple_(tasks.c.deleted_at, tasks.c.id) < position)
    return statement.order_by(tasks.c.deleted_at.desc(), tasks.c.id.desc()).limit(
        sa.bindparam("limit", type_=sa.Integer())
    )


def trashed() -> sa.Select[Any]:
    """One task of the user's trash, with its ``deleted_at``."""
    return sa.select(*TASK_COLUMNS, tasks.c.deleted_at).where(_ONE, _TRASHED)


def restore(dialect: DialectName) -> sa.ClauseElement:
    """Bring a task back from the trash: a write like any other (``updated_at`` from
    bind ``now``, the next version), numbered by the feed."""
    stamp = next_stamp(tasks.c.updated_at, sa.bindparam("now", type_=UTCTimestamp()))
    restored = {"deleted_at": None, "updated_at": stamp, "version": tasks.c.version + 1}
    return (
        sa.update(tasks)
        .where(_ONE, _TRASHED)
        .values(_numbered(restored, _SCOPE_USER, dialect))
        .returning(*TASK_COLUMNS)
    )


def _wiped(statement: sa.Update) -> sa.ClauseElement:
    """``statement`` made a purge: the row stays, as the record of a deletion the feed
    reports until the retention ends, but nothing of what the user wrote. Neither
    ``version`` nor ``deleted_at`` changes: it is not a change of the feed."""
    return statement.values(
        purged=True,
        title="",
        title_folded="",
        description=None,
        description_folded=None,
        tags=no_tags(),
    ).returning(sa.literal_column("1"))


def purge_task() -> sa.ClauseElement:
    """Purge one task of the trash if it is still as read: bound ``expected_version``
    and ``deleted_at``."""
    return _wiped(
        sa.update(tasks).where(
            _ONE,
            _TRASHED,
            _VERSION_MATCHES,
            tasks.c.deleted_at == sa.bindparam("deleted_at", type_=UTCTimestamp()),
        )
    )


def empty_trash() -> sa.ClauseElement:
    """Purge every task of the user's trash; a row per task."""
    return _wiped(sa.update(tasks).where(_OWNED, _TRASHED))


def purge_expired(dialect: DialectName) -> sa.ClauseElement:
    """Delete at most ``limit`` rows trashed before ``cutoff``; a row per row deleted.

    On PostgreSQL one purge runs at a time (the others find the lock taken and delete
    nothing) and rows a request is writing are skipped, never waited for.
    """
    expired = (
        sa.select(tasks.c.user_id, tasks.c.id)
        .where(
            tasks.c.deleted_at.is_not(None),
            tasks.c.deleted_at < sa.bindparam("cutoff", type_=UTCTimestamp()),
        )
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )
    if dialect == "postgresql":
        lock = sa.select(sa.func.pg_try_advisory_xact_lock(*_PURGE_LOCK)).scalar_subquery()
        expired = expired.where(lock).with_for_update(skip_locked=True)
    return (
        sa.delete(tasks)
        .where(sa.tuple_(tasks.c.user_id, tasks.c.id).in_(expired))
        .returning(sa.literal_column("1"))
    )
