"""The one error a benchmark run reports to the user instead of a traceback."""

from __future__ import annotations

__all__ = ["BenchError"]


class BenchError(Exception):
    """A benchmark cannot run or went wrong; the message says what to do."""
