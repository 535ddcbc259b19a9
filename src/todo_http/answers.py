"""The one table of error answers: for each ``error.code``, its status, when it is sent,
which errors are answered with it and with what message.

The envelope (``envelope.py``) answers from it, and the OpenAPI document
(``openapi.py``) documents it, so that the two can never disagree: a new kind of
error is one row here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Final

from aiohttp import web

from todo_core import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidCursor,
    InvalidPatch,
    PreconditionFailed,
    StoreUnavailable,
    TaskNotFound,
    TodoError,
)
from todo_core.errors import InvalidSyncToken, SyncTokenExpired
from todo_http.errors import (
    AuthUnavailable,
    ExpectationFailed,
    Forbidden,
    InvalidInput,
    InvalidJson,
    MalformedRequest,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    TooManyStreams,
    Unauthorized,
    UnsupportedMediaType,
)

__all__ = ["ERRORS", "ErrorAnswer", "ErrorCode", "answer_for", "code_of_status"]

# Errors that a retry will resolve, in seconds: the database or the key provider is
# away for seconds at least; the create that holds a key takes milliseconds.
_OUTAGE_RETRY_SECONDS: Final = 2
_KEY_IN_USE_RETRY_SECONDS: Final = 1
# A stream slot frees when a client goes away, which takes seconds to notice.
_STREAMS_RETRY_SECONDS: Final = 5


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One row: an ``error.code`` of the contract.

    ``raised_by`` maps each error answered with this code to its client message, or to
    None where the error's own message is written for clients (``RequestRejected``'s).
    ``headers`` names what else such an answer carries, for the OpenAPI document.
    """

    status: int
    when: str
    raised_by: Mapping[type[BaseException], str | None]
    retry_after: int | None = None
    headers: tuple[str, ...] = field(default=())

    @property
    def documented_headers(self) -> tuple[str, ...]:
        return (*self.headers, "Retry-After") if self.retry_after is not None else self.headers


ERRORS: Final[Mapping[str, ErrorCode]] = {
    "INVALID_JSON": ErrorCode(
        400,
        "The body is not valid JSON or not UTF-8, or its Content-Encoding does not decode.",
        {InvalidJson: None},
    ),
    "BAD_REQUEST": ErrorCode(
        400,
        "The request is not valid HTTP/1.1 (its framing, a header, or a body that ended "
        "early); the connection is closed.",
        {MalformedRequest: None},
    ),
    "UNAUTHORIZED": ErrorCode(
        401,
        "No bearer token, or one that is malformed, expired, not yet valid, badly signed, "
        "for another issuer or audience, or signed with an unknown key.",
        {Unauthorized: None},
        headers=("WWW-Authenticate",),
    ),
    "FORBIDDEN": ErrorCode(
        403, "A valid token whose `sub` is not the path's `user_id`.", {Forbidden: None}
    ),
    "NOT_FOUND": ErrorCode(
        404,
        "No such task for this user (a malformed task_id too), or no such route.",
        {TaskNotFound: "Task not found", NotFound: None, web.HTTPNotFound: None},
    ),
    "METHOD_NOT_ALLOWED": ErrorCode(
        405,
        "Known path, wrong method; `Allow` lists the right ones.",
        {web.HTTPMethodNotAllowed: None},
        headers=("Allow",),
    ),
    "REQUEST_TIMEOUT": ErrorCode(
        408,
        "The body did not arrive in time (`--body-timeout`); the connection is closed.",
        {RequestTimeout: None},
    ),
    "CONFLICT": ErrorCode(
        409,
        "A create with this `Idempotency-Key` is still being processed; retry after `Retry-After`.",
        {
            IdempotencyKeyInUse: (
                "A request with this Idempotency-Key is still being processed; retry shortly"
            )
        },
        retry_after=_KEY_IN_USE_RETRY_SECONDS,
    ),
    "PRECONDITION_FAILED": ErrorCode(
        412,
        "`If-Match` does not match the task's current ETag.",
        {PreconditionFailed: "The task has changed since the ETag given in If-Match"},
    ),
    "PAYLOAD_TOO_LARGE": ErrorCode(
        413,
        "The body is over 65,536 bytes as sent (chunked or not) or once decoded.",
        {PayloadTooLarge: None},
    ),
    "UNSUPPORTED_MEDIA_TYPE": ErrorCode(
        415,
        "The body is not sent as JSON in UTF-8, or in a Content-Encoding other than "
        "identity, gzip or deflate.",
        {UnsupportedMediaType: None},
    ),
    "EXPECTATION_FAILED": ErrorCode(
        417, "An `Expect` other than `100-continue`.", {ExpectationFailed: None}
    ),
    "SYNC_TOKEN_EXPIRED": ErrorCode(
        410,
        "A feed token older than the retention window: list the tasks again.",
        {SyncTokenExpired: "The sync token has expired; list the tasks again"},
    ),
    "VALIDATION_ERROR": ErrorCode(
        422,
        "The body, path or query breaks the rules; `details` says where.",
        {
            InvalidInput: None,
            InvalidCursor: "Request validation failed",
            InvalidPatch: "Request validation failed",
            InvalidSyncToken: "Request validation failed",
        },
    ),
    "IDEMPOTENCY_KEY_REUSED": ErrorCode(
        422,
        "This `Idempotency-Key` was first used with a different body; nothing was created.",
        {IdempotencyKeyReused: "This Idempotency-Key was used with a different request body"},
    ),
    "TOO_MANY_REQUESTS": ErrorCode(
        429,
        "Too many open event streams, for this user (`--max-streams-per-user`) or this "
        "process (`--max-streams`); retry after `Retry-After`.",
        {TooManyStreams: None},
        retry_after=_STREAMS_RETRY_SECONDS,
    ),
    # Any other error is a bug: its message, built with the request id, says nothing more.
    "INTERNAL_ERROR": ErrorCode(
        500,
        "A bug; logged with the request id, never detailed here.",
        {TodoError: "Internal server error"},
    ),
    "SERVICE_UNAVAILABLE": ErrorCode(
        503,
        "The database cannot be reached or can no longer make writes durable, or (with "
        "authentication) the keys that verify tokens cannot be fetched; retry after "
        "`Retry-After`.",
        {
            StoreUnavailable: "The database is unavailable; retry shortly",
            AuthUnavailable: "Tokens cannot be verified right now; retry shortly",
        },
        retry_after=_OUTAGE_RETRY_SECONDS,
    ),
}


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """What one error is answered with."""

    code: str
    status: int
    message: str
    retry_after: int | None


_BY_ERROR: Final = {
    kind: (code, row, message)
    for code, row in ERRORS.items()
    for kind, message in row.raised_by.items()
}
_BY_STATUS: Final = {row.status: code for code, row in reversed(list(ERRORS.items()))}


def code_of_status(status: int) -> str | None:
    """The first code of ``status`` in the table, for answers no error class names."""
    return _BY_STATUS.get(status)


def answer_for(error: BaseException) -> ErrorAnswer | None:
    """The row of ``error``'s most specific class in the table; for another of aiohttp's
    HTTP errors, its status's first code (or the status's name); None for anything else,
    which is a bug."""
    for kind in type(error).__mro__:
        found = _BY_ERROR.get(kind)
        if found is not None:
            code, row, message = found
            if message is None:
                message = error.reason if isinstance(error, web.HTTPException) else str(error)
            return ErrorAnswer(code, row.status, message, row.retry_after)
    if isinstance(error, web.HTTPException):
        code = code_of_status(error.status) or HTTPStatus(error.status).name
        return ErrorAnswer(code, error.status, error.reason, None)
    return None
