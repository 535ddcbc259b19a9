"""What the store state machine (test_stateful.py) sends: titles, descriptions, creates,
patches with the organizing fields, expected versions, and inputs the models must refuse.

Kept apart from the machine so that the machine reads as rules and checks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from hypothesis import strategies as st

from tests.values import (
    DUE_ATS,
    LAST_DAY,
    PRIORITY_LEVELS,
    RECURRENCES,
    TAG_LISTS,
    TIME_ZONES,
    WRITABLE_DEFAULTS,
)
from todo_core import ListQuery, TaskCreate, TaskPatch, TaskReplace

TITLE_MAX = 200

# ---------------------------------------------------------------------------------------
# Text: anything but NUL and lone surrogates, with a bias towards the characters where
# backends and case mappings disagree: emoji and ZWJ sequences, combining marks, RTL
# text and marks, letters whose lower-casing changes length or depends on context,
# LIKE wildcards, and the whitespace that str.strip() removes.

_SPECIAL = (
    "😀",
    "👩\u200d💻",
    "🇺🇦",
    "e\u0301",
    "\u0301",
    "שלום",
    "مرحبا",
    "\u202e",
    "\u200f",
    "İ",
    "ß",
    "ẞ",
    "ΑΣ",
    "ς",
    "ǅ",
    "ﬁ",
    "Å",
    "%",
    "_",
    "\\",
    "a",
    "A",
    "b",
    "B",
    " ",
    "\t",
    "\x1c",
    "\u3000",
    "\U0010ffff",
)
_CHARACTERS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
PIECES = st.one_of(_CHARACTERS, st.sampled_from(_SPECIAL))
_WHITESPACE = st.sampled_from(["", " ", "\t\n", "\u3000", "\x1c\x1f", "\u00a0", "\u2028"])


def _title_core(text: str) -> str:
    core = text.strip()[:TITLE_MAX].strip()
    return core or "untitled"


_TITLE_CORES = st.one_of(
    st.sampled_from(["a", "A", "b", "a b", "Task"]),  # repeated titles: ties broken by id
    st.lists(PIECES, min_size=1, max_size=12).map("".join).map(_title_core),
    st.text(_CHARACTERS, min_size=TITLE_MAX - 5, max_size=TITLE_MAX + 30).map(_title_core),
)
# Raw titles: after str.strip() they are 1..200 code points.
TITLES = st.builds(
    lambda left, core, right: left + core + right, _WHITESPACE, _TITLE_CORES, _WHITESPACE
)
DESCRIPTIONS = st.one_of(
    st.none(),
    st.sampled_from(["", "  ", " padded\t"]),  # never stripped
    st.lists(PIECES, max_size=20).map("".join),
    st.text(st.sampled_from("aé😀 ß"), min_size=1000, max_size=1000),
)
# The organizing fields. Some tasks are due on the last day due_at allows, so that
# completing them makes no successor.
DUE_TIMES = st.one_of(DUE_ATS, st.just(LAST_DAY))
ORGANIZING = {
    "due_at": st.one_of(st.none(), DUE_TIMES),
    "priority": PRIORITY_LEVELS,
    "tags": TAG_LISTS,
    "recurrence": st.one_of(st.none(), RECURRENCES),
    "time_zone": TIME_ZONES,
}
# Every field a write may set, in the order a task holds them.
WRITABLE = ("title", "description", "completed", *ORGANIZING)
DEFAULTS: Final = WRITABLE_DEFAULTS


DEFAULT_DUE = datetime(2026, 12, 24, 18, 0, tzinfo=UTC)


def _due_if_recurring(fields: dict[str, Any]) -> dict[str, Any]:
    """A task with a recurrence needs a due_at: give it one (the models refuse it
    without, and INVALID_INPUTS checks that)."""
    if fields.get("recurrence") is not None and fields.get("due_at") is None:
        return fields | {"due_at": DEFAULT_DUE}
    return fields


CREATES = st.fixed_dictionaries(
    {"title": TITLES},
    optional={"description": DESCRIPTIONS, "completed": st.booleans(), **ORGANIZING},
).map(_due_if_recurring)


def _not_self_contradictory(fields: dict[str, Any]) -> dict[str, Any]:
    # A patch that names a recurrence and a null due_at is refused by the model itself;
    # one that leaves the stored task so is the store's to refuse (InvalidPatch).
    if fields.get("recurrence") is not None and "due_at" in fields and fields["due_at"] is None:
        return {name: value for name, value in fields.items() if name != "recurrence"}
    return fields


PATCHES = (
    st.fixed_dictionaries(
        {},
        optional={
            "title": TITLES,
            "description": DESCRIPTIONS,
            "completed": st.booleans(),
            **ORGANIZING,
        },
    )
    .map(_not_self_contradictory)
    .filter(bool)
)
# How a write states the version it expects: not at all, the current one, one off, or
# any integer (also ones no database column could hold).
VERSIONS = st.one_of(
    st.none(),
    st.sampled_from(["current", "current", "previous", "next"]),
    st.integers(),
)
CASINGS: dict[str, Callable[[str], str]] = {
    "as is": str,
    "lower": str.lower,
    "upper": str.upper,
    "swapcase": str.swapcase,
    "casefold": str.casefold,
    "title": str.title,
}


def substrings(text: str) -> st.SearchStrategy[str]:
    return st.integers(0, len(text) - 1).flatmap(
        lambda start: st.integers(start + 1, len(text)).map(lambda end: text[start:end])
    )


# Inputs the models must refuse; the invariant then shows that the store did not change.
INVALID_INPUTS: dict[str, Callable[[], object]] = {
    "NUL in title": lambda: TaskCreate(title="a\x00b"),
    "NUL in description": lambda: TaskReplace(title="a", description="\x00"),
    "201-character title": lambda: TaskCreate(title="x" * (TITLE_MAX + 1)),
    "201 characters inside whitespace": lambda: TaskCreate(title=" " + "é" * 201 + " "),
    "whitespace-only title": lambda: TaskCreate(title=" \t\u3000\x1c"),
    "lone surrogate": lambda: TaskCreate(title="a\ud800"),
    "1001-character description": lambda: TaskReplace(title="a", description="d" * 1001),
    "empty patch": lambda: TaskPatch(),
    "empty patch from a dict": lambda: TaskPatch.model_validate({}),
    "null title in patch": lambda: TaskPatch(title=None),
    "null completed in patch": lambda: TaskPatch(completed=None),
    "string boolean": lambda: TaskCreate.model_validate({"title": "a", "completed": "true"}),
    "unknown field": lambda: TaskPatch.model_validate({"done": True}),
    "read-only field": lambda: TaskCreate.model_validate({"title": "a", "id": "x"}),
    "limit 0": lambda: ListQuery(limit=0),
    "limit 501": lambda: ListQuery(limit=501),
    "string limit": lambda: ListQuery.model_validate({"limit": "5"}),
    "unknown sort": lambda: ListQuery.model_validate({"sort": "id"}),
    "recurrence without due_at": lambda: TaskCreate(title="a", recurrence="daily"),
    "patch of a recurrence and a null due_at": lambda: TaskPatch(recurrence="daily", due_at=None),
    "21 tags": lambda: TaskCreate(title="a", tags=["t"] * 21),
    "41-character tag": lambda: TaskCreate(title="a", tags=["t" * 41]),
    "tag with a comma": lambda: TaskPatch(tags=["a,b"]),
    "blank tag": lambda: TaskReplace(title="a", tags=[" "]),
    "unknown priority": lambda: TaskCreate.model_validate({"title": "a", "priority": "High"}),
    "localtime": lambda: TaskCreate(title="a", time_zone="localtime"),
    "a zone path": lambda: TaskPatch(time_zone="/etc/localtime"),
    "naive due_at": lambda: TaskCreate(title="a", due_at=datetime(2026, 1, 1)),  # noqa: DTZ001
    "completed_at in a body": lambda: TaskPatch.model_validate({"completed_at": None}),
    "next_occurrence_id in a body": lambda: TaskCreate.model_validate(
        {"title": "a", "next_occurrence_id": None}
    ),
    "repeated priority filter": lambda: ListQuery(priority=("low", "low")),
    "tag filter with a comma": lambda: ListQuery(tag=("a,b",)),
}
BAD_USERS = ("", "bad user", "x" * 65, "ünïcode", "a/b", "a\x00")
