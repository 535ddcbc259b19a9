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
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from todo_core.listing import fold
from todo_core.models import PRIORITIES, ListQuery
from todo_core.schema import TagList, UTCTimestamp, contains_text, tasks

__all__ = ["FILTERS", "Filter", "applied_filters"]


@dataclass(frozen=True, slots=True)
class Filter:
    """One filter: its condition, and its bind values from the query's value."""

    condition: sa.ColumnElement[bool]
    bind: Callable[[Any], Mapping[str, Any]]
    # Whether no index can serve it, so that it may read a user's whole set of tasks.
    scans: bool = False


_NEEDLE: Final = sa.bindparam("needle", type_=sa.Text())


class _RankList(TagList):
    """A list of priority ranks: ``smallint[]`` on PostgreSQL, JSON text on SQLite (the
    conversion is kind ``list``'s, in ``dialects.py``)."""

    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(sa.SmallInteger()))
        return dialect.type_descriptor(sa.Text())


class has_priority(FunctionElement[bool]):
    """True where ``priority`` is one of the ranks of a list."""

    type = sa.Boolean()
    inherit_cache = True
    name = "has_priority"


@compiles(has_priority, "postgresql")
def _has_priority_postgresql(element: has_priority, compiler: SQLCompiler, **kw: Any) -> str:
    priority, ranks = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"({priority} = ANY(CAST({ranks} AS SMALLINT[])))"


@compiles(has_priority, "sqlite")
def _has_priority_sqlite(element: has_priority, compiler: SQLCompiler, **kw: Any) -> str:
    priority, ranks = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"({priority} IN (SELECT value FROM json_each({ranks})))"


class carries_tags(FunctionElement[bool]):
    """True where a task's tags include every one of a list."""

    type = sa.Boolean()
    inherit_cache = True
    name = "carries_tags"


@compiles(carries_tags, "postgresql")
def _carries_tags_postgresql(element: carries_tags, compiler: SQLCompiler, **kw: Any) -> str:
    tags, wanted = (compiler.process(clause, **kw) for clause in element.clauses)
    # ">= true" hides the containment from the planner, which estimates it to keep very
    # few rows for any array it does not know (a generic plan's parameter): it then
    # plans to sort all of a user's rows rather than read the sort's index. Compared,
    # it gets the default a third, as q's strpos(...) > 0 does.
    return f"(({tags} @> CAST({wanted} AS TEXT[])) >= true)"


@compiles(carries_tags, "sqlite")
def _carries_tags_sqlite(element: carries_tags, compiler: SQLCompiler, **kw: Any) -> str:
    tags, wanted = (compiler.process(clause, **kw) for clause in element.clauses)
    return (
        f"(NOT EXISTS (SELECT 1 FROM json_each({wanted}) AS wanted "
        f"WHERE wanted.value NOT IN (SELECT value FROM json_each({tags}))))"
    )


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
        "priority": Filter(
            has_priority(tasks.c.priority, sa.bindparam("priorities", type_=_RankList())),
            lambda levels: {"priorities": [PRIORITIES.index(level) for level in levels]},
        ),
        # No index holds tags: the user's rows are read in the sort's order, filtered.
        "tag": Filter(
            carries_tags(tasks.c.tags, sa.bindparam("tags", type_=TagList())),
            lambda tags: {"tags": list(tags)},
        ),
        "due_min": Filter(
            tasks.c.due_at >= sa.bindparam("due_min", type_=UTCTimestamp()),
            lambda moment: {"due_min": moment},
        ),
        "due_max": Filter(
            tasks.c.due_at < sa.bindparam("due_max", type_=UTCTimestamp()),
            lambda moment: {"due_max": moment},
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
