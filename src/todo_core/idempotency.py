"""Exactly-once creates: idempotency keys, request fingerprints and what a create returns.

A client that retries a create after a lost answer (a phone on a bad network) sends the
same key again; the store then returns the task it made the first time instead of a
second one. Stores keep, per user and key, a fingerprint of the request and the task as
created, written in the same transaction as the task itself, for ``IDEMPOTENCY_TTL``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Final

from pydantic import AfterValidator, Field, StrictStr, TypeAdapter

from todo_core.models import Task, TaskCreate, encodable_text

__all__ = [
    "IDEMPOTENCY_KEY_MAX",
    "IDEMPOTENCY_TTL",
    "Created",
    "fingerprint",
    "validate_idempotency_key",
]

IDEMPOTENCY_KEY_MAX: Final = 255
IDEMPOTENCY_TTL: Final = timedelta(hours=24)
"""How long a key replays its create; after that it may create again."""

_FINGERPRINT_FORMAT: Final = "v1"  # part of the hash: a new format never matches an old
_V1_FIELDS: Final = frozenset({"title", "description", "completed"})
_V2_FIELDS: Final = tuple(name for name in TaskCreate.model_fields if name not in _V1_FIELDS)
_DEFAULTS: Final = {
    name: TaskCreate.model_fields[name].get_default(call_default_factory=True)
    for name in _V2_FIELDS
}

IdempotencyKey = Annotated[
    StrictStr,
    Field(min_length=1, max_length=IDEMPOTENCY_KEY_MAX),
    AfterValidator(encodable_text),
]
_key_adapter: TypeAdapter[str] = TypeAdapter(IdempotencyKey)


def validate_idempotency_key(key: str) -> str:
    """Return ``key`` if it is 1-255 characters without NUL or lone surrogates.

    Raises:
        pydantic.ValidationError: it is not.
    """
    return _key_adapter.validate_python(key)


def fingerprint(data: TaskCreate) -> str:
    """A hash of what a create asks for, to tell a retry from a different request.

    It hashes the validated fields, not the bytes sent: a retry that spells the same
    request differently (member order, whitespace, ``"completed": false`` written out
    or left to its default, a title's surrounding spaces) is the same request.
    """
    fields = data.model_dump(mode="json")
    # A field v2 added counts only when set otherwise than by default: a request that
    # uses none hashes as v1 did, so a retry across the upgrade still replays.
    for name in _V2_FIELDS:
        if fields[name] == _DEFAULTS[name]:
            del fields[name]
    canonical = json.dumps(
        [_FINGERPRINT_FORMAT, fields],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Created:
    """What ``TaskStore.create_once`` returns.

    ``task`` is the task as it was created, also on a replay: a task changed or deleted
    since is still answered as it was then, as the first answer would have been.
    """

    task: Task
    replayed: bool  # True: the key had already created ``task``; nothing new was stored
