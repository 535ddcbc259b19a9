"""The web app: one page and its files, served from this package (docs/webapp.md).

The files are read once, from a fixed list, so no request can name any other file;
the page learns where the API is and how it authenticates from two meta tags filled
in here, once. Every answer forbids what the page never does (inline code, another
origin, framing) through its Content-Security-Policy.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import Final

from aiohttp import hdrs, web

from todo_http.conditional import not_modified
from todo_http.envelope import envelope_middleware
from todo_http.errors import NotFound
from todo_http.settings import AuthMode

__all__ = ["WEBAPP_FILES", "Asset", "add_webapp_routes", "create_webapp"]

# Every file the page may load, with its media type: the only names /ui/{file} serves.
WEBAPP_FILES: Final = {
    "app.css": "text/css",
    "api.js": "text/javascript",
    "dates.js": "text/javascript",
    "edit.js": "text/javascript",
    "identity.js": "text/javascript",
    "list.js": "text/javascript",
    "live.js": "text/javascript",
    "main.js": "text/javascript",
    "messages.js": "text/javascript",
    "offline.js": "text/javascript",
    "pages.js": "text/javascript",
    "trash.js": "text/javascript",
}

_PAGE: Final = "index.html"
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidated on every load, so an upgrade shows at once; unchanged files cost a 304.
    hdrs.CACHE_CONTROL: "no-cache",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """A file as served: its bytes, media type and strong entity tag."""

    body: bytes
    media_type: str
    etag: str

    @classmethod
    def of(cls, body: bytes, media_type: str) -> Asset:
        return cls(body, media_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"')

    def response(self, request: web.Request) -> web.Response:
        headers = {**_SECURITY_HEADERS, hdrs.ETAG: self.etag}
        if not_modified(request, self.etag):
            return web.Response(status=304, headers=headers)
        return web.Response(
            body=self.body, content_type=self.media_type, charset="utf-8", headers=headers
        )


_PAGE_KEY: Final = web.AppKey("webapp_page", Asset)
_FILES_KEY: Final = web.AppKey("webapp_files", dict[str, Asset])


def _read(name: str) -> bytes:
    return files(__name__).joinpath("static", name).read_bytes()


def _page_asset(api_url: str, auth: AuthMode) -> Asset:
    """index.html with its meta tags filled in for this server."""
    text = _read(_PAGE).decode()
    text = text.replace("{{api}}", html.escape(api_url.rstrip("/"), quote=True))
    text = text.replace("{{auth}}", html.escape(auth, quote=True))
    return Asset.of(text.encode(), "text/html")


def _file_assets() -> dict[str, Asset]:
    """Every file of ``WEBAPP_FILES``, read now."""
    return {name: Asset.of(_read(name), media_type) for name, media_type in WEBAPP_FILES.items()}


async def webapp_page(request: web.Request) -> web.Response:
    return request.app[_PAGE_KEY].response(request)


async def webapp_file(request: web.Request) -> web.Response:
    asset = request.app[_FILES_KEY].get(request.match_info["file"])
    if asset is None:
        raise NotFound("No such file")
    return asset.response(request)


def add_webapp_routes(app: web.Application, *, api_url: str, auth: AuthMode) -> None:
    """Serve the page at ``/`` and its files at ``/ui/{file}`` (GET and HEAD) from ``app``."""
    app[_PAGE_KEY] = _page_asset(api_url, auth)
    app[_FILES_KEY] = _file_assets()
    app.router.add_get("/", webapp_page, name="webapp")
    app.router.add_get("/ui/{file}", webapp_file, name="webapp-file")


@web.middleware
async def _slash(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    # The mount point itself (/todo) resolves to no route: the page's relative URLs
    # need the trailing slash, so send the browser there.
    if request.match_info.http_exception is not None and not request.path.endswith("/"):
        prefix = request.app.router["webapp"].canonical
        if request.path + "/" == prefix:
            return web.Response(status=302, headers={hdrs.LOCATION: prefix})
    return await handler(request)


def create_webapp(*, api_url: str = "/api", auth: AuthMode = "none") -> web.Application:
    """The web app as an application to mount: ``app.add_subapp("/todo", create_webapp())``.

    Its page is then at ``/todo/`` (``/todo`` redirects there) and talks to the tasks
    API at ``api_url`` (mounted with ``create_api``), authenticating as ``auth`` says
    (``"jwt"``: the user pastes a token). docs/embedding.md shows the whole set-up.
    """
    if auth not in ("none", "jwt"):
        raise ValueError(f"auth must be 'none' or 'jwt', not {auth!r}")
    # Enveloped like create_api: a missing file is the contract's 404 wherever it is mounted.
    app = web.Application(middlewares=[envelope_middleware, _slash])
    add_webapp_routes(app, api_url=api_url, auth=auth)
    return app
