"""The OpenAPI 3.1 document of the contract: the one description clients, the docs page
and the test suite all read, so it is kept here and nowhere else.

Request bodies start from pydantic's JSON Schemas of ``TaskCreate``, ``TaskReplace`` and
``TaskPatch``, so fields, required members, ``additionalProperties: false`` and strict
types follow the models. What a validator function enforces cannot be derived from a
model, so a few member schemas are replaced here by ones that are exactly as strict as
the server, in both directions (schemathesis checks that schema-valid input is accepted
*and* that schema-invalid input is rejected):

``title``
    The server strips what Python's ``str.strip()`` removes, then needs 1-200 code
    points. ``maxLength: 200`` plus ``\\S`` would be wrong both ways: padding may make a
    valid title longer than 200, and ECMA-262's ``\\s`` is not Python's (it lacks
    U+001C..U+001F and U+0085 and has U+FEFF). So the schema is one pattern, "Python
    whitespace, then 1-200 code points that start and end with something else, then
    Python whitespace", with the whitespace class spelled out (``WHITESPACE_CLASS``) so
    ECMA-262, Python and Rust regex engines all read it alike (a validator that counts
    UTF-16 units rather than code points is stricter on astral characters, never
    looser). NUL is excluded too.
``description``
    At most 1000 code points and no NUL.
``TaskPatch``
    ``title`` and ``completed`` may not be ``null`` (only ``description`` may), and a
    patch needs at least one member (``minProperties: 1``).

Everything else (paths, parameters, responses, headers, links) is written by hand from
``contract.md``. The document is built once per process, mount point and variant, on
first use. It describes the server that serves it: with authentication on, the task
operations carry the ``bearerAuth`` security scheme and their 401 and 403 answers; with
it off (the default) neither appears, so a client generated from the document does not
ask its users for a token that nothing checks.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any, Final

import orjson
from pydantic.json_schema import models_json_schema

from todo_core import TaskCreate, TaskPatch, TaskReplace
from todo_core.idempotency import IDEMPOTENCY_KEY_MAX
from todo_core.models import DESCRIPTION_MAX, TITLE_MAX, USER_ID_PATTERN
from todo_http.answers import ERRORS
from todo_http.openapi_events import event_parameters, event_paths
from todo_http.openapi_organize import (
    LIST_SORTS,
    input_properties,
    organize_parameters,
    organize_schemas,
    organize_task_properties,
    recurrence_needs_due,
)
from todo_http.openapi_sync import DESCRIPTION as SYNC_DESCRIPTION
from todo_http.openapi_sync import PathKit, restore_links, sync_parameters, sync_paths, sync_schemas
from todo_http.openapi_webapp import webapp_paths

__all__ = [
    "API_PREFIX",
    "DOCS_ASSETS",
    "OPENAPI_VERSION",
    "WHITESPACE_CLASS",
    "openapi_bytes",
    "openapi_document",
]

OPENAPI_VERSION: Final = "3.1.0"
API_PREFIX: Final = "/api"

# The characters for which str.isspace() is true (tests/http/test_openapi.py checks it).
WHITESPACE_CLASS: Final = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_NOT_SPACE: Final = rf"[^\x00{WHITESPACE_CLASS}]"
TITLE_PATTERN: Final = (
    rf"^[{WHITESPACE_CLASS}]*{_NOT_SPACE}(?:[^\x00]{{0,{TITLE_MAX - 2}}}{_NOT_SPACE})?"
    rf"[{WHITESPACE_CLASS}]*$"
)
STORED_TITLE_PATTERN: Final = rf"^{_NOT_SPACE}(?:[^\x00]*{_NOT_SPACE})?$"
NO_NUL_PATTERN: Final = r"^[^\x00]*$"
_INPUT_FIELDS: Final = frozenset(
    {"title", "description", "completed", "due_at", "priority", "tags", "recurrence", "time_zone"}
)

# The Swagger UI files /api/docs uses, with their media types.
DOCS_ASSETS: Final = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

# What any request can be answered with: it is not HTTP/1.1 the server can read, it
# expects what the server cannot do, or the server has a bug.
_ANY_OPERATION: Final = ("BAD_REQUEST", "EXPECTATION_FAILED", "INTERNAL_ERROR")
# The errors of every task operation when authentication is on; 401 comes before 403.
_AUTH_ERRORS: Final = ("UNAUTHORIZED", "FORBIDDEN")
_BEARER_AUTH: Final = "bearerAuth"

_DESCRIPTION: Final = (
    """\
Tasks that belong to users, with every response in one JSON envelope:
`{"success": true, "data": ..., "message": ...}` (plus `meta` on lists) or
`{"success": false, "error": {"code", "message", "details"}}`.

* A task of another user is indistinguishable from one that does not exist (404).
* Single-task responses carry a strong `ETag`; `PUT`, `PATCH` and `DELETE` honour
  `If-Match` (412 when stale), `GET` honours `If-None-Match` (304).
* Every response carries `X-Request-ID` (the client's when it is 1-128 characters of
  `A-Z a-z 0-9 . _ : @ / + = -`, else one the server makes).
* A known path with a wrong method answers 405 with `Allow`; an unknown path 404; both
  in the error envelope. `HEAD` is served wherever `GET` is.
* Checks run in this order and the first failing one answers: unknown route 404, wrong
  method 405, (with authentication) 401 then 403, bad `user_id` 422, malformed `task_id`
  404, 413, 415, 400, body 422, missing task 404, `If-Match` 412.
* Authentication is optional and off by default. Where this document lists the
  `bearerAuth` scheme on the task operations, they need `Authorization: Bearer <JWT>`:
  a missing or bad token is a 401 with `WWW-Authenticate: Bearer`, a valid token whose
  `sub` is not the path's `user_id` a 403. This document and `/api/docs` never need one.
* `POST /{user_id}/tasks` with an `Idempotency-Key` creates at most once: for 24 hours a
  retry with the same key and body replays the first answer with
  `Idempotent-Replayed: true`; the same key with another body is a 422
  `IDEMPOTENCY_KEY_REUSED`, and a retry while the first is still running a 409.
* With `--cors-origin`, allowed origins get CORS headers and `OPTIONS` preflights are
  answered 204; without it `OPTIONS` is a 405 like any other unlisted method.
* Only this document, `/api/docs` and its assets answer outside the envelope.
* Organizing: tasks carry `due_at`, `priority`, `tags`, `recurrence` and `time_zone`
  (writable) and `completed_at` and `next_occurrence_id` (read-only). Completing a
  recurring task creates its next occurrence once. A `PATCH` that would leave a
  recurrence without `due_at` is a 422 that comes after the missing-task 404 and the
  `If-Match` 412. `GET /{user_id}/tags` lists the tags in use with their counts.
* Live events: `GET /{user_id}/events` streams the user's changes as server-sent events
  (`text/event-stream`).
"""
    + SYNC_DESCRIPTION
)


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _model_schemas() -> dict[str, Any]:
    """The input models' schemas from pydantic, with the members described above replaced."""
    _, top = models_json_schema(
        [(model, "validation") for model in (TaskCreate, TaskReplace, TaskPatch)],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = top["$defs"]
    nullable_description = {"anyOf": [_ref("schemas", "Description"), {"type": "null"}]}
    for name in ("TaskCreate", "TaskReplace", "TaskPatch"):
        schema = schemas[name]
        properties = schema["properties"]
        if set(properties) != _INPUT_FIELDS:  # a model changed
            raise RuntimeError(f"update todo_http.openapi for {name}: {sorted(properties)}")
        patch = name == "TaskPatch"
        properties["title"] = _ref("schemas", "Title")
        properties["description"] = {**nullable_description, "default": None}
        properties.update(input_properties(patch=patch))
        schema.update(recurrence_needs_due(patch=patch))
    patch_schema = schemas["TaskPatch"]
    patch_schema["minProperties"] = 1
    patch_schema["properties"]["description"] = nullable_description
    patch_schema["properties"]["completed"] = {"type": "boolean"}
    return schemas


def _schemas() -> dict[str, Any]:
    task: dict[str, Any] = {
        "type": "object",
        "description": "A task as the server returns it.",
        "additionalProperties": False,
        "properties": {
            "id": {
                "type": "string",
                "format": "uuid",
                "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
            },
            "user_id": {"type": "string", "pattern": USER_ID_PATTERN},
            "title": {
                "type": "string",
                "minLength": 1,
                "maxLength": TITLE_MAX,
                "pattern": STORED_TITLE_PATTERN,
            },
            "description": {
                "anyOf": [_ref("schemas", "Description"), {"type": "null"}],
            },
            "completed": {"type": "boolean"},
            **organize_task_properties(),
            "created_at": {**_ref("schemas", "Timestamp"), "readOnly": True},
            "updated_at": {**_ref("schemas", "Timestamp"), "readOnly": True},
        },
    }
    task["required"] = list(task["properties"])  # every member, always present
    return {
        **_model_schemas(),
        **organize_schemas(WHITESPACE_CLASS),
        "Title": {
            "type": "string",
            "minLength": 1,
            "pattern": TITLE_PATTERN,
            "description": (
                f"Leading and trailing whitespace (what Python's str.strip() removes) is "
                f"stripped; then 1-{TITLE_MAX} code points. No NUL (U+0000)."
            ),
        },
        "Description": {
            "type": "string",
            "maxLength": DESCRIPTION_MAX,
            "pattern": NO_NUL_PATTERN,
            "description": "Stored exactly as sent (not stripped). No NUL (U+0000).",
        },
        "Timestamp": {
            "type": "string",
            "format": "date-time",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$",
            "description": "RFC 3339 in UTC with microseconds, ending in Z.",
        },
        "Task": task,
        **sync_schemas(_success, task),
        "TaskEnvelope": _success(_ref("schemas", "Task")),
        "TaskListEnvelope": _success(
            {"type": "array", "items": _ref("schemas", "Task")},
            meta=_ref("schemas", "ListMeta"),
        ),
        "TagListEnvelope": _success(
            {"type": "array", "items": _ref("schemas", "TagCount")},
            meta=_ref("schemas", "ListMeta"),
        ),
        "ListMeta": {
            "type": "object",
            "additionalProperties": False,
            "required": ["limit", "next_cursor"],
            "properties": {
                "limit": {"type": "integer", "minimum": 1, "maximum": 500},
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass as `cursor` for the next page; null on the last.",
                },
            },
        },
        "StatusEnvelope": _success(
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["status"],
                "properties": {"status": {"type": "string"}},
            }
        ),
        "FieldProblem": {
            "type": "object",
            "additionalProperties": False,
            "required": ["field", "message"],
            "properties": {
                "field": {
                    "type": "string",
                    "description": "The body member, path or query parameter, or `body`.",
                },
                "message": {"type": "string"},
            },
        },
        "ErrorEnvelope": {
            "type": "object",
            "additionalProperties": False,
            "required": ["success", "error"],
            "properties": {
                "success": {"const": False},
                "error": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["code", "message", "details"],
                    "properties": {
                        "code": {"enum": list(ERRORS)},
                        "message": {"type": "string"},
                        "details": {"type": "array", "items": _ref("schemas", "FieldProblem")},
                    },
                },
            },
        },
    }


def _success(data: dict[str, Any], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "success": {"const": True},
        "data": data,
        "message": {"type": "string"},
    }
    if meta is not None:
        properties["meta"] = meta
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }


def _header(description: str, schema: dict[str, Any], *, required: bool) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


def _headers() -> dict[str, Any]:
    return {
        "WWW-Authenticate": _header(
            'The Bearer challenge (RFC 6750), with `error="invalid_token"` when a token was sent.',
            {"type": "string", "pattern": "^Bearer( |$)"},
            required=True,
        ),
        "Idempotent-Replayed": _header(
            "`true` when this answer replays the first create with the same "
            "`Idempotency-Key`; absent otherwise.",
            {"type": "string", "const": "true"},
            required=False,
        ),
        "X-Request-ID": _header(
            "The client's X-Request-ID when it is sane, else one the server made.",
            {"type": "string", "pattern": r"^[A-Za-z0-9._:@/+=\-]{1,128}$"},
            required=True,
        ),
        "ETag": _header(
            "The task's current strong entity tag; it changes on every write.",
            {"type": "string", "pattern": r'^"[\x21\x23-\x7e]*"$'},
            required=True,
        ),
        "Location": _header(
            "The new task's URL.", {"type": "string", "format": "uri-reference"}, required=True
        ),
        "Link": _header(
            "The next page, where there is one.",
            {"type": "string", "pattern": r'^<[^>]+>; rel="next"$'},
            required=False,
        ),
        "Retry-After": _header(
            "Seconds to wait before retrying.",
            {"type": "string", "pattern": "^[0-9]+$"},
            required=True,
        ),
        "Allow": _header(
            "The methods this path answers.", {"type": "string", "minLength": 1}, required=True
        ),
    }


def _response(
    description: str,
    schema: dict[str, Any] | None = None,
    *,
    headers: tuple[str, ...] = (),
    media_type: str = "application/json",
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "headers": {name: _ref("headers", name) for name in ("X-Request-ID", *headers)},
    }
    if schema is not None:
        response["content"] = {media_type: {"schema": schema}}
    return response


def _error_response(*codes: str, body: bool = True) -> dict[str, Any]:
    """The error envelope with one of ``codes``, which share a status (``body=False``: the
    HEAD answer)."""
    assert len({ERRORS[code].status for code in codes}) == 1, codes
    code_schema: dict[str, Any]
    if len(codes) == 1:
        description, code_schema = ERRORS[codes[0]].when, {"const": codes[0]}
    else:
        description = " ".join(f"`{code}`: {ERRORS[code].when}" for code in codes)
        code_schema = {"enum": list(codes)}
    headers = dict.fromkeys(name for code in codes for name in ERRORS[code].documented_headers)
    schema = {
        "allOf": [
            _ref("schemas", "ErrorEnvelope"),
            {"properties": {"error": {"properties": {"code": code_schema}}}},
        ]
    }
    return _response(description, schema if body else None, headers=tuple(headers))


def _errors(*codes: str) -> dict[str, Any]:
    """An operation's error responses by status: a reference to the shared response of a
    code, or one allowing each of a status's codes; ``ANY_OPERATION``'s can answer anything."""
    by_status: dict[int, list[str]] = {}
    for code in (*codes, *_ANY_OPERATION):
        by_status.setdefault(ERRORS[code].status, []).append(code)
    return {
        str(status): _ref("responses", group[0]) if len(group) == 1 else _error_response(*group)
        for status, group in sorted(by_status.items())
    }


def _parameters() -> dict[str, Any]:
    def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "query", "description": description, "schema": schema}

    def header(name: str, description: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "header",
            "description": description,
            "schema": {"type": "string"},
        }

    return {
        "UserId": {
            "name": "user_id",
            "in": "path",
            "required": True,
            "description": "The owner; matched after percent-decoding, case-sensitive.",
            "schema": {"type": "string", "pattern": USER_ID_PATTERN},
            "example": "alice",
        },
        "TaskId": {
            "name": "task_id",
            "in": "path",
            "required": True,
            "description": (
                "A UUID in 8-4-4-4-12 hex form, any letter case. A malformed one names no "
                "task: 404, not 422."
            ),
            "schema": {"type": "string", "format": "uuid"},
            "example": "0b9a3f5e-8f4c-4d2a-9c71-3e5f2a1b7c64",
        },
        "Completed": query(
            "completed",
            "Only tasks in this state.",
            {"type": "string", "enum": ["true", "false"]},
        ),
        "Q": query(
            "q",
            "Case-insensitive substring (Python's str.lower()) of title or description; "
            "`%`, `_` and `\\` are literal; empty means no filter.",
            {"type": "string", "pattern": NO_NUL_PATTERN},
        ),
        "Sort": query(
            "sort",
            "Order; ties are broken by id in the same direction. Titles sort by code point; "
            "priorities none < low < medium < high; tasks without `due_at` come last in both "
            "`due_at` directions.",
            {"type": "string", "enum": list(LIST_SORTS), "default": "-created_at"},
        ),
        "Limit": query(
            "limit", "Page size.", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}
        ),
        "Cursor": query(
            "cursor",
            "The opaque `meta.next_cursor` of the previous page, valid only with the same "
            "user_id, sort and filters as normalised (limit may change; the order or spelling "
            "of a list's members does not matter); anything else is a 422.",
            {"type": "string"},
        ),
        **organize_parameters(query),
        **sync_parameters(query),
        **event_parameters(query),
        "IfMatch": header(
            "If-Match",
            "`*` or a list of strong ETags; a stale or weak one is a 412 and changes nothing.",
        ),
        "IfNoneMatch": header(
            "If-None-Match", "`*` or a list of ETags (weak comparison); a match is a 304."
        ),
        "IdempotencyKey": {
            "name": "Idempotency-Key",
            "in": "header",
            "description": (
                "Makes the create happen at most once: for 24 hours, a retry with the same key "
                "and body replays the first answer instead of creating another task. Keys are "
                "per user."
            ),
            "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX},
        },
        "XRequestId": header(
            "X-Request-ID",
            "Echoed when it is 1-128 characters of `A-Z a-z 0-9 . _ : @ / + = -`; any other "
            "value is replaced by one the server makes.",
        ),
    }


def _task_link(operation_id: str) -> dict[str, Any]:
    parameters = {"user_id": "$request.path.user_id", "task_id": "$response.body#/data/id"}
    if operation_id != "getTask":  # a conditional write, with the tag just received
        parameters["header.If-Match"] = "$response.header.ETag"
    return {"operationId": operation_id, "parameters": parameters}


def _task_links(*operation_ids: str) -> dict[str, Any]:
    return {operation_id: _task_link(operation_id) for operation_id in operation_ids}


def _operation(
    operation_id: str,
    summary: str,
    responses: dict[str, Any],
    *,
    parameters: tuple[str, ...] = (),
    body: dict[str, Any] | None = None,
    tag: str = "tasks",
    secured: bool = False,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "parameters": [_ref("parameters", name) for name in (*parameters, "XRequestId")],
        "responses": responses,
    }
    if secured:
        operation["security"] = [{_BEARER_AUTH: []}]
    if body is not None:
        operation["requestBody"] = body
    return operation


def _head(get: dict[str, Any], operation_id: str) -> dict[str, Any]:
    """The HEAD twin of a GET operation: same parameters and answers, no bodies."""
    head = copy.deepcopy(get)
    head["operationId"] = operation_id
    head["summary"] = f"{get['summary']} (headers only)"
    for status, response in head["responses"].items():
        if "$ref" in response:  # a shared error response, named after its code
            code = response["$ref"].rsplit("/", 1)[1]
            head["responses"][status] = _error_response(code, body=False)
        else:
            response.pop("content", None)
            response.pop("links", None)
    return head


def _body(schema: str, example: dict[str, Any], *media_types: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            media_type: {"schema": _ref("schemas", schema), "example": example}
            for media_type in media_types
        },
    }


def _task_paths(authenticated: bool) -> dict[str, Any]:
    """The task endpoints, relative to where the API is mounted; with ``authenticated``,
    each needs a bearer token."""
    guard = _AUTH_ERRORS if authenticated else ()

    def errors(*codes: str) -> dict[str, Any]:
        return _errors(*guard, *codes)

    operation = functools.partial(_operation, secured=authenticated)
    listing = operation(
        "listTasks",
        "List the user's tasks, one keyset page at a time",
        {
            "200": _response(
                "A page of tasks.", _ref("schemas", "TaskListEnvelope"), headers=("Link",)
            ),
            **errors("VALIDATION_ERROR", "SERVICE_UNAVAILABLE"),
        },
        parameters=(
            "UserId",
            "Completed",
            "Q",
            "PriorityFilter",
            "TagFilter",
            "DueMin",
            "DueMax",
            "Sort",
            "Limit",
            "Cursor",
        ),
    )
    tags = operation(
        "listTags",
        "List the tags the user's tasks carry, with how many carry each, by code point",
        {
            "200": _response(
                "A page of tags.", _ref("schemas", "TagListEnvelope"), headers=("Link",)
            ),
            **errors("VALIDATION_ERROR", "SERVICE_UNAVAILABLE"),
        },
        parameters=("UserId", "Limit", "Cursor"),
    )
    create = operation(
        "createTask",
        "Create a task",
        {
            "201": {
                **_response(
                    "The new task, or the first answer again for a retried `Idempotency-Key`.",
                    _ref("schemas", "TaskEnvelope"),
                    headers=("ETag", "Location", "Idempotent-Replayed"),
                ),
                "links": _task_links("getTask", "replaceTask", "patchTask", "deleteTask"),
            },
            **errors(
                "INVALID_JSON",
                "REQUEST_TIMEOUT",
                "CONFLICT",
                "PAYLOAD_TOO_LARGE",
                "UNSUPPORTED_MEDIA_TYPE",
                "VALIDATION_ERROR",
                "IDEMPOTENCY_KEY_REUSED",
                "SERVICE_UNAVAILABLE",
            ),
        },
        parameters=("UserId", "IdempotencyKey"),
        body=_body("TaskCreate", {"title": "Buy milk", "description": "2 l"}, "application/json"),
    )
    get = operation(
        "getTask",
        "Get one task",
        {
            "200": _response("The task.", _ref("schemas", "TaskEnvelope"), headers=("ETag",)),
            "304": _response("`If-None-Match` matched: no body.", headers=("ETag",)),
            **errors("NOT_FOUND", "VALIDATION_ERROR", "SERVICE_UNAVAILABLE"),
        },
        parameters=("UserId", "TaskId", "IfNoneMatch"),
    )
    written = {
        "200": {
            **_response("The task as written.", _ref("schemas", "TaskEnvelope"), headers=("ETag",)),
            "links": _task_links("getTask", "patchTask", "deleteTask"),
        },
        **errors(
            "INVALID_JSON",
            "NOT_FOUND",
            "REQUEST_TIMEOUT",
            "PRECONDITION_FAILED",
            "PAYLOAD_TOO_LARGE",
            "UNSUPPORTED_MEDIA_TYPE",
            "VALIDATION_ERROR",
            "SERVICE_UNAVAILABLE",
        ),
    }
    replace = operation(
        "replaceTask",
        "Replace a task (omitted description becomes null, omitted completed false)",
        written,
        parameters=("UserId", "TaskId", "IfMatch"),
        body=_body("TaskReplace", {"title": "Buy oat milk", "completed": True}, "application/json"),
    )
    patch = operation(
        "patchTask",
        "Change some fields of a task (JSON merge patch)",
        copy.deepcopy(written),
        parameters=("UserId", "TaskId", "IfMatch"),
        body=_body(
            "TaskPatch",
            {"completed": True},
            "application/json",
            "application/merge-patch+json",
        ),
    )
    delete = operation(
        "deleteTask",
        "Delete a task: move it to the trash",
        {
            "200": {
                **_response(
                    "The task as it was, now in the trash.", _ref("schemas", "TaskEnvelope")
                ),
                "links": restore_links(),
            },
            **errors("NOT_FOUND", "PRECONDITION_FAILED", "VALIDATION_ERROR", "SERVICE_UNAVAILABLE"),
        },
        parameters=("UserId", "TaskId", "IfMatch"),
    )
    return {
        "/{user_id}/tasks": {
            "get": listing,
            "head": _head(listing, "headTasks"),
            "post": create,
        },
        "/{user_id}/tasks/{task_id}": {
            "get": get,
            "head": _head(get, "headTask"),
            "put": replace,
            "patch": patch,
            "delete": delete,
        },
        "/{user_id}/tags": {"get": tags, "head": _head(tags, "headTags")},
        **sync_paths(PathKit(operation, errors, _head, _response)),
        **event_paths(operation, errors, _head, _response, authenticated=authenticated),
    }


def _get_and_head(operation_id: str, get: dict[str, Any]) -> dict[str, Any]:
    head_id = "head" + operation_id.removeprefix("get")
    return {"get": get, "head": _head(get, head_id)}


def _docs_paths() -> dict[str, Any]:
    """This document and its interactive page, relative to the API's mount point."""
    document = _operation(
        "getOpenApi",
        "This OpenAPI document",
        {
            "200": _response(
                "The raw document (not in the envelope).",
                {"type": "object", "required": ["openapi", "info", "paths"]},
            ),
            **_errors(),
        },
        tag="documentation",
    )
    page = _operation(
        "getDocs",
        "An interactive page for this document; works with no internet access",
        {"200": _response("HTML.", {"type": "string"}, media_type="text/html"), **_errors()},
        tag="documentation",
    )
    asset = _operation(
        "getDocsAsset",
        "A file of the interactive page, served by this server",
        {
            "200": {
                "description": "The file.",
                "headers": {"X-Request-ID": _ref("headers", "X-Request-ID")},
                "content": {
                    media_type: {"schema": {"type": "string"}}
                    for media_type in sorted(set(DOCS_ASSETS.values()))
                },
            },
            **_errors("NOT_FOUND"),
        },
        tag="documentation",
    )
    asset["parameters"].insert(
        0,
        {
            "name": "asset",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "enum": sorted(DOCS_ASSETS)},
        },
    )
    return {
        "/openapi.json": _get_and_head("getOpenApi", document),
        "/docs": _get_and_head("getDocs", page),
        "/docs/": _get_and_head("getDocsSlash", _to_docs_page("getDocsSlash", "/docs/")),
        "/docs/static/{asset}": _get_and_head("getDocsAsset", asset),
    }


def _to_docs_page(operation_id: str, path: str) -> dict[str, Any]:
    """A redirect to the docs page: where people look for it first."""
    return _operation(
        operation_id,
        f"`{path}` redirects to the interactive page",
        {
            "302": {
                "description": "Found: the page is at `Location`.",
                "headers": {
                    "Location": _header(
                        "The docs page.", {"type": "string", "pattern": "/docs$"}, required=True
                    ),
                    "X-Request-ID": _ref("headers", "X-Request-ID"),
                },
            },
            **_errors(),
        },
        tag="documentation",
    )


def _operations_paths(ui: bool) -> dict[str, Any]:
    """``/healthz``, ``/readyz``, ``/docs`` redirecting to the docs page, and ``/`` (the
    web app, or with ``ui`` false another redirect), served by the standalone
    application only."""
    health = _operation(
        "getHealth",
        "Liveness: 200 while the process serves (no database call)",
        {"200": _response("Alive.", _ref("schemas", "StatusEnvelope")), **_errors()},
        tag="operations",
    )
    ready = _operation(
        "getReadiness",
        "Readiness: 200 when the database answers",
        {
            "200": _response("Ready.", _ref("schemas", "StatusEnvelope")),
            **_errors("SERVICE_UNAVAILABLE"),
        },
        tag="operations",
    )
    kit = PathKit(_operation, _errors, _head, _response)
    root = (
        webapp_paths(kit) if ui else {"/": _get_and_head("getRoot", _to_docs_page("getRoot", "/"))}
    )
    return {
        **root,
        "/docs": _get_and_head("getDocsShortcut", _to_docs_page("getDocsShortcut", "/docs")),
        "/healthz": _get_and_head("getHealth", health),
        "/readyz": _get_and_head("getReadiness", ready),
    }


@functools.cache
def _build(prefix: str, standalone: bool, authenticated: bool, ui: bool) -> dict[str, Any]:
    routes = {**_task_paths(authenticated), **_docs_paths()}
    paths = {prefix + path: item for path, item in routes.items()}
    if standalone:
        paths.update(_operations_paths(ui))
    components: dict[str, Any] = {
        "schemas": _schemas(),
        "parameters": _parameters(),
        "headers": _headers(),
        "responses": {code: _error_response(code) for code in ERRORS},
    }
    if authenticated:
        components["securitySchemes"] = {
            _BEARER_AUTH: {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": (
                    "A JWT whose `sub` is the path's `user_id`, signed with a key this server "
                    "is configured to trust; `exp` is required."
                ),
            }
        }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Tasks API", "version": "1.0.0", "description": _DESCRIPTION},
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "tasks", "description": "A user's tasks."},
            {"name": "operations", "description": "Probes for process managers."},
            {"name": "documentation", "description": "This document and its page."},
        ],
        "paths": paths,
        "components": components,
    }


_PREFIX: Final = re.compile(r"(/[^/{}]+)*")


def _check_prefix(prefix: str) -> str:
    if _PREFIX.fullmatch(prefix) is None:
        raise ValueError(f"not a mount point: {prefix!r}")
    return prefix


def openapi_document(
    prefix: str = API_PREFIX,
    *,
    standalone: bool = True,
    authenticated: bool = False,
    ui: bool = True,
) -> dict[str, Any]:
    """The document for the API mounted at ``prefix`` (a copy: change it freely).

    ``standalone`` adds ``/healthz``, ``/readyz``, ``/`` and ``/docs``, which only
    ``create_app`` serves; ``ui`` there describes ``/`` as the web app with its files
    under ``/ui/``, else as a redirect (``--no-ui``).
    ``authenticated`` describes a server whose task operations need a bearer token: the
    ``bearerAuth`` scheme on each, and their 401 and 403 answers.
    """
    return copy.deepcopy(_build(_check_prefix(prefix), standalone, authenticated, ui))


@functools.cache
def openapi_bytes(
    prefix: str = API_PREFIX,
    *,
    standalone: bool = True,
    authenticated: bool = False,
    ui: bool = True,
) -> bytes:
    """The document as served at ``{prefix}/openapi.json``, encoded once per variant."""
    document = _build(_check_prefix(prefix), standalone, authenticated, ui)
    return orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE)  # as the envelope's
