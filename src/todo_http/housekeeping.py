"""Work beside the requests: purging the idempotency keys that have expired.

Expired keys never replay, purged or not (the store ignores them); purging only keeps
the table from growing. Each worker process purges on its own timer, jittered so that
several workers do not start together, in small batches that never wait for a create
(``TaskStore.purge_idempotency_keys``): a purge holds up no request for longer than a
batch's commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

from todo_core import StoreError, TaskStore
from todo_http.keys import SETTINGS, STORE

__all__ = ["PURGE_BATCH", "housekeeping_context", "purge_expired_keys"]

log = logging.getLogger("todo_http")

PURGE_BATCH: Final = 1000


async def purge_expired_keys(store: TaskStore, *, batch: int = PURGE_BATCH) -> int:
    """Purge every expired key, a batch at a time; returns how many went."""
    purged = 0
    while True:
        count = await store.purge_idempotency_keys(limit=batch)
        purged += count
        if count < batch:
            return purged
        await asyncio.sleep(0)  # requests waiting for the loop go first


async def _purge_forever(store: TaskStore, interval: float) -> None:
    while True:
        # Jittered, so that workers started together drift apart.
        await asyncio.sleep(random.uniform(0.5, 1.5) * interval)
        try:
            purged = await purge_expired_keys(store)
        except StoreError as error:  # the database is away: the next round tries again
            log.warning("purging expired idempotency keys failed: %s", error)
        except Exception:
            log.exception("purging expired idempotency keys failed")
        else:
            if purged:
                log.info("purged %d expired idempotency keys", purged)


async def housekeeping_context(app: web.Application) -> AsyncIterator[None]:
    """A ``cleanup_ctx`` entry: purge periodically while the application runs.

    Goes after the one that opens the store; ``Settings.purge_interval`` 0 disables it.
    """
    interval = app[SETTINGS].purge_interval
    if interval <= 0:
        yield
        return
    task = asyncio.create_task(_purge_forever(app[STORE], interval))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
