"""Following a user's change feed as it moves: a subscription, usable without HTTP.

    async with subscribe(store, "alice", since=token) as changes:
        async for change in changes:  # Upserted or Deleted, each with its token
            ...

A subscription reads the feed (``TaskStore.changes``) from its token, hands out the
items one by one, and when it has none left waits on the store's ``ChangeSignal`` for
the next wake-up, then reads again. It watches the signal *before* its first read, and
clears its wake-up before each read, so a write that commits at any moment is either
in the read or wakes the next one: nothing is missed, and the feed alone says what
changed (a wake-up carries no data). Other processes' writes reach the signal through
the store's cross-process wake-ups (``todo_core.sql.wakeups``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from todo_core.feed import CHANGES_LIMIT_DEFAULT, Change, ChangePage
from todo_core.store import TaskStore

__all__ = ["Subscription", "subscribe"]

# A subscription that heard nothing for this long reads the feed anyway: a read that
# reaches the end gives its position a fresh time, so a quiet subscription never
# outlives the retention window (its next change would be SyncTokenExpired).
REFRESH_SECONDS: Final = 3600.0


class Subscription:
    """An open subscription to one user's feed; make one with ``subscribe``.

    ``async for`` yields every change after the starting token and then waits for
    more, until ``close()``. ``next(within)`` returns the next change, or None when
    none came ``within`` seconds or the subscription was closed: a way to do
    something while idle (a keepalive) without cancelling anything. ``position`` is the
    token to resume after everything handed out so far.
    """

    def __init__(
        self,
        store: TaskStore,
        user_id: str,
        wake_up: asyncio.Event,
        first: ChangePage,
        *,
        limit: int,
    ) -> None:
        self._store = store
        self._user_id = user_id
        self._wake_up = wake_up
        self._limit = limit
        self._pending: deque[Change] = deque()
        self._since = first.next_since  # where the next read starts
        self._behind = False  # whether more is there now, without waiting for a wake-up
        self.position = first.next_since
        self.closed = False
        self._read_at = asyncio.get_running_loop().time()
        self._take(first)

    async def _read(self) -> None:
        # Cleared first: a wake-up during the read is kept for the next one.
        self._wake_up.clear()
        self._read_at = asyncio.get_running_loop().time()
        try:
            page = await self._store.changes(self._user_id, self._since, limit=self._limit)
        except BaseException:
            self._wake_up.set()  # nothing was read: the next call reads again
            raise
        self._take(page)

    def _take(self, page: ChangePage) -> None:
        # Nothing awaited here: a read cancelled before it returned changed nothing.
        self._pending.extend(page.items)
        self._since = page.next_since
        self._behind = page.has_more
        if not self._pending:
            self.position = page.next_since

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Change:
        change = await self.next(None)
        if change is None:  # without a timeout, only closing returns None
            raise StopAsyncIteration
        return change

    def close(self) -> None:
        """End the subscription: a ``next`` waiting now, and every later one, returns
        None at once (``async for`` ends). Callable from anywhere in the event loop."""
        self.closed = True
        self._wake_up.set()

    async def next(self, within: float | None) -> Change | None:
        """The next change; None when none came ``within`` seconds (None: wait as long
        as it takes) or once closed. Raises what ``TaskStore.changes`` raises; the
        subscription stays where it was, and a later call tries again. Changes already
        read are still handed out after ``close``; nothing more is read."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while not self._pending:
            if not (self._behind or self._wake_up.is_set() or self.closed):
                refresh_at = self._read_at + REFRESH_SECONDS
                try:
                    # Only the wait is bounded, never a read: a read cut off by a timeout
                    # would cost a database connection its state.
                    async with asyncio.timeout_at(min(refresh_at, deadline or refresh_at)):
                        await self._wake_up.wait()
                except TimeoutError:
                    if deadline is not None and loop.time() >= deadline:
                        return None
            if self.closed:
                return None
            await self._read()
        change = self._pending.popleft()
        # After a read's last item its next_since: the same place, or (at the end of
        # the feed) the same with a fresher time, which keeps it from expiring.
        self.position = change.token if self._pending else self._since
        return change


@asynccontextmanager
async def subscribe(
    store: TaskStore,
    user_id: str,
    since: str | None = None,
    *,
    limit: int = CHANGES_LIMIT_DEFAULT,
) -> AsyncIterator[Subscription]:
    """Follow ``user_id``'s feed after ``since`` (a token of ``TaskStore.changes`` or of
    a change), or from now without it, while the block runs.

    ``limit`` is how many changes each read of the feed fetches. Raises at once, before
    the block: ``InvalidSyncToken``, ``SyncTokenExpired``, and what ``changes`` raises
    for a bad ``user_id`` or an unavailable database.
    """
    # Watched before the first read: a write committed during it wakes the next one.
    with store.signal.watch(user_id) as wake_up:
        first = await store.changes(user_id, since, limit=limit)
        yield Subscription(store, user_id, wake_up, first, limit=limit)
