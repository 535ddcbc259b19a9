"""Alembic migrations of the todo schema, shipped in the package (``todo-http migrate``)."""
