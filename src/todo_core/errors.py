"""Errors raised by todo_core.

Invalid input never gets this far: the models raise ``pydantic.ValidationError``
when they are built. Everything a store can raise is one of these::

    TodoError                 base; catch this to handle any todo_core failure
    ├── TaskNotFound          no such task for this user (also a LookupError)
    ├── PreconditionFailed    the task exists but its version is not the expected one
    ├── InvalidCursor         a cursor that this store did not issue for this query
    │                         (also a ValueError)
    ├── InvalidPatch          a patch that would leave the stored task breaking a rule
    │                         (also a ValueError)
    ├── InvalidSyncToken      a change feed token this store did not issue for this
    │                         user (also a ValueError)
    ├── SyncTokenExpired      a feed token whose position is older than the retention
    │                         window: list the tasks again
    ├── IdempotencyKeyReused  a create's key was first used for a different request
    │                         (also a ValueError)
    ├── IdempotencyKeyInUse   a create with this key is still running
    └── StoreError            the database failed; nothing was changed that was not
        │                     acknowledged
        ├── SchemaNotCurrent  the database's schema is missing or at another revision
        └── StoreUnavailable  transient: unreachable, pool exhausted, timed out;
                              retrying later is the right reaction

``code`` is a stable, machine-readable name that survives message rewording.
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

__all__ = [
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "InvalidCursor",
    "InvalidPatch",
    "InvalidSyncToken",
    "PreconditionFailed",
    "SchemaNotCurrent",
    "StoreError",
    "StoreUnavailable",
    "SyncTokenExpired",
    "TaskNotFound",
    "TodoError",
]


class TodoError(Exception):
    """Base of every error that todo_core raises on purpose."""

    code: ClassVar[str] = "todo_error"


class TaskNotFound(TodoError, LookupError):
    """The task does not exist for this user (another user's task included)."""

    code = "task_not_found"

    def __init__(self, task_id: UUID) -> None:
        super().__init__(f"no task {task_id}")
        self.task_id = task_id


class PreconditionFailed(TodoError):
    """A write carried an ``expected_version`` that is no longer current; nothing changed."""

    code = "precondition_failed"

    def __init__(self, task_id: UUID, expected_version: int) -> None:
        super().__init__(f"task {task_id} is not at version {expected_version}")
        self.task_id = task_id
        self.expected_version = expected_version


class InvalidCursor(TodoError, ValueError):
    """A cursor was malformed, tampered with, or issued for another user or query."""

    code = "invalid_cursor"

    def __init__(self) -> None:
        super().__init__("cursor is malformed or was issued for a different query")


class InvalidPatch(TodoError, ValueError):
    """A patch valid on its own would leave the stored task breaking a rule (a recurrence
    without a ``due_at``); nothing changed. ``field`` names the member at fault."""

    code = "invalid_patch"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidSyncToken(TodoError, ValueError):
    """A change feed token was malformed, tampered with, or issued for another user."""

    code = "invalid_sync_token"

    def __init__(self) -> None:
        super().__init__("sync token is malformed or was issued for another user")


class SyncTokenExpired(TodoError):
    """A feed token's position is older than the retention window: deletions it would
    need may be forgotten, so the client must list the tasks again."""

    code = "sync_token_expired"

    def __init__(self) -> None:
        super().__init__("sync token is older than the retention window: list the tasks again")


class IdempotencyKeyReused(TodoError, ValueError):
    """The idempotency key was first used for a different task; nothing was created."""

    code = "idempotency_key_reused"

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was used for a different request")
        self.key = key


class IdempotencyKeyInUse(TodoError):
    """A create with this idempotency key has not finished; retry once it has."""

    code = "idempotency_key_in_use"

    def __init__(self, key: str) -> None:
        super().__init__(f"a create with idempotency key {key!r} is still running")
        self.key = key


class StoreError(TodoError):
    """The database failed in a way that retrying will not fix (a bug or misconfiguration)."""

    code = "store_error"


class SchemaNotCurrent(StoreError):
    """The database's schema is not this package's: none yet, or another revision.

    A type of its own so that a caller can give its own remedy (``todo_http`` names its
    ``migrate`` command); the message gives the library's.
    """

    code = "schema_not_current"

    def __init__(self, current: str | None, required: str) -> None:
        super().__init__(
            f"the database schema is at revision {current or 'none'}, this package needs "
            f"{required}: migrate it (todo_core.migrate.migrate) or open the store with "
            "create_schema=True"
        )
        self.current = current
        self.required = required


class StoreUnavailable(StoreError):
    """The database cannot serve now (unreachable, pool exhausted, timed out); retry later."""

    code = "store_unavailable"
