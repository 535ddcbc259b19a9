"""How the PostgreSQL store talks to the server: one round trip per statement.

asyncpg describes an unnamed statement in a round trip of its own before running it.
The store keeps each description per connection, so after a statement's first use on a
connection it costs one round trip whether or not it is named (``prepared_statements``).
By default a connection names its statements only when it proves to be direct: behind
a pooler nothing stays on the server for the pooler to lose (tests/pgbouncer.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.backends import fresh_postgres_database, open_backend, pgbouncer_url
from tests.tcp_proxy import TcpProxy, frontend_messages
from todo_core import StoreError, TaskCreate, TaskPatch, open_store
from todo_core.postgres import STATEMENTS_PER_CONNECTION, PostgresDatabase
from todo_core.sql import SqlTaskStore

pytestmark = pytest.mark.postgres

MODES = [pytest.param(False, id="unnamed"), pytest.param(True, id="prepared")]
READS = 20


@pytest.fixture(name="database")
async def _database() -> AsyncIterator[str]:
    async with fresh_postgres_database() as url:
        async with open_store(url, create_schema=True):
            pass
        yield url


@pytest.fixture(name="proxy")
async def _proxy(database: str) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy.in_front_of(database)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


def _through(proxy: TcpProxy, database: str) -> str:
    """``database`` through ``proxy``, in plain text so that the proxy can read it."""
    return proxy.url(database, sslmode="disable")


async def reads_sent(proxy: TcpProxy, store: object) -> list[bytes]:
    """The message types the store sends for ``READS`` reads of a task it has just
    created (the first read describes the statement), on its one connection through
    ``proxy``."""
    assert isinstance(store, SqlTaskStore)
    task = await store.create("alice", TaskCreate(title="counted"))
    (connection,) = proxy.sent
    before = len(frontend_messages(connection))
    for _ in range(READS):
        assert await store.get("alice", task.id) == task
    return frontend_messages(connection)[before:]


@pytest.mark.parametrize("prepared", MODES)
async def test_a_statement_is_described_once_per_connection(
    proxy: TcpProxy, database: str, prepared: bool
) -> None:
    """After its first use, each read is a single round trip (one ``Sync``), and the
    server is asked to describe the statement only the first time."""
    async with open_store(
        _through(proxy, database), pool_size=1, max_overflow=0, prepared_statements=prepared
    ) as store:
        sent = await reads_sent(proxy, store)
    # A round trip ends in Sync, or in Flush where asyncpg waits for the description.
    assert sent.count(b"S") + sent.count(b"H") == READS + 1
    assert sent.count(b"D") == 1
    assert sent.count(b"E") == READS
    # Unnamed statements are parsed again in the same batch as every execution.
    assert sent.count(b"P") == (1 if prepared else READS + 1)


@pytest.mark.parametrize("prepared", MODES)
async def test_named_statements_only_when_asked(database: str, prepared: bool) -> None:
    """With prepared_statements=False the server's session holds no prepared statement,
    so a pooler that hands the next transaction another server connection loses
    nothing; with True it holds the store's statements."""
    async with open_store(
        database, pool_size=1, max_overflow=0, prepared_statements=prepared
    ) as store:
        assert isinstance(store, SqlTaskStore)
        task = await store.create("alice", TaskCreate(title="named?"))
        await store.patch("alice", task.id, TaskPatch(completed=True))
        await store.list("alice")
        count = store.database.statements.compile(
            sa.text("SELECT count(*) FROM pg_prepared_statements")
        )
        ((named,),) = await store.database.fetch(count, {})
    assert (named >= 4) if prepared else (named == 0)


async def test_by_default_a_direct_connection_names_its_statements(
    proxy: TcpProxy, database: str
) -> None:
    """With the default settings, a connection straight to PostgreSQL (a TCP proxy
    passes every message unchanged) proves itself direct and names its statements: the
    server parses each one once and keeps its plan."""
    async with open_store(_through(proxy, database), pool_size=1, max_overflow=0) as store:
        sent = await reads_sent(proxy, store)
        assert isinstance(store, SqlTaskStore)
        count = store.database.statements.compile(
            sa.text("SELECT count(*) FROM pg_prepared_statements")
        )
        ((named,),) = await store.database.fetch(count, {})
    assert sent.count(b"E") == READS
    assert sent.count(b"P") == 1, "parsed when described, never again"
    assert named >= 3


async def test_by_default_a_connection_through_pgbouncer_names_nothing(tmp_path: Path) -> None:
    """Behind PgBouncer (transaction mode) the cancel key PostgreSQL's first message
    carries is PgBouncer's own, not the server process's: the connection stays unnamed,
    and every execution carries its own Parse, so the server connections PgBouncer hands
    to other clients hold nothing of it."""
    async with open_backend("pgbouncer", tmp_path):
        pass  # the schema is there and the tables are empty
    bouncer = pgbouncer_url()
    proxy = TcpProxy.in_front_of(bouncer)
    await proxy.start()
    try:
        async with open_store(
            proxy.url(bouncer, sslmode="disable"), pool_size=1, max_overflow=0
        ) as store:
            sent = await reads_sent(proxy, store)
    finally:
        await proxy.stop()
    assert sent.count(b"E") == READS
    assert sent.count(b"P") == READS + 1, "parsed again with every execution"
    assert sent.count(b"D") == 1, "described once"


@pytest.mark.parametrize("new_type", ["bigint", "smallint"])
@pytest.mark.parametrize("prepared", MODES)
async def test_a_column_type_change_under_described_statements(
    database: str, prepared: bool, new_type: str
) -> None:
    """A migration that changes a column's type to one of another size, under
    statements a connection has described: reads answer right away, described again.
    A named write is refused by the server before it runs and is run again; an unnamed
    write runs, its answer does not decode, and it fails once (a StoreError, like a
    lost answer) with its change made, while the next write is described afresh."""
    async with open_store(
        database, pool_size=1, max_overflow=0, prepared_statements=prepared
    ) as store:
        assert isinstance(store, SqlTaskStore)
        task = await store.create("alice", TaskCreate(title="widened"))
        # Completing could spawn a successor, and reads the task first (a shape of its
        # own): the description is a write of one statement, described below again.
        task = await store.patch("alice", task.id, TaskPatch(description="before"))
        assert await store.get("alice", task.id) == task
        # PostgreSQL refuses to change the type of a column a trigger names (the feed's
        # names version): a migration drops the trigger and creates it again.
        statements = store.database.statements
        trigger = "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 'tasks_feed'"
        ((create_trigger,),) = await store.database.fetch(statements.compile(sa.text(trigger)), {})
        for sql in (
            "DROP TRIGGER tasks_feed ON tasks",
            f"ALTER TABLE tasks ALTER COLUMN version TYPE {new_type}",
            create_trigger,
        ):
            await store.database.fetch(statements.compile(sa.text(sql)), {})
        assert await store.get("alice", task.id) == task
        if prepared:
            task = await store.patch("alice", task.id, TaskPatch(description="after"))
        else:
            with pytest.raises(StoreError):
                await store.patch("alice", task.id, TaskPatch(description="after"))
            task = await store.get("alice", task.id)
        assert (task.description, task.version) == ("after", 3)
        task = await store.patch("alice", task.id, TaskPatch(title="again"))
        assert await store.get("alice", task.id) == task
        assert (task.title, task.version) == ("again", 4)


@pytest.mark.parametrize("operation", ["read", "write"])
async def test_named_statements_the_server_lost_turn_the_connection_unnamed(
    database: str, operation: str
) -> None:
    """Should a connection that proved direct find its named statements missing on the
    server (what a pooler that relayed PostgreSQL's cancel keys would cause; here
    ``DEALLOCATE ALL``), nothing has run: the call succeeds once, unnamed, and the
    connection names nothing from then on."""
    async with open_store(database, pool_size=1, max_overflow=0) as store:
        assert isinstance(store, SqlTaskStore)
        assert isinstance(store.database, PostgresDatabase)
        task = await store.create("alice", TaskCreate(title="kept"))
        task = await store.patch("alice", task.id, TaskPatch(completed=True))
        assert await store.get("alice", task.id) == task
        pool = store.database.pool
        connection = await pool.acquire()
        try:
            assert connection.named
            await connection.execute("DEALLOCATE ALL")
        finally:
            pool.release(connection)
        if operation == "read":
            assert await store.get("alice", task.id) == task
        else:
            task = await store.patch("alice", task.id, TaskPatch(completed=False))
            assert task.version == 3, "applied once"
            assert await store.get("alice", task.id) == task
        connection = await pool.acquire()
        try:
            assert not connection.named
            named = await connection.fetchval("SELECT count(*) FROM pg_prepared_statements")
        finally:
            pool.release(connection)
    assert named == 0


async def test_a_connection_keeps_a_bounded_number_of_statements(database: str) -> None:
    """Statements beyond the store's own (ad-hoc ones through ``fetch``) cannot grow a
    connection's kept descriptions without end; the oldest go first."""
    async with open_store(database, pool_size=1, max_overflow=0) as store:
        assert isinstance(store, SqlTaskStore)
        statements = store.database.statements
        for number in range(STATEMENTS_PER_CONNECTION + 10):
            selected = statements.compile(sa.select(sa.literal_column(str(number))))
            assert await store.database.fetch(selected, {}) == [(number,)]
        assert isinstance(store.database, PostgresDatabase)
        pool = store.database.pool
        connection = await pool.acquire()
        try:
            kept = list(connection.statements)
        finally:
            pool.release(connection)
    assert len(kept) == STATEMENTS_PER_CONNECTION
    assert kept[-1].endswith(str(STATEMENTS_PER_CONNECTION + 9))
    assert not any(sql.endswith(" 0") for sql in kept)
