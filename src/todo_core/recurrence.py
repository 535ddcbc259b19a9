"""Recurrence: the ``due_at`` of a recurring task's next occurrence (contract Part 2).

Periods are added on the wall clock of the task's ``time_zone`` (a daily task stays at
09:00 local across DST changes), then the local time is mapped back to UTC the way
``zoneinfo`` does with ``fold=0``: a time in a gap moves forward by the gap, an ambiguous
one takes its first occurrence. Pure functions; ``ZoneInfo`` caches its zones itself.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

__all__ = ["RECURRENCES", "Recurrence", "advance", "next_due"]

Recurrence = Literal["daily", "weekly", "monthly", "yearly"]
RECURRENCES: tuple[Recurrence, ...] = ("daily", "weekly", "monthly", "yearly")

# The Gregorian calendar repeats every 400 years (leap years and weekdays alike), and so
# do time zone rules before their first transition and after their last (a POSIX rule).
_CYCLE_YEARS = 400
_CYCLE = timedelta(days=146_097)
# Mean period lengths in days over a cycle, as exact fractions (numerator, denominator),
# for the first estimate of how many periods fit in a gap.
_MEAN_DAYS: dict[Recurrence, tuple[int, int]] = {
    "daily": (1, 1),
    "weekly": (7, 1),
    "monthly": (146_097, 4_800),
    "yearly": (146_097, 400),
}


def advance(due_at: datetime, recurrence: Recurrence, time_zone: str, periods: int) -> datetime:
    """``due_at`` plus ``periods`` (>= 1) periods on the wall clock of ``time_zone``.

    Days and weeks add days; months and years keep the day of month, clamped to the
    target month's length and always from the original date (Jan 31 + 1 month is Feb 28
    or 29, + 2 months Mar 31). Returns an aware UTC datetime.

    Raises ``OverflowError`` when the result would be later than ``DUE_MAX`` (no result
    can be earlier than ``DUE_MIN``, since periods only move forward), ``ValueError`` for
    a naive ``due_at``, ``periods`` < 1 or an unknown recurrence, and what ``ZoneInfo``
    raises for an unknown zone (callers validate ``time_zone`` on input).
    """
    if due_at.tzinfo is None:
        raise ValueError("due_at must be an aware datetime")
    if periods < 1:
        raise ValueError("periods must be at least 1")
    zone = ZoneInfo(time_zone)
    day, time_of_day = _wall_clock(due_at, zone)
    local = datetime.combine(_add_periods(day, recurrence, periods), time_of_day, zone)
    # fold=0 is combine's default; astimezone applies it (gap forward, first occurrence).
    return local.astimezone(UTC)


def next_due(
    due_at: datetime, recurrence: Recurrence, time_zone: str, completed_at: datetime
) -> datetime | None:
    """The successor's ``due_at``: ``advance(due_at, ..., n)`` for the smallest n >= 1
    that is strictly later than ``completed_at``; ``None`` when that falls outside
    ``DUE_MIN``..``DUE_MAX`` (the completing write then makes no successor).

    n is estimated from the gap between the two instants and then corrected by a few
    steps, so a task due centuries ago costs no more than one due yesterday. The
    correction relies on ``advance`` never decreasing as n grows, which holds for fold=0
    in any zone whose gaps are at most a day.
    """
    periods = _estimate_periods(due_at, recurrence, completed_at)
    # Step back while the previous candidate is still later, then forward until later:
    # the result is the first candidate later than completed_at.
    while periods > 1 and _is_later(
        _advance_or_none(due_at, recurrence, time_zone, periods - 1), completed_at
    ):
        periods -= 1
    while True:
        candidate = _advance_or_none(due_at, recurrence, time_zone, periods)
        if _is_later(candidate, completed_at):
            return candidate
        periods += 1


def _advance_or_none(
    due_at: datetime, recurrence: Recurrence, time_zone: str, periods: int
) -> datetime | None:
    """``advance``, with None standing for "beyond DUE_MAX"."""
    # An aware UTC datetime cannot be later than DUE_MAX, and advancing never goes below
    # DUE_MIN, so the only way out of the range is the OverflowError.
    try:
        return advance(due_at, recurrence, time_zone, periods)
    except OverflowError:
        return None


def _is_later(candidate: datetime | None, moment: datetime) -> bool:
    """Whether a candidate is later than ``moment``; None (beyond DUE_MAX) always is."""
    return candidate is None or candidate > moment


def _estimate_periods(due_at: datetime, recurrence: Recurrence, completed_at: datetime) -> int:
    """About how many periods take ``due_at`` past ``completed_at`` (at least 1).

    Off by a period or two at most: offsets change by under a day and calendar months
    and years differ from their means by a few days, so ``next_due`` corrects it in
    constant time.
    """
    numerator, denominator = _MEAN_DAYS[recurrence]
    gap_days = (completed_at - due_at).days
    return max(1, gap_days * denominator // numerator + 1)


def _wall_clock(due_at: datetime, zone: ZoneInfo) -> tuple[_Day, time]:
    """The local date and time of day of ``due_at`` in ``zone``.

    Near the ends of the range the local date can be in year 0 or 10000, which ``date``
    cannot hold: then the conversion is done 400 years away, where the zone's offset is
    the same, and the year is carried as a plain integer.
    """
    try:
        local = due_at.astimezone(zone)
        shift = 0
    except OverflowError:
        shift = _CYCLE_YEARS if due_at.year == 1 else -_CYCLE_YEARS
        local = (due_at + _CYCLE * (shift // _CYCLE_YEARS)).astimezone(zone)
    return _Day(local.year - shift, local.month, local.day), local.time()


class _Day(NamedTuple):
    """A calendar date whose year may be 0 or 10000 (a local date at the range's ends)."""

    year: int
    month: int
    day: int


def _add_periods(start: _Day, recurrence: Recurrence, periods: int) -> date:
    """The local date ``periods`` periods after ``start``; OverflowError past year 9999."""
    if recurrence == "daily":
        return _add_days(start, periods)
    if recurrence == "weekly":
        return _add_days(start, 7 * periods)
    if recurrence == "monthly":
        return _add_months(start, periods)
    if recurrence == "yearly":
        return _add_months(start, 12 * periods)
    raise ValueError(f"unknown recurrence {recurrence!r}")


def _add_days(start: _Day, days: int) -> date:
    if start.year > date.max.year:
        raise OverflowError("date beyond year 9999")
    if start.year < date.min.year:  # year 0: count from the same day a cycle later
        ordinal = date(start.year + _CYCLE_YEARS, start.month, start.day).toordinal()
        ordinal -= _CYCLE.days
    else:
        ordinal = date(start.year, start.month, start.day).toordinal()
    if ordinal + days > date.max.toordinal():
        raise OverflowError("date beyond year 9999")
    return date.fromordinal(ordinal + days)


def _add_months(start: _Day, months: int) -> date:
    """Months added to the month, the day clamped to the target month's length (so
    twelve months from Feb 29 is Feb 28 in a common year)."""
    year, month_index = divmod(start.year * 12 + start.month - 1 + months, 12)
    if year > date.max.year:
        raise OverflowError("date beyond year 9999")
    month = month_index + 1
    return date(year, month, min(start.day, _days_in_month(year, month)))


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (date(year, month + 1, 1) - date(year, month, 1)).days
