"""The handful of tasks the web app's pictures show (docs/images/, the browser tests'
screenshots and accessibility check): due dates near today, every priority, tags, a
recurring task and a completed one, as the bodies of creates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["showcase_tasks"]


def _at(now: datetime, days: int, hour: int) -> str:
    day = (now + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return day.strftime("%Y-%m-%dT%H:%M:%SZ")


def showcase_tasks(now: datetime | None = None) -> list[dict[str, Any]]:
    """Create bodies, oldest first (the list shows the newest first)."""
    now = now or datetime.now(UTC)
    return [
        {
            "title": "Renew passport",
            "description": "Photos from the booth at the station",
            "priority": "low",
            "tags": ["admin"],
            "due_at": _at(now, 20, 9),
        },
        {
            "title": "Water the plants",
            "priority": "none",
            "tags": ["home"],
            "due_at": _at(now, 1, 7),
            "recurrence": "weekly",
            "time_zone": "Europe/Paris",
        },
        {"title": "Book dentist appointment", "completed": True, "tags": ["health"]},
        {
            "title": "Quarterly report",
            "description": "Numbers from finance, charts from Ana",
            "priority": "high",
            "tags": ["work", "q3"],
            "due_at": _at(now, 2, 15),
        },
        {
            "title": "Buy milk",
            "description": "Two litres, oat if they have it",
            "priority": "medium",
            "tags": ["errands", "home"],
            "due_at": _at(now, 0, 18),
        },
        {"title": "Call mom", "priority": "none", "tags": []},
    ]
