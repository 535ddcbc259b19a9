"""The public surface of todo_http, and the distribution around it: the library alone
installs no web stack, the server extra does, and ``todo-http`` without it says so."""

from __future__ import annotations

import subprocess
import sys
import types
from importlib.metadata import distribution
from importlib.resources import files
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import todo_http
from tests.core.test_public_api import imported_modules_after

DISTRIBUTION = "todo-core"
# What the HTTP server needs and the library does not (pyproject's `server` extra).
SERVER_ONLY = {"aiohttp", "uvloop", "swagger-ui-bundle-v2"}


def requirements(extra: str) -> set[str]:
    """The distributions that installing with ``extra`` ("" for none) brings on this
    platform, as names; an extra that names another of ours brings that one's too."""
    names: set[str] = set()
    for requirement in map(Requirement, distribution(DISTRIBUTION).requires or []):
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        if requirement.name == DISTRIBUTION:
            for implied in requirement.extras:
                names |= requirements(implied)
        else:
            names.add(requirement.name)
    return names


class TestExports:
    def test_all_is_sorted(self) -> None:
        """__all__ is sorted, so additions are easy to review."""
        assert todo_http.__all__ == sorted(todo_http.__all__)

    def test_all_lists_every_public_name(self) -> None:
        """Every name in __all__ resolves, and once they have, __all__ is exactly the
        public, non-module names of the package (they are imported on first use)."""
        exported = {name: getattr(todo_http, name) for name in todo_http.__all__}
        assert all(value is not None for value in exported.values())
        public = {
            name
            for name, value in vars(todo_http).items()
            if (not name.startswith("_") or name == "__version__")
            and not isinstance(value, types.ModuleType)
        }
        assert set(todo_http.__all__) == public
        assert set(todo_http.__all__) <= set(dir(todo_http))

    def test_an_unknown_name_is_an_attribute_error(self) -> None:
        with pytest.raises(AttributeError, match="no attribute 'create_server'"):
            todo_http.create_server  # noqa: B018

    def test_ships_py_typed(self) -> None:
        """The package is marked as typed (PEP 561)."""
        assert files("todo_http").joinpath("py.typed").is_file()

    def test_importing_the_entry_point_loads_no_web_stack(self) -> None:
        """The script's module and the package import without aiohttp: that is what lets
        ``todo-http`` report a missing extra instead of a traceback."""
        loaded = imported_modules_after("import todo_http, todo_http.__main__")
        assert "aiohttp" not in loaded


class TestDistribution:
    def test_has_a_name_of_its_own(self) -> None:
        """Not ``todo``: on the public index that is an unrelated project."""
        assert distribution(DISTRIBUTION).metadata["Name"] == DISTRIBUTION

    def test_the_library_alone_requires_no_web_stack(self) -> None:
        assert requirements("") >= {"pydantic", "sqlalchemy", "alembic", "asyncpg"}
        assert not requirements("") & SERVER_ONLY

    @pytest.mark.parametrize("extra", ["server", "jwt", "gunicorn"])
    def test_every_extra_brings_the_server(self, extra: str) -> None:
        """The server extra adds the web stack; jwt and gunicorn imply it."""
        wanted = SERVER_ONLY if sys.platform != "win32" else SERVER_ONLY - {"uvloop"}
        assert requirements(extra) >= wanted | requirements("")

    def test_the_extras_add_what_they_are_named_for(self) -> None:
        assert "pyjwt" in requirements("jwt")
        assert "gunicorn" in requirements("gunicorn")

    def test_the_script_ships_with_the_library(self) -> None:
        [script] = [e for e in distribution(DISTRIBUTION).entry_points if e.name == "todo-http"]
        assert script.value == "todo_http.__main__:main"


# The library run in a fresh interpreter in which the server's packages cannot be
# imported, as after `pip install todo-core`.
_WITHOUT_SERVER = "import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None\n"
_BLOCKED = ("aiohttp", "uvloop", "swagger_ui_bundle")


def _run_without_server(code: str) -> subprocess.CompletedProcess[str]:
    program = _WITHOUT_SERVER.format(blocked=_BLOCKED) + code
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )


class TestWithoutTheServerExtra:
    def test_the_library_works(self, tmp_path: Path) -> None:
        """todo_core stores and lists tasks on SQLite with no web package importable."""
        result = _run_without_server(
            "import asyncio\n"
            "from todo_core import ListQuery, TaskCreate, open_store\n"
            "async def main() -> None:\n"
            f"    async with open_store('sqlite:///{tmp_path}/t.db', create_schema=True) as s:\n"
            "        await s.create('alice', TaskCreate(title='Buy milk'))\n"
            "        page = await s.list('alice', ListQuery())\n"
            "        print([t.title for t in page.items])\n"
            "asyncio.run(main())\n"
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "['Buy milk']"

    @pytest.mark.parametrize("argv", [["serve"], ["migrate"], ["--help"], []])
    def test_the_script_says_what_to_install_in_one_line(self, argv: list[str]) -> None:
        """``todo-http`` (this is the function the installed script calls) exits 1 with
        one line naming the extra, whatever the command, and no traceback."""
        result = _run_without_server(
            f"from todo_http.__main__ import main\nsys.exit(main({argv!r}))\n"
        )
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr == (
            "todo-http: error: the HTTP server is not installed (no module 'aiohttp'): "
            "pip install 'todo-core[server]'\n"
        )
