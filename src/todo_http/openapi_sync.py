"""The OpenAPI pieces of "Sync: the change feed" and "Trash": their schemas, the
``since`` parameter and the trash's page size, and the paths ``/{user_id}/changes``,
``/{user_id}/trash``, ``/{user_id}/trash/{task_id}`` and its ``restore``.

``openapi.py`` assembles the document and hands its builders in (``PathKit``), so the
operations here are written exactly like the task operations and answer the same
shared error responses.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from todo_core.feed import CHANGES_LIMIT_DEFAULT, CHANGES_LIMIT_MAX
from todo_http.parsing import TRASH_LIMIT_DEFAULT, TRASH_LIMIT_MAX

__all__ = ["DESCRIPTION", "PathKit", "sync_parameters", "sync_paths", "sync_schemas"]

DESCRIPTION: Final = """\
* Sync: `GET /{user_id}/changes` without `since` answers no items and a token for the
  present (`meta.next_since`); take it before listing the tasks, then pass it as `since`
  to get every task that changed after it, each once at its latest change, in order:
  `upsert` items carry the task, `delete` items its `id` and `deleted_at`. Follow
  `meta.next_since` while `meta.has_more`. A tampered or another user's token is a 422;
  one older than the retention window (`--retention-days`) a 410 `SYNC_TOKEN_EXPIRED`:
  list the tasks again.
* Trash: `DELETE /{user_id}/tasks/{task_id}` answers as before but moves the task to
  the trash (`GET /{user_id}/trash`), where it can be restored
  (`POST .../trash/{task_id}/restore`) or purged for good (`DELETE .../trash/{task_id}`,
  `DELETE /{user_id}/trash`); it is purged by itself after the retention window.
"""

_SCHEMAS: Final = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _SCHEMAS + name}


class PathKit(NamedTuple):
    """``openapi.py``'s builders of operations, error answers, HEAD twins and responses."""

    operation: Callable[..., dict[str, Any]]
    errors: Callable[..., dict[str, Any]]
    head: Callable[[dict[str, Any], str], dict[str, Any]]
    response: Callable[..., dict[str, Any]]


def trashed_task_schema(task: dict[str, Any]) -> dict[str, Any]:
    """The schema of a task in the trash: ``task``'s, with ``deleted_at`` required."""
    trashed = copy.deepcopy(task)
    trashed["description"] = "A task in the trash: as it was deleted, and when."
    trashed["properties"]["deleted_at"] = {**_ref("Timestamp"), "readOnly": True}
    trashed["required"] = [*trashed["required"], "deleted_at"]
    return trashed


def sync_schemas(success: Callable[..., dict[str, Any]], task: dict[str, Any]) -> dict[str, Any]:
    """The component schemas of the feed and the trash; ``success`` builds an envelope
    and ``task`` is the ``Task`` schema."""
    upsert = {
        "type": "object",
        "additionalProperties": False,
        "required": ["type", "task"],
        "properties": {"type": {"const": "upsert"}, "task": _ref("Task")},
        "description": "A task created, changed or restored: its latest state.",
    }
    delete = {
        "type": "object",
        "additionalProperties": False,
        "required": ["type", "id", "deleted_at"],
        "properties": {
            "type": {"const": "delete"},
            "id": task["properties"]["id"],
            "deleted_at": _ref("Timestamp"),
        },
        "description": "A task deleted (moved to the trash, or purged from it since).",
    }
    return {
        "TrashedTask": trashed_task_schema(task),
        "Change": {"oneOf": [upsert, delete]},
        "ChangesMeta": {
            "type": "object",
            "additionalProperties": False,
            "required": ["limit", "next_since", "has_more"],
            "properties": {
                "limit": {"type": "integer", "minimum": 1, "maximum": CHANGES_LIMIT_MAX},
                "next_since": {
                    "type": "string",
                    "minLength": 1,
                    "description": "Pass as `since` for the changes after these.",
                },
                "has_more": {
                    "type": "boolean",
                    "description": "More changes are available right now.",
                },
            },
        },
        "ChangeListEnvelope": success(
            {"type": "array", "items": _ref("Change")}, meta=_ref("ChangesMeta")
        ),
        "TrashListEnvelope": success(
            {"type": "array", "items": _ref("TrashedTask")}, meta=_ref("ListMeta")
        ),
        "TrashedTaskEnvelope": success(_ref("TrashedTask")),
        "PurgedEnvelope": success(
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["purged"],
                "properties": {"purged": {"type": "integer", "minimum": 0}},
            }
        ),
    }


def sync_parameters(query: Callable[[str, str, dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """The feed's and the trash's query parameters, built with ``openapi.py``'s ``query``."""
    return {
        "Since": query(
            "since",
            "The `meta.next_since` of an earlier answer. Absent: no items, and a token for "
            "the present. Empty, tampered or another user's: 422; older than the retention "
            "window: 410.",
            {"type": "string", "minLength": 1},
        ),
        "ChangesLimit": query(
            "limit",
            "The most changes to answer.",
            {
                "type": "integer",
                "minimum": 1,
                "maximum": CHANGES_LIMIT_MAX,
                "default": CHANGES_LIMIT_DEFAULT,
            },
        ),
        "TrashLimit": query(
            "limit",
            "Page size.",
            {
                "type": "integer",
                "minimum": 1,
                "maximum": TRASH_LIMIT_MAX,
                "default": TRASH_LIMIT_DEFAULT,
            },
        ),
    }


def restore_links() -> dict[str, Any]:
    """From a deleted task to bringing it back or purging it (the document's links)."""
    parameters = {"user_id": "$request.path.user_id", "task_id": "$response.body#/data/id"}
    return {
        name: {"operationId": name, "parameters": dict(parameters)}
        for name in ("restoreTask", "purgeTask")
    }


def sync_paths(kit: PathKit) -> dict[str, Any]:
    """The feed's and the trash's paths, relative to where the API is mounted."""
    operation, errors, response = kit.operation, kit.errors, kit.response
    changes = operation(
        "getChanges",
        "The user's tasks that changed after a token, each once at its latest change",
        {
            "200": response("A page of the feed.", _ref("ChangeListEnvelope")),
            **errors("VALIDATION_ERROR", "SYNC_TOKEN_EXPIRED", "SERVICE_UNAVAILABLE"),
        },
        parameters=("UserId", "Since", "ChangesLimit"),
    )
    trash = operation(
        "listTrash",
        "List the user's trash, most recently deleted first, one keyset page at a time",
        {
            "200": response("A page of the trash.", _ref("TrashListEnvelope"), headers=("Link",)),
            **errors("VALIDATION_ERROR", "SERVICE_UNAVAILABLE"),
        },
        parameters=("UserId", "TrashLimit", "Cursor"),
    )
    empty = operation(
        "emptyTrash",
        "Purge every task in the user's trash for good",
        {
            "200": response("How many tasks were purged.", _ref("PurgedEnvelope")),
            **errors("VALIDATION_ERROR", "SERVICE_UNAVAILABLE"),
        },
        parameters=("UserId",),
    )
    purge = operation(
        "purgeTask",
        "Purge one task from the trash for good",
        {
            "200": response("The task as the trash showed it.", _ref("TrashedTaskEnvelope")),
            **errors("NOT_FOUND", "VALIDATION_ERROR", "SERVICE_UNAVAILABLE"),
        },
        parameters=("UserId", "TaskId"),
    )
    restore = operation(
        "restoreTask",
        "Bring a task back from the trash (same id, a later updated_at)",
        {
            "200": response(
                "The task, back among the tasks.", _ref("TaskEnvelope"), headers=("ETag",)
            ),
            **errors("NOT_FOUND", "VALIDATION_ERROR", "SERVICE_UNAVAILABLE"),
        },
        parameters=("UserId", "TaskId"),
    )
    return {
        "/{user_id}/changes": {"get": changes, "head": kit.head(changes, "headChanges")},
        "/{user_id}/trash": {
            "get": trash,
            "head": kit.head(trash, "headTrash"),
            "delete": empty,
        },
        "/{user_id}/trash/{task_id}": {"delete": purge},
        "/{user_id}/trash/{task_id}/restore": {"post": restore},
    }
