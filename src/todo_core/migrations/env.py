"""Alembic environment: runs on the connection that ``todo_core.migrate`` hands in."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import context
from sqlalchemy.engine import Connection

from todo_core.migrations import MIGRATION_LOCK
from todo_core.migrations.online import Overtaken
from todo_core.schema import metadata

# Where alembic says "Running upgrade 0001 -> 0002, <the revision's first line>".
_STEPS_LOG = logging.getLogger("alembic.runtime.migration")


class _OtherDialectsSteps(logging.Filter):
    """Drops the "Running upgrade" line of a revision that does nothing on ``dialect``.

    Such a revision names the dialects it is for in a module-level ``dialects`` tuple;
    its line would tell a SQLite user of a PostgreSQL function being created.
    """

    def __init__(self, dialect: str) -> None:
        super().__init__()
        self._dialect = dialect

    def filter(self, record: logging.LogRecord) -> bool:
        step = record.args[0] if isinstance(record.args, tuple) and record.args else None
        module = getattr(getattr(step, "revision", None), "module", None)
        dialects = getattr(module, "dialects", None)
        return dialects is None or self._dialect in dialects


@contextmanager
def _steps_for(dialect: str) -> Iterator[None]:
    steps = _OtherDialectsSteps(dialect)
    _STEPS_LOG.addFilter(steps)
    try:
        yield
    finally:
        _STEPS_LOG.removeFilter(steps)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    while True:
        try:
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    # Several workers may start at once; one migrates, the others wait
                    # and then find nothing left to do. Transaction-scoped, so it works
                    # through PgBouncer.
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
                with _steps_for(connection.dialect.name):
                    context.run_migrations()
            return
        except Overtaken:
            continue  # rolled back: nothing of this transaction is left but the wait


_run(context.config.attributes["connection"])
