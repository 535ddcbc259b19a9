"""Ways a request can be refused before it reaches the store.

They extend todo_core's tree, so one table in ``envelope.py`` maps every error::

    TodoError
    └── RequestRejected        the request itself is at fault
        ├── NotFound           no such route or a malformed task id
        ├── PayloadTooLarge    body over 64 KiB
        ├── UnsupportedMediaType
        ├── InvalidJson        not JSON, or not UTF-8
        └── InvalidInput       JSON, but against the rules; carries per-field details
"""

from __future__ import annotations

from typing import ClassVar, TypedDict

from todo_core import TodoError

__all__ = [
    "FieldProblem",
    "InvalidInput",
    "InvalidJson",
    "NotFound",
    "PayloadTooLarge",
    "RequestRejected",
    "UnsupportedMediaType",
]


class FieldProblem(TypedDict):
    """One entry of an error envelope's ``details``."""

    field: str
    message: str


class RequestRejected(TodoError):
    """The request is at fault; the message is safe to show to the client."""

    code: ClassVar[str] = "request_rejected"


class NotFound(RequestRejected):
    code = "not_found"


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
