"""The web app as the server serves it, without a browser: the page and its files, their
headers, ``--no-ui``, mounting with ``create_webapp``, and the size of a first load.

tests/browser drives the page itself in Chromium.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html.parser import HTMLParser
from importlib.resources import files
from typing import Final

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from yarl import URL

from tests.http.schema_check import check_response
from todo_core import MemoryTaskStore
from todo_http import JwtSettings, Settings, create_api, create_app, create_webapp
from todo_http.cli import parser, serve_configuration
from todo_http.openapi import openapi_document
from todo_http.settings import AuthMode
from todo_http.startup import StartupError
from todo_http.webapp import WEBAPP_FILES

Client = TestClient[web.Request, web.Application]
DOCUMENT: Final = openapi_document()
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
FIRST_LOAD_LIMIT: Final = 100_000  # bytes, uncompressed: issue 17's budget
# import ... from "./x.js" and import("./x.js") in the modules.
_IMPORT: Final = re.compile(r"""(?:\bfrom|\bimport)\s*\(?\s*["']\./([^"']+)["']""")


class _Page(HTMLParser):
    """What a page loads, and whatever in it the policy would block."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.meta: dict[str, str] = {}
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if "style" in found or any(name.startswith("on") for name in found):
            self.inline.append(f"<{tag} {found}>")
        if tag == "style":
            self.inline.append("<style>")
        if tag == "meta" and "name" in found:
            self.meta[found["name"]] = found.get("content", "")
        if tag == "script":
            self._in_script = True
            if "src" in found:
                self.urls.append(found["src"])
        if tag == "link" and found.get("rel") in ("stylesheet", "modulepreload"):
            self.urls.append(found["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data.strip()[:40])


def parsed(page: str) -> _Page:
    reader = _Page()
    reader.feed(page)
    return reader


async def standalone(
    aiohttp_client: AiohttpClient, *, auth: AuthMode = "none", ui: bool = True
) -> Client:
    settings = Settings(auth=auth, jwt=JwtSettings(secret="s" * 32), ui=ui)
    return await aiohttp_client(create_app(MemoryTaskStore(), settings=settings))


def assert_protected(headers: Mapping[str, str]) -> None:
    assert headers.get("Content-Security-Policy") == CSP
    assert headers.get("X-Content-Type-Options") == "nosniff"
    assert headers.get("Referrer-Policy") == "no-referrer"
    assert headers.get("Cache-Control") == "no-cache"
    assert re.fullmatch(r'"[0-9a-f]{32}"', headers.get("ETag", "")), headers


async def first_load(client: Client, page_url: URL) -> dict[str, bytes]:
    """Every file a first load of the page fetches, by path, found as a browser finds
    them: the page's own references, then each module's imports."""
    loaded: dict[str, bytes] = {}
    waiting = [page_url]
    while waiting:
        url = waiting.pop()
        if url.path in loaded:
            continue
        async with client.get(url) as response:
            assert response.status == 200, url
            body = await response.read()
        loaded[url.path] = body
        if url == page_url:
            references = parsed(body.decode()).urls
        elif url.path.endswith(".js"):
            references = _IMPORT.findall(body.decode())
        else:
            references = []
        for reference in references:
            # Relative, so the page works under any mount point.
            assert not URL(reference).is_absolute(), reference
            assert not reference.startswith("/"), reference
            waiting.append(url.join(URL(reference)))
    return loaded


class TestThePage:
    async def test_is_served_at_the_root_with_its_configuration(
        self, aiohttp_client: AiohttpClient
    ) -> None:
        client = await standalone(aiohttp_client, auth="jwt")
        for method in ("HEAD", "GET"):
            async with client.request(method, "/") as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "text/html; charset=utf-8"
                assert_protected(response.headers)
                body = await response.read()
                check_response(
                    openapi_document(authenticated=True), method, "/", 200, response.headers, body
                )
        page = parsed(body.decode())
        assert page.meta["todo-api"] == "/api"
        assert page.meta["todo-auth"] == "jwt"
        assert "<title>Tasks</title>" in body.decode()
        assert '<html lang="en">' in body.decode()

    async def test_says_when_authentication_is_off(self, aiohttp_client: AiohttpClient) -> None:
        client = await standalone(aiohttp_client)
        async with client.get("/") as response:
            assert parsed(await response.text()).meta["todo-auth"] == "none"

    async def test_has_nothing_inline_and_nothing_from_another_origin(
        self, aiohttp_client: AiohttpClient
    ) -> None:
        """The policy forbids inline code and other origins: a page that used them would
        break in every browser, so none may ship."""
        client = await standalone(aiohttp_client)
        loaded = await first_load(client, URL("/"))
        for path, body in loaded.items():
            text = body.decode()
            assert not re.search(r"(?i)\b(https?:)?//[a-z0-9]", text), path
        assert parsed(loaded["/"].decode()).inline == []

    async def test_every_file_it_loads_is_served_and_every_served_file_is_loaded(
        self, aiohttp_client: AiohttpClient
    ) -> None:
        """A file the page needs but the list misses would ship broken; one the list has
        but nothing loads is dead weight."""
        client = await standalone(aiohttp_client)
        loaded = await first_load(client, URL("/"))
        assert set(loaded) == {"/", *(f"/ui/{name}" for name in WEBAPP_FILES)}

    async def test_a_first_load_is_under_100_kb(self, aiohttp_client: AiohttpClient) -> None:
        client = await standalone(aiohttp_client)
        loaded = await first_load(client, URL("/"))
        total = sum(len(body) for body in loaded.values())
        assert total < FIRST_LOAD_LIMIT, f"{total} bytes in {len(loaded)} files"


class TestItsFiles:
    @pytest.mark.parametrize("name", sorted(WEBAPP_FILES))
    async def test_each_is_served_with_its_media_type(
        self, aiohttp_client: AiohttpClient, name: str
    ) -> None:
        client = await standalone(aiohttp_client)
        path = f"/ui/{name}"
        for method in ("GET", "HEAD"):
            async with client.request(method, path) as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == f"{WEBAPP_FILES[name]}; charset=utf-8"
                assert_protected(response.headers)
                body = await response.read()
                check_response(DOCUMENT, method, path, 200, response.headers, body)
        packaged = files("todo_http.webapp").joinpath("static", name).read_bytes()
        async with client.get(path) as response:
            assert await response.read() == packaged

    @pytest.mark.parametrize("path", ["/", "/ui/main.js", "/ui/app.css"])
    async def test_an_unchanged_file_is_a_304(
        self, aiohttp_client: AiohttpClient, path: str
    ) -> None:
        client = await standalone(aiohttp_client)
        async with client.get(path) as response:
            etag = response.headers["ETag"]
        for condition in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            async with client.get(path, headers={"If-None-Match": condition}) as response:
                assert response.status == 304, condition
                assert response.headers["ETag"] == etag
                assert_protected(response.headers)
                body = await response.read()
                assert body == b""
                check_response(DOCUMENT, "GET", path, 304, response.headers, body)
        async with client.get(path, headers={"If-None-Match": '"other"'}) as response:
            assert response.status == 200

    async def test_the_tag_follows_the_content(self, aiohttp_client: AiohttpClient) -> None:
        """The page differs with the server's authentication, so must its tag: a cached
        page of the other mode is never reused."""
        tags = []
        modes: tuple[AuthMode, ...] = ("none", "jwt")
        for auth in modes:
            client = await standalone(aiohttp_client, auth=auth)
            async with client.get("/") as response:
                tags.append(response.headers["ETag"])
        assert tags[0] != tags[1]

    @pytest.mark.parametrize(
        "path",
        [
            "/ui/secrets.txt",
            "/ui/index.html",
            "/ui/__init__.py",
            "/ui/static/app.css",
            "/ui/../app.py",
            "/ui/%2e%2e/__init__.py",
            "/ui/..%2f__init__.py",
            "/ui/..%2F..%2Fsettings.py",
            "/ui/%2Fetc%2Fpasswd",
            "/ui/APP.CSS",
            "/ui/",
        ],
    )
    async def test_nothing_outside_the_list_is_served(
        self, aiohttp_client: AiohttpClient, path: str
    ) -> None:
        client = await standalone(aiohttp_client)
        async with client.get(URL(path, encoded=True)) as response:
            assert response.status == 404
            body = await response.read()
            assert body.startswith(b'{"success":false,"error":{"code":"NOT_FOUND"')
            check_response(DOCUMENT, "GET", response.url.raw_path, 404, response.headers, body)


class TestWithoutTheWebApp:
    async def test_no_ui_keeps_the_root_a_redirect_and_serves_no_files(
        self, aiohttp_client: AiohttpClient
    ) -> None:
        client = await standalone(aiohttp_client, ui=False)
        document = openapi_document(ui=False)
        async with client.get("/", allow_redirects=False) as response:
            assert response.status == 302
            assert response.headers["Location"] == "/api/docs"
            check_response(document, "GET", "/", 302, response.headers, await response.read())
        async with client.get("/ui/main.js") as response:
            assert response.status == 404
        async with client.get("/api/openapi.json") as response:
            assert (await response.json())["paths"].keys() == document["paths"].keys()
        assert "/ui/{file}" not in document["paths"]
        assert "/ui/{file}" in DOCUMENT["paths"]

    async def test_create_api_never_includes_it(self, aiohttp_client: AiohttpClient) -> None:
        app = web.Application()
        app.add_subapp("/api", create_api(MemoryTaskStore()))
        client = await aiohttp_client(app)
        for path in ("/", "/api/", "/ui/main.js", "/api/ui/main.js"):
            async with client.get(path, allow_redirects=False) as response:
                assert response.status == 404, path

    def test_the_command_line_and_the_environment_turn_it_off(self) -> None:
        def ui(*argv: str, **environ: str) -> bool:
            arguments = parser(environ).parse_args(["serve", *argv])
            return serve_configuration(arguments, environ)[0].ui

        assert ui() is True
        assert ui("--no-ui") is False
        assert ui(TODO_UI="false") is False
        assert ui(TODO_UI="0") is False
        assert ui(TODO_UI="true") is True
        assert ui("--ui", TODO_UI="false") is True
        assert ui("--no-ui", TODO_UI="true") is False
        with pytest.raises(StartupError, match="TODO_UI: must be true or false, not 'maybe'"):
            ui(TODO_UI="maybe")


class TestMounted:
    async def test_under_a_prefix_next_to_the_api(self, aiohttp_client: AiohttpClient) -> None:
        app = web.Application()
        app.add_subapp("/todo", create_webapp(api_url="/todo-api", auth="jwt"))
        app.add_subapp("/todo-api", create_api(MemoryTaskStore()))
        client = await aiohttp_client(app)
        async with client.get("/todo", allow_redirects=False) as response:
            assert response.status == 302
            assert response.headers["Location"] == "/todo/"
        async with client.get("/todo/") as response:
            assert response.status == 200
            page = parsed(await response.text())
        assert page.meta == {**page.meta, "todo-api": "/todo-api", "todo-auth": "jwt"}
        loaded = await first_load(client, URL("/todo/"))
        assert set(loaded) == {"/todo/", *(f"/todo/ui/{name}" for name in WEBAPP_FILES)}
        async with client.get("/todo-api/alice/tasks") as response:
            assert response.status == 200
        for path in ("/todox", "/todo/ui/nothing.js", "/"):
            async with client.get(path, allow_redirects=False) as response:
                assert response.status == 404, path

    async def test_the_api_address_is_escaped_into_the_page(
        self, aiohttp_client: AiohttpClient
    ) -> None:
        app = web.Application()
        app.add_subapp("/todo", create_webapp(api_url='/a"><script>x</script>/'))
        client = await aiohttp_client(app)
        async with client.get("/todo/") as response:
            page = parsed(await response.text())
        assert page.meta["todo-api"] == '/a"><script>x</script>'
        assert page.inline == []

    def test_refuses_an_unknown_authentication_mode(self) -> None:
        with pytest.raises(ValueError, match="auth must be 'none' or 'jwt'"):
            create_webapp(auth="basic")  # type: ignore[arg-type]
