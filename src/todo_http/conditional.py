"""ETags and the conditional headers that use them (RFC 9110 section 13).

A task's ETag is its version, quoted: strong, and different after every write. A
conditional write becomes the store's ``expected_version``, so checking and writing is
one atomic statement and two clients can never both win.
"""

from __future__ import annotations

import re
from typing import Final
from uuid import UUID

from aiohttp import hdrs, web

from todo_core import Task, TaskStore

__all__ = ["etag", "expected_version", "not_modified"]

# One member of an entity-tag list, matched only where the scan stands: anchored, with
# no part that can match the same text two ways, so a scan is linear in the header.
_MEMBER: Final = re.compile(r'[ \t]*(W/)?"([^"]*)"[ \t]*')
_BLANKS: Final = re.compile(r"[ \t]*")  # matches everywhere, if only the empty string
_OUR_TAG: Final = re.compile(r"v([1-9][0-9]{0,9})")
_MAX_VERSION: Final = 2**31 - 1  # the column is a 32-bit integer
# No task is ever at version 0: a write expecting it fails with 412 if the task exists.
_NO_VERSION: Final = 0


def etag(task: Task) -> str:
    """The strong entity tag of ``task``'s current version."""
    return f'"v{task.version}"'


def _header(request: web.Request, name: str) -> str | None:
    """Every line of header ``name`` as one list (RFC 9110 section 5.3), None if absent."""
    lines = request.headers.getall(name, ())
    return ", ".join(lines) if lines else None


def _tags(header: str) -> list[tuple[bool, str]]:
    """``(weak, opaque)`` pairs of an entity-tag list; a list with any member that is not
    an entity tag matches nothing, so it yields none. Empty members are allowed."""
    tags: list[tuple[bool, str]] = []
    position, end = 0, len(header)
    while position < end:
        member = _MEMBER.match(header, position)
        if member is not None:
            tags.append((member.group(1) is not None, member.group(2)))
            position = member.end()
        else:  # an empty member: only blanks before the comma
            blanks = _BLANKS.match(header, position)
            assert blanks is not None  # it matches the empty string anywhere
            position = blanks.end()
        if position < end:
            if header[position] != ",":
                return []
            position += 1
    return tags


def _version(opaque: str) -> int | None:
    match = _OUR_TAG.fullmatch(opaque)
    if match is None:
        return None
    version = int(match.group(1))
    return version if version <= _MAX_VERSION else None


async def expected_version(
    request: web.Request, store: TaskStore, user_id: str, task_id: UUID
) -> int | None:
    """The version ``If-Match`` requires, for the store to compare atomically.

    None when there is no condition (or ``*``: the write then needs only an existing
    task). Weak tags never match (strong comparison).
    """
    header = _header(request, hdrs.IF_MATCH)
    if header is None or header.strip() == "*":
        return None
    versions = {
        version
        for weak, opaque in _tags(header)
        if not weak and (version := _version(opaque)) is not None
    }
    if len(versions) <= 1:
        return versions.pop() if versions else _NO_VERSION
    # Several acceptable versions: the store compares one, so ask which is current.
    # A write racing in between makes the comparison fail: 412, the safe answer.
    current = (await store.get(user_id, task_id)).version
    return current if current in versions else _NO_VERSION


def not_modified(request: web.Request, current: str) -> bool:
    """Whether ``If-None-Match`` matches the entity tag ``current`` (quoted, as sent in
    ``ETag``; weak comparison; ``*`` matches any)."""
    header = _header(request, hdrs.IF_NONE_MATCH)
    if header is None:
        return False
    if header.strip() == "*":
        return True
    opaque = current[1:-1]
    return any(member == opaque for _weak, member in _tags(header))
