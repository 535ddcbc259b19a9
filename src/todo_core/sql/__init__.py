"""The SQL store: its statements, composed from parts and compiled once per shape.

The path of a statement, from a store call to the wire, e.g. ``store.list(user, query)``:

1. ``store.SqlTaskStore`` validates the call and names the statement's *shape*: here
   the sort, the filters the query sets (``filters.FILTERS``) and whether a cursor's
   position follows; and it gathers the values to bind, by name.
2. ``statements.Statements`` (one per open store and dialect) returns the compiled
   statement of that shape. The first time a shape is asked for, ``shapes`` writes it
   in SQLAlchemy Core from its parts: the column list from ``Task``'s fields, one
   fragment per filter, the ORDER BY and keyset condition from the sort's
   ``SortSpec`` (``sorts``); ``dialects.compile_statement`` compiles it. Later calls
   find it in the cache: SQLAlchemy's compiler runs once per shape, never per call.
3. A compiled ``statement.Statement`` holds the SQL text, its parameters in driver
   order with each one's conversion (a UUID as hex on SQLite, say), and a decoder of
   its rows built from its own result columns, so rows are read by name.
4. The backend runs it in one round trip: ``todo_core.postgres`` on a pooled asyncpg
   connection, as a named server-side statement where the connection proved direct
   and unnamed behind a pooler; ``todo_core.sqlite`` on its reader or writer thread.
5. The store decodes the rows into field dicts and then ``Task``s without validating
   them again (``models.trusted_task``): they come from our own table.

SQLAlchemy and Alembic also run the migrations (``todo_core.migrate``), which a store
loads only when the database's schema is not current.
"""

from todo_core.sql.statement import Statement
from todo_core.sql.statements import Statements
from todo_core.sql.store import SCHEMA_REVISION, Database, SqlTaskStore, open_sql_store

__all__ = [
    "SCHEMA_REVISION",
    "Database",
    "SqlTaskStore",
    "Statement",
    "Statements",
    "open_sql_store",
]
