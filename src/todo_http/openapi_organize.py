"""The OpenAPI pieces of "Organizing tasks": the schemas of ``due_at``, ``priority``,
``tags``, ``recurrence``, ``time_zone``, ``completed_at`` and ``next_occurrence_id``,
the listing's filters, and ``GET /{user_id}/tags``.

Kept apart from ``openapi.py`` (which assembles the document) because these schemas
carry their own reasoning. Like ``title``, each input schema is meant to be exactly as
strict as the server in both directions, since schemathesis checks both:

``due_at`` (and ``due_min``/``due_max``)
    One pattern for RFC 3339 with seconds and an offset, ``T``/``Z`` in either case,
    0-6 fractional digits, each component in its range, days per month (29 February
    in leap years only). On 0001-01-01 and 9999-12-31 it takes only offsets that keep
    the time in range in every case (a narrowing: ``0001-01-01T05:00:00+01:00`` is
    valid but not described).
``tags`` (and the ``tag`` filter)
    Each item is stripped like a title and must then be 1-40 code points without NUL
    or comma (lower-casing that changes a tag's length, as with ``İ``, is left to the
    server).
``time_zone``
    The enum of the zone names the server accepts (``localtime`` excluded).
a recurrence without ``due_at``
    ``if``/``then`` on the create and replace bodies, and on a patch that sets both; a
    patch that sets ``recurrence`` alone depends on the stored task (422 after 404 and
    412), which no schema can know.
"""

from __future__ import annotations

from typing import Any, Final, get_args

from todo_core.models import (
    PRIORITIES,
    TAG_MAX,
    TAGS_MAX,
    TIME_ZONE_MAX,
    SortOrder,
    time_zones,
)
from todo_core.recurrence import RECURRENCES

__all__ = [
    "DUE_AT_PATTERN",
    "LIST_SORTS",
    "input_properties",
    "organize_parameters",
    "organize_schemas",
    "organize_task_properties",
    "recurrence_needs_due",
]

LIST_SORTS: Final = get_args(SortOrder)

_YEAR: Final = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_LEAP_YEAR: Final = (
    r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
)
_MONTH_DAY: Final = (
    r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
_TIME: Final = r"[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
_OFFSET: Final = r"(?:[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
_ZERO: Final = r"(?:[Zz]|[+-]00:00)"
# The first and last day of the range take only offsets that keep them in it.
DUE_AT_PATTERN: Final = (
    rf"^(?:(?!0001-01-01|9999-12-31)(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29){_TIME}"
    rf"(?:[Zz]|{_OFFSET})"
    rf"|0001-01-01{_TIME}(?:{_ZERO}|-(?:[01][0-9]|2[0-3]):[0-5][0-9])"
    rf"|9999-12-31{_TIME}(?:{_ZERO}|\+(?:[01][0-9]|2[0-3]):[0-5][0-9]))$"
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _tag_pattern(whitespace: str) -> str:
    edge = rf"[^\x00,{whitespace}]"
    return rf"^[{whitespace}]*{edge}(?:[^\x00,]{{0,{TAG_MAX - 2}}}{edge})?[{whitespace}]*$"


def organize_schemas(whitespace: str) -> dict[str, Any]:
    """The component schemas these fields share, by name; ``whitespace`` is the
    character class of what ``str.strip()`` removes."""
    stored_edge = rf"[^\x00,{whitespace}]"
    return {
        "DueAt": {
            "type": "string",
            "pattern": DUE_AT_PATTERN,
            "description": (
                "RFC 3339 with seconds and an offset (`T`/`Z` in either case), 0-6 fractional "
                "digits, between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z once "
                "in UTC. Answered in UTC with six fractional digits and `Z`."
            ),
            "examples": ["2026-12-24T18:00:00Z", "2026-12-24T19:00:00.5+01:00"],
        },
        "Priority": {"type": "string", "enum": list(PRIORITIES)},
        "Recurrence": {"type": "string", "enum": list(RECURRENCES)},
        "TimeZone": {
            "type": "string",
            "enum": sorted(time_zones()),
            "maxLength": TIME_ZONE_MAX,
            "description": "An IANA time zone name (zoneinfo); governs recurrence arithmetic.",
        },
        "TagInput": {
            "type": "string",
            "pattern": _tag_pattern(whitespace),
            "description": (
                f"Stripped (str.strip()) and lower-cased, then 1-{TAG_MAX} code points "
                "with no NUL and no comma."
            ),
        },
        "Tag": {
            "type": "string",
            "minLength": 1,
            "maxLength": TAG_MAX,
            "pattern": rf"^{stored_edge}(?:[^\x00,]*{stored_edge})?$",
        },
        "TagCount": {
            "type": "object",
            "additionalProperties": False,
            "required": ["tag", "count"],
            "properties": {
                "tag": _ref("Tag"),
                "count": {"type": "integer", "minimum": 1},
            },
        },
    }


def organize_task_properties() -> dict[str, Any]:
    """The new members of ``Task`` as answered (all required)."""
    nullable_timestamp = {"anyOf": [_ref("Timestamp"), {"type": "null"}]}
    return {
        "due_at": nullable_timestamp,
        "priority": _ref("Priority"),
        "tags": {"type": "array", "maxItems": TAGS_MAX, "uniqueItems": True, "items": _ref("Tag")},
        "recurrence": {"anyOf": [_ref("Recurrence"), {"type": "null"}]},
        "time_zone": _ref("TimeZone"),
        "completed_at": {
            **nullable_timestamp,
            "readOnly": True,
            "description": "When the task was last completed; null while it is not.",
        },
        "next_occurrence_id": {
            "anyOf": [
                {
                    "type": "string",
                    "format": "uuid",
                    "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
                },
                {"type": "null"},
            ],
            "readOnly": True,
            "description": "The task its completion created (recurring tasks only).",
        },
    }


def input_properties(*, patch: bool) -> dict[str, Any]:
    """The new members of the request bodies; a patch has no defaults, and only
    ``due_at`` and ``recurrence`` of them may be null there."""
    tags = {"type": "array", "maxItems": TAGS_MAX, "items": _ref("TagInput")}
    properties: dict[str, Any] = {
        "due_at": {"anyOf": [_ref("DueAt"), {"type": "null"}]},
        "priority": _ref("Priority"),
        "tags": tags,
        "recurrence": {"anyOf": [_ref("Recurrence"), {"type": "null"}]},
        "time_zone": _ref("TimeZone"),
    }
    if not patch:
        defaults: dict[str, object] = {
            "due_at": None,
            "priority": "none",
            "tags": [],
            "recurrence": None,
            "time_zone": "UTC",
        }
        for name, default in defaults.items():
            properties[name] = {**properties[name], "default": default}
    return properties


def recurrence_needs_due(*, patch: bool) -> dict[str, Any]:
    """``if``/``then``: a body with a recurrence has a ``due_at`` (a patch only when it
    sets both; otherwise the stored task decides)."""
    required = ["recurrence", "due_at"] if patch else ["recurrence"]
    return {
        "if": {"required": required, "properties": {"recurrence": {"type": "string"}}},
        "then": {"required": ["due_at"], "properties": {"due_at": {"type": "string"}}},
    }


def organize_parameters(query: Any) -> dict[str, Any]:
    """The listing's new query parameters, built with ``openapi.py``'s ``query``."""

    def listed(name: str, description: str, items: dict[str, Any], **bounds: Any) -> Any:
        parameter = query(
            name, description, {"type": "array", "minItems": 1, "items": items, **bounds}
        )
        return {**parameter, "style": "form", "explode": False}

    return {
        "PriorityFilter": listed(
            "priority",
            "Comma-separated distinct levels: tasks with any of them (`high,medium`).",
            _ref("Priority"),
            maxItems=len(PRIORITIES),
            uniqueItems=True,
        ),
        "TagFilter": listed(
            "tag",
            f"Comma-separated tags, each normalised like a task's (repeats ignored): tasks "
            f"that carry every one of them. At most {TAGS_MAX} as sent.",
            _ref("TagInput"),
            maxItems=TAGS_MAX,
        ),
        "DueMin": query(
            "due_min",
            "Tasks with `due_at` at or after this time (send `+` as `%2B`); a task without "
            "`due_at` never matches.",
            _ref("DueAt"),
        ),
        "DueMax": query(
            "due_max",
            "Tasks with `due_at` before this time (send `+` as `%2B`); a task without "
            "`due_at` never matches. An empty range answers an empty page.",
            _ref("DueAt"),
        ),
    }
