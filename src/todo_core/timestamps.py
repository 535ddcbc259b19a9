"""Timestamps: aware UTC datetimes with microsecond precision, and their integer form."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import orjson

__all__ = [
    "DUE_MAX",
    "DUE_MIN",
    "from_micros",
    "parse_rfc3339",
    "rfc3339",
    "to_micros",
    "utc_now",
]

#: The earliest and latest instants a ``due_at`` may hold (the contract's range, which is
#: also exactly what an aware UTC ``datetime`` can represent).
DUE_MIN = datetime.min.replace(tzinfo=UTC)
DUE_MAX = datetime.max.replace(tzinfo=UTC)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_UTC_WHOLE_SECOND = orjson.OPT_UTC_Z | orjson.OPT_OMIT_MICROSECONDS  # '"2026-11-30T10:22:44Z"'


def utc_now() -> datetime:
    """The current time as an aware UTC datetime (the default clock of every store)."""
    return datetime.now(UTC)


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch; exact, and ordered like the datetimes."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime ``micros`` microseconds after the Unix epoch."""
    # Positional (days, seconds, microseconds): a third faster than the keyword, and
    # SQLite listings pay it twice per task.
    return _EPOCH + timedelta(0, 0, micros)


def rfc3339(moment: datetime) -> str:
    """``2026-11-30T10:22:44.000000Z``: UTC, always six fractional digits, so the
    strings of two timestamps compare like the timestamps."""
    if type(moment) is not datetime or moment.tzinfo is not UTC:
        moment = _plain_utc(moment)
    # orjson writes the date and time (four-digit years, below 1000 too) in C: a third
    # less than %-formatting seven fields, which every due date of a listing pays. It
    # leaves out a zero fraction, so the fraction is always written here.
    whole_second = orjson.dumps(moment, option=_UTC_WHOLE_SECOND)[1:20].decode()
    return f"{whole_second}.{moment.microsecond:06d}Z"


def _plain_utc(moment: datetime) -> datetime:
    # Stores hand out UTC already; convert anything else. orjson refuses subclasses of
    # datetime, which some drivers and libraries hand out, so the copy is a plain one.
    utc = moment.astimezone(UTC)
    return datetime(*utc.timetuple()[:6], utc.microsecond, tzinfo=UTC)


# Anchored by fullmatch, fixed-width fields and one run of fractional digits: linear time
# on any input. ``[0-9]``, not ``\d``, which also matches other scripts' digits. The
# fraction takes any number of digits so that "too many" gets its own message.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)
_MAX_FRACTION_DIGITS = 6
_SECONDS_PER_DAY = 86_400
_MICROS_PER_SECOND = 1_000_000
# Days from 0000-03-01 (the start of a 400-year cycle counted from March) to 1970-01-01.
_EPOCH_DAY_IN_CYCLES = 719_468
_FIRST_MICROS = to_micros(DUE_MIN)
_LAST_MICROS = to_micros(DUE_MAX)

_NOT_RFC3339 = "must be an RFC 3339 date-time with seconds and an offset, like 2026-12-24T18:00:00Z"
_TOO_PRECISE = "must have at most 6 fractional digits"
_NO_SUCH_DATE = "must be a real calendar date (month 01-12, a day the month has)"
_NO_SUCH_TIME = "must have an hour 00-23, a minute 00-59 and a second 00-59"
_LEAP_SECOND = "second 60 (a leap second) is not supported"
_NO_SUCH_OFFSET = "must have an offset between -23:59 and +23:59"
_OUT_OF_RANGE = "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z once in UTC"


def parse_rfc3339(text: str) -> datetime:
    """The aware UTC datetime an RFC 3339 date-time names (``due_at`` and its filters).

    Raises ``ValueError`` with a message a client can be shown (it becomes a 422's
    detail) for anything else, including a time outside ``DUE_MIN``..``DUE_MAX`` once in
    UTC. The instant is computed with integers, so year 0000 or 10000 in the local time
    of the offset is judged by its UTC instant and never raises ``OverflowError``.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(_NOT_RFC3339)
    year, month, day, hour, minute, second = map(int, match.group(1, 2, 3, 4, 5, 6))
    fraction, sign, offset_hours, offset_minutes = match.group(7, 8, 9, 10)
    if not (1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)):
        raise ValueError(_NO_SUCH_DATE)
    _check_time_of_day(hour, minute, second)
    seconds = (_days_from_epoch(year, month, day) * _SECONDS_PER_DAY) + (
        hour * 3600 + minute * 60 + second
    )
    if sign is not None:
        seconds -= _offset_seconds(sign, int(offset_hours), int(offset_minutes))
    micros = seconds * _MICROS_PER_SECOND + _fraction_micros(fraction)
    if not _FIRST_MICROS <= micros <= _LAST_MICROS:
        raise ValueError(_OUT_OF_RANGE)
    return from_micros(micros)


def _check_time_of_day(hour: int, minute: int, second: int) -> None:
    """Reject times of day that do not exist, naming a leap second as such."""
    if second == 60 and hour <= 23 and minute <= 59:
        raise ValueError(_LEAP_SECOND)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(_NO_SUCH_TIME)


def _offset_seconds(sign: str, hours: int, minutes: int) -> int:
    """The signed offset from UTC in seconds (``-00:00`` is UTC, as RFC 3339 allows)."""
    if hours > 23 or minutes > 59:
        raise ValueError(_NO_SUCH_OFFSET)
    seconds = hours * 3600 + minutes * 60
    return -seconds if sign == "-" else seconds


def _fraction_micros(fraction: str | None) -> int:
    """Microseconds of the fractional digits, which may be 0 to 6."""
    if fraction is None:
        return 0
    if len(fraction) > _MAX_FRACTION_DIGITS:
        raise ValueError(_TOO_PRECISE)
    return int(fraction.ljust(_MAX_FRACTION_DIGITS, "0"))


def _is_leap_year(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_in_month(year: int, month: int) -> int:
    """Proleptic Gregorian, year 0 included (a leap year), as RFC 3339 dates are."""
    if month == 2:
        return 29 if _is_leap_year(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_epoch(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date, for any year ``datetime``
    cannot hold too (year 0 of a local time west of UTC).

    Howard Hinnant's ``days_from_civil``: years counted from March, so the leap day is
    the last of its year, and 400-year cycles of 146,097 days.
    """
    year -= 1 if month <= 2 else 0
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - _EPOCH_DAY_IN_CYCLES
