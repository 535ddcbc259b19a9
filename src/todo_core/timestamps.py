"""Timestamps: aware UTC datetimes with microsecond precision, and their integer form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["from_micros", "rfc3339", "to_micros", "utc_now"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def utc_now() -> datetime:
    """The current time as an aware UTC datetime (the default clock of every store)."""
    return datetime.now(UTC)


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch; exact, and ordered like the datetimes."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime ``micros`` microseconds after the Unix epoch."""
    return _EPOCH + timedelta(microseconds=micros)


def rfc3339(moment: datetime) -> str:
    """``2026-11-30T10:22:44.000000Z``: UTC, always six fractional digits, so the
    strings of two timestamps compare like the timestamps."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
