"""The open event streams of one application: how many may open, and ending them all.

A stream holds a connection and a subscription for as long as its client stays, so
the number open is bounded per user (a runaway tab cannot take a process's share)
and per process (the connection limit of ``todo_http.connections`` keeps room above
it for ordinary requests). On shutdown every stream is told to end at once, so that a
process stops within a second however many streams it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from todo_core.events import Subscription
from todo_http.errors import TooManyStreams

__all__ = ["EventStreams"]

# How long the streams get to end by themselves at shutdown before their handlers are
# cancelled: a write to a slow reader may be what holds one up.
_END_GRACE_SECONDS: Final = 0.5


class EventStreams:
    """Admits streams within ``per_user`` per user and ``total`` in all."""

    def __init__(self, *, per_user: int, total: int) -> None:
        self.per_user = per_user
        self.total = total
        self._by_user: Counter[str] = Counter()
        self._open: dict[Subscription, asyncio.Task[object] | None] = {}
        self._none_open = asyncio.Event()
        self._none_open.set()
        self.closing = False

    def __len__(self) -> int:
        return len(self._open)

    def open_for(self, user_id: str) -> int:
        """How many streams ``user_id`` has open."""
        return self._by_user[user_id]

    @contextmanager
    def admit(self, user_id: str, subscription: Subscription) -> Iterator[None]:
        """Count the stream of ``subscription`` while the block runs.

        Raises ``TooManyStreams`` past a limit, and once shutting down.
        """
        if self.closing:
            raise TooManyStreams("The server is shutting down; reconnect shortly")
        if self._by_user[user_id] >= self.per_user:
            raise TooManyStreams(f"At most {self.per_user} open event streams per user")
        if len(self._open) >= self.total:
            raise TooManyStreams("Too many open event streams on this server; retry shortly")
        self._by_user[user_id] += 1
        self._open[subscription] = asyncio.current_task()
        self._none_open.clear()
        try:
            yield
        finally:
            del self._open[subscription]
            if not self._open:
                self._none_open.set()
            self._by_user[user_id] -= 1
            if not self._by_user[user_id]:
                del self._by_user[user_id]

    async def end_all(self) -> None:
        """End every open stream: at once where it waits for changes, and after a short
        grace where it is still writing (its handler is cancelled)."""
        self.closing = True
        for subscription in self._open:
            subscription.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_END_GRACE_SECONDS):
                await self._none_open.wait()
        for task in list(self._open.values()):
            if task is not None:
                task.cancel()
