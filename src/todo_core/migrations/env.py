"""Alembic environment: runs on the connection that ``todo_core.migrate`` hands in."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from todo_core.schema import metadata

# Any constant shared by every process migrating the same database.
_MIGRATION_LOCK = 0x70D0


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Several workers may start at once; one migrates, the others wait and then
            # find nothing left to do. Transaction-scoped, so it works through PgBouncer.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        context.run_migrations()


_run(context.config.attributes["connection"])
