"""The OpenAPI pieces of the web app: its page at ``/`` and its files at ``/ui/{file}``.

Kept apart from ``openapi.py`` (which assembles the document), like the feed's and the
events' pieces. Only the standalone server with its web app on serves them
(docs/webapp.md); with ``--no-ui`` the document describes ``/`` as a redirect instead.
"""

from __future__ import annotations

from typing import Any

from todo_http.openapi_sync import PathKit
from todo_http.webapp import WEBAPP_FILES

__all__ = ["webapp_paths"]


def webapp_paths(kit: PathKit) -> dict[str, Any]:
    """``/`` and ``/ui/{file}``, each with its HEAD twin."""
    not_modified = kit.response("`If-None-Match` matched: no body.", headers=("ETag",))
    page = kit.operation(
        "getRoot",
        "The web app: a page that uses this API (off with `--no-ui`)",
        {
            "200": kit.response(
                "HTML.", {"type": "string"}, headers=("ETag",), media_type="text/html"
            ),
            "304": not_modified,
            **kit.errors(),
        },
        parameters=("IfNoneMatch",),
        tag="documentation",
    )
    file = kit.operation(
        "getWebAppFile",
        "A file of the web app, served by this server",
        {
            "200": {
                **kit.response("The file.", headers=("ETag",)),
                "content": {
                    media_type: {"schema": {"type": "string"}}
                    for media_type in sorted(set(WEBAPP_FILES.values()))
                },
            },
            "304": not_modified,
            **kit.errors("NOT_FOUND"),
        },
        parameters=("IfNoneMatch",),
        tag="documentation",
    )
    file["parameters"].insert(
        0,
        {
            "name": "file",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "enum": sorted(WEBAPP_FILES)},
        },
    )
    return {
        "/": {"get": page, "head": kit.head(page, "headRoot")},
        "/ui/{file}": {"get": file, "head": kit.head(file, "headWebAppFile")},
    }
