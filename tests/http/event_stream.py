"""Reading a ``text/event-stream`` as a browser's ``EventSource`` does: events end at a
blank line, ``:`` lines are comments, and only a whole event counts.

Shared by the in-process event tests and those against real server processes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import ClientResponse


@dataclass(frozen=True)
class Event:
    """One whole event: its ``id:``, ``event:`` and ``data:`` (decoded as JSON)."""

    id: str
    kind: str
    data: Any


@dataclass
class EventParser:
    """Whole events and comments, from lines fed one at a time."""

    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    _fields: dict[str, str] = field(default_factory=dict)

    def feed(self, raw: bytes) -> None:
        """One line as received (with its line break, unless the stream was cut)."""
        if not raw.endswith(b"\n"):  # cut off mid-line: not a line at all
            return
        line = raw.decode().rstrip("\n")
        if not line:
            if self._fields:
                fields, self._fields = self._fields, {}
                self.events.append(
                    Event(fields["id"], fields["event"], orjson.loads(fields["data"]))
                )
            return
        if line.startswith(":"):
            self.comments.append(line[1:].strip())
            return
        name, _, value = line.partition(":")
        assert name not in self._fields, f"{name} twice in one event"
        self._fields[name] = value.removeprefix(" ")


def parse(raw: bytes) -> EventParser:
    """The whole events and comments of a stream's bytes, as far as they go."""
    parser = EventParser()
    for line in raw.splitlines(keepends=True):
        parser.feed(line)
    return parser


class EventStream(EventParser):
    """The events and comments read so far from one open stream, and whether it ended."""

    def __init__(self, response: ClientResponse) -> None:
        super().__init__()
        self.response = response
        self.ended = False

    async def next(self, within: float) -> Event | None:
        """The next whole event within ``within`` seconds (keepalives are collected on the
        way); None when none came in time or the stream ended."""
        count = len(self.events)
        await self._read_while(lambda: len(self.events) == count, within)
        return self.events[count] if len(self.events) > count else None

    async def comment(self, within: float) -> str | None:
        """The next comment line within ``within`` seconds."""
        count = len(self.comments)
        await self._read_while(lambda: len(self.comments) == count, within)
        return self.comments[count] if len(self.comments) > count else None

    async def until_end(self, within: float) -> bool:
        """Read until the server ends the stream; whether it did within ``within`` s."""
        await self._read_while(lambda: True, within)
        return self.ended

    async def _read_while(self, waiting: Callable[[], bool], within: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while waiting() and not self.ended:
                    try:
                        raw = await self.response.content.readline()
                    except (ConnectionError, aiohttp.ClientPayloadError):
                        raw = b""
                    if not raw:
                        self.ended = True
                    else:
                        self.feed(raw)
