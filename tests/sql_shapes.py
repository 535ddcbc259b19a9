"""A pytest plugin: counts the SQL statement shapes the run compiles, per dialect.

Shapes compile on first use (``todo_core.sql.statements``); this reports how many the
whole suite needed, against the 147 statements once generated ahead of time for every
combination. Only this process's stores count (not servers run as subprocesses).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable

import pytest
import sqlalchemy as sa

from todo_core.sql import Statement, Statements

__all__ = ["ShapeCounter"]

_COUNTER = pytest.StashKey["ShapeCounter"]()
# How many statements sqlgen generated into _sql.py before shapes compiled on use.
PREGENERATED = 147


class ShapeCounter:
    """The shapes compiled so far, and how many statements each one is, per dialect."""

    def __init__(self) -> None:
        self.shapes: defaultdict[str, dict[Hashable, int]] = defaultdict(dict)
        self._patch = pytest.MonkeyPatch()

    def install(self) -> None:
        shape = Statements._shape
        shapes = self.shapes

        def counted(
            statements: Statements,
            key: Hashable,
            build: Callable[[], Iterable[sa.ClauseElement]],
            *,
            scans: bool = False,
        ) -> tuple[Statement, ...]:
            compiled = shape(statements, key, build, scans=scans)
            shapes[statements.dialect][key] = len(compiled)
            return compiled

        self._patch.setattr(Statements, "_shape", counted)

    def uninstall(self) -> None:
        self._patch.undo()

    def summary(self) -> str:
        counts = {dialect: sum(shapes.values()) for dialect, shapes in self.shapes.items()}
        per_dialect = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
        return (
            f"SQL statements compiled on use: {sum(counts.values())} ({per_dialect or 'none'});"
            f" generated ahead of time before: {PREGENERATED}"
        )


def pytest_configure(config: pytest.Config) -> None:
    counter = ShapeCounter()
    counter.install()
    config.stash[_COUNTER] = counter


def pytest_unconfigure(config: pytest.Config) -> None:
    config.stash[_COUNTER].uninstall()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_line(terminalreporter.config.stash[_COUNTER].summary())
