"""Listing filters: each is one entry, a SQL fragment over ``tasks`` and what it binds.

A filter is named after the ``ListQuery`` field it reads and applies when that field is
not None. Its fragment is ANDed into the listing (``shapes.listing``), so a new filter
is a ``ListQuery`` field plus one entry here; every combination compiles on first use.
A fragment that must be spelled per dialect (an array's containment, say: ``@>`` on
PostgreSQL, ``json_each`` on SQLite) is a ``FunctionElement`` with a ``@compiles`` for
each, as ``contains_text`` is in ``schema.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import sqlalchemy as sa

from todo_core.listing import fold
from todo_core.models import ListQuery
from todo_core.schema import contains_text, tasks

__all__ = ["FILTERS", "Filter", "applied_filters"]


@dataclass(frozen=True, slots=True)
class Filter:
    """One filter: its condition, and its bind values from the query's value."""

    condition: sa.ColumnElement[bool]
    bind: Callable[[Any], Mapping[str, Any]]
    # Whether no index can serve it, so that it may read a user's whole set of tasks.
    scans: bool = False


_NEEDLE: Final = sa.bindparam("needle", type_=sa.Text())

FILTERS: Final[Mapping[str, Filter]] = MappingProxyType(
    {
        "completed": Filter(
            tasks.c.completed == sa.bindparam("completed"),
            lambda completed: {"completed": completed},
        ),
        # Matched against folded copies: see listing.fold.
        "q": Filter(
            sa.or_(
                contains_text(tasks.c.title_folded, _NEEDLE),
                contains_text(tasks.c.description_folded, _NEEDLE),
            ),
            lambda q: {"needle": fold(q)},
            scans=True,
        ),
    }
)
"""Every filter, by ``ListQuery`` field, in the order their fragments are ANDed."""


def applied_filters(query: ListQuery) -> tuple[frozenset[str], dict[str, Any]]:
    """The filters ``query`` sets, and the values they bind."""
    names = []
    values: dict[str, Any] = {}
    for name, spec in FILTERS.items():
        value = getattr(query, name)
        if value is not None:
            names.append(name)
            values |= spec.bind(value)
    return frozenset(names), values
