"""A compiled statement: SQL text for the driver, and how values go in and rows come out.

Nothing here imports SQLAlchemy: a ``Statement`` is what is left once a shape has been
compiled (``dialects.py``), and all a backend (``postgres.py``, ``sqlite.py``) sees.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Binder", "RowDecoder", "Statement"]

Binder = Callable[[Any], Any]
"""Turns a value into what the driver takes for its column (a UUID into hex, say)."""
RowDecoder = Callable[[Sequence[Any]], dict[str, Any]]
"""Turns a driver's row into field values by column name."""


def _no_rows(row: Sequence[Any]) -> dict[str, Any]:
    raise TypeError("this statement returns no named columns")


@dataclass(frozen=True, slots=True)
class Statement:
    """One compiled statement shape, for one dialect."""

    sql: str
    writes: bool
    _parameters: tuple[tuple[str, Binder | None], ...]  # in the driver's positional order
    _defaults: Mapping[str, Any]  # values the statement binds itself, e.g. the 1 of "+ 1"
    columns: tuple[str, ...] = ()
    """The names of the columns each row holds, in the driver's order."""
    decode: RowDecoder = _no_rows
    """A row's values by column name, converted from the driver's types to the model's."""
    decode_fields: RowDecoder = _no_rows
    """``decode`` for ``TaskStore.list_fields``, whose ids may stay the driver's subclass of
    ``UUID``: making asyncpg's plain is the dearest conversion of a listed row."""
    scans: bool = False
    """Whether it may read a user's whole set of tasks (no index serves it): a search."""

    @property
    def names(self) -> tuple[str, ...]:
        """The parameter names, in the order of the driver's positional arguments."""
        return tuple(name for name, _ in self._parameters)

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        """Positional driver arguments from named ``values``, converted for the dialect."""
        arguments = []
        for name, bind in self._parameters:
            value = values[name] if name in values else self._defaults[name]
            arguments.append(value if bind is None or value is None else bind(value))
        return arguments
