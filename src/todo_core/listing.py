"""Keyset pagination shared by every store: sort keys and signed, query-bound cursors.

A cursor names the last task of a page by its sort key and id. It is signed with
HMAC-SHA256 over that position *and* the query it belongs to (user, sort, filters), so
a client can neither forge a position nor replay a cursor against another user or
another filter; ``limit`` is deliberately outside the binding so it may change mid-walk.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from uuid import UUID

import orjson

from todo_core.errors import InvalidCursor
from todo_core.models import ListQuery, SortOrder, Task
from todo_core.timestamps import from_micros, to_micros

__all__ = ["FILTER_FIELDS", "SORTS", "CursorCodec", "Position", "SortSpec", "fold", "sort_key"]

_MAC_BYTES: Final = 16  # 128 bits: forging stays infeasible, cursors stay short


FILTER_FIELDS: Final = tuple(
    name for name in ListQuery.model_fields if name not in ("sort", "limit", "cursor")
)
"""The ``ListQuery`` fields that filter, in declaration order: each one a cursor is bound
to, and each one a SQL filter (``todo_core.sql.filters``) must apply."""


@dataclass(frozen=True, slots=True)
class SortSpec:
    """How one ``sort`` value orders tasks: by ``field``, ties broken by id, same direction."""

    field: str
    descending: bool


SORTS: Final[dict[SortOrder, SortSpec]] = {
    "created_at": SortSpec("created_at", descending=False),
    "-created_at": SortSpec("created_at", descending=True),
    "updated_at": SortSpec("updated_at", descending=False),
    "-updated_at": SortSpec("updated_at", descending=True),
    "title": SortSpec("title", descending=False),
    "-title": SortSpec("title", descending=True),
}


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: the last task's sort key and id. The next page starts after it."""

    key: datetime | str
    task_id: UUID


def sort_key(task: Task, spec: SortSpec) -> datetime | str:
    """The value of ``task`` that ``spec`` sorts by."""
    key: datetime | str = getattr(task, spec.field)
    return key


def fold(text: str) -> str:
    """The form ``q`` and the searched text are compared in: Python's Unicode lower-casing.

    SQL stores keep this folded copy of title and description in columns of their own,
    because neither SQLite's nor PostgreSQL's ``lower()`` agrees with Python's.
    """
    return text.lower()


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    """Issues and checks cursors with one secret; stores hold one each."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the cursor secret must be at least 16 bytes")
        self._secret = secret

    def _mac(self, user_id: str, query: ListQuery, payload: bytes) -> bytes:
        filters = [getattr(query, name) for name in FILTER_FIELDS]
        binding = orjson.dumps([user_id, query.sort, *filters])
        digest = hmac.new(self._secret, binding + b"\n" + payload, hashlib.sha256).digest()
        return digest[:_MAC_BYTES]

    def encode(self, user_id: str, query: ListQuery, last: Task) -> str:
        """A cursor for the page that follows ``last`` in this user's listing for ``query``."""
        key = sort_key(last, SORTS[query.sort])
        wire_key = to_micros(key) if isinstance(key, datetime) else key
        payload = orjson.dumps([wire_key, last.id.hex])
        return f"{_b64encode(payload)}.{_b64encode(self._mac(user_id, query, payload))}"

    def decode(self, user_id: str, query: ListQuery) -> Position | None:
        """The position ``query.cursor`` points at, or None on a first page.

        Raises:
            InvalidCursor: the cursor is malformed, tampered with, or was issued for
                another user, sort or filter.
        """
        if query.cursor is None:
            return None
        try:
            payload_text, mac_text = query.cursor.split(".")
            payload, mac = _b64decode(payload_text), _b64decode(mac_text)
        except (ValueError, binascii.Error):
            raise InvalidCursor() from None
        # The decoder ignores stray characters, padding and unused low bits: accept only
        # the one spelling encode() writes, so an altered cursor is never a valid one.
        if _b64encode(payload) != payload_text or _b64encode(mac) != mac_text:
            raise InvalidCursor()
        if not hmac.compare_digest(mac, self._mac(user_id, query, payload)):
            raise InvalidCursor()
        # The MAC proves we wrote this payload; the checks below only guard against a
        # secret shared with a different (older or newer) cursor format.
        try:
            wire_key, id_hex = orjson.loads(payload)
            task_id = UUID(hex=id_hex)
        except (ValueError, TypeError):
            raise InvalidCursor() from None
        if SORTS[query.sort].field == "title":
            if not isinstance(wire_key, str):
                raise InvalidCursor()
            return Position(wire_key, task_id)
        if type(wire_key) is not int:
            raise InvalidCursor()
        return Position(from_micros(wire_key), task_id)
