"""The due date of a recurring task's next occurrence, computed from the contract alone.

Tests check every store's successor against this, never against ``todo_core.recurrence``
(a check that asks the code under test for its own answer cannot fail).
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

# The range due_at allows, in UTC.
DUE_LAST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def _plus_months(local: datetime, months: int) -> datetime:
    years, month = divmod(local.month - 1 + months, 12)
    year = local.year + years
    if year > 9999:
        raise OverflowError("past the year 9999")
    last_day = calendar.monthrange(year, month + 1)[1]
    return local.replace(year=year, month=month + 1, day=min(local.day, last_day))


def advanced(due_at: datetime, recurrence: str, time_zone: str, n: int) -> datetime:
    """``due_at`` moved on by ``n`` periods on the wall clock of ``time_zone``, in UTC.

    Raises:
        OverflowError: the result is past the year 9999 (locally or in UTC).
    """
    zone = ZoneInfo(time_zone)
    local = due_at.astimezone(zone).replace(tzinfo=None)
    if recurrence in ("daily", "weekly"):
        moved = local + timedelta(days=n * (7 if recurrence == "weekly" else 1))
    else:
        moved = _plus_months(local, n * (12 if recurrence == "yearly" else 1))
    # fold=0: a time in a gap moves forward by the gap, an ambiguous one is the first.
    return moved.replace(tzinfo=zone, fold=0).astimezone(UTC)


def next_due_at(
    due_at: datetime, recurrence: str, time_zone: str, completed_at: datetime
) -> datetime | None:
    """The successor's ``due_at``: the smallest n >= 1 that is later than
    ``completed_at``; None when that is outside the range ``due_at`` allows."""
    n = 1
    while True:
        try:
            candidate = advanced(due_at, recurrence, time_zone, n)
        except OverflowError:
            return None
        if candidate > DUE_LAST:
            return None
        if candidate > completed_at:
            return candidate
        # Jump close to the answer instead of stepping one day at a time through
        # centuries; a day short of the gap, so a daylight saving shift cannot skip it.
        gap_days = (completed_at - candidate).days - 1
        period_days = {"daily": 1, "weekly": 7, "monthly": 31, "yearly": 366}[recurrence]
        n += max(1, gap_days // period_days)
