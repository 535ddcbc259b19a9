"""What the SQL store needs of a backend (``todo_core.postgres``, ``todo_core.sqlite``):
its compiled statements, and running them; and a backend that logs what it runs."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from todo_core.sql.statement import Statement
from todo_core.sql.statements import Statements

__all__ = ["Database", "EchoingDatabase"]

_log = logging.getLogger("todo_core.sql")


class Database(Protocol):
    """What the store needs of a backend: its compiled statements, and running them."""

    statements: Statements

    async def fetch(
        self, statement: Statement, values: Mapping[str, Any]
    ) -> list[Sequence[Any]]: ...

    async def transaction(
        self, statements: Sequence[Statement], values: Mapping[str, Any]
    ) -> list[Sequence[Any]]:
        """Run ``statements`` in one transaction; the rows of the last one that has
        result columns (``Statement.columns``)."""
        ...

    async def close(self) -> None: ...


class EchoingDatabase:
    """Logs each statement before ``database`` runs it: the ``echo`` option."""

    def __init__(self, database: Database) -> None:
        self.statements = database.statements
        self._database = database

    async def fetch(self, statement: Statement, values: Mapping[str, Any]) -> list[Sequence[Any]]:
        _log.info("%s\n%r", statement.sql, statement.arguments(values))
        return await self._database.fetch(statement, values)

    async def transaction(
        self, statements: Sequence[Statement], values: Mapping[str, Any]
    ) -> list[Sequence[Any]]:
        for statement in statements:
            _log.info("%s\n%r", statement.sql, statement.arguments(values))
        return await self._database.transaction(statements, values)

    async def close(self) -> None:
        await self._database.close()
