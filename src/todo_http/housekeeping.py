"""Work beside the requests: purging the idempotency keys that have expired, and the
trashed tasks and records of deletions past the retention window.

Expired keys never replay, purged or not (the store ignores them); purging only keeps
the table from growing. Trashed tasks, though, must go once the retention window has
passed (the contract says so). Each worker process purges on its own timer, jittered
so that several workers do not start together, in small batches that never wait for a
create (``TaskStore.purge_idempotency_keys``, ``TaskStore.purge_expired``, of which one
call at a time across workers does the work): a purge holds up no request for longer
than a batch's commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from aiohttp import web

from todo_core import StoreError, TaskStore
from todo_http.keys import SETTINGS, STORE

__all__ = ["PURGE_BATCH", "housekeeping_context", "purge_expired_keys", "purge_expired_trash"]

log = logging.getLogger("todo_http")

PURGE_BATCH: Final = 1000


Purge = Callable[..., Awaitable[int]]


async def _in_batches(purge: Purge, batch: int) -> int:
    """Call ``purge(limit=batch)`` until a batch comes back short; returns how many went."""
    purged = 0
    while True:
        count = await purge(limit=batch)
        purged += count
        if count < batch:
            return purged
        await asyncio.sleep(0)  # requests waiting for the loop go first


async def purge_expired_keys(store: TaskStore, *, batch: int = PURGE_BATCH) -> int:
    """Purge every expired key, a batch at a time; returns how many went."""
    return await _in_batches(store.purge_idempotency_keys, batch)


async def purge_expired_trash(store: TaskStore, *, batch: int = PURGE_BATCH) -> int:
    """Forget every trashed task and deletion record past the retention window, a batch
    at a time; returns how many went (0 while another process is at it)."""
    return await _in_batches(store.purge_expired, batch)


async def _purge_once(what: str, purge: Callable[[], Awaitable[int]]) -> None:
    try:
        purged = await purge()
    except StoreError as error:  # the database is away: the next round tries again
        log.warning("purging %s failed: %s", what, error)
    except Exception:
        log.exception("purging %s failed", what)
    else:
        if purged:
            log.info("purged %d %s", purged, what)


async def _purge_forever(store: TaskStore, interval: float) -> None:
    while True:
        # Jittered, so that workers started together drift apart.
        await asyncio.sleep(random.uniform(0.5, 1.5) * interval)
        await _purge_once("expired idempotency keys", lambda: purge_expired_keys(store))
        await _purge_once(
            "trashed tasks past the retention window", lambda: purge_expired_trash(store)
        )


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
