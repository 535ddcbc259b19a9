"""The validated shapes of tasks: what a store accepts and what it returns.

Input models are strict: building one from bad data raises ``pydantic.ValidationError``,
so nothing a database could reject (NUL, lone surrogates, out-of-range numbers) ever
reaches a driver, and SQLite and PostgreSQL see identical data.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, NamedTuple, Self
from uuid import UUID, uuid4

from pydantic import (
    AfterValidator,
    BaseModel,
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

from todo_core.timestamps import rfc3339

__all__ = [
    "ListQuery",
    "Page",
    "SortOrder",
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

SortOrder = Literal["created_at", "-created_at", "updated_at", "-updated_at", "title", "-title"]


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


class _TaskFields(BaseModel):
    model_config = _INPUT

    title: Title
    description: Description | None = None
    completed: StrictBool = False


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

    @model_validator(mode="after")
    def _meaningful(self) -> Self:
        if not self.model_fields_set:
            raise PydanticCustomError("patch_empty", "a patch must change at least one field")
        for name in ("title", "completed"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise PydanticCustomError("patch_null", "{field} must not be null", {"field": name})
        return self

    def changes(self) -> dict[str, Any]:
        """The fields this patch sets, with their new values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class ListQuery(BaseModel):
    """What to list: filters, order, page size and where the previous page ended.

    ``q`` matches a case-insensitive substring (Python's ``str.lower()``) of the title
    or the description; an empty ``q`` means no filter.
    """

    model_config = _INPUT

    completed: StrictBool | None = None
    q: Annotated[StrictStr, AfterValidator(encodable_text)] | None = None
    sort: SortOrder = "-created_at"
    limit: Annotated[StrictInt, Field(ge=1, le=500)] = 100
    cursor: StrictStr | None = None

    @model_validator(mode="after")
    def _empty_q_is_no_filter(self) -> Self:
        if self.q == "":
            object.__setattr__(self, "q", None)
        return self


class Task(BaseModel):
    """A stored task. Stores build these from trusted rows; it is never client input."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime
    version: int

    @field_serializer("created_at", "updated_at", when_used="json")
    def _timestamp(self, moment: datetime) -> str:
        return rfc3339(moment)


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
        title=data.title,
        description=data.description,
        completed=data.completed,
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
    new dict the caller may change, with exactly ``Task``'s fields: ``id`` is a
    ``UUID`` (possibly a driver's subclass of it), the timestamps are aware datetimes.
    """

    items: list[dict[str, Any]]
    next_cursor: str | None
