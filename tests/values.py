"""Values tests build and check tasks with: users, text, timestamps and a store clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

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
