"""The JSON envelope: success bodies, error bodies, and the one table that maps errors.

Every response with a body leaves through here, so the contract's shape, status codes
and ``X-Request-ID`` are decided in one place and a stack trace, SQL or driver message
can never reach a client.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Final, NamedTuple
from uuid import UUID

import orjson
from aiohttp import hdrs, web

from todo_core import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidCursor,
    PreconditionFailed,
    StoreError,
    StoreUnavailable,
    Task,
    TaskNotFound,
    TodoError,
)
from todo_core.timestamps import rfc3339
from todo_http.errors import (
    AuthUnavailable,
    FieldProblem,
    Forbidden,
    InvalidInput,
    InvalidJson,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from todo_http.keys import REQUEST_ID

__all__ = ["envelope_middleware", "error_response", "success", "task_data"]

log = logging.getLogger("todo_http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The contract's status table: error.code for each status the API answers with.
_CODES: Final[dict[int, str]] = {
    400: "INVALID_JSON",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    412: "PRECONDITION_FAILED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


# Retry-After of a 503: the database or the key provider is away, for seconds at least.
_RETRY_AFTER_SECONDS: Final = "2"


class _Answer(NamedTuple):
    status: int
    message: str | None = None  # None: the error's own, which request errors write for clients
    code: str | None = None  # None: the status's code from _CODES
    retry_after: str | None = None  # seconds, for answers that a retry will change


# Each error of the TodoError tree, with the status and client-facing message it gets.
_ANSWERS: Final[dict[type[TodoError], _Answer]] = {
    Unauthorized: _Answer(401),
    Forbidden: _Answer(403),
    AuthUnavailable: _Answer(
        503, "Tokens cannot be verified right now; retry shortly", retry_after=_RETRY_AFTER_SECONDS
    ),
    NotFound: _Answer(404),
    TaskNotFound: _Answer(404, "Task not found"),
    PayloadTooLarge: _Answer(413),
    UnsupportedMediaType: _Answer(415),
    InvalidJson: _Answer(400),
    InvalidInput: _Answer(422),
    InvalidCursor: _Answer(422, "Request validation failed"),
    IdempotencyKeyReused: _Answer(
        422,
        "This Idempotency-Key was used with a different request body",
        "IDEMPOTENCY_KEY_REUSED",
    ),
    # The create that holds the key takes milliseconds, not seconds.
    IdempotencyKeyInUse: _Answer(
        409,
        "A request with this Idempotency-Key is still being processed; retry shortly",
        retry_after="1",
    ),
    PreconditionFailed: _Answer(412, "The task has changed since the ETag given in If-Match"),
    StoreUnavailable: _Answer(
        503, "The database is unavailable; retry shortly", retry_after=_RETRY_AFTER_SECONDS
    ),
    StoreError: _Answer(500, "Internal server error"),
    TodoError: _Answer(500, "Internal server error"),
}
_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
# Laid out like a UUID: the mask clears the version nibble and the variant's two top
# bits, which the other constant sets to version 4, variant RFC 4122.
_UUID4_MASK: Final = 0xFFFFFFFF_FFFF_0FFF_3FFF_FFFFFFFFFFFF
_UUID4_BITS: Final = 0x00000000_0000_4000_8000_000000000000


def _json(
    payload: Mapping[str, Any], status: int, headers: Mapping[str, str] | None
) -> web.Response:
    return web.Response(
        # The newline: a body printed to a terminal (curl) ends its line.
        body=orjson.dumps(payload, option=orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def task_data(task: Task) -> dict[str, Any]:
    """The contract's representation of a task (``version`` travels in the ETag), for orjson."""
    return task_fields_data(dict(task.__dict__))  # the fields, without model_dump's machinery


def task_fields_data(fields: dict[str, Any]) -> dict[str, Any]:
    """``task_data`` of a task's field values (``TaskStore.list_fields``), made in place.

    ``id`` and most timestamps are left for orjson to write, which it does exactly as
    ``str()`` and ``rfc3339()`` would, only faster.
    """
    del fields["version"]
    created, updated = fields["created_at"], fields["updated_at"]
    # orjson (with OPT_UTC_Z) writes an aware UTC datetime exactly as rfc3339() does, at a
    # tenth of the cost, which matters with two per task of a listing; but it leaves out
    # a fraction of a second that is zero, keeps other time zones' offsets and refuses
    # subclasses of datetime.
    if not (type(created) is datetime and created.tzinfo is UTC and created.microsecond):
        fields["created_at"] = rfc3339(created)
    if not (type(updated) is datetime and updated.tzinfo is UTC and updated.microsecond):
        fields["updated_at"] = rfc3339(updated)
    if type(fields["id"]) is not UUID:  # orjson refuses subclasses, which drivers return
        fields["id"] = str(fields["id"])
    return fields


def success(
    data: Any,
    message: str,
    *,
    status: int = 200,
    meta: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """``{"success": true, "data": ..., "message": ...}`` plus ``meta`` on lists."""
    payload: dict[str, Any] = {"success": True, "data": data, "message": message}
    if meta is not None:
        payload["meta"] = meta
    return _json(payload, status, headers)


def error_response(
    status: int,
    message: str,
    details: list[FieldProblem] | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    code: str | None = None,
) -> web.Response:
    """``{"success": false, "error": {"code", "message", "details"}}``."""
    code = code or _CODES.get(status) or HTTPStatus(status).name
    error = {"code": code, "message": message, "details": details or []}
    return _json({"success": False, "error": error}, status, headers)


def _answer(error: TodoError, request: web.Request, request_id: str) -> web.Response:
    status, message, code, retry_after = next(
        _ANSWERS[kind] for kind in type(error).__mro__ if kind in _ANSWERS
    )
    details = error.details if isinstance(error, InvalidInput) else None
    if isinstance(error, InvalidCursor):
        details = [{"field": "cursor", "message": str(error)}]
    headers: dict[str, str] | None = (
        None if retry_after is None else {hdrs.RETRY_AFTER: retry_after}
    )
    if status == 503:
        cause = "token keys" if isinstance(error, AuthUnavailable) else "database"
        log.warning("%s unavailable: %s [request %s]", cause, error, request_id)
    elif isinstance(error, Unauthorized):
        headers = {hdrs.WWW_AUTHENTICATE: error.challenge}
    elif status == 500:
        log.error(
            "%s %s failed [request %s]",
            request.method,
            request.path,
            request_id,
            exc_info=error,
        )
        return error_response(status, _internal_error_message(request_id))
    return error_response(status, message or str(error), details, headers, code=code)


def _internal_error_message(request_id: str) -> str:
    # The request id is all a client can quote to find the logged cause.
    return f"Internal server error (request id {request_id})"


def _request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-ID")
    if given is not None and _REQUEST_ID.fullmatch(given):
        return given
    # What uuid4().hex looks like, at a fraction of its cost: 128 random bits with the
    # version (4) and variant bits of a random UUID set. They come from the process's
    # seeded generator rather than a system call per request: an id names a request for
    # the logs and grants nothing, and clients may choose their own anyway.
    return f"{random.getrandbits(128) & _UUID4_MASK | _UUID4_BITS:032x}"


@web.middleware
async def envelope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every answer a request id, and every failure the contract's envelope."""
    request_id = request.get(REQUEST_ID) or _request_id(request)
    request[REQUEST_ID] = request_id
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # aiohttp's own: unknown route, wrong method, ...
        allow = exc.headers.get(hdrs.ALLOW)
        headers: dict[str, str] | None = {hdrs.ALLOW: allow} if allow is not None else None
        response = error_response(exc.status, exc.reason, headers=headers)
    except TodoError as error:
        response = _answer(error, request, request_id)
    except Exception:
        log.exception("%s %s failed [request %s]", request.method, request.path, request_id)
        response = error_response(500, _internal_error_message(request_id))
    response.headers["X-Request-ID"] = request_id
    return response
