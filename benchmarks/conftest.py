"""pytest wiring for the library timings: where to save them, and the store/raw table."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.timings import TIMINGS, comparison, markdown, write_json


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--library-json",
        type=Path,
        default=None,
        metavar="PATH",
        help="write the store/raw timings and ratios to this JSON file",
    )


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    timings = config.stash.get(TIMINGS, {})
    if not timings:
        return
    terminalreporter.section("store vs raw asyncpg, per operation (PostgreSQL)")
    for line in markdown(comparison(timings)).splitlines():
        terminalreporter.write_line(line)
    path: Path | None = config.getoption("library_json")
    if path is not None:
        write_json(path, timings)
        terminalreporter.write_line(f"wrote {path}")
