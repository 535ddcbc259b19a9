"""STUB, replaced by the recurrence branch: wall-clock recurrence arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = ["Recurrence", "next_due"]

Recurrence = Literal["daily", "weekly", "monthly", "yearly"]


def next_due(
    due_at: datetime, recurrence: Recurrence, time_zone: str, completed_at: datetime
) -> datetime | None:
    step = {"daily": 1, "weekly": 7, "monthly": 30, "yearly": 365}[recurrence]
    local = due_at.astimezone(ZoneInfo(time_zone)).replace(tzinfo=None)
    n = 1
    while True:
        try:
            candidate = (local + timedelta(days=step * n)).replace(tzinfo=ZoneInfo(time_zone))
            result = candidate.astimezone(UTC)
        except OverflowError:
            return None
        if result > completed_at:
            return result
        n += 1
