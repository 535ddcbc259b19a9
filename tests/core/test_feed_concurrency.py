"""The feed's guarantee under concurrent writers in several processes.

Writer processes (``feed_writers``) write at random for the same few users while
readers in this process follow each user's feed from a token taken at the start, in
pages of random sizes, applying upserts and deletes by id to a copy. Once the writers
have stopped and the readers drained their feeds, every copy must equal the user's
tasks as ``list`` answers them, every field. A feed whose numbers became visible out of
order (a reader past change n, then change n - 1 committing) would lose that change
from some copy: this is the test that catches it (docs/library.md, "The change feed").
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
from pathlib import Path

import pytest

from tests.backends import BACKEND_OPTIONS, backend_url, open_backend
from tests.core.feed_writers import WriterPlan, write_randomly
from tests.replica import Replica
from todo_core import TaskCreate, TaskStore

USERS = ("ann", "ben")
APPEND_ONLY = ("log",)  # creates only: see feed_writers
READERS_PER_USER = 3
# Long enough to start every process before the first write (spawning imports the
# package afresh in each).
START_DELAY = 4.0


async def follow(store: TaskStore, replica: Replica, stop: asyncio.Event, seed: int) -> None:
    """Read the feed in pages of random sizes until the writers have stopped and a page
    read after that says nothing more is there."""
    rng = random.Random(seed)
    while True:
        stopped = stop.is_set()  # before the read: then the read sees every write
        page = await replica.read(store, limit=rng.choice((1, 2, 5, 20, 500)))
        if stopped and not page.has_more:
            return
        if not page.has_more:
            await asyncio.sleep(rng.uniform(0, 0.002))


@pytest.mark.parametrize(
    ("backend", "writers", "writes"),
    [
        pytest.param("sqlite", 2, 250, id="sqlite"),
        pytest.param("postgres", 4, 600, id="postgres", marks=pytest.mark.postgres),
        pytest.param("pgbouncer", 4, 500, id="pgbouncer", marks=pytest.mark.postgres),
    ],
)
async def test_every_follower_ends_with_the_tasks(
    backend: str, writers: int, writes: int, tmp_path: Path
) -> None:
    async with open_backend(backend, tmp_path) as store:
        for user in USERS + APPEND_ONLY:
            for n in range(3):
                await store.create(user, TaskCreate(title=f"before {n}"))
        replicas = [
            await Replica.start(store, user)
            for user in USERS + APPEND_ONLY
            for _ in range(READERS_PER_USER)
        ]
        start = time.time() + START_DELAY
        url = backend_url(backend, tmp_path)
        options = dict(BACKEND_OPTIONS.get(backend, {}))
        context = multiprocessing.get_context("spawn")
        processes = [
            context.Process(
                target=write_randomly,
                args=(
                    WriterPlan(
                        url,
                        USERS,
                        writes,
                        seed,
                        start,
                        append_only=APPEND_ONLY,
                        slow_commits=backend != "sqlite",
                        options=options,
                    ),
                ),
                name=f"feed-writer-{seed}",
            )
            for seed in range(writers)
        ]
        for process in processes:
            process.start()
        stop = asyncio.Event()
        readers = [
            asyncio.create_task(follow(store, replica, stop, seed))
            for seed, replica in enumerate(replicas)
        ]
        try:
            for process in processes:
                await asyncio.to_thread(process.join, 300)
        finally:
            for process in processes:
                if process.is_alive():
                    process.kill()
            stop.set()
        await asyncio.gather(*readers)
        assert [process.exitcode for process in processes] == [0] * writers
        for replica in replicas:
            assert replica.pages > 10, "the reader followed the writes as they happened"
            await replica.matches(store)
