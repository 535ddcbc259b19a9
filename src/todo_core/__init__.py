"""Async task storage: validated models, one storage contract, SQLite and PostgreSQL.

async with open_store("sqlite:///tasks.db", create_schema=True) as store:
    task = await store.create("alice", TaskCreate(title="Buy milk"))
"""

from todo_core.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidCursor,
    InvalidPatch,
    PreconditionFailed,
    SchemaNotCurrent,
    StoreError,
    StoreUnavailable,
    TaskNotFound,
    TodoError,
)
from todo_core.events import Subscription, subscribe
from todo_core.idempotency import Created, validate_idempotency_key
from todo_core.memory import MemoryTaskStore
from todo_core.models import (
    FieldsPage,
    ListQuery,
    Page,
    Priority,
    Recurrence,
    SortOrder,
    TagCount,
    TagPage,
    TagQuery,
    Task,
    TaskCreate,
    TaskPatch,
    TaskReplace,
    validate_user_id,
)
from todo_core.store import TaskStore, open_store

__all__ = [
    "Created",
    "FieldsPage",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "InvalidCursor",
    "InvalidPatch",
    "ListQuery",
    "MemoryTaskStore",
    "Page",
    "PreconditionFailed",
    "Priority",
    "Recurrence",
    "SchemaNotCurrent",
    "SortOrder",
    "StoreError",
    "StoreUnavailable",
    "Subscription",
    "TagCount",
    "TagPage",
    "TagQuery",
    "Task",
    "TaskCreate",
    "TaskNotFound",
    "TaskPatch",
    "TaskReplace",
    "TaskStore",
    "TodoError",
    "open_store",
    "subscribe",
    "validate_idempotency_key",
    "validate_user_id",
]
