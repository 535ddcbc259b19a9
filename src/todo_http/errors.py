"""Ways a request can be refused before it reaches the store.

They extend todo_core's tree, so one table in ``answers.py`` maps every error::

    TodoError
    ├── RequestRejected        the request itself is at fault
    │   ├── Unauthorized       no bearer token, or one that proves nothing (401)
    │   ├── Forbidden          a valid token, for another user's path (403)
    │   ├── NotFound           no such route or a malformed task id
    │   ├── MalformedRequest   not valid HTTP/1.1, or a body that ended early
    │   ├── RequestTimeout     the body did not arrive in time
    │   ├── ExpectationFailed  an Expect other than 100-continue
    │   ├── PayloadTooLarge    body over 64 KiB, as sent or decoded
    │   ├── UnsupportedMediaType
    │   ├── InvalidJson        not JSON, not UTF-8, or a Content-Encoding that does not decode
    │   ├── InvalidInput       JSON, but against the rules; carries per-field details
    │   └── TooManyStreams     past the limits on open event streams (429)
    └── AuthUnavailable        tokens cannot be checked now (the key set cannot be
                               fetched): the client is not at fault (503)
"""

from __future__ import annotations

from typing import ClassVar, Final, TypedDict

from todo_core import TodoError

__all__ = [
    "AuthUnavailable",
    "ExpectationFailed",
    "FieldProblem",
    "Forbidden",
    "InvalidInput",
    "InvalidJson",
    "MalformedRequest",
    "NotFound",
    "PayloadTooLarge",
    "RequestRejected",
    "RequestTimeout",
    "TooManyStreams",
    "Unauthorized",
    "UnsupportedMediaType",
]

# RFC 6750's challenge; the realm names the protection space in a browser's terms.
_CHALLENGE: Final = 'Bearer realm="todo"'


class FieldProblem(TypedDict):
    """One entry of an error envelope's ``details``."""

    field: str
    message: str


class RequestRejected(TodoError):
    """The request is at fault; the message is safe to show to the client."""

    code: ClassVar[str] = "request_rejected"


class Unauthorized(RequestRejected):
    """The request does not prove who sends it: answered 401 with a Bearer challenge.

    ``token_given`` is whether a bearer token was sent at all. RFC 6750 adds
    ``error="invalid_token"`` to the challenge only then, and the client's message
    differs, but neither says *why* a token failed: that is ``reason``, for the log
    only, since telling an attacker which check failed helps them.
    """

    code = "unauthorized"

    def __init__(self, reason: str, *, token_given: bool = True) -> None:
        super().__init__("Invalid or expired token" if token_given else "Missing bearer token")
        self.reason = reason
        self.token_given = token_given

    @property
    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value of the answer."""
        return f'{_CHALLENGE}, error="invalid_token"' if self.token_given else _CHALLENGE


class Forbidden(RequestRejected):
    """A valid token whose user is not the path's: answered 403."""

    code = "forbidden"

    def __init__(self) -> None:
        super().__init__("This token does not grant access to this user's tasks")


class AuthUnavailable(TodoError):
    """Tokens cannot be checked right now, e.g. the JWKS endpoint does not answer.

    Not the client's fault, so a 503 with ``Retry-After`` rather than a 401 that would
    make a client throw away a good token. The message is for the log, not the client.
    """

    code = "auth_unavailable"


class NotFound(RequestRejected):
    code = "not_found"


class MalformedRequest(RequestRejected):
    """Not a request this server can read; the connection cannot be trusted any more."""

    code = "malformed_request"


class RequestTimeout(RequestRejected):
    """The body did not arrive within the body timeout; the connection is closed."""

    code = "request_timeout"


class ExpectationFailed(RequestRejected):
    code = "expectation_failed"


class PayloadTooLarge(RequestRejected):
    code = "payload_too_large"


class UnsupportedMediaType(RequestRejected):
    code = "unsupported_media_type"


class InvalidJson(RequestRejected):
    code = "invalid_json"


class InvalidInput(RequestRejected):
    code = "invalid_input"

    def __init__(self, details: list[FieldProblem]) -> None:
        super().__init__("Request validation failed")
        self.details = details

    @classmethod
    def of(cls, field: str, message: str) -> InvalidInput:
        return cls([{"field": field, "message": message}])


class TooManyStreams(RequestRejected):
    """Every event stream slot, of the user or of the process, is taken."""

    code = "too_many_streams"
