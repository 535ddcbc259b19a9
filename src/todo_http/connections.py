"""The connections of ``todo-http serve``: how many, and what a broken request gets.

aiohttp answers what never reaches an application (a request line or header it cannot
parse, an ``Expect`` it does not know) in plain text, logs it as an ERROR with a
traceback, and accepts connections for as long as file descriptors last. Here:

* every such answer is the contract's envelope, logged as INFO on one line;
* a process holds at most ``max_connections``: at the limit, the connection that has
  been idle longest (between requests, or still sending its first) makes room for the
  new one, and only when every connection is in a request is a new one refused. So
  a flood of idle or slow connections cannot lock out ``/healthz`` or real clients,
  and the process never runs out of file descriptors;
* the process's soft limit on open files is raised to its hard limit.

An application that embeds the API, or gunicorn's aiohttp worker, keeps its own
connection handling; the envelope, body timeout and header rules of the API itself
apply there too.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import hdrs, web
from aiohttp.http import HttpVersion11, RawRequestMessage
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError

from todo_http.envelope import answer_error, new_request_id
from todo_http.errors import ExpectationFailed, MalformedRequest, UnsupportedMediaType
from todo_http.keys import CLOSE_AFTER_ANSWER

__all__ = ["ConnectionLimit", "GuardedSite", "guard_requests", "raise_file_limit"]

log = logging.getLogger("todo_http.connections")

# An empty Expect asks for nothing (aiohttp's routing ignores it too).
_EXPECTABLE: Final = frozenset({"100-continue", ""})
_HTTP_1: Final = frozenset({(1, 0), (1, 1)})
# The version a request line claimed, where it was not HTTP/1.0 or 1.1.
_CLAIMED_VERSION: Final = web.RequestKey("claimed_version", str)

RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def raise_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; return the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as error:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, hard, error)
    return soft


class ConnectionLimit:
    """The open connections of one process, at most ``limit`` of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        # Least recently active first: a connection moves to the end after each request.
        self._open: dict[GuardedConnection, None] = {}

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, connection: GuardedConnection) -> bool:
        """Make room for ``connection`` if need be; False when there is none to make."""
        if len(self._open) >= self.limit:
            idle = next((c for c in self._open if not c.requests_in_flight), None)
            if idle is None:
                return False
            self.release(idle)
            idle.force_close()
        self._open[connection] = None
        return True

    def release(self, connection: GuardedConnection) -> None:
        self._open.pop(connection, None)

    def touch(self, connection: GuardedConnection) -> None:
        """Count ``connection`` as the most recently active."""
        if connection in self._open:
            del self._open[connection]
            self._open[connection] = None


class GuardedConnection(web.RequestHandler):
    """aiohttp's protocol for one connection, counted by a ``ConnectionLimit``, with the
    contract's envelope for the requests that aiohttp refuses before any application."""

    def __init__(self, manager: web.Server, limit: ConnectionLimit, **options: Any) -> None:
        super().__init__(manager, loop=asyncio.get_running_loop(), **options)
        self.requests_in_flight = 0
        self._limit = limit
        self._admitted = False
        self._on_lost: set[Callable[[], None]] = set()

    def on_lost(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` when the connection is lost (the client went away); returns
        what cancels that. aiohttp tells a handler only when it next writes: an event
        stream would hold its slot until its next keepalive."""
        self._on_lost.add(callback)
        return lambda: self._on_lost.discard(callback)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._admitted = self._limit.admit(self)
        if not self._admitted:
            log.warning("refused a connection: all %d are in use", self._limit.limit)
            transport.close()
            return
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._admitted:
            self._limit.release(self)
            super().connection_lost(exc)
        callbacks, self._on_lost = self._on_lost, set()
        for callback in callbacks:
            callback()

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        sent = await super().finish_response(request, resp, start_time)
        if request.get(CLOSE_AFTER_ANSWER):
            # Closed now, where aiohttp would go on reading (and inflating) the rest of
            # the body for as long again as the body timeout.
            self.force_close()
        return sent

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp's: too late for another answer
            raise ConnectionError("the response has already begun")
        error: Exception
        if status == 500:
            # Nothing of ours raises past the envelope: a bug, which answer_error logs.
            error = exc if isinstance(exc, Exception) else RuntimeError(message or "unhandled")
        elif isinstance(exc, ContentEncodingError):
            error = UnsupportedMediaType("Request body must be sent in identity, gzip or deflate")
        else:
            reason = exc.message if isinstance(exc, HttpProcessingError) else message
            first_line = str(reason or "").strip().partition("\n")[0].rstrip(":")
            error = MalformedRequest(f"Malformed request: {first_line or 'unreadable'}")
        response = answer_error(error, request, new_request_id())
        response.force_close()
        return response


def guard_requests(server: web.Server, limit: ConnectionLimit) -> None:
    """Check what must be checked before routing, and keep ``limit`` informed of which
    connections are in a request, by wrapping ``server``'s request handler."""
    inner: RequestHandler = server.request_handler
    make_request = server.request_factory

    def request_factory(message: RawRequestMessage, *args: Any) -> web.BaseRequest:
        # aiohttp takes HTTP/2.0 or HTTP/0.9 request lines and writes the version back
        # in its status line; the answer (400) is HTTP/1.1 whatever the client claimed.
        if message.version in _HTTP_1:
            return make_request(message, *args)
        request = make_request(message._replace(version=HttpVersion11), *args)
        request[_CLAIMED_VERSION] = f"{message.version[0]}.{message.version[1]}"
        return request

    async def guarded(request: web.BaseRequest) -> web.StreamResponse:
        connection = request.protocol
        if not isinstance(connection, GuardedConnection):
            return await inner(request)
        connection.requests_in_flight += 1
        try:
            claimed = request.get(_CLAIMED_VERSION)
            if claimed is not None:
                unsupported = MalformedRequest(f"HTTP/{claimed} is not supported: use HTTP/1.1")
                return answer_error(unsupported, request, new_request_id())
            expectations = request.headers.getall(hdrs.EXPECT, ())
            if any(value.strip().lower() not in _EXPECTABLE for value in expectations):
                refused = ExpectationFailed("The only expectation supported is 100-continue")
                return answer_error(refused, request, new_request_id())
            return await inner(request)
        finally:
            connection.requests_in_flight -= 1
            limit.touch(connection)

    server.request_handler = guarded
    server.request_factory = request_factory


class GuardedSite(web.SockSite):
    """A listening socket whose connections are ``GuardedConnection``s."""

    def __init__(
        self,
        runner: web.AppRunner,
        sock: socket.socket,
        limit: ConnectionLimit,
        *,
        shutdown_timeout: float,
        **connection_options: Any,
    ) -> None:
        super().__init__(runner, sock, shutdown_timeout=shutdown_timeout)
        self._guard = (limit, connection_options)

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        limit, options = self._guard
        self._server = await asyncio.get_running_loop().create_server(
            lambda: GuardedConnection(server, limit, **options),
            sock=self._sock,
            backlog=self._backlog,
        )
