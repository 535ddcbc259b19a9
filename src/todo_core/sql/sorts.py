"""Listing order and keyset pages, both derived from one ``SortSpec`` (``listing.SORTS``).

A sort orders by its key, ties broken by id in the same direction; the page after a
cursor's position is the rows beyond ``(key, id)`` in that order. PostgreSQL serves
both from the sort's index ``(user_id, key, id)`` (tests/core/test_plans.py). A new
sort is one ``SortSpec`` and its index.

A key whose column is nullable sorts its NULLs after every value, in both directions
(``NULLS LAST``; among themselves by id), on both dialects: a position with a value
continues into the NULLs, and one among the NULLs continues by id alone. That is two
listing shapes, ``after="key"`` and ``after="null"``; a key that cannot be NULL needs
only the first, and its SQL says nothing about NULLs.
"""

from __future__ import annotations

import operator
from typing import Literal

import sqlalchemy as sa

from todo_core.listing import SortSpec
from todo_core.schema import tasks

__all__ = ["After", "after_position", "order_by", "position_kind"]

After = Literal["key", "null"] | None
"""Where a page starts: at the beginning (None), after a position whose key is a
value, or after one whose key is NULL."""


def position_kind(key: object) -> After:
    """The ``After`` of a cursor's position with sort key ``key``."""
    return "null" if key is None else "key"


def order_by(spec: SortSpec) -> tuple[sa.ColumnElement[object], ...]:
    """The ORDER BY of ``spec``."""
    key, task_id = tasks.c[spec.field], tasks.c.id
    if not spec.descending:
        return (key.asc().nulls_last() if key.nullable else key), task_id
    return (key.desc().nulls_last() if key.nullable else key.desc()), task_id.desc()


def after_position(spec: SortSpec, after: After) -> sa.ColumnElement[bool]:
    """Rows after the position bound as ``after_key`` and ``after_id``, in ``spec``'s
    order; ``after="null"`` binds no ``after_key``."""
    key = tasks.c[spec.field]
    beyond = operator.lt if spec.descending else operator.gt
    after_id = sa.bindparam("after_id", type_=sa.Uuid())
    if after == "null":  # among the NULLs, which come last: only they remain
        return sa.and_(key.is_(None), beyond(tasks.c.id, after_id))
    row_key = sa.tuple_(key, tasks.c.id)
    condition: sa.ColumnElement[bool] = beyond(
        row_key, sa.tuple_(sa.bindparam("after_key", type_=key.type), after_id)
    )
    return sa.or_(condition, key.is_(None)) if key.nullable else condition
