"""Store operations against the same statement sent through raw asyncpg, on PostgreSQL.

Run by ``nox -s bench`` (``pytest benchmarks/test_store_speed.py``), never by the test
suite, which collects only ``tests/``. Each operation is timed twice in one run:

* ``store``: ``open_store`` as an application uses it (pool checkout with pre-ping, a
  transaction with ``SET LOCAL statement_timeout``, rows turned into ``Task`` models);
* ``raw``: the exact SQL text the store sends, on one asyncpg connection opened with
  ``statement_cache_size=0`` (unnamed statements, the PgBouncer-safe mode the store
  must use too), in autocommit.

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

_COLUMNS = (
    "tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, "
    "tasks.created_at, tasks.updated_at, tasks.version"
)
# The statements exactly as the store's SQLAlchemy compilation sends them to asyncpg
# (captured with a before_cursor_execute listener).
GET_SQL: Final = (
    f"SELECT {_COLUMNS} \nFROM tasks \nWHERE tasks.user_id = $1::VARCHAR AND tasks.id = $2::UUID"
)
LIST_SQL: Final = (
    f"SELECT {_COLUMNS} \nFROM tasks \nWHERE tasks.user_id = $1::VARCHAR "
    "ORDER BY tasks.created_at DESC, tasks.id DESC \n LIMIT $2::INTEGER"
)
INSERT_SQL: Final = (
    "INSERT INTO tasks (user_id, id, title, description, completed, created_at, updated_at, "
    "version, title_folded, description_folded) VALUES ($1::VARCHAR, $2::UUID, "
    '$3::VARCHAR COLLATE "C", $4::VARCHAR, $5::BOOLEAN, $6::TIMESTAMP WITH TIME ZONE, '
    "$7::TIMESTAMP WITH TIME ZONE, $8::INTEGER, $9::VARCHAR, $10::VARCHAR)"
)
PATCH_SQL: Final = (
    "UPDATE tasks SET completed=$1::BOOLEAN, updated_at=GREATEST($2::TIMESTAMP WITH TIME ZONE, "
    "tasks.updated_at + INTERVAL '1 microsecond'), version=(tasks.version + $3::INTEGER) "
    f"WHERE tasks.user_id = $4::VARCHAR AND tasks.id = $5::UUID RETURNING {_COLUMNS}"
)

pytestmark = pytest.mark.benchmark(warmup=True, warmup_iterations=20, max_time=1.5, min_rounds=20)


def _operations(store: TaskStore, raw: asyncpg.Connection, task_id: UUID) -> dict[str, Operation]:
    title, description = "bench create", "timed by test_store_speed"
    new = TaskCreate(title=title, description=description)
    change = TaskPatch(completed=True)
    # The store folds these on every create; the raw side passes the same values.
    title_folded, description_folded = fold(title), fold(description)

    async def store_create() -> object:
        return await store.create(CREATE_USER, new)

    async def raw_create() -> object:
        now = datetime.now(UTC)
        return await raw.execute(
            INSERT_SQL,
            *(CREATE_USER, uuid4(), title, description, False, now, now, 1),
            *(title_folded, description_folded),
        )

    async def raw_patch() -> object:
        return await raw.fetchrow(PATCH_SQL, True, datetime.now(UTC), 1, ONE_USER, task_id)

    return {
        "store-get": lambda: store.get(ONE_USER, task_id),
        "raw-get": lambda: raw.fetchrow(GET_SQL, ONE_USER, task_id),
        "store-create": store_create,
        "raw-create": raw_create,
        # The default listing: newest first, a page of 100, so one more row is asked for.
        "store-list": lambda: store.list(LIST_USER),
        "raw-list": lambda: raw.fetch(LIST_SQL, LIST_USER, 101),
        "store-patch": lambda: store.patch(ONE_USER, task_id, change),
        "raw-patch": raw_patch,
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

        yield _operations(store, raw, loop.run_until_complete(seed()))
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
