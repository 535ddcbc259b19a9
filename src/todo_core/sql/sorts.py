"""Listing order and keyset pages, both derived from one ``SortSpec`` (``listing.SORTS``).

A sort orders by its key, ties broken by id in the same direction; the page after a
cursor's position is the rows beyond ``(key, id)`` in that order. PostgreSQL serves
both from the sort's index ``(user_id, key, id)`` (tests/core/test_plans.py). A new
sort is one ``SortSpec`` and its index.
"""

from __future__ import annotations

import sqlalchemy as sa

from todo_core.listing import SortSpec
from todo_core.schema import tasks

__all__ = ["after_position", "order_by"]


def order_by(spec: SortSpec) -> tuple[sa.ColumnElement[object], ...]:
    """The ORDER BY of ``spec``."""
    key, task_id = tasks.c[spec.field], tasks.c.id
    if spec.descending:
        return key.desc(), task_id.desc()
    return key, task_id


def after_position(spec: SortSpec) -> sa.ColumnElement[bool]:
    """Rows after the position bound as ``after_key`` and ``after_id``, in ``spec``'s order."""
    key = tasks.c[spec.field]
    row_key = sa.tuple_(key, tasks.c.id)
    position = sa.tuple_(
        sa.bindparam("after_key", type_=key.type), sa.bindparam("after_id", type_=sa.Uuid())
    )
    return row_key < position if spec.descending else row_key > position
