"""next_due and advance against a plain model: periods added on the wall clock, fold=0."""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from todo_core.recurrence import RECURRENCES, Recurrence, advance, next_due
from todo_core.timestamps import DUE_MAX, DUE_MIN

ZONES = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",  # DST moves by 30 minutes
    "Pacific/Apia",  # skipped 2011-12-30 entirely
]


def model_advance(
    due_at: datetime, recurrence: Recurrence, time_zone: str, periods: int
) -> datetime | None:
    """The contract's words as code: no shortcuts, None past the range."""
    zone = ZoneInfo(time_zone)
    wall = due_at.astimezone(zone).replace(tzinfo=None)
    try:
        if recurrence in ("daily", "weekly"):
            days = periods if recurrence == "daily" else 7 * periods
            wall += timedelta(days=days)
        else:
            months = periods if recurrence == "monthly" else 12 * periods
            year, month0 = divmod(wall.year * 12 + wall.month - 1 + months, 12)
            last_day = calendar.monthrange(year, month0 + 1)[1]
            wall = wall.replace(year=year, month=month0 + 1, day=min(wall.day, last_day))
        return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    except (OverflowError, ValueError):  # a year past 9999
        return None


def model_next_due(
    due_at: datetime, recurrence: Recurrence, time_zone: str, completed_at: datetime
) -> datetime | None:
    """Try n = 1, 2, ... until the candidate is later than ``completed_at``."""
    periods = 1
    while True:
        candidate = model_advance(due_at, recurrence, time_zone, periods)
        if candidate is None or candidate > completed_at:
            return candidate
        periods += 1


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)  # type: ignore[arg-type, misc]


def utc_datetimes(first: datetime, last: datetime) -> st.SearchStrategy[datetime]:
    """Aware UTC datetimes from ``first`` to ``last``."""
    return st.datetimes(
        min_value=first.replace(tzinfo=None), max_value=last.replace(tzinfo=None)
    ).map(lambda naive: naive.replace(tzinfo=UTC))


moments = utc_datetimes(utc(1990, 1, 1), utc(2040, 1, 1))
recurrences = st.sampled_from(RECURRENCES)
zones = st.sampled_from(ZONES)


@given(
    moments,
    st.timedeltas(min_value=timedelta(days=-30), max_value=timedelta(days=3 * 366)),
    recurrences,
    zones,
)
def test_next_due_matches_the_model(
    due_at: datetime, gap: timedelta, recurrence: Recurrence, time_zone: str
) -> None:
    completed_at = due_at + gap
    expected = model_next_due(due_at, recurrence, time_zone, completed_at)
    assert next_due(due_at, recurrence, time_zone, completed_at) == expected


@given(moments, recurrences, zones, st.integers(min_value=1, max_value=400))
def test_advance_matches_the_model(
    due_at: datetime, recurrence: Recurrence, time_zone: str, periods: int
) -> None:
    result = advance(due_at, recurrence, time_zone, periods)
    assert result == model_advance(due_at, recurrence, time_zone, periods)
    assert result.tzinfo is UTC


@given(
    utc_datetimes(utc(9990, 1, 1), utc(9999, 12, 30)),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3 * 366)),
    recurrences,
    zones,
)
def test_next_due_near_the_end_matches_the_model(
    due_at: datetime, gap: timedelta, recurrence: Recurrence, time_zone: str
) -> None:
    completed_at = due_at + min(gap, DUE_MAX - due_at)
    expected = model_next_due(due_at, recurrence, time_zone, completed_at)
    assert next_due(due_at, recurrence, time_zone, completed_at) == expected


@given(
    utc_datetimes(utc(1, 1, 1), utc(2026, 1, 1)),
    recurrences,
    zones,
)
def test_next_due_is_later_than_completion_and_one_period_past_it(
    due_at: datetime, recurrence: Recurrence, time_zone: str
) -> None:
    """Centuries of gap (beyond the model's reach): later than completion, by at most
    one period."""
    completed_at = utc(2026, 6, 1, 12)
    result = next_due(due_at, recurrence, time_zone, completed_at)
    assert result is not None
    assert result > completed_at
    assert result - completed_at <= timedelta(days=367)


@pytest.mark.parametrize(
    ("due_at", "recurrence", "time_zone", "completed_at", "expected"),
    [
        # Monthly clamps the day, always from the original date.
        (utc(2028, 1, 31, 10), "monthly", "UTC", utc(2028, 2, 1), utc(2028, 2, 29, 10)),
        (utc(2027, 1, 31, 10), "monthly", "UTC", utc(2027, 2, 1), utc(2027, 2, 28, 10)),
        (utc(2028, 1, 31, 10), "monthly", "UTC", utc(2028, 3, 1), utc(2028, 3, 31, 10)),
        (utc(2027, 1, 31, 10), "monthly", "UTC", utc(2027, 4, 1), utc(2027, 4, 30, 10)),
        # Yearly from Feb 29.
        (utc(2024, 2, 29, 8), "yearly", "UTC", utc(2024, 3, 1), utc(2025, 2, 28, 8)),
        (utc(2024, 2, 29, 8), "yearly", "UTC", utc(2027, 3, 1), utc(2028, 2, 29, 8)),
        # 02:30 Paris time the day before spring forward: the next 02:30 does not exist
        # and moves forward by the gap, to 03:30 CEST.
        (
            utc(2026, 3, 28, 1, 30),
            "daily",
            "Europe/Paris",
            utc(2026, 3, 28, 2),
            utc(2026, 3, 29, 1, 30),
        ),
        # 02:30 Paris the day before fall back: the next 02:30 happens twice; the first.
        (
            utc(2026, 10, 24, 0, 30),
            "daily",
            "Europe/Paris",
            utc(2026, 10, 24, 1),
            utc(2026, 10, 25, 0, 30),
        ),
        # 09:00 Paris stays 09:00 Paris across the change: 08:00Z in winter, 07:00Z after.
        (utc(2026, 3, 28, 8), "daily", "Europe/Paris", utc(2026, 3, 28, 9), utc(2026, 3, 29, 7)),
        (utc(2026, 3, 25, 8), "weekly", "Europe/Paris", utc(2026, 3, 26), utc(2026, 4, 1, 7)),
        # Apia skipped Dec 30, 2011: 10:00 that day moves forward by the whole day.
        (
            utc(2011, 12, 29, 20),
            "daily",
            "Pacific/Apia",
            utc(2011, 12, 29, 21),
            utc(2011, 12, 30, 20),
        ),
        # Completed exactly at a candidate: strictly later means the one after.
        (utc(2026, 1, 1, 9), "daily", "UTC", utc(2026, 1, 2, 9), utc(2026, 1, 3, 9)),
        (
            utc(2026, 1, 1, 9),
            "daily",
            "UTC",
            utc(2026, 1, 2, 8, 59, 59, 999_999),
            utc(2026, 1, 2, 9),
        ),
        # Completed before the due date: one period.
        (utc(2026, 1, 10, 9), "weekly", "UTC", utc(2026, 1, 1), utc(2026, 1, 17, 9)),
        # Past the end of the range: no successor.
        (utc(9999, 12, 31, 12), "daily", "UTC", utc(9999, 12, 31, 12), None),
        (DUE_MAX, "daily", "UTC", DUE_MAX, None),
        (utc(9999, 12, 31, 23, 30), "daily", "Europe/Paris", utc(9999, 12, 31, 23, 30), None),
        (utc(9999, 6, 1), "yearly", "UTC", utc(9999, 6, 2), None),
        (utc(9999, 12, 2), "monthly", "America/New_York", utc(9999, 12, 3), None),
        # The local date of the last day can still move within the range.
        (
            utc(9999, 12, 30, 23, 30),
            "daily",
            "America/New_York",
            utc(9999, 12, 31),
            utc(9999, 12, 31, 23, 30),
        ),
        # The first instant is in year 0 on New York's (local mean) time: still advances.
        (DUE_MIN, "daily", "America/New_York", DUE_MIN, DUE_MIN + timedelta(days=1)),
        (DUE_MIN, "monthly", "America/New_York", DUE_MIN, DUE_MIN + timedelta(days=31)),
        # Year 1 to now in one step.
        (utc(1, 1, 1, 9), "daily", "UTC", utc(2026, 6, 1, 12), utc(2026, 6, 2, 9)),
        (utc(1, 1, 31, 9), "monthly", "UTC", utc(2026, 2, 1), utc(2026, 2, 28, 9)),
        (utc(4, 2, 29, 9), "yearly", "UTC", utc(2026, 3, 1), utc(2027, 2, 28, 9)),
    ],
)
def test_named_cases(
    due_at: datetime,
    recurrence: Recurrence,
    time_zone: str,
    completed_at: datetime,
    expected: datetime | None,
) -> None:
    assert next_due(due_at, recurrence, time_zone, completed_at) == expected


def test_advance_overflow_raises() -> None:
    with pytest.raises(OverflowError):
        advance(DUE_MAX, "daily", "UTC", 1)
    with pytest.raises(OverflowError):
        advance(utc(2026, 1, 1), "yearly", "UTC", 8000)
    with pytest.raises(OverflowError):
        # The local date fits (Dec 31, 18:30 New York), the UTC instant does not.
        advance(utc(9999, 12, 30, 23, 30), "daily", "America/New_York", 2)


def test_advance_refuses_caller_bugs() -> None:
    with pytest.raises(ValueError, match="periods"):
        advance(utc(2026, 1, 1), "daily", "UTC", 0)
    with pytest.raises(ValueError, match="aware"):
        advance(datetime(2026, 1, 1), "daily", "UTC", 1)  # noqa: DTZ001 (the point)
    with pytest.raises(ValueError, match="recurrence"):
        advance(utc(2026, 1, 1), "hourly", "UTC", 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("recurrence", RECURRENCES)
def test_far_past_due_is_fast(recurrence: Recurrence) -> None:
    due_at, completed_at = utc(1, 1, 1, 9), utc(2026, 6, 1, 12)
    fastest = float("inf")
    for _ in range(20):  # the best of several runs, so a busy machine does not fail it
        started = time.perf_counter()
        next_due(due_at, recurrence, "America/New_York", completed_at)
        fastest = min(fastest, time.perf_counter() - started)
    assert fastest < 0.001
