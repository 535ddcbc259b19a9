"""The API describing itself: ``/openapi.json``, and ``/docs`` with the files it needs.

``/docs/`` redirects to ``/docs``; the standalone server also sends ``/docs`` there, and
``/`` when its web app is off (``add_docs_shortcuts``): the first addresses someone who
just started it tries.

The page is Swagger UI (5.x, the first to read OpenAPI 3.1) from the
``swagger-ui-bundle-v2`` package, served by this server from a fixed list of files, so
it works with no internet access. Every URL in the page is relative, so it works at
any mount point; the document's paths follow the mount point too.
"""

from __future__ import annotations

import functools
from importlib.resources.abc import Traversable
from typing import Final

from aiohttp import hdrs, web
from swagger_ui_bundle import swagger_ui_path

from todo_http.errors import NotFound
from todo_http.keys import API, AUTHENTICATED, SETTINGS
from todo_http.openapi import API_PREFIX, DOCS_ASSETS, openapi_bytes

__all__ = ["add_docs_routes", "add_docs_shortcuts"]

_DOCUMENT: Final = "/openapi.json"
_SWAGGER_UI: Final[Traversable] = swagger_ui_path  # the package's Swagger UI dist folder

# Relative URLs: from <mount>/docs, "openapi.json" is <mount>/openapi.json.
_PAGE: Final = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Tasks API</title>
<link rel="stylesheet" href="docs/static/swagger-ui.css">
<link rel="icon" type="image/png" sizes="32x32" href="docs/static/favicon-32x32.png">
<link rel="icon" type="image/png" sizes="16x16" href="docs/static/favicon-16x16.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/static/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
});
</script>
</body>
</html>
"""


async def openapi_json(request: web.Request) -> web.Response:
    """The raw document, for wherever this API is mounted."""
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else API_PREFIX + _DOCUMENT
    prefix = canonical.removesuffix(_DOCUMENT)
    # /healthz and /readyz exist only beside create_app's API, which it mounts at /api.
    standalone = prefix == API_PREFIX and API in request.config_dict
    authenticated = request.app.get(AUTHENTICATED, False)
    ui = standalone and request.config_dict[SETTINGS].ui
    document = openapi_bytes(prefix, standalone=standalone, authenticated=authenticated, ui=ui)
    return web.Response(body=document, content_type="application/json")


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=_PAGE, content_type="text/html")


@functools.cache
def _asset(name: str) -> bytes:
    return (_SWAGGER_UI / name).read_bytes()


async def docs_asset(request: web.Request) -> web.Response:
    name = request.match_info["asset"]
    media_type = DOCS_ASSETS.get(name)
    if media_type is None:
        raise NotFound("No such file")
    return web.Response(
        body=_asset(name),
        content_type=media_type,
        charset=None if media_type.startswith("image/") else "utf-8",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def _found(location: str) -> web.Response:
    # 302 rather than 301: browsers keep a permanent redirect forever, and these
    # addresses may serve something of their own one day.
    return web.Response(status=302, headers={hdrs.LOCATION: location})


async def docs_page_slash(request: web.Request) -> web.Response:
    """``<mount>/docs/`` to ``<mount>/docs``, wherever the API is mounted."""
    return _found(request.path.removesuffix("/"))


async def to_docs_page(request: web.Request) -> web.Response:
    return _found(f"{API_PREFIX}/docs")


def add_docs_routes(router: web.UrlDispatcher) -> None:
    """Register ``/openapi.json``, ``/docs``, ``/docs/`` (a redirect to ``/docs``) and
    ``/docs/static/{asset}`` (GET and HEAD)."""
    router.add_get(_DOCUMENT, openapi_json, name="openapi")
    router.add_get("/docs", docs_page, name="docs")
    router.add_get("/docs/", docs_page_slash, name="docs-slash")
    router.add_get("/docs/static/{asset}", docs_asset, name="docs-asset")


def add_docs_shortcuts(router: web.UrlDispatcher, *, root: bool = True) -> None:
    """Redirect ``/docs``, and ``/`` unless ``root`` is false (the web app has it), to the
    docs page of an API mounted at ``API_PREFIX``."""
    if root:
        router.add_get("/", to_docs_page, name="root")
    router.add_get("/docs", to_docs_page, name="docs-shortcut")
