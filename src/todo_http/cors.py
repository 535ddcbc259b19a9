"""CORS for browser front ends on other origins, from an explicit allow-list.

With no origins configured nothing here adds a header, and ``OPTIONS`` stays the 405
that routing gives it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

from todo_http.envelope import Handler, envelope_middleware
from todo_http.keys import SETTINGS

__all__ = ["cors_middleware", "stream_cors_headers"]

_ALLOWED_HEADERS: Final = (
    "Content-Type, If-Match, If-None-Match, X-Request-ID, Authorization, Idempotency-Key, "
    "Last-Event-ID"
)
# WWW-Authenticate, so that a browser client can tell a missing token from a refused one.
_EXPOSED_HEADERS: Final = (
    "ETag, Location, Link, X-Request-ID, WWW-Authenticate, Idempotent-Replayed"
)
_MAX_AGE: Final = "600"


def _allowed_methods(request: web.Request) -> str | None:
    """The methods of the matched path, or None where no path matched."""
    problem = request.match_info.http_exception
    if problem is None:
        return None  # OPTIONS is never routed, so a match means no preflight here
    if isinstance(problem, web.HTTPMethodNotAllowed):
        return ", ".join(sorted(problem.allowed_methods))
    return None


def cors_middleware(origins: Iterable[str]) -> Middleware | None:
    """A middleware answering preflights and labelling responses for ``origins``."""
    allowed = frozenset(origins)
    if not allowed:
        return None

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN)
        if origin not in allowed:
            answer = await envelope_middleware(request, handler)
            # The answer depends on Origin even here: a shared cache must not hand this
            # one, without Access-Control-Allow-Origin, to an allowed origin's request.
            answer.headers.add(hdrs.VARY, hdrs.ORIGIN)
            return answer
        methods = _allowed_methods(request)
        if (
            request.method == hdrs.METH_OPTIONS
            and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
            and methods is not None
        ):
            response: web.StreamResponse = web.Response(
                status=204,
                headers={
                    hdrs.ACCESS_CONTROL_ALLOW_METHODS: methods,
                    hdrs.ACCESS_CONTROL_ALLOW_HEADERS: _ALLOWED_HEADERS,
                    hdrs.ACCESS_CONTROL_MAX_AGE: _MAX_AGE,
                },
            )
        else:
            # Errors are turned into responses here, not only by the outer envelope, so
            # that a browser may read them too.
            response = await envelope_middleware(request, handler)
            response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = _EXPOSED_HEADERS
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
        response.headers.add(hdrs.VARY, hdrs.ORIGIN)
        return response

    return cors


def stream_cors_headers(request: web.Request) -> dict[str, str]:
    """What ``cors_middleware`` labels an answer with, for a streamed answer: it sends
    its headers before the middleware sees it."""
    allowed = request.app[SETTINGS].cors_origins
    if not allowed:
        return {}
    origin = request.headers.get(hdrs.ORIGIN)
    if origin not in allowed:
        return {hdrs.VARY: hdrs.ORIGIN}
    return {
        hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: origin,
        hdrs.ACCESS_CONTROL_EXPOSE_HEADERS: _EXPOSED_HEADERS,
        hdrs.VARY: hdrs.ORIGIN,
    }
