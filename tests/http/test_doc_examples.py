"""docs/embedding.md's examples, run: each ```python block starting ``# file: NAME.py``
is written out as that module and exercised the way the page says to use it."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
from pytest_aiohttp import AiohttpClient

from tests.http.server_process import free_port
from todo_core import TaskStore, open_store
from todo_http.keys import SETTINGS

EMBEDDING = Path(__file__).resolve().parents[2] / "docs" / "embedding.md"
_FILE_BLOCK = re.compile(r"^```python\n# file: (\w+)\.py\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)

Importer = Callable[[str], Any]


def example_files() -> dict[str, str]:
    """Module name -> source of every example module on the page."""
    return dict(_FILE_BLOCK.findall(EMBEDDING.read_text(encoding="utf-8")))


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Importer]:
    """Imports an example module by name; the working directory is a fresh one."""
    sources = tmp_path / "examples"
    sources.mkdir()
    for name, source in example_files().items():
        (sources / f"{name}.py").write_text(source, encoding="utf-8")
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.syspath_prepend(str(sources))

    def load(name: str) -> ModuleType:
        return importlib.import_module(name)

    yield load
    for name in example_files():
        sys.modules.pop(name, None)


def test_the_page_has_the_examples_this_file_runs() -> None:
    assert set(example_files()) == {
        "mounted",
        "own_store",
        "standalone",
        "service",
        "api_keys",
        "counting",
        "test_counting",
        "with_webapp",
    }


async def test_with_webapp(example: Importer, aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(example("with_webapp").build_app())
    async with client.get("/tasks", allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == "/tasks/"
    async with client.get("/tasks/") as response:
        assert response.status == 200
        assert '<meta name="todo-api" content="/tasks-api">' in await response.text()
    async with client.get("/tasks/ui/main.js") as response:
        assert response.status == 200
        assert response.content_type == "text/javascript"
    created = await client.post("/tasks-api/alice/tasks", json={"title": "x"})
    assert created.status == 201


async def test_mounted(example: Importer, aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(example("mounted").build_app())
    assert await (await client.get("/")).text() == "my application"
    created = await client.post("/todo/alice/tasks", json={"title": "x"})
    assert created.status == 201
    assert created.headers["Location"].startswith("/todo/alice/tasks/")
    document = await (await client.get("/todo/openapi.json")).json()
    assert "/todo/{user_id}/tasks" in document["paths"]
    assert (await client.get("/todo/docs")).status == 200
    missing = await client.get("/todo/nothing/here/at/all")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "NOT_FOUND"
    preflight = await client.options(
        "/todo/alice/tasks",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 204


async def test_own_store(example: Importer) -> None:
    module = example("own_store")
    port = free_port()
    async with open_store("sqlite:///tasks.db", create_schema=True) as store:
        stop = asyncio.Event()
        server = asyncio.create_task(module.serve(store, port, stop))
        try:
            async with aiohttp.ClientSession() as session:
                url = f"http://127.0.0.1:{port}/todo/alice/tasks"
                for _ in range(100):
                    try:
                        async with session.post(url, json={"title": "x"}) as response:
                            assert response.status == 201
                            break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
                else:
                    pytest.fail("the example never served")
        finally:
            stop.set()
            await server
        assert len((await store.list("alice")).items) == 1  # still open after the server


async def test_standalone(example: Importer, aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(example("standalone").build_app())
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    assert (await client.post("/api/alice/tasks", json={"title": "x"})).status == 201


async def test_service(
    example: Importer, aiohttp_client: AiohttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "sqlite:///service.db"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("TODO_SECRET", raising=False)
    monkeypatch.delenv("TODO_CORS_ORIGINS", raising=False)
    for variable in ("TODO_AUTH", "TODO_JWT_SECRET", "TODO_JWKS_URL", "TODO_JWKS_FILE"):
        monkeypatch.delenv(variable, raising=False)
    async with open_store(url, create_schema=True):  # what `todo-http migrate` does
        pass
    app = await example("service").app_factory()
    settings = app[SETTINGS]
    assert settings.database_url == url
    assert not settings.create_schema
    assert settings.store_options == {"statement_timeout": 2.0}
    client = await aiohttp_client(app)
    assert (await client.post("/api/alice/tasks", json={"title": "x"})).status == 201


async def test_api_keys(
    example: Importer, aiohttp_client: AiohttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALICE_API_KEY", "k-alice-0123456789")
    client = await aiohttp_client(example("api_keys").build_app())
    alice = {"Authorization": "Bearer k-alice-0123456789"}
    assert (await client.post("/api/alice/tasks", json={"title": "x"}, headers=alice)).status == 201
    missing = await client.get("/api/alice/tasks")
    assert missing.status == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="todo"'
    wrong = {"Authorization": "Bearer k-alice-0123456788"}
    assert (await client.get("/api/alice/tasks", headers=wrong)).status == 401
    assert (await client.get("/api/bob/tasks", headers=alice)).status == 403
    assert (await client.get("/api/openapi.json")).status == 200


async def test_counting(example: Importer, aiohttp_client: AiohttpClient) -> None:
    await example("test_counting").test_writes_are_counted(aiohttp_client)


def _store_table() -> dict[str, list[str]]:
    """Method name -> parameter names, from the "Bring your own store" table."""
    text = EMBEDDING.read_text(encoding="utf-8")
    section = text.partition("## Bring your own store")[2].partition("\n## ")[0]
    table: dict[str, list[str]] = {}
    for name, parameters in re.findall(r"^\| `(\w+)\((.*?)\)` \|", section, re.MULTILINE):
        listed = (part.split(":")[0].split("=")[0].strip() for part in parameters.split(","))
        table[name] = [parameter for parameter in listed if parameter not in ("", "*")]
    return table


def test_the_store_table_lists_every_method_of_the_protocol() -> None:
    """A store written from the table must be complete: a missing method is a 500 on
    every request that needs it (list_fields once was, for every listing)."""
    protocol = {
        name: [
            parameter for parameter in inspect.signature(member).parameters if parameter != "self"
        ]
        for name, member in vars(TaskStore).items()
        if inspect.iscoroutinefunction(member) and not name.startswith("_")
    }
    assert "list_fields" in protocol
    assert _store_table() == protocol


def test_the_counting_store_on_the_page_is_a_whole_store() -> None:
    source = example_files()["counting"]
    defined = set(re.findall(r"^    async def (\w+)\(", source, re.MULTILINE))
    assert defined == set(_store_table())
