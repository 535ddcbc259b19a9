"""Store operations against the same statement sent through raw asyncpg, on PostgreSQL.

Run by ``nox -s bench`` (``pytest benchmarks/test_store_speed.py``), never by the test
suite, which collects only ``tests/``. Each operation is timed twice in one run:

* ``store``: ``open_store`` as an application uses it (validation, a pooled connection,
  a statement timeout, arguments converted, rows turned into ``Task`` models);
* ``raw``: the exact SQL text the store sends (taken from the store's compiled
  statements), with ready-made arguments, on one asyncpg connection in autocommit, each
  statement prepared once under a name and then run in one round trip, as the store
  runs it on a direct connection (``prepared_statements`` left to its default).

So store/raw is what the store adds around the statement itself. The database is
created through ``TODO_BENCH_POSTGRES_URL`` and dropped afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Final
from uuid import UUID, uuid4

import asyncpg
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.databases import create_database, drop_database, maintenance_url
from benchmarks.timings import Timing, record
from todo_core import TaskCreate, TaskPatch, TaskStore, open_store
from todo_core.listing import fold
from todo_core.sql import SqlTaskStore

Operation = Callable[[], Awaitable[object]]

OPERATIONS: Final = ("get", "create", "list", "patch")
SIDES: Final = ("store", "raw")
# Operations per timed round. Starting the event loop for a round costs ~7 µs; spread
# over ten operations it no longer pulls the store/raw ratio towards 1.
BATCH: Final = 10
LIST_TASKS: Final = 50
ONE_USER: Final = "bench-one"
LIST_USER: Final = "bench-list"
CREATE_USER: Final = "bench-create"

pytestmark = pytest.mark.benchmark(warmup=True, warmup_iterations=20, max_time=1.5, min_rounds=20)


async def _operations(
    store: TaskStore, raw: asyncpg.Connection, task_id: UUID
) -> dict[str, Operation]:
    assert isinstance(store, SqlTaskStore)
    statements = store.database.statements
    title, description = "bench create", "timed by test_store_speed"
    new = TaskCreate(title=title, description=description)
    change = TaskPatch(completed=True)
    now = datetime.now(UTC)
    insert = statements.insert
    insert_arguments = insert.arguments(
        {"user_id": CREATE_USER, "id": None, "title": title, "description": description}
        | {"completed": False, "created_at": now, "updated_at": now, "version": 1}
        | {"title_folded": fold(title), "description_folded": fold(description)}
    )
    id_position = insert.names.index("id")
    patch = statements.update(frozenset({"completed"}), conditional=False)
    patch_arguments = patch.arguments(
        {"completed": True, "now": now, "scope_user": ONE_USER, "scope_task": task_id}
    )
    get = statements.get
    get_arguments = get.arguments({"scope_user": ONE_USER, "scope_task": task_id})
    # The default listing: newest first, a page of 100, so one more row is asked for.
    listing = statements.list("-created_at", frozenset())
    list_arguments = listing.arguments({"user_id": LIST_USER, "limit": 101})

    raw_insert, raw_get, raw_list, raw_patch = [
        await raw.prepare(statement.sql, name=f"raw_{number}")
        for number, statement in enumerate((insert, get, listing, patch))
    ]

    async def raw_create() -> object:
        insert_arguments[id_position] = uuid4()
        return await raw_insert.fetch(*insert_arguments)

    return {
        "store-get": lambda: store.get(ONE_USER, task_id),
        "raw-get": lambda: raw_get.fetchrow(*get_arguments),
        "store-create": lambda: store.create(CREATE_USER, new),
        "raw-create": raw_create,
        "store-list": lambda: store.list(LIST_USER),
        "raw-list": lambda: raw_list.fetch(*list_arguments),
        "store-patch": lambda: store.patch(ONE_USER, task_id, change),
        "raw-patch": lambda: raw_patch.fetchrow(*patch_arguments),
    }


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for the module: pytest-benchmark times plain callables."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def operations(loop: asyncio.AbstractEventLoop) -> Iterator[dict[str, Operation]]:
    """Every timed callable by "side-operation", on a fresh, seeded database."""
    maintenance = maintenance_url()
    url = loop.run_until_complete(create_database(maintenance, "todo_bench_lib"))
    resources = AsyncExitStack()
    try:
        store = loop.run_until_complete(
            resources.enter_async_context(open_store(url, create_schema=True))
        )
        raw = loop.run_until_complete(asyncpg.connect(url, statement_cache_size=0))
        resources.push_async_callback(raw.close)

        async def seed() -> UUID:
            for n in range(LIST_TASKS):
                await store.create(LIST_USER, TaskCreate(title=f"list task {n}"))
            return (await store.create(ONE_USER, TaskCreate(title="the one task"))).id

        task_id = loop.run_until_complete(seed())
        yield loop.run_until_complete(_operations(store, raw, task_id))
    finally:
        loop.run_until_complete(resources.aclose())
        loop.run_until_complete(drop_database(maintenance, url))


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_speed(
    operation: str,
    side: str,
    operations: dict[str, Operation],
    loop: asyncio.AbstractEventLoop,
    benchmark: BenchmarkFixture,
    pytestconfig: pytest.Config,
) -> None:
    timed = operations[f"{side}-{operation}"]

    async def batch() -> None:
        for _ in range(BATCH):
            await timed()

    benchmark.group = operation
    benchmark.extra_info["operations_per_round"] = BATCH
    benchmark(lambda: loop.run_until_complete(batch()))
    if benchmark.stats is None:  # --benchmark-disable: run once, nothing to record
        return
    stats = benchmark.stats.stats
    record(
        pytestconfig,
        Timing(
            operation=operation,
            side=side,
            median_us=stats.median / BATCH * 1e6,
            min_us=stats.min / BATCH * 1e6,
            rounds=stats.rounds,
        ),
    )
