"""The validated shapes of tasks: what a store accepts and what it returns.

Input models are strict: building one from bad data raises ``pydantic.ValidationError``,
so nothing a database could reject (NUL, lone surrogates, out-of-range numbers) ever
reaches a driver, and SQLite and PostgreSQL see identical data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Final, Literal, NamedTuple, Self
from uuid import UUID, uuid4
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    WithJsonSchema,
    field_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from todo_core.errors import InvalidPatch
from todo_core.recurrence import Recurrence
from todo_core.timestamps import DUE_MAX, DUE_MIN, parse_rfc3339, rfc3339

__all__ = [
    "PRIORITIES",
    "ListQuery",
    "Page",
    "Priority",
    "Recurrence",
    "SortOrder",
    "TagCount",
    "TagPage",
    "TagQuery",
    "Task",
    "TaskCreate",
    "TaskPatch",
    "TaskReplace",
    "UserId",
    "validate_user_id",
]

TITLE_MAX = 200
DESCRIPTION_MAX = 1000
USER_ID_PATTERN = r"^[A-Za-z0-9._@-]{1,64}$"
_USER_ID = re.compile(USER_ID_PATTERN)

SortOrder = Literal[
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
    "title",
    "-title",
    "due_at",
    "-due_at",
    "priority",
    "-priority",
]
Priority = Literal["none", "low", "medium", "high"]
PRIORITIES: Final[tuple[Priority, ...]] = ("none", "low", "medium", "high")
"""Every priority, lowest first: the order ``sort=priority`` lists them in."""
TAGS_MAX = 20
TAG_MAX = 40
TIME_ZONE_MAX = 64


def encodable_text(value: str) -> str:
    # PostgreSQL text cannot hold U+0000 and SQLite truncates at it; a lone surrogate
    # cannot be encoded as UTF-8 at all. Rejecting both here keeps the backends alike.
    if "\x00" in value:
        raise PydanticCustomError("text_nul", "must not contain the NUL character (U+0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError(
            "text_surrogate", "must not contain lone surrogate code points"
        ) from None
    return value


def _stripped_title(value: str) -> str:
    # str.strip(), not pydantic's strip_whitespace: the contract defines whitespace as
    # what Python strips, which includes U+001C..U+001F that Unicode's White_Space lacks.
    value = encodable_text(value).strip()
    if not value:
        raise PydanticCustomError("title_empty", "must not be empty or only whitespace")
    if len(value) > TITLE_MAX:
        raise PydanticCustomError(
            "title_too_long",
            "must be at most {max} characters after stripping whitespace",
            {"max": TITLE_MAX},
        )
    return value


def _bounded_description(value: str) -> str:
    encodable_text(value)
    if len(value) > DESCRIPTION_MAX:
        raise PydanticCustomError(
            "description_too_long",
            "must be at most {max} characters",
            {"max": DESCRIPTION_MAX},
        )
    return value


def _due_at(value: object) -> object:
    # A string is parsed by the contract's own rules (RFC 3339 with seconds and an
    # offset, at most microseconds, within DUE_MIN..DUE_MAX), never pydantic's laxer
    # ISO 8601; the library may also pass an aware datetime, checked against the same.
    if isinstance(value, str):
        try:
            return parse_rfc3339(value)
        except ValueError as error:
            raise PydanticCustomError("due_at_format", str(error)) from None
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise PydanticCustomError("due_at_naive", "must carry a time zone offset")
        if not DUE_MIN <= value <= DUE_MAX:
            raise PydanticCustomError("due_at_range", "is outside the years 0001 to 9999 in UTC")
        return value.astimezone(DUE_MIN.tzinfo)
    raise PydanticCustomError("due_at_type", "must be an RFC 3339 date-time string")


def normalized_tag(value: str) -> str:
    """A tag as stored and matched: stripped and lower-cased, then checked."""
    tag = encodable_text(value).strip().lower()
    if not tag or len(tag) > TAG_MAX:
        raise PydanticCustomError(
            "tag_length",
            "each tag must be 1 to {max} characters after stripping and lower-casing",
            {"max": TAG_MAX},
        )
    if "," in tag:
        raise PydanticCustomError("tag_comma", "a tag must not contain a comma")
    return tag


def _distinct_tags(tags: list[str]) -> list[str]:
    # dict keeps the first of each and the order they came in.
    return list(dict.fromkeys(tags))


@cache
def time_zones() -> frozenset[str]:
    """Every name ``time_zone`` accepts: Python's ``zoneinfo`` keys but ``localtime``."""
    # Reading the zone database takes milliseconds: once per process. "localtime" is the
    # server's own zone, not a place, and would make recurrence differ by host.
    return frozenset(available_timezones() - {"localtime"})


def _known_time_zone(value: str) -> str:
    if not 1 <= len(value) <= TIME_ZONE_MAX or value not in time_zones():
        raise PydanticCustomError(
            "time_zone_unknown", "must be an IANA time zone name such as Europe/Paris or UTC"
        )
    return value


Title = Annotated[
    StrictStr,
    AfterValidator(_stripped_title),
    WithJsonSchema({"type": "string", "minLength": 1, "pattern": r"\S"}),
]
Description = Annotated[
    StrictStr,
    AfterValidator(_bounded_description),
    WithJsonSchema({"type": "string", "maxLength": DESCRIPTION_MAX}),
]
UserId = Annotated[StrictStr, Field(pattern=USER_ID_PATTERN)]
DueAt = Annotated[
    datetime,
    BeforeValidator(_due_at),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Tag = Annotated[StrictStr, AfterValidator(normalized_tag)]
Tags = Annotated[
    list[Tag],
    Field(max_length=TAGS_MAX),
    AfterValidator(_distinct_tags),
    WithJsonSchema(
        {"type": "array", "maxItems": TAGS_MAX, "items": {"type": "string", "minLength": 1}}
    ),
]
TimeZone = Annotated[
    StrictStr,
    AfterValidator(_known_time_zone),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": TIME_ZONE_MAX}),
]

_user_id_adapter: TypeAdapter[str] = TypeAdapter(UserId)


def validate_user_id(user_id: str) -> str:
    """Return ``user_id`` if it is 1-64 characters of ``A-Z a-z 0-9 . _ @ -``.

    Raises:
        pydantic.ValidationError: it is not.
    """
    if type(user_id) is str and _USER_ID.fullmatch(user_id):
        return user_id  # the common case, without building a validator call
    return _user_id_adapter.validate_python(user_id)


_INPUT = ConfigDict(strict=True, extra="forbid", frozen=True)


_RECURRENCE_WITHOUT_DUE: Final = "a recurring task must have a due_at"


def _recurrence_needs_due(recurrence: object, due_at: object) -> None:
    if recurrence is not None and due_at is None:
        raise PydanticCustomError(
            "recurrence_without_due", _RECURRENCE_WITHOUT_DUE, {"field": "recurrence"}
        )


class _TaskFields(BaseModel):
    model_config = _INPUT

    title: Title
    description: Description | None = None
    completed: StrictBool = False
    due_at: DueAt | None = None
    priority: Priority = "none"
    tags: Tags = []
    recurrence: Recurrence | None = None
    time_zone: TimeZone = "UTC"

    @model_validator(mode="after")
    def _recurring_tasks_are_due(self) -> Self:
        _recurrence_needs_due(self.recurrence, self.due_at)
        return self


class TaskCreate(_TaskFields):
    """A new task: ``title`` required; ``description`` defaults to None, ``completed`` to False."""


class TaskReplace(_TaskFields):
    """A full replacement: omitted ``description`` becomes None, omitted ``completed`` False."""


class TaskPatch(BaseModel):
    """A JSON merge patch: only the fields given change; ``description=None`` clears it.

    An omitted field is different from an explicit ``None``, and only ``description``
    may be ``None``. At least one field must be given.
    """

    model_config = _INPUT

    title: Title | None = None
    description: Description | None = None
    completed: StrictBool | None = None
    due_at: DueAt | None = None
    priority: Priority | None = None
    tags: Tags | None = None
    recurrence: Recurrence | None = None
    time_zone: TimeZone | None = None

    @model_validator(mode="after")
    def _meaningful(self) -> Self:
        if not self.model_fields_set:
            raise PydanticCustomError("patch_empty", "a patch must change at least one field")
        for name in self.model_fields_set - _NULLABLE_IN_PATCH:
            if getattr(self, name) is None:
                raise PydanticCustomError("patch_null", "{field} must not be null", {"field": name})
        if {"due_at", "recurrence"} <= self.model_fields_set:
            _recurrence_needs_due(self.recurrence, self.due_at)
        return self

    def changes(self) -> dict[str, Any]:
        """The fields this patch sets, with their new values."""
        return {name: getattr(self, name) for name in self.model_fields_set}

    def applied_to(self, task: Task) -> dict[str, Any]:
        """The writable fields of ``task`` once this patch is merged into them.

        Raises:
            InvalidPatch: the result would be a recurring task without a ``due_at`` (a
                rule only the stored task can decide).
        """
        merged = {name: getattr(task, name) for name in _WRITABLE} | self.changes()
        if merged["recurrence"] is not None and merged["due_at"] is None:
            field = "due_at" if "due_at" in self.model_fields_set else "recurrence"
            raise InvalidPatch(field, _RECURRENCE_WITHOUT_DUE)
        return merged


def _distinct_priorities(levels: tuple[Priority, ...]) -> tuple[Priority, ...]:
    if not levels:
        raise PydanticCustomError("priority_empty", "must name at least one priority")
    if len(set(levels)) != len(levels):
        raise PydanticCustomError("priority_repeated", "must not name a priority twice")
    return tuple(sorted(levels, key=PRIORITIES.index))


def _tag_set(tags: tuple[str, ...]) -> tuple[str, ...]:
    # Every tag must be carried, so the order asked in does not matter: sorted, a cursor
    # of tag=b,a serves tag=a,b.
    if not tags:
        raise PydanticCustomError("tag_empty", "must name at least one tag")
    return tuple(sorted(set(tags)))


class ListQuery(BaseModel):
    """What to list: filters, order, page size and where the previous page ended.

    ``q`` matches a case-insensitive substring (Python's ``str.lower()``) of the title
    or the description; an empty ``q`` means no filter. ``priority`` keeps tasks of any
    of its levels, ``tag`` those that carry every one of its tags (normalised like a
    task's), ``due_min``/``due_max`` those due at or after / before a time (a task
    without ``due_at`` matches neither). Lists are held in one canonical order, so two
    spellings of the same filter are the same query (and share cursors).
    """

    model_config = _INPUT

    completed: StrictBool | None = None
    q: Annotated[StrictStr, AfterValidator(encodable_text)] | None = None
    priority: Annotated[tuple[Priority, ...], AfterValidator(_distinct_priorities)] | None = None
    tag: Annotated[tuple[Tag, ...], Field(max_length=TAGS_MAX), AfterValidator(_tag_set)] | None = (
        None
    )
    due_min: DueAt | None = None
    due_max: DueAt | None = None
    sort: SortOrder = "-created_at"
    limit: Annotated[StrictInt, Field(ge=1, le=500)] = 100
    cursor: StrictStr | None = None

    @model_validator(mode="after")
    def _empty_q_is_no_filter(self) -> Self:
        if self.q == "":
            object.__setattr__(self, "q", None)
        return self


class TagQuery(BaseModel):
    """Which page of a user's tags to list: page size, and where the previous one ended."""

    model_config = _INPUT

    limit: Annotated[StrictInt, Field(ge=1, le=500)] = 100
    cursor: StrictStr | None = None


@dataclass(frozen=True, slots=True)
class TagCount:
    """A tag, and how many of the user's tasks carry it."""

    tag: str
    count: int


class TagPage(NamedTuple):
    """One page of a user's tags in code point order; ``next_cursor`` as for tasks."""

    items: list[TagCount]
    next_cursor: str | None


class Task(BaseModel):
    """A stored task. Stores build these from trusted rows; it is never client input."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    user_id: str
    title: str
    description: str | None
    completed: bool
    due_at: datetime | None
    priority: Priority
    tags: list[str]
    recurrence: Recurrence | None
    time_zone: str
    completed_at: datetime | None
    next_occurrence_id: UUID | None
    created_at: datetime
    updated_at: datetime
    version: int

    @field_serializer("created_at", "updated_at", when_used="json")
    def _timestamp(self, moment: datetime) -> str:
        return rfc3339(moment)

    @field_serializer("due_at", "completed_at", when_used="json")
    def _optional_timestamp(self, moment: datetime | None) -> str | None:
        return None if moment is None else rfc3339(moment)


_WRITABLE: Final = frozenset(_TaskFields.model_fields)
"""The fields a client writes; the rest of ``Task`` the store sets."""
_NULLABLE_IN_PATCH: Final = frozenset({"description", "due_at", "recurrence"})


_TASK_FIELDS = frozenset(Task.model_fields)
# Bound once: looked up on every call, they cost a quarter of trusted_task's time.
_new_object = object.__new__
_set_attribute = object.__setattr__


def trusted_task(values: dict[str, Any]) -> Task:
    """A ``Task`` from a stored row's ``values``, which must hold exactly its fields.

    What ``Task.model_construct`` does for such input, at a third of its cost (which
    counts on list pages): rows come from our own table, so there is nothing to check.
    """
    task = _new_object(Task)
    _set_attribute(task, "__dict__", values)
    _set_attribute(task, "__pydantic_fields_set__", _TASK_FIELDS)
    _set_attribute(task, "__pydantic_extra__", None)
    _set_attribute(task, "__pydantic_private__", None)
    return task


def new_task(user_id: str, data: TaskCreate, now: datetime) -> Task:
    """The task that ``data`` creates for ``user_id`` at ``now``: a new id, version 1.

    Built without validating again: ``data`` is a validated model, and ``user_id`` was
    checked by the store that calls this.
    """
    return Task.model_construct(
        id=uuid4(),
        user_id=user_id,
        **data.model_dump(),
        completed_at=now if data.completed else None,
        next_occurrence_id=None,
        created_at=now,
        updated_at=now,
        version=1,
    )


class Page(BaseModel):
    """One page of a listing; pass ``next_cursor`` back in ``ListQuery.cursor`` for the next."""

    model_config = ConfigDict(frozen=True)

    items: list[Task]
    next_cursor: str | None


class FieldsPage(NamedTuple):
    """A page of a listing as each task's field values by name, without the models.

    For code that only serializes a page (the HTTP API): building 50 ``Task`` models
    to take their values apart again was a fifth of a listing's cost. Each item is a
    new dict the caller may change, with exactly ``Task``'s fields: ``id`` and
    ``next_occurrence_id`` are ``UUID``s (possibly a driver's subclass of it), the
    timestamps are aware datetimes.
    """

    items: list[dict[str, Any]]
    next_cursor: str | None
