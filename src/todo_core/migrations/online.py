"""Steps of PostgreSQL migrations that run while workers keep serving (0004, 0005).

Several migrators may run one revision at once (an init container per pod): they take
turns on the migration lock (``env.py``) for the steps in its transaction, but an
index built ``CONCURRENTLY`` runs outside any transaction, so the lock is released
meanwhile and the next migrator runs the same revision beside the first. Every step
here is therefore safe to repeat and to run beside itself: it skips what exists,
waits for what another migrator is building, and never takes a lock on ``tasks`` that
would wait for an index build (which waits for the waiting transaction: a deadlock).
"""

from __future__ import annotations

import random
import time

import sqlalchemy as sa
from alembic import op

from todo_core.migrations import MIGRATION_LOCK

__all__ = ["Overtaken", "build_indexes", "has_column", "has_trigger"]

# How long to wait for an index that another migrator is building (a large table's
# build takes minutes; ours must not give up before it does).
_BUILD_WAIT = 3600.0
# What a build that raced another migrator's fails with: deadlock detected, and "tuple
# concurrently updated" (both creating the same index's catalog entry).
_RACES = frozenset({"40P01", "XX000"})


class Overtaken(Exception):
    """Another migrator finished this revision and went on to later ones while this
    one was building indexes: ``env.py`` starts over from where that one is."""


def has_column(table: str, name: str) -> bool:
    found = op.get_bind().execute(
        sa.text(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = :table AND column_name = :name"
        ),
        {"table": table, "name": name},
    )
    return found.first() is not None


def has_trigger(table: str, name: str) -> bool:
    found = op.get_bind().execute(
        sa.text(
            "SELECT 1 FROM pg_trigger "
            "WHERE tgrelid = CAST(:table AS regclass) AND tgname = :name AND NOT tgisinternal"
        ),
        {"table": table, "name": name},
    )
    return found.first() is not None


def build_indexes(revision: str, down_revision: str, indexes: tuple[tuple[str, str], ...]) -> None:
    """Build each of ``indexes`` (name, what follows ``ON tasks``) ``CONCURRENTLY``,
    then leave the revision's record as Alembic's own step expects it.

    Commits the migration's transaction first: its steps must come before this.
    """
    with op.get_context().autocommit_block():
        for name, definition in indexes:
            _build_index(name, definition)
    # The block committed, releasing the migration lock (migrations/env.py) that made
    # other migrators wait: one of them may have finished this revision meanwhile and
    # recorded it, or gone beyond it. Take the lock again; beyond, start over from the
    # record (Overtaken): setting it back would publish an older revision than the
    # schema's at the next commit. Else leave the record where Alembic's own
    # "down_revision -> revision" step (next, in this transaction) expects it.
    bind = op.get_bind()
    bind.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
    recorded = bind.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    if recorded not in (down_revision, revision):
        raise Overtaken(recorded)
    bind.exec_driver_sql(
        f"UPDATE alembic_version SET version_num = '{down_revision}' "
        f"WHERE version_num = '{revision}'"
    )


def _build_index(name: str, definition: str) -> None:
    """Build index ``name`` unless it is there and usable; return once it is.

    Another migrator may be building it (or another index of the table) right now: two
    concurrent builds on one table can deadlock, so this waits for theirs to end first,
    and should both start at once, the one PostgreSQL aborts tries again. An INVALID
    index that nobody is building is what a failed build left: built again.
    """
    deadline = time.monotonic() + _BUILD_WAIT
    while True:
        if time.monotonic() > deadline:
            raise RuntimeError(f"index {name} is still not usable after {_BUILD_WAIT} s")
        if _is_being_built():
            time.sleep(0.2)
            continue
        try:
            if _is_invalid_index(name):
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON tasks {definition}")
        except sa.exc.DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) not in _RACES:
                raise
            time.sleep(random.uniform(0.1, 0.5))
            continue
        if not _is_invalid_index(name):
            return


def _is_being_built() -> bool:
    # Another migrator's build of any index on the table: the one of an index may
    # not name it yet.
    found = op.get_bind().execute(
        sa.text(
            "SELECT 1 FROM pg_stat_progress_create_index "
            "WHERE relid = CAST('tasks' AS regclass) AND pid <> pg_backend_pid()"
        )
    )
    return found.first() is not None


def _is_invalid_index(name: str) -> bool:
    found = op.get_bind().execute(
        sa.text(
            "SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = pg_index.indexrelid "
            "WHERE pg_class.relname = :name AND NOT pg_index.indisvalid"
        ),
        {"name": name},
    )
    return found.first() is not None
