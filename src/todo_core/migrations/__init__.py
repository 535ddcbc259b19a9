"""Alembic migrations of the todo schema, shipped in the package (``todo_core.migrate``).

Never change a column's type in place: running servers keep each statement's described
column types per connection, and a new type of the same size would decode wrongly
without an error (docs/library.md, "PostgreSQL (asyncpg)"). Add a column instead.

A revision for some dialects only says so in a module-level ``dialects`` tuple (see
0002), which both its functions check, and which keeps its "Running upgrade" line out of
the logs of the others.
"""

MIGRATION_LOCK = 0x70D0
"""The advisory lock migrators of one PostgreSQL database take in turn (``env.py``)."""
