"""SQLite's executor: writes committed in groups, reads on the event loop.

What a user relies on: a write is acknowledged only once it is committed, one write's
failure is its own, and a read that meets a lock waits without stalling the server.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from uuid import UUID

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.backends import sqlite_threads_finished
from todo_core import StoreError, StoreUnavailable, TaskCreate, TaskNotFound, open_store
from todo_core.sql import SqlTaskStore
from todo_core.sqlite import SqliteDatabase

ALICE = "alice"
# Triggers that make chosen inserts fail: ABORT undoes the one statement, ROLLBACK the
# whole transaction; 'interrupt' is SQLITE_INTERRUPT, one of the errors after which
# SQLite may or may not have rolled back the transaction (as after a full disk).
FAILING_TITLES = """
CREATE TRIGGER fail_abort BEFORE INSERT ON tasks WHEN NEW.title = 'abort'
BEGIN SELECT RAISE(ABORT, 'refused'); END;
CREATE TRIGGER fail_rollback BEFORE INSERT ON tasks WHEN NEW.title = 'rollback'
BEGIN SELECT RAISE(ROLLBACK, 'refused'); END;
CREATE TRIGGER fail_interrupt BEFORE INSERT ON tasks WHEN NEW.title = 'interrupt'
BEGIN SELECT arm_interrupt(); END;
"""


def install_failures(connection: sqlite3.Connection) -> None:
    """FAILING_TITLES on the writer's connection, with what 'interrupt' calls: the
    progress handler interrupts the statement that armed it."""
    armed: list[bool] = []

    def arm() -> int:
        armed.append(True)
        return 0

    def interrupt() -> int:
        if armed:
            armed.clear()
            return 1
        return 0

    connection.create_function("arm_interrupt", 0, arm)
    connection.set_progress_handler(interrupt, 1)
    connection.executescript(FAILING_TITLES)


def database(store: object) -> SqliteDatabase:
    assert isinstance(store, SqlTaskStore)
    assert isinstance(store.database, SqliteDatabase)
    return store.database


async def traced(store: object) -> list[str]:
    """Every statement the store's writer runs from now on."""
    seen: list[str] = []
    await database(store).on_writer(lambda connection: connection.set_trace_callback(seen.append))
    return seen


@pytest.fixture(name="path")
def _path(tmp_path: Path) -> Path:
    return tmp_path / "tasks.db"


@pytest.fixture(name="store")
async def _store(path: Path) -> AsyncIterator[SqlTaskStore]:
    async with open_store(f"sqlite:///{path}", create_schema=True) as store:
        assert isinstance(store, SqlTaskStore)
        await database(store).on_writer(install_failures)
        yield store


def stored_titles(path: Path) -> list[str]:
    """The titles committed to the file, as another process would see them."""
    with sqlite3.connect(path) as other:
        return sorted(title for (title,) in other.execute("SELECT title FROM tasks"))


async def create_all(
    store: SqlTaskStore, titles: list[str], description: str | None = None
) -> list[object]:
    """Create a task per title, all at once: each one's task, or its error."""
    return await asyncio.gather(
        *(store.create(ALICE, TaskCreate(title=t, description=description)) for t in titles),
        return_exceptions=True,
    )


class TestGroupCommit:
    async def test_concurrent_writes_share_commits(self, store: SqlTaskStore, path: Path) -> None:
        """Writes that queue up together are committed together, and every one is in
        the file, for another process to see, by the time it is acknowledged."""
        seen = await traced(store)
        titles = [f"task {n}" for n in range(50)]
        created = await create_all(store, titles)
        assert all(not isinstance(task, BaseException) for task in created)
        assert stored_titles(path) == sorted(titles)
        commits = seen.count("COMMIT")
        assert 1 <= commits < 10, f"{commits} commits for 50 writes"

    async def test_a_lone_write_is_its_own_transaction(self, store: SqlTaskStore) -> None:
        seen = await traced(store)
        await store.create(ALICE, TaskCreate(title="alone"))
        assert seen[0].startswith("INSERT INTO tasks")
        assert not {"BEGIN IMMEDIATE", "COMMIT"} & set(seen), "no transaction around it"

    async def test_a_failed_write_fails_alone(self, store: SqlTaskStore, path: Path) -> None:
        """A refused write in a group is StoreError (no SQL in it); the others of its
        group are committed."""
        titles = [f"task {n}" for n in range(10)] + ["abort"] + [f"more {n}" for n in range(10)]
        created = await create_all(store, titles)
        refused = created[10]
        assert isinstance(refused, StoreError)
        assert "INSERT" not in str(refused)
        assert "refused" not in str(refused)
        assert all(not isinstance(task, BaseException) for task in created[:10] + created[11:])
        assert stored_titles(path) == sorted(titles[:10] + titles[11:])

    async def test_a_write_of_several_statements_undoes_them_all(self, store: SqlTaskStore) -> None:
        """A keyed create is two statements on SQLite: when the second is refused, the
        key the first stored is gone too, so a retry with the same key creates afresh."""
        writes = [store.create(ALICE, TaskCreate(title=f"task {n}")) for n in range(5)]
        keyed = store.create_once(ALICE, TaskCreate(title="abort"), key="k1")
        outcomes = await asyncio.gather(keyed, *writes, return_exceptions=True)
        assert isinstance(outcomes[0], StoreError)
        await database(store).on_writer(
            lambda connection: connection.execute("DROP TRIGGER fail_abort")
        )
        retried = await store.create_once(ALICE, TaskCreate(title="abort"), key="k1")
        assert not retried.replayed

    @settings(
        max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        titles=st.lists(
            st.sampled_from(["fine", "fine", "fine", "abort", "rollback", "interrupt"]),
            min_size=1,
            max_size=30,
        )
    )
    async def test_acknowledged_means_committed(self, tmp_path: Path, titles: list[str]) -> None:
        """Whatever fails in a group, even an error that ends its whole transaction:
        every acknowledged write is in the file and no refused one is, and the writes
        that came after the failure still go through."""
        path = Path(tempfile.mkdtemp(dir=tmp_path)) / "tasks.db"
        async with open_store(f"sqlite:///{path}", create_schema=True) as store:
            assert isinstance(store, SqlTaskStore)
            await database(store).on_writer(install_failures)
            numbered = [
                f"{title} {n}" if title == "fine" else title for n, title in enumerate(titles)
            ]
            created = await create_all(store, numbered)
            acknowledged = [
                t
                for t, c in zip(numbered, created, strict=True)
                if not isinstance(c, BaseException)
            ]
            assert all(isinstance(c, StoreError) for c in created if isinstance(c, BaseException))
            assert stored_titles(path) == sorted(acknowledged)
            if titles[-1] == "fine":
                assert not isinstance(created[-1], BaseException)
            # The writer is usable afterwards.
            await store.create(ALICE, TaskCreate(title="after"))

    async def test_a_full_disk_loses_nothing_acknowledged(
        self, store: SqlTaskStore, path: Path
    ) -> None:
        """With the file unable to grow (SQLITE_FULL, as on a full disk), the writes
        that need room fail with StoreUnavailable, every acknowledged one is committed,
        and writing resumes once there is room again."""

        def cap(connection: sqlite3.Connection) -> None:
            ((pages,),) = connection.execute("PRAGMA page_count").fetchall()
            connection.execute(f"PRAGMA max_page_count = {pages}")

        await database(store).on_writer(cap)
        titles = [f"task {n}" for n in range(40)]
        created = await create_all(store, titles, description="x" * 1000)
        refused = [c for c in created if isinstance(c, BaseException)]
        assert refused, "the file could not grow"
        assert all(isinstance(c, StoreUnavailable) for c in refused)
        acknowledged = [t for t, c in zip(titles, created, strict=True) if c not in refused]
        assert stored_titles(path) == sorted(acknowledged)
        await database(store).on_writer(
            lambda connection: connection.execute("PRAGMA max_page_count = 1073741823")
        )
        await store.create(ALICE, TaskCreate(title="room again"))
        assert len(stored_titles(path)) == len(acknowledged) + 1

    async def test_a_cancelled_caller_leaves_its_write_whole(
        self, store: SqlTaskStore, path: Path
    ) -> None:
        """A caller that stops waiting (a client gone) does not stop its queued write
        half-way: it is committed or not at all, and the writer goes on."""
        writes = [
            asyncio.create_task(store.create(ALICE, TaskCreate(title=f"task {n}")))
            for n in range(20)
        ]
        await asyncio.sleep(0)
        for write in writes[::2]:
            write.cancel()
        await asyncio.gather(*writes, return_exceptions=True)
        kept = [w.result().title for w in writes if not w.cancelled()]
        after = await store.create(ALICE, TaskCreate(title="after"))
        stored = stored_titles(path)
        assert set(kept) | {after.title} <= set(stored)
        assert len(stored) <= 21

    async def test_close_waits_for_queued_writes(self, path: Path) -> None:
        async with open_store(f"sqlite:///{path}", create_schema=True) as store:
            writes = [
                asyncio.create_task(store.create(ALICE, TaskCreate(title=f"task {n}")))
                for n in range(10)
            ]
            await asyncio.sleep(0)
        assert len(await asyncio.gather(*writes)) == 10
        assert len(stored_titles(path)) == 10


class TestClose:
    async def test_close_waits_for_queued_writes_even_when_cancelled(self, path: Path) -> None:
        """A caller that stops waiting for close() (a shutdown timeout) stops neither
        the closing nor the writes queued before it: every write is answered, every
        acknowledged one is committed, and the connections are closed all the same."""
        async with open_store(f"sqlite:///{path}", create_schema=True) as store:
            sqlite = database(store)
            writes = [
                asyncio.create_task(store.create(ALICE, TaskCreate(title=f"task {n}")))
                for n in range(30)
            ]
            await asyncio.sleep(0)
            closing = asyncio.create_task(sqlite.close())
            await asyncio.sleep(0)
            closing.cancel()
            outcomes = await asyncio.wait_for(asyncio.gather(*writes, return_exceptions=True), 5)
            await asyncio.wait_for(sqlite.close(), 5)  # the same closing, awaited
        acknowledged = [o.title for o in outcomes if not isinstance(o, BaseException)]
        assert len(acknowledged) == 30
        assert stored_titles(path) == sorted(acknowledged)
        await sqlite_threads_finished()

    async def test_a_closed_store_refuses_work(self, path: Path) -> None:
        async with open_store(f"sqlite:///{path}", create_schema=True) as store:
            task = await store.create(ALICE, TaskCreate(title="t"))
        with pytest.raises(StoreUnavailable):
            await store.create(ALICE, TaskCreate(title="late"))
        with pytest.raises(StoreUnavailable):
            await store.get(ALICE, task.id)
        assert stored_titles(path) == ["t"]


class RefusedFor:
    """Stands in for the store's reader connection: refused with SQLITE_BUSY for
    ``seconds``, as a WAL reader is while another process recovers the WAL (a lock a
    test cannot take: every open WAL connection keeps the file from being locked)."""

    def __init__(self, connection: sqlite3.Connection, seconds: float) -> None:
        self._connection = connection
        self._until = time.monotonic() + seconds
        self.refusals = 0

    def execute(self, sql: str, arguments: object) -> sqlite3.Cursor:
        if time.monotonic() < self._until:
            self.refusals += 1
            error = sqlite3.OperationalError("database is locked")
            error.sqlite_errorcode = sqlite3.SQLITE_BUSY
            raise error
        return self._connection.execute(sql, arguments)  # type: ignore[arg-type]


async def read_while_refused(
    store: SqlTaskStore, seconds: float, read: Awaitable[object]
) -> tuple[object, int, RefusedFor]:
    """``read`` while the reader is refused for ``seconds``; how often the event loop
    ran something else meanwhile."""
    sqlite = database(store)
    real = sqlite._reader
    assert real is not None
    sqlite._reader = refused = RefusedFor(real, seconds)  # type: ignore[assignment]
    try:
        reading = asyncio.ensure_future(read)
        ticks = 0
        while not reading.done():
            await asyncio.sleep(0.01)
            ticks += 1
        try:
            return reading.result(), ticks, refused
        except Exception as error:  # the caller looks at it
            return error, ticks, refused
    finally:
        sqlite._reader = real


class TestReadsOnTheLoop:
    async def test_a_locked_file_is_waited_for_without_blocking(self, store: SqlTaskStore) -> None:
        """A read that finds the file locked waits for it, while the event loop goes on
        serving others, and then answers."""
        task = await store.create(ALICE, TaskCreate(title="t"))
        result, ticks, refused = await read_while_refused(store, 0.3, store.get(ALICE, task.id))
        assert result == task
        assert refused.refusals > 3, "retried"
        assert ticks >= 10, "the event loop was blocked while the read waited"

    async def test_the_wait_is_bounded_by_statement_timeout(self, path: Path) -> None:
        async with open_store(
            f"sqlite:///{path}", create_schema=True, statement_timeout=0.2
        ) as store:
            assert isinstance(store, SqlTaskStore)
            started = time.monotonic()
            result, _, _ = await read_while_refused(store, 5, store.get(ALICE, UUID(int=1)))
            assert isinstance(result, StoreUnavailable)
            assert time.monotonic() - started < 0.5
            with pytest.raises(TaskNotFound):
                await store.get(ALICE, UUID(int=1))

    async def test_other_errors_are_not_retried(self, store: SqlTaskStore) -> None:
        sqlite = database(store)
        statement = sqlite.statements.compile(sa.text("SELECT * FROM no_such_table"))
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            await sqlite.fetch(statement, {})
        assert not isinstance(info.value, StoreUnavailable)
        assert time.monotonic() - started < 0.1


def _delete_database_files(folder: Path) -> None:
    for path in folder.glob("tasks.db*"):  # the file, its WAL and its shared memory
        path.unlink()


class TestDatabaseFileGone:
    """A file deleted or replaced under the store: nothing more is acknowledged."""

    @pytest.mark.parametrize(
        "url", ["sqlite:///{folder}/tasks.db", "sqlite:///file:{folder}/tasks.db?uri=true"]
    )
    async def test_writes_and_pings_fail_once_the_file_is_deleted(
        self, tmp_path: Path, url: str
    ) -> None:
        async with open_store(url.format(folder=tmp_path), create_schema=True) as store:
            kept = await store.create("alice", TaskCreate(title="before"))
            _delete_database_files(tmp_path)
            with pytest.raises(StoreUnavailable, match="deleted or replaced"):
                await store.create("alice", TaskCreate(title="after"))
            with pytest.raises(StoreUnavailable):
                await store.ping()
            with pytest.raises(StoreUnavailable):
                await store.get("alice", kept.id)

    async def test_a_file_replaced_under_the_store_is_not_written(self, tmp_path: Path) -> None:
        database = tmp_path / "tasks.db"
        async with open_store(f"sqlite:///{database}", create_schema=True) as store:
            await store.create("alice", TaskCreate(title="before"))
            database.rename(tmp_path / "moved.db")
            database.write_bytes(b"")
            with pytest.raises(StoreUnavailable):
                await store.create("alice", TaskCreate(title="after"))
        assert database.read_bytes() == b""

    async def test_a_shared_memory_uri_is_not_a_file_to_watch(self) -> None:
        url = "sqlite:///file:watch-nothing?mode=memory&cache=shared&uri=true"
        async with open_store(url, create_schema=True) as store:
            task = await store.create("alice", TaskCreate(title="in memory"))
            assert (await store.get("alice", task.id)).title == "in memory"
