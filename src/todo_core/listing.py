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
from typing import Final, Literal, get_args
from uuid import UUID

import orjson

from todo_core.errors import InvalidCursor
from todo_core.models import PRIORITIES, ListQuery, SortOrder, Task
from todo_core.timestamps import from_micros, to_micros

__all__ = [
    "FILTER_FIELDS",
    "SORTS",
    "CursorCodec",
    "Position",
    "SortKey",
    "SortSpec",
    "fold",
    "sort_key",
]

_MAC_BYTES: Final = 16  # 128 bits: forging stays infeasible, cursors stay short


FILTER_FIELDS: Final = tuple(
    name for name in ListQuery.model_fields if name not in ("sort", "limit", "cursor")
)
"""The ``ListQuery`` fields that filter, in declaration order: each one a cursor is bound
to, and each one a SQL filter (``todo_core.sql.filters``) must apply."""


KeyKind = Literal["timestamp", "text", "priority"]
SortKey = datetime | str | None
"""A task's value of a sort's field: a timestamp, a title, a priority's name, or None
(``due_at`` only)."""


@dataclass(frozen=True, slots=True)
class SortSpec:
    """How one ``sort`` value orders tasks: by ``field``, ties broken by id, same direction.

    A ``nullable`` field's tasks without a value come after all others in both
    directions, among themselves by id in the sort's direction.
    """

    field: str
    descending: bool
    kind: KeyKind = "timestamp"
    nullable: bool = False


_KEYS: Final[dict[str, tuple[KeyKind, bool]]] = {
    "created_at": ("timestamp", False),
    "updated_at": ("timestamp", False),
    "title": ("text", False),
    "due_at": ("timestamp", True),
    "priority": ("priority", False),
}
"""Each sortable field: what kind of key it is, and whether it may be NULL."""


def _spec(sort: str) -> SortSpec:
    field = sort.removeprefix("-")
    kind, nullable = _KEYS[field]
    return SortSpec(field, descending=sort != field, kind=kind, nullable=nullable)


SORTS: Final[dict[SortOrder, SortSpec]] = {sort: _spec(sort) for sort in get_args(SortOrder)}


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: the last task's sort key and id. The next page starts after it."""

    key: SortKey
    task_id: UUID


def sort_key(task: Task, spec: SortSpec) -> SortKey:
    """The value of ``task`` that ``spec`` sorts by."""
    key: SortKey = getattr(task, spec.field)
    return key


def ordinal(key: SortKey, spec: SortSpec) -> datetime | str | int:
    """``key`` (not None) as it compares in ``spec``'s order: a priority by its rank."""
    assert key is not None
    if spec.kind == "priority":
        return PRIORITIES.index(key)
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

    def _mac(self, binding: bytes, payload: bytes) -> bytes:
        digest = hmac.new(self._secret, binding + b"\n" + payload, hashlib.sha256).digest()
        return digest[:_MAC_BYTES]

    def seal(self, binding: bytes, payload: object) -> str:
        raw = orjson.dumps(payload)
        return f"{_b64encode(raw)}.{_b64encode(self._mac(binding, raw))}"

    def open(self, binding: bytes, cursor: str) -> object:
        """The payload ``seal`` wrote for ``binding``. Raises ``InvalidCursor``."""
        try:
            payload_text, mac_text = cursor.split(".")
            payload, mac = _b64decode(payload_text), _b64decode(mac_text)
        except (ValueError, binascii.Error):
            raise InvalidCursor() from None
        # The decoder ignores stray characters, padding and unused low bits: accept only
        # the one spelling encode() writes, so an altered cursor is never a valid one.
        if _b64encode(payload) != payload_text or _b64encode(mac) != mac_text:
            raise InvalidCursor()
        if not hmac.compare_digest(mac, self._mac(binding, payload)):
            raise InvalidCursor()
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise InvalidCursor() from None

    def encode(self, user_id: str, query: ListQuery, last: Task) -> str:
        """A cursor for the page that follows ``last`` in this user's listing for ``query``."""
        key = sort_key(last, SORTS[query.sort])
        wire_key = to_micros(key) if isinstance(key, datetime) else key
        return self.seal(_task_binding(user_id, query), [wire_key, last.id.hex])

    def decode(self, user_id: str, query: ListQuery) -> Position | None:
        """The position ``query.cursor`` points at, or None on a first page.

        Raises:
            InvalidCursor: the cursor is malformed, tampered with, or was issued for
                another user, sort or filter.
        """
        if query.cursor is None:
            return None
        payload = self.open(_task_binding(user_id, query), query.cursor)
        # The MAC proves we wrote this payload; the checks below only guard against a
        # secret shared with a different (older or newer) cursor format.
        if not (isinstance(payload, list) and len(payload) == 2):
            raise InvalidCursor()
        wire_key, id_hex = payload
        try:
            task_id = UUID(hex=id_hex)
        except (ValueError, TypeError):
            raise InvalidCursor() from None
        return Position(_key_of(wire_key, SORTS[query.sort]), task_id)

    def encode_tag(self, user_id: str, tag: str) -> str:
        """A cursor for the page of ``user_id``'s tags that follows ``tag``."""
        return self.seal(_tag_binding(user_id), tag)

    def decode_tag(self, user_id: str, cursor: str | None) -> str | None:
        """The tag a tag listing's ``cursor`` ends after, or None on a first page.

        Raises:
            InvalidCursor: as ``decode``.
        """
        if cursor is None:
            return None
        tag = self.open(_tag_binding(user_id), cursor)
        if not isinstance(tag, str):
            raise InvalidCursor()
        return tag


_V1_FILTERS: Final = 2  # completed and q: the filters of cursors issued before v2


def _task_binding(user_id: str, query: ListQuery) -> bytes:
    """What a task cursor is bound to: the user, the sort and every filter.

    The filters v2 added join only when one is set, so a cursor issued by a v1 worker
    of the same deployment stays valid through a rolling upgrade.
    """
    filters = [getattr(query, name) for name in FILTER_FIELDS]
    added = filters[_V1_FILTERS:]
    if all(value is None for value in added):
        del filters[_V1_FILTERS:]
    return orjson.dumps([user_id, query.sort, *filters])


def _tag_binding(user_id: str) -> bytes:
    # A list cannot collide with a task binding's list, whose second member is a sort.
    return orjson.dumps([user_id, "tags"])


def _key_of(wire_key: object, spec: SortSpec) -> SortKey:
    """The sort key a cursor's payload holds, checked against what ``spec`` sorts by."""
    if wire_key is None and spec.nullable:
        return None
    if spec.kind == "text" and isinstance(wire_key, str):
        return wire_key
    if spec.kind == "priority" and isinstance(wire_key, str) and wire_key in PRIORITIES:
        return wire_key
    if spec.kind == "timestamp" and type(wire_key) is int:
        try:
            return from_micros(wire_key)
        except OverflowError:
            raise InvalidCursor() from None
    raise InvalidCursor()
