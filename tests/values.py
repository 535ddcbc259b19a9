"""Values tests build and check tasks with: users, text, timestamps and a store clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from hypothesis import strategies as st

# Two users for isolation tests; any valid user ids would do.
ALICE = "alice"
BOB = "bob"

# A serialised timestamp: RFC 3339, UTC, six fractional digits, "Z".
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")

# Any code point a text field may hold: everything but NUL and the surrogates.
VALID_CHARACTERS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")


# A fixed, recognisable instant far from "now", so tests never depend on the real clock.
EPOCH_2024 = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


class SteppingClock:
    """A store clock that starts at ``start`` and moves by ``step`` on every call.

    ``step`` may be zero (a stalled clock) or negative (a clock that goes backwards).
    """

    def __init__(self, start: datetime = EPOCH_2024, step: timedelta = timedelta(0)) -> None:
        self.now = start
        self.step = step
        self.calls = 0

    def __call__(self) -> datetime:
        moment = self.now
        self.now += self.step
        self.calls += 1
        return moment


# The new task fields of "Organizing tasks". Due times cluster on a few instants (ties
# decide listing order) and spread over centuries, with a bias to the range's edges.
DUE_INSTANTS = (
    datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
    datetime(2026, 12, 24, 18, 0, tzinfo=UTC),
    datetime(2027, 1, 31, 9, 0, 0, 500000, tzinfo=UTC),
)
DUE_ATS = st.one_of(
    st.sampled_from(DUE_INSTANTS),
    st.datetimes(
        min_value=datetime(1900, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
        max_value=datetime(2200, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
)
OPTIONAL_DUE_ATS = st.one_of(st.none(), DUE_ATS)
PRIORITY_LEVELS = st.sampled_from(["none", "low", "medium", "high"])
RECURRENCES = st.sampled_from(["daily", "weekly", "monthly", "yearly"])
# Zones with and without daylight saving, on both sides of UTC, and one a half hour off.
TIME_ZONES = st.sampled_from(
    ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
)
# Raw tags as a client sends them: few distinct ones after normalisation, so tasks
# share them, spelled with padding and in any case.
_TAG_WORDS = st.sampled_from(["home", "work", "été", "x", "Ünï code", "😀"])
RAW_TAGS = st.builds(
    lambda pad, word, upper: pad + (word.upper() if upper else word) + pad,
    st.sampled_from(["", " ", "\t"]),
    _TAG_WORDS,
    st.booleans(),
)
TAG_LISTS = st.lists(RAW_TAGS, max_size=5)

# What a task holds for each field a write leaves out: the writable ones but title, and
# the organizing ones with the read-only pair (what every answer carries by default).
WRITABLE_DEFAULTS: Final[dict[str, Any]] = {
    "description": None,
    "completed": False,
    "due_at": None,
    "priority": "none",
    "tags": [],
    "recurrence": None,
    "time_zone": "UTC",
}
ORGANIZING_DEFAULTS: Final[dict[str, Any]] = {
    **{name: WRITABLE_DEFAULTS[name] for name in ("due_at", "priority", "tags", "recurrence")},
    "time_zone": "UTC",
    "completed_at": None,
    "next_occurrence_id": None,
}
# The last day due_at allows: completing a task due then makes no successor.
LAST_DAY: Final = datetime(9999, 12, 31, 12, 0, tzinfo=UTC)


def normalized_tags(raw: list[str]) -> list[str]:
    """Tags as the contract stores them: stripped, lower-cased, first of repeats kept."""
    return list(dict.fromkeys(tag.strip().lower() for tag in raw))
