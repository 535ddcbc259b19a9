"""The URLs the API hands out in ``Location`` and ``Link``, built from its routes.

Built from the route and the values as the server understood them, never from the
client's spelling of the request: a path segment is percent-encoded so that every
valid ``user_id`` reaches its tasks, ``.`` and ``..`` included (clients resolve those
as "this" and "the parent" directory).
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote, urlencode

from aiohttp import web

__all__ = ["next_page_url", "path_segment"]

# Each listing route's parameters that its cursor is bound to (and ``limit``), in the
# order a Link writes them.
_PAGE_PARAMETERS: Final = {
    "tasks": ("completed", "q", "priority", "tag", "due_min", "due_max", "sort", "limit"),
    "tags": ("limit",),
    "trash": ("limit",),
}


def path_segment(value: str) -> str:
    """``value`` as one path segment: a segment made only of dots is written escaped."""
    if value.strip(".") == "":
        return "%2E" * len(value)
    return quote(value, safe="")


def next_page_url(request: web.Request, route: str, user_id: str, cursor: str) -> str:
    """The listing of ``request`` (the route named ``route``) from ``cursor`` on, with
    the same parameters."""
    path = request.app.router[route].canonical.format(user_id=path_segment(user_id))
    # Listing parameters are read once each (a repeated one is refused), so one value
    # per name is the whole query; parameters the listing ignores are left out.
    names = _PAGE_PARAMETERS[route]
    kept = [(name, request.query[name]) for name in names if name in request.query]
    return f"{path}?{urlencode([*kept, ('cursor', cursor)], quote_via=quote)}"
