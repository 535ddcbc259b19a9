"""Wake-ups for readers of the change feed: "this user's feed may have moved".

A store notifies its signal after each write it commits; watchers of other processes'
writes (``LISTEN``, or polling the feed heads) notify it too. A wake-up carries no
data: the woken reader reads the feed, which alone says what changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ChangeSignal"]


class ChangeSignal:
    """Per-user wake-ups within one process; holds nothing for users nobody watches."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._anyone = asyncio.Event()  # set while someone watches anyone

    def notify(self, user_id: str) -> None:
        """Wake everyone watching ``user_id``."""
        for event in self._watchers.get(user_id, ()):
            event.set()

    def notify_all(self) -> None:
        """Wake every watcher: after a time in which wake-ups may have been missed (a
        lost connection to the database's notifications), each reads the feed again."""
        for watchers in self._watchers.values():
            for event in watchers:
                event.set()

    async def wait_for_watchers(self) -> None:
        """Return once someone watches (at once if someone does): what starts work that
        only watchers need, such as listening for other processes' writes."""
        await self._anyone.wait()

    def watched(self) -> frozenset[str]:
        """The users someone watches now."""
        return frozenset(self._watchers)

    @contextmanager
    def watch(self, user_id: str) -> Iterator[asyncio.Event]:
        """An event set at each ``notify(user_id)`` while the block runs; the watcher
        clears it before reading the feed, so a wake-up during the read is not lost."""
        event = asyncio.Event()
        watchers = self._watchers.setdefault(user_id, set())
        watchers.add(event)
        self._anyone.set()
        try:
            yield event
        finally:
            watchers.discard(event)
            if not watchers:
                del self._watchers[user_id]
                if not self._watchers:
                    self._anyone.clear()
