"""parse_rfc3339: the contract's due_at syntax, its range, and its client-facing messages;
and rfc3339, which writes every timestamp the API answers."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from todo_core.timestamps import DUE_MAX, DUE_MIN, parse_rfc3339, rfc3339

aware_in_range = st.datetimes(timezones=st.just(UTC)).map(lambda naive: naive.replace(tzinfo=UTC))
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59)


def with_offset(moment: datetime, offset_minutes: int) -> str:
    """``moment`` written in the local time of an offset, with all six fractional digits."""
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return local.replace(tzinfo=None).isoformat(timespec="microseconds") + (
        f"{sign}{hours:02d}:{minutes:02d}"
    )


def rejection(text: str) -> str:
    """The message ``parse_rfc3339`` rejects ``text`` with."""
    try:
        parse_rfc3339(text)
    except ValueError as error:
        return str(error)
    raise AssertionError(f"{text!r} was accepted")


def test_range_constants() -> None:
    assert rfc3339(DUE_MIN) == "0001-01-01T00:00:00.000000Z"
    assert rfc3339(DUE_MAX) == "9999-12-31T23:59:59.999999Z"
    assert DUE_MIN.tzinfo is UTC
    assert DUE_MAX.tzinfo is UTC


@given(aware_in_range)
def test_round_trip(moment: datetime) -> None:
    parsed = parse_rfc3339(rfc3339(moment))
    assert parsed == moment
    assert parsed.tzinfo is UTC


class _Moment(datetime):
    """A subclass of datetime, as some drivers and libraries hand out."""


@given(aware_in_range, offsets, st.booleans())
def test_rfc3339_writes_the_utc_fields(moment: datetime, offset_minutes: int, sub: bool) -> None:
    """Whatever the zone or class of the datetime, the instant's UTC fields, each at its
    fixed width, six fractional digits included (rfc3339 takes a shortcut through orjson)."""
    assume(DUE_MIN + timedelta(days=1) <= moment <= DUE_MAX - timedelta(days=1))
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    if sub:
        local = _Moment(*local.timetuple()[:6], local.microsecond, tzinfo=local.tzinfo)
    expected = "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
    )
    assert rfc3339(local) == expected


@given(aware_in_range, offsets)
def test_offsets_name_the_same_instant(moment: datetime, offset_minutes: int) -> None:
    # A local time in year 0 or 10000 cannot be written by datetime (the named examples
    # cover year 0; year 10000 has no four-digit spelling).
    assume(DUE_MIN + timedelta(days=1) <= moment <= DUE_MAX - timedelta(days=1))
    assert parse_rfc3339(with_offset(moment, offset_minutes)) == moment


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-24T18:00:00Z", datetime(2026, 12, 24, 18, tzinfo=UTC)),
        ("2026-12-24T19:00:00.5+01:00", datetime(2026, 12, 24, 18, 0, 0, 500_000, tzinfo=UTC)),
        ("2026-12-24t18:00:00z", datetime(2026, 12, 24, 18, tzinfo=UTC)),
        ("2026-12-24t18:00:00Z", datetime(2026, 12, 24, 18, tzinfo=UTC)),
        ("2026-12-24T18:00:00-00:00", datetime(2026, 12, 24, 18, tzinfo=UTC)),
        ("2026-12-24T18:00:00+00:00", datetime(2026, 12, 24, 18, tzinfo=UTC)),
        ("2026-12-24T00:00:00+23:59", datetime(2026, 12, 23, 0, 1, tzinfo=UTC)),
        ("2026-12-24T00:00:00-23:59", datetime(2026, 12, 24, 23, 59, tzinfo=UTC)),
        ("2024-02-29T12:00:00Z", datetime(2024, 2, 29, 12, tzinfo=UTC)),
        ("2000-02-29T12:00:00Z", datetime(2000, 2, 29, 12, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", DUE_MIN),
        ("9999-12-31T23:59:59.999999Z", DUE_MAX),
        # The local time is outside datetime's years, the instant is not.
        ("0000-12-31T23:30:00-01:00", datetime(1, 1, 1, 0, 30, tzinfo=UTC)),
        ("0000-12-31T23:00:00-01:00", DUE_MIN),
    ],
)
def test_named_examples(text: str, expected: datetime) -> None:
    assert parse_rfc3339(text) == expected


@pytest.mark.parametrize("digits", range(7))
def test_zero_to_six_fractional_digits(digits: int) -> None:
    fraction = "." + "123456"[:digits] if digits else ""
    expected_micros = int("123456"[:digits].ljust(6, "0")) if digits else 0
    parsed = parse_rfc3339(f"2026-01-02T03:04:05{fraction}Z")
    assert parsed == datetime(2026, 1, 2, 3, 4, 5, expected_micros, tzinfo=UTC)


NOT_RFC3339 = "must be an RFC 3339 date-time with seconds and an offset, like 2026-12-24T18:00:00Z"
OUT_OF_RANGE = "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z once in UTC"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-12-24T18:00:00.1234567Z", "must have at most 6 fractional digits"),
        ("2026-12-24T18:00:00." + "0" * 100 + "Z", "must have at most 6 fractional digits"),
        ("2026-12-24", NOT_RFC3339),  # a date without a time
        ("2026-12-24T18:00:00", NOT_RFC3339),  # a time without an offset
        ("2026-12-24T18:00Z", NOT_RFC3339),  # no seconds
        ("2026-12-24 18:00:00Z", NOT_RFC3339),  # a space for T
        ("2026-12-24T18:00:00.Z", NOT_RFC3339),  # a point without digits
        ("2026-12-24T18:00:00+0100", NOT_RFC3339),
        ("2026-12-24T18:00:00+01", NOT_RFC3339),
        ("2026-12-24T18:00:00Z\n", NOT_RFC3339),
        (" 2026-12-24T18:00:00Z", NOT_RFC3339),
        ("+2026-12-24T18:00:00Z", NOT_RFC3339),
        ("12026-12-24T18:00:00Z", NOT_RFC3339),
        ("", NOT_RFC3339),
        ("2026-12-24T18:00:60Z", "second 60 (a leap second) is not supported"),
        ("2016-12-31T23:59:60Z", "second 60 (a leap second) is not supported"),
        ("2026-12-24T18:00:61Z", "must have an hour 00-23, a minute 00-59 and a second 00-59"),
        ("2026-12-24T24:00:00Z", "must have an hour 00-23, a minute 00-59 and a second 00-59"),
        ("2026-12-24T18:60:00Z", "must have an hour 00-23, a minute 00-59 and a second 00-59"),
        ("2026-02-30T00:00:00Z", "must be a real calendar date (month 01-12, a day the month has)"),
        ("2025-02-29T00:00:00Z", "must be a real calendar date (month 01-12, a day the month has)"),
        ("1900-02-29T00:00:00Z", "must be a real calendar date (month 01-12, a day the month has)"),
        ("2026-04-31T00:00:00Z", "must be a real calendar date (month 01-12, a day the month has)"),
        ("2026-13-01T00:00:00Z", "must be a real calendar date (month 01-12, a day the month has)"),
        ("2026-00-01T00:00:00Z", "must be a real calendar date (month 01-12, a day the month has)"),
        ("2026-01-00T00:00:00Z", "must be a real calendar date (month 01-12, a day the month has)"),
        ("2026-12-24T18:00:00+24:00", "must have an offset between -23:59 and +23:59"),
        ("2026-12-24T18:00:00-00:60", "must have an offset between -23:59 and +23:59"),
        ("0001-01-01T00:00:00+01:00", OUT_OF_RANGE),
        ("0001-01-01T00:59:59.999999+01:00", OUT_OF_RANGE),
        ("9999-12-31T23:59:59-01:00", OUT_OF_RANGE),
        ("9999-12-31T23:00:00-01:00", OUT_OF_RANGE),
        ("0000-01-01T00:00:00Z", OUT_OF_RANGE),
        ("0000-12-31T23:59:59.999999Z", OUT_OF_RANGE),
        ("0000-12-31T22:59:59.999999-01:00", OUT_OF_RANGE),
    ],
)
def test_rejections(text: str, message: str) -> None:
    assert rejection(text) == message


@pytest.mark.parametrize(
    "text",
    [
        "\uff12\uff10\uff12\uff16-12-24T18:00:00Z",  # fullwidth digits in the year
        "2026-12-24T18:00:0\u0665Z",  # an Arabic-Indic five in the seconds
        "2026-12-24T18:00:00.\u09ebZ",  # a Bengali five in the fraction
        "2026-12-24T18:00:00+0\uff11:00",  # a fullwidth one in the offset
    ],
)
def test_non_ascii_digits_rejected(text: str) -> None:
    assert rejection(text) == NOT_RFC3339


@pytest.mark.parametrize(
    "text",
    [
        "2" * 10_000,
        "2026-12-24T18:00:00." + "9" * 10_000 + "Z",
        "2026-12-24T18:00:00Z" * 500,
        "2026-12-24T18:00:00" + "+" * 10_000,
    ],
)
def test_long_strings_answered_quickly(text: str) -> None:
    started = time.perf_counter()
    assert rejection(text)
    assert time.perf_counter() - started < 0.01


@given(st.text())
def test_any_text_raises_only_value_error(text: str) -> None:
    try:
        parsed = parse_rfc3339(text)
    except ValueError:
        return
    assert DUE_MIN <= parsed <= DUE_MAX


@given(
    st.from_regex(
        r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,8})?"
        r"([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
    )
)
def test_well_shaped_text_parses_or_raises_value_error(text: str) -> None:
    try:
        parsed = parse_rfc3339(text)
    except ValueError:
        return
    assert parsed.tzinfo is UTC
    assert DUE_MIN <= parsed <= DUE_MAX
