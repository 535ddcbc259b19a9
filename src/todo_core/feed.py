"""The change feed and the trash: what a client needs to stay in step without re-listing.

Every task write moves its user's feed one position forward: the stores number a
user's changes 1, 2, 3... and a task remembers the number of its latest change. The
numbers are handed out one writer at a time per user and only inside the writing
transaction, so they become visible in number order (``docs/library.md``, "The change
feed", says how each backend does it). A token names a position: the number of the
last change a client has, and the time of that position, which decides when the token
expires (``SyncTokenExpired``, after the store's retention window).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated, Final
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter

from todo_core.errors import InvalidCursor, InvalidSyncToken, SyncTokenExpired
from todo_core.listing import CursorCodec
from todo_core.models import Task
from todo_core.timestamps import from_micros, to_micros

__all__ = [
    "CHANGES_LIMIT_MAX",
    "DEFAULT_RETENTION",
    "PURGE_GRACE",
    "Change",
    "ChangePage",
    "Deleted",
    "FeedPosition",
    "FeedTokens",
    "Sealer",
    "TrashPage",
    "TrashQuery",
    "TrashedTask",
    "Upserted",
    "validate_changes_limit",
]

DEFAULT_RETENTION: Final = timedelta(days=30)
"""How long trashed tasks, and the records of deletions the feed needs, are kept."""
PURGE_GRACE: Final = timedelta(minutes=10)
"""How much longer than the retention window ``purge_expired`` keeps a deletion.

A token's time is that of a change, or of the read that reached the end of the feed;
a change is stamped before it is numbered and committed, so a deletion numbered after
a token's position can bear an earlier time, by as long as a write can take (or two
processes' clocks disagree). Forgotten exactly at the window, it could be gone while
that token still serves. Ten minutes cover any write a statement timeout lets finish,
and clocks kept by NTP.
"""
CHANGES_LIMIT_MAX: Final = 500
CHANGES_LIMIT_DEFAULT: Final = 100
_limit_adapter: TypeAdapter[int] = TypeAdapter(
    Annotated[StrictInt, Field(ge=1, le=CHANGES_LIMIT_MAX)]
)


def validate_changes_limit(limit: int) -> int:
    """Return ``limit`` if it is a feed page's size, 1-500.

    Raises:
        pydantic.ValidationError: it is not.
    """
    return _limit_adapter.validate_python(limit)


@dataclass(frozen=True, slots=True)
class FeedPosition:
    """A place in one user's feed: every change numbered up to ``seq`` is behind it.

    ``at`` is the time of that position: the time of change ``seq``, or the time the
    feed was read when the reader had reached its end.
    """

    seq: int
    at: datetime


Sealer = Callable[[FeedPosition], str]
"""Writes a position as a token of one user (``FeedTokens.sealer``)."""


@dataclass(frozen=True, slots=True)
class Upserted:
    """A task that was created or changed (or restored): its latest state."""

    task: Task
    position: FeedPosition
    seal: Sealer = field(compare=False, repr=False)

    @property
    def task_id(self) -> UUID:
        return self.task.id

    @property
    def token(self) -> str:
        """Resumes the feed after this change. Sealed when asked for: a page of
        ``/changes`` needs its last item's at most, an event stream each one's."""
        return self.seal(self.position)


@dataclass(frozen=True, slots=True)
class Deleted:
    """A task that went to the trash (or later out of it for good)."""

    task_id: UUID
    deleted_at: datetime
    position: FeedPosition
    seal: Sealer = field(compare=False, repr=False)

    @property
    def token(self) -> str:
        """As ``Upserted.token``."""
        return self.seal(self.position)


Change = Upserted | Deleted


@dataclass(frozen=True, slots=True)
class ChangePage:
    """One page of a feed: ``items`` in feed order, each task at most once.

    ``next_since`` continues after the last item (or stays where the reader was when
    there was none); ``has_more`` says whether more changes are there right now.
    """

    items: list[Change]
    next_since: str
    has_more: bool


class TrashedTask(Task):
    """A task in the trash: as it was deleted, and when."""

    deleted_at: datetime


class TrashQuery(BaseModel):
    """A page of the trash, most recently deleted first (equal times: ``id`` descending)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, min_length=1)


@dataclass(frozen=True, slots=True)
class TrashPage:
    items: list[TrashedTask]
    next_cursor: str | None


def _feed_binding(user_id: str) -> bytes:
    # Not a JSON list, unlike every cursor's binding: no cursor can pass for a token.
    return b"feed\n" + user_id.encode()


def _trash_binding(user_id: str) -> bytes:
    return b"trash\n" + user_id.encode()


class FeedTokens:
    """Issues and checks feed tokens and trash cursors with a store's cursor secret."""

    def __init__(self, codec: CursorCodec, retention: timedelta = DEFAULT_RETENTION) -> None:
        self._codec = codec
        self.retention = retention

    def sealer(self, user_id: str) -> Sealer:
        """``encode`` for one user, for a page's items to seal their tokens with."""
        return partial(self.encode, user_id)

    def encode(self, user_id: str, position: FeedPosition) -> str:
        return self._codec.seal(_feed_binding(user_id), [position.seq, to_micros(position.at)])

    def decode(self, user_id: str, token: str, now: datetime) -> FeedPosition:
        """The position ``token`` names.

        Raises:
            InvalidSyncToken: not a token this store issued for ``user_id``.
            SyncTokenExpired: its position is older than the retention window at ``now``.
        """
        try:
            payload = self._codec.open(_feed_binding(user_id), token)
        except InvalidCursor:
            raise InvalidSyncToken() from None
        if not (isinstance(payload, list) and len(payload) == 2):
            raise InvalidSyncToken()
        seq, micros = payload
        if type(seq) is not int or type(micros) is not int or seq < 0:
            raise InvalidSyncToken()
        try:
            at = from_micros(micros)
        except OverflowError:
            raise InvalidSyncToken() from None
        if at + self.retention < now:
            raise SyncTokenExpired()
        return FeedPosition(seq, at)

    def encode_trash(self, user_id: str, deleted_at: datetime, task_id: UUID) -> str:
        """A cursor for the page of the trash after (``deleted_at``, ``task_id``)."""
        return self._codec.seal(_trash_binding(user_id), [to_micros(deleted_at), task_id.hex])

    def decode_trash(self, user_id: str, cursor: str | None) -> tuple[datetime, UUID] | None:
        """The position a trash cursor continues after. Raises ``InvalidCursor``."""
        if cursor is None:
            return None
        payload = self._codec.open(_trash_binding(user_id), cursor)
        if not (isinstance(payload, list) and len(payload) == 2):
            raise InvalidCursor()
        micros, id_hex = payload
        try:
            return from_micros(micros), UUID(hex=id_hex)
        except (TypeError, ValueError, OverflowError):
            raise InvalidCursor() from None
