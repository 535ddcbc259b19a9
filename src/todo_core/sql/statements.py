"""The statements of one dialect, each shape compiled the first time it is used.

A shape is what decides a statement's text: the listing's sort, which filters it
applies and whether it starts after a cursor; the fields an update writes; whether a
write is conditional. The SQL a shape compiles to never depends on the values bound,
so each is compiled once per ``Statements`` (one per open store) and kept: a few
dozen in practice, however many combinations could exist.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping

import sqlalchemy as sa

from todo_core.listing import SORTS
from todo_core.models import SortOrder
from todo_core.sql import shapes
from todo_core.sql.dialects import DialectName, compile_statement
from todo_core.sql.filters import FILTERS
from todo_core.sql.sorts import After
from todo_core.sql.statement import Statement

__all__ = ["Statements"]


class Statements:
    """Every statement a SQL store runs, for one dialect, compiled on first use."""

    def __init__(self, dialect: DialectName) -> None:
        self.dialect: DialectName = dialect
        self._compiled: dict[Hashable, tuple[Statement, ...]] = {}

    @property
    def shapes(self) -> Mapping[Hashable, tuple[Statement, ...]]:
        """The shapes compiled so far, by key (for tests and diagnostics)."""
        return self._compiled

    def _shape(
        self, key: Hashable, build: Callable[[], Iterable[sa.ClauseElement]], *, scans: bool = False
    ) -> tuple[Statement, ...]:
        statements = self._compiled.get(key)
        if statements is None:
            statements = tuple(
                compile_statement(element, self.dialect, scans=scans) for element in build()
            )
            self._compiled[key] = statements
        return statements

    def _one(self, key: Hashable, build: Callable[[], sa.ClauseElement]) -> Statement:
        compiled = self._compiled.get(key) or self._shape(key, lambda: (build(),))
        return compiled[0]

    @property
    def get(self) -> Statement:
        return self._one("get", shapes.get)

    @property
    def version(self) -> Statement:
        return self._one("version", shapes.version)

    @property
    def insert(self) -> Statement:
        return self._one("insert", lambda: shapes.insert(self.dialect))

    @property
    def ping(self) -> Statement:
        return self._one("ping", shapes.ping)

    @property
    def revision(self) -> Statement:
        return self._one("revision", shapes.revision)

    @property
    def secret(self) -> Statement:
        return self._one("secret", shapes.secret)

    @property
    def replay(self) -> Statement:
        return self._one("replay", shapes.replay)

    @property
    def purge(self) -> Statement:
        return self._one("purge", lambda: shapes.purge(self.dialect))

    @property
    def create_once(self) -> tuple[Statement, ...]:
        """One statement on PostgreSQL, two on SQLite: run them in one transaction."""
        return self._shape("create once", lambda: shapes.create_once(self.dialect))

    def update(self, fields: frozenset[str], *, conditional: bool) -> Statement:
        """UPDATE of ``fields`` (stored names), stamping ``updated_at`` from bind ``now``."""
        return self._one(
            ("update", fields, conditional),
            lambda: shapes.update(fields, conditional, self.dialect),
        )

    def completion(self, fields: frozenset[str]) -> tuple[Statement, ...]:
        """``update`` of ``fields`` under ``expected_version`` that inserts the successor
        bound as ``successor_<column>`` if it applied: run in one transaction."""
        return self._shape(("completion", fields), lambda: shapes.completion(fields, self.dialect))

    def tags(self, *, after: bool) -> Statement:
        """A page of a user's tags; binds ``user_id``, ``limit`` and, if ``after``,
        ``after_tag``."""
        return self._one(("tags", after), lambda: shapes.tags(self.dialect, after))

    def delete(self, *, conditional: bool) -> Statement:
        return self._one(("delete", conditional), lambda: shapes.delete(conditional, self.dialect))

    def list(self, sort: SortOrder, filters: frozenset[str], *, after: After = None) -> Statement:
        """One page in ``sort`` order; binds ``user_id``, ``limit``, each filter's values
        (``filters.FILTERS``) and, after a cursor, ``after_id`` and (unless the position's
        key is NULL: ``sorts.After``) ``after_key``."""
        key = ("list", sort, filters, after)
        compiled = self._compiled.get(key) or self._shape(
            key,
            lambda: (shapes.listing(SORTS[sort], filters, after),),
            scans=any(FILTERS[name].scans for name in filters),
        )
        return compiled[0]

    # The change feed and the trash (sql/sync.py).

    @property
    def changes(self) -> Statement:
        """Binds ``user_id``, ``since`` (a change number) and ``limit``."""
        return self._one("changes", shapes.changes)

    @property
    def feed_head(self) -> Statement:
        return self._one("feed head", shapes.feed_head)

    def trash(self, *, after: bool) -> Statement:
        """Binds ``user_id``, ``limit`` and, if ``after``, ``after_deleted_at`` and
        ``after_id``."""
        return self._one(("trash", after), lambda: shapes.trash(after))

    @property
    def trashed(self) -> Statement:
        return self._one("trashed", shapes.trashed)

    @property
    def restore(self) -> Statement:
        return self._one("restore", lambda: shapes.restore(self.dialect))

    @property
    def purge_task(self) -> Statement:
        return self._one("purge task", shapes.purge_task)

    @property
    def empty_trash(self) -> Statement:
        return self._one("empty trash", shapes.empty_trash)

    @property
    def purge_expired(self) -> Statement:
        return self._one("purge expired", lambda: shapes.purge_expired(self.dialect))

    def compile(self, statement: sa.ClauseElement) -> Statement:
        """Any other SQLAlchemy statement, for this dialect (tests, maintenance); not kept."""
        return compile_statement(statement, self.dialect)
