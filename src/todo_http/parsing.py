"""Reading a request: path parameters, the JSON body and the listing's query string.

Checks run in the contract's order (user_id, task_id, size, media type, JSON, rules),
and each failure raises a ``RequestRejected`` that ``envelope.py`` answers.
"""

from __future__ import annotations

import asyncio
import re
from typing import Final, TypeVar
from uuid import UUID

import orjson
from aiohttp import ClientPayloadError, hdrs, web
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from annotated_types import Le
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from todo_core import ListQuery, TagQuery, validate_idempotency_key
from todo_core.feed import CHANGES_LIMIT_DEFAULT, CHANGES_LIMIT_MAX, TrashQuery
from todo_core.models import USER_ID_PATTERN
from todo_http.errors import (
    FieldProblem,
    InvalidInput,
    InvalidJson,
    MalformedRequest,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from todo_http.keys import SETTINGS

__all__ = [
    "JSON_TYPES",
    "MAX_BODY_BYTES",
    "PATCH_TYPES",
    "TRASH_LIMIT_DEFAULT",
    "TRASH_LIMIT_MAX",
    "ChangesQuery",
    "changes_query_of",
    "idempotency_key_of",
    "list_query_of",
    "read_model",
    "tag_query_of",
    "task_id_of",
    "trash_query_of",
    "user_id_of",
]

Model = TypeVar("Model", bound=BaseModel)

MAX_BODY_BYTES: Final = 64 * 1024
JSON_TYPES: Final = frozenset({"application/json"})
PATCH_TYPES: Final = frozenset({"application/json", "application/merge-patch+json"})

_USER_ID: Final = re.compile(USER_ID_PATTERN)
_TASK_ID: Final = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_UTF8: Final = frozenset({"utf-8", "utf8"})
# What aiohttp decodes itself; br and zstd only with optional packages, so never.
_ENCODINGS: Final = frozenset({"identity", "gzip", "deflate"})
_READ_ONLY: Final = frozenset(
    {"id", "user_id", "created_at", "updated_at", "completed_at", "next_occurrence_id"}
)
_PAGE_PARAMETERS: Final = ("limit", "cursor")
_LIST_PARAMETERS_LISTED: Final = ("priority", "tag")
_LIST_PARAMETERS_TIMED: Final = ("due_min", "due_max")
_LIST_PARAMETERS: Final = (
    "completed",
    "q",
    *_LIST_PARAMETERS_LISTED,
    *_LIST_PARAMETERS_TIMED,
    "sort",
    *_PAGE_PARAMETERS,
)
_PLUS_AS_SPACE: Final = (
    "must be an RFC 3339 date-time without spaces; send the '+' of an offset as %2B "
    "(a literal '+' in a query means a space)"
)
_BOOLEANS: Final = {"true": True, "false": False}
_LIMIT_DIGITS: Final = re.compile(r"[0-9]{1,4}")
_IDEMPOTENCY_KEY: Final = "Idempotency-Key"


def _upper_bound(model: type[BaseModel], name: str) -> int:
    """The ``le`` of a model's integer field: one place says how big a page may be."""
    bounds = [item.le for item in model.model_fields[name].metadata if isinstance(item, Le)]
    bound = bounds[0]
    assert isinstance(bound, int), bound
    return bound


TRASH_LIMIT_MAX: Final = _upper_bound(TrashQuery, "limit")
TRASH_LIMIT_DEFAULT: Final = int(TrashQuery.model_fields["limit"].default)


class ChangesQuery(BaseModel):
    """The change feed's parameters: ``since`` a token (absent: start at the present)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    since: str | None = Field(default=None, min_length=1)
    limit: int = Field(default=CHANGES_LIMIT_DEFAULT, ge=1, le=CHANGES_LIMIT_MAX)


def idempotency_key_of(request: web.Request) -> str | None:
    """The ``Idempotency-Key`` header (1-255 characters), None without one, or 422."""
    given = request.headers.getall(_IDEMPOTENCY_KEY, ())
    if not given:
        return None
    if len(given) > 1:
        raise InvalidInput.of(_IDEMPOTENCY_KEY, "must be given at most once")
    try:
        return validate_idempotency_key(given[0])
    except ValidationError:
        raise InvalidInput.of(_IDEMPOTENCY_KEY, "must be 1-255 characters") from None


def user_id_of(request: web.Request) -> str:
    """The path's ``user_id`` (already percent-decoded by aiohttp), or 422."""
    user_id = request.match_info["user_id"]
    if _USER_ID.fullmatch(user_id) is None:
        raise InvalidInput.of("user_id", "must be 1-64 characters of A-Z a-z 0-9 . _ @ -")
    return user_id


def task_id_of(request: web.Request) -> UUID:
    """The path's ``task_id`` in any letter case, or 404: a malformed id names no task."""
    raw = request.match_info["task_id"]
    if _TASK_ID.fullmatch(raw) is None:
        raise NotFound("Task not found")
    return UUID(raw)


async def _body(request: web.Request) -> bytes:
    # Counted here rather than by the application's client_max_size, which belongs to
    # whichever application is the root: an embedding app may have set another one.
    # Counted as decoded, too: aiohttp inflates gzip and deflate while it reads.
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"Request body exceeds {MAX_BODY_BYTES} bytes")
    seconds = request.app[SETTINGS].body_timeout
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            while chunk := await request.content.read(MAX_BODY_BYTES + 1 - size):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise PayloadTooLarge(f"Request body exceeds {MAX_BODY_BYTES} bytes")
    except TimeoutError:
        raise RequestTimeout(f"Request body not received within {seconds:g} s") from None
    except (RequestPayloadError, HttpProcessingError, ClientPayloadError, ConnectionError) as error:
        if isinstance(error, ContentEncodingError) or isinstance(
            error.__cause__, ContentEncodingError
        ):
            raise InvalidJson("Request body does not decode as its Content-Encoding says") from None
        # The client broke the framing or went away: nothing to answer but a closed line.
        raise MalformedRequest("Request body ended before it was complete") from None
    return b"".join(chunks)


def _check_encoding(request: web.Request) -> None:
    encodings = request.headers.getall(hdrs.CONTENT_ENCODING, ())
    if encodings and (len(encodings) > 1 or encodings[0].strip().lower() not in _ENCODINGS):
        raise UnsupportedMediaType("Request body must be sent in identity, gzip or deflate")


def _check_media_type(request: web.Request, accepted: frozenset[str]) -> None:
    media_type, *parameters = request.headers.get(hdrs.CONTENT_TYPE, "").split(";")
    acceptable = media_type.strip().lower() in accepted
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in _UTF8:
            acceptable = False
    if not acceptable:
        kinds = " or ".join(sorted(accepted))
        raise UnsupportedMediaType(f"Request body must be sent as {kinds} in UTF-8")


def _problems(error: ValidationError) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    for item in error.errors(include_url=False, include_input=False):
        # A model-level error has no location; one about a single member (PATCH's
        # ``"title": null``) names it in its context, and the contract wants it named.
        context = item.get("ctx") or {}
        field = str(item["loc"][0]) if item["loc"] else str(context.get("field", "body"))
        message = "is read-only" if field in _READ_ONLY else item["msg"]
        problems.append({"field": field, "message": message})
    return problems


async def read_model(request: web.Request, model: type[Model], accepted: frozenset[str]) -> Model:
    """The request body as ``model``: 413, 415, 400 or 422 when it cannot be."""
    body = await _body(request)
    _check_encoding(request)
    _check_media_type(request, accepted)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidJson("Request body is not valid UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput.of("body", "must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(_problems(error)) from None


def _query_values(
    request: web.Request,
    names: tuple[str, ...],
    problems: list[FieldProblem],
    *,
    limit_max: int = 500,
) -> dict[str, object]:
    """The first value of each of ``names`` the query gives; a repeated one is a problem.
    ``limit`` is read as a number here (pydantic's strict int takes no string)."""
    values: dict[str, object] = {}
    for name in names:
        given = request.query.getall(name, [])
        if len(given) > 1:
            problems.append({"field": name, "message": "must be given at most once"})
        elif given:
            values[name] = given[0]
    limit = values.get("limit")
    if limit is not None:
        if _LIMIT_DIGITS.fullmatch(str(limit)) is None:
            message = f"must be an integer from 1 to {limit_max}"
            problems.append({"field": "limit", "message": message})
            del values["limit"]
        else:
            values["limit"] = int(str(limit))
    return values


def _validated(
    model: type[Model], values: dict[str, object], problems: list[FieldProblem]
) -> Model:
    try:
        query = model.model_validate(values)
    except ValidationError as error:
        problems.extend(_problems(error))
    if problems:
        raise InvalidInput(problems)
    return query


def list_query_of(request: web.Request) -> ListQuery:
    """The listing's parameters; unknown ones are ignored, a repeated known one is 422."""
    problems: list[FieldProblem] = []
    values = _query_values(request, _LIST_PARAMETERS, problems)
    completed = values.get("completed")
    if completed is not None:
        if completed not in _BOOLEANS:
            problems.append({"field": "completed", "message": "must be true or false"})
        values["completed"] = _BOOLEANS.get(str(completed))
    for name in _LIST_PARAMETERS_LISTED:
        if name in values:  # comma-separated; ListQuery checks each member and the count
            values[name] = tuple(str(values[name]).split(","))
    for name in _LIST_PARAMETERS_TIMED:
        if " " in str(values.get(name, "")):
            # A "+" of an offset that was not percent-encoded arrives as a space: say so,
            # since the client's text looks right to its author.
            problems.append({"field": name, "message": _PLUS_AS_SPACE})
            del values[name]
    return _validated(ListQuery, values, problems)


def tag_query_of(request: web.Request) -> TagQuery:
    """The tag listing's ``limit`` and ``cursor``, read like the task listing's."""
    problems: list[FieldProblem] = []
    return _validated(TagQuery, _query_values(request, _PAGE_PARAMETERS, problems), problems)


def trash_query_of(request: web.Request) -> TrashQuery:
    """The trash listing's ``limit`` and ``cursor``, read like the task listing's."""
    problems: list[FieldProblem] = []
    values = _query_values(request, _PAGE_PARAMETERS, problems, limit_max=TRASH_LIMIT_MAX)
    return _validated(TrashQuery, values, problems)


def changes_query_of(request: web.Request) -> ChangesQuery:
    """The change feed's ``since`` and ``limit``; an empty ``since`` is 422."""
    problems: list[FieldProblem] = []
    values = _query_values(request, ("since", "limit"), problems)
    return _validated(ChangesQuery, values, problems)
