"""The public surface of todo_core: what it exports, what it imports, what it ships."""

from __future__ import annotations

import subprocess
import sys
import types
from importlib.resources import files
from uuid import uuid4

import pytest

import todo_core
from todo_core import (
    InvalidCursor,
    PreconditionFailed,
    SchemaNotCurrent,
    StoreError,
    StoreUnavailable,
    TaskNotFound,
    TodoError,
)


def imported_modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``statement``."""
    code = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(result.stdout.split())


class TestExports:
    def test_all_is_sorted(self) -> None:
        """__all__ is sorted, so additions are easy to review."""
        assert todo_core.__all__ == sorted(todo_core.__all__)

    def test_all_lists_every_public_name(self) -> None:
        """__all__ is exactly the public, non-module names of the package."""
        public = {
            name
            for name, value in vars(todo_core).items()
            if not name.startswith("_") and not isinstance(value, types.ModuleType)
        }
        assert set(todo_core.__all__) == public
        assert len(todo_core.__all__) == len(public)

    def test_ships_py_typed(self) -> None:
        """The package is marked as typed (PEP 561)."""
        assert files("todo_core").joinpath("py.typed").is_file()

    def test_ships_its_migrations(self) -> None:
        """The schema migrations are package data, so an installed copy can migrate."""
        versions = files("todo_core").joinpath("migrations", "versions")
        assert any(
            entry.name.endswith(".py") and entry.name[0].isdigit() for entry in versions.iterdir()
        )


class TestImports:
    def test_core_does_not_import_the_web_stack(self) -> None:
        """Importing todo_core (and its SQL store) never loads aiohttp."""
        assert "aiohttp" not in imported_modules_after("import todo_core, todo_core.sql")

    def test_memory_store_needs_no_database_driver(self) -> None:
        """import todo_core loads no SQL toolkit or driver, so the memory store works alone."""
        loaded = imported_modules_after("import todo_core")
        assert not loaded & {"sqlalchemy", "asyncpg", "aiosqlite", "alembic", "aiohttp"}


class TestErrors:
    @pytest.mark.parametrize(
        ("error", "code"),
        [
            (TodoError, "todo_error"),
            (TaskNotFound, "task_not_found"),
            (PreconditionFailed, "precondition_failed"),
            (InvalidCursor, "invalid_cursor"),
            (StoreError, "store_error"),
            (SchemaNotCurrent, "schema_not_current"),
            (StoreUnavailable, "store_unavailable"),
        ],
    )
    def test_codes_are_stable(self, error: type[TodoError], code: str) -> None:
        """Each error has a fixed machine-readable code."""
        assert error.code == code

    def test_one_tree(self) -> None:
        """Every error is a TodoError; each also subclasses the builtin it resembles."""
        assert issubclass(TaskNotFound, TodoError)
        assert issubclass(TaskNotFound, LookupError)
        assert issubclass(InvalidCursor, TodoError)
        assert issubclass(InvalidCursor, ValueError)
        assert issubclass(PreconditionFailed, TodoError)
        assert issubclass(StoreUnavailable, StoreError)
        assert issubclass(SchemaNotCurrent, StoreError)
        assert issubclass(StoreError, TodoError)
        assert not issubclass(PreconditionFailed, StoreError)
        assert not issubclass(TaskNotFound, StoreError)

    def test_errors_carry_their_subject(self) -> None:
        """TaskNotFound and PreconditionFailed name the task (and version) they are about."""
        task_id = uuid4()
        assert TaskNotFound(task_id).task_id == task_id
        assert str(task_id) in str(TaskNotFound(task_id))
        failed = PreconditionFailed(task_id, 4)
        assert (failed.task_id, failed.expected_version) == (task_id, 4)
