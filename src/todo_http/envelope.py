"""The JSON envelope: success bodies, and error bodies answered from ``answers.py``.

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
from typing import Any, Final
from uuid import UUID

import orjson
from aiohttp import hdrs, web

from todo_core import InvalidCursor, InvalidPatch, Task
from todo_core.errors import InvalidSyncToken
from todo_core.feed import Change, Upserted
from todo_core.timestamps import rfc3339
from todo_http.answers import answer_for, code_of_status
from todo_http.errors import (
    AuthUnavailable,
    ExpectationFailed,
    FieldProblem,
    InvalidInput,
    MalformedRequest,
    PayloadTooLarge,
    RequestTimeout,
    Unauthorized,
)
from todo_http.keys import CLOSE_AFTER_ANSWER, REQUEST_ID
from todo_http.logs import loggable

__all__ = [
    "answer_error",
    "change_data",
    "envelope_middleware",
    "error_response",
    "new_request_id",
    "success",
    "task_data",
]

log = logging.getLogger("todo_http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_REQUEST_ID_HEADER: Final = "X-Request-ID"
# Answers after which the connection is closed rather than its body drained (a client
# refused its Expect may still send the body it held back).
_CLOSING: Final = (MalformedRequest, RequestTimeout, PayloadTooLarge, ExpectationFailed)
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


def change_data(change: Change) -> dict[str, Any]:
    """A feed item as ``/changes`` and ``/events`` write it: ``{"type": "upsert", "task":
    ...}`` or ``{"type": "delete", "id": ..., "deleted_at": ...}``."""
    if isinstance(change, Upserted):
        return {"type": "upsert", "task": task_data(change.task)}
    return {"type": "delete", "id": str(change.task_id), "deleted_at": rfc3339(change.deleted_at)}


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
    # Usually null, and a due time is often a whole second (which orjson would write
    # without a fraction): written by rfc3339() whenever set.
    if fields["due_at"] is not None:
        fields["due_at"] = rfc3339(fields["due_at"])
    if fields["completed_at"] is not None:
        fields["completed_at"] = rfc3339(fields["completed_at"])
    if fields["next_occurrence_id"] is not None:
        fields["next_occurrence_id"] = str(fields["next_occurrence_id"])
    if type(fields["tags"]) is not list:  # a driver's array type, or a tuple
        fields["tags"] = list(fields["tags"])
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
    code = code or code_of_status(status) or HTTPStatus(status).name
    error = {"code": code, "message": message, "details": details or []}
    return _json({"success": False, "error": error}, status, headers)


def answer_error(error: Exception, request: web.BaseRequest, request_id: str) -> web.Response:
    """The envelope answering ``error``, from the table in ``answers.py``, with the
    request id; logged when the server, not the client, is at fault, or when the client
    broke the request off."""
    response = _error_answer(error, request, request_id)
    response.headers[_REQUEST_ID_HEADER] = request_id
    return response


def _error_answer(error: Exception, request: web.BaseRequest, request_id: str) -> web.Response:
    if isinstance(error, web.HTTPException) and error.status < 400:  # a redirect, say
        return web.Response(status=error.status, headers=error.headers)
    answer = answer_for(error)
    if answer is None or answer.status == 500:
        log.error(
            "%s %s failed [request %s]",
            request.method,
            loggable(request.path),
            request_id,
            exc_info=error,
        )
        return error_response(500, _internal_error_message(request_id))
    headers: dict[str, str] = {}
    if answer.retry_after is not None:
        headers[hdrs.RETRY_AFTER] = str(answer.retry_after)
    if isinstance(error, web.HTTPException) and hdrs.ALLOW in error.headers:
        headers[hdrs.ALLOW] = error.headers[hdrs.ALLOW]
    details = error.details if isinstance(error, InvalidInput) else None
    if isinstance(error, InvalidCursor):
        details = [{"field": "cursor", "message": str(error)}]
    elif isinstance(error, InvalidSyncToken):
        details = [{"field": "since", "message": str(error)}]
    elif isinstance(error, InvalidPatch):
        details = [{"field": error.field, "message": error.message}]
    if answer.status == 503:
        cause = "token keys" if isinstance(error, AuthUnavailable) else "database"
        log.warning("%s unavailable: %s [request %s]", cause, error, request_id)
    elif isinstance(error, Unauthorized):
        headers[hdrs.WWW_AUTHENTICATE] = error.challenge
    elif isinstance(error, MalformedRequest | RequestTimeout):
        # The client's doing, not the server's: no ERROR. The text may quote the
        # client's bytes, so it is made safe for a log line.
        log.info(
            "%s %s: %s [request %s]",
            request.method,
            loggable(request.path),
            loggable(str(error)),
            request_id,
        )
    response = error_response(
        answer.status, answer.message, details, headers or None, code=answer.code
    )
    if isinstance(error, _CLOSING) or request.content.exception():
        # What is left of the body cannot be told from a next request, cannot be read,
        # or (a body over the limit, inflated or not) is not worth reading.
        response.force_close()
        request[CLOSE_AFTER_ANSWER] = True
    return response


def _internal_error_message(request_id: str) -> str:
    # The request id is all a client can quote to find the logged cause.
    return f"Internal server error (request id {request_id})"


def _request_id(request: web.Request) -> str:
    given = request.headers.get(_REQUEST_ID_HEADER)
    if given is not None and _REQUEST_ID.fullmatch(given):
        return given
    return new_request_id()


def new_request_id() -> str:
    """A fresh request id, for a request that did not bring a sane one."""
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
    except Exception as error:  # aiohttp's HTTPException (unknown route...), ours, or a bug
        response = answer_error(error, request, request_id)
    response.headers[_REQUEST_ID_HEADER] = request_id
    return response
