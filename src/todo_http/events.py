"""``GET /api/{user_id}/events``: the change feed as a ``text/event-stream``.

Each feed item is one event: ``id:`` the token to resume after it, ``event: upsert``
or ``event: delete``, ``data:`` the item as ``/changes`` answers it, on one line. The
stream starts after the ``Last-Event-ID`` header's token, else the ``since``
parameter's, else now; a bad token (422) or an expired one (410) is answered as JSON
before any event and before the stream limits (429), so a client can tell "start
over" from "come back later".

A stream writes only whole events and waits at most ``Settings.stream_write_timeout``
for a slow reader, then ends: its client reconnects with the id of the last event it
received, which is the first one it did not. A comment line is sent whenever the
stream has been quiet for ``Settings.stream_keepalive`` seconds, which also notices a
client that went away.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import orjson
from aiohttp import hdrs, web

from todo_core.errors import InvalidSyncToken, StoreError
from todo_core.events import Subscription, subscribe
from todo_core.feed import Change, Upserted
from todo_http.connections import GuardedConnection
from todo_http.cors import stream_cors_headers
from todo_http.envelope import change_data
from todo_http.errors import FieldProblem, InvalidInput
from todo_http.keys import EVENT_STREAMS, REQUEST_ID, SETTINGS, STORE
from todo_http.parsing import user_id_of
from todo_http.settings import Settings
from todo_http.streams import EventStreams

__all__ = ["ACCESS_TOKEN", "add_event_routes", "add_event_streams"]

log = logging.getLogger("todo_http.events")

ACCESS_TOKEN: Final = "access_token"  # browsers' EventSource cannot send a header
_LAST_EVENT_ID: Final = "Last-Event-ID"
_SINCE: Final = "since"
_KEEPALIVE: Final = b": keepalive\n\n"
_STREAM_HEADERS: Final = {
    hdrs.CONTENT_TYPE: "text/event-stream",
    hdrs.CACHE_CONTROL: "no-store",
    "X-Accel-Buffering": "no",  # nginx: pass each event on as it comes
}


def _event(change: Change) -> bytes:
    data = orjson.dumps(change_data(change), option=orjson.OPT_UTC_Z)
    kind = b"upsert" if isinstance(change, Upserted) else b"delete"
    # Tokens are base64url: nothing in them can end the line.
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (change.token.encode(), kind, data)


def _start_token(request: web.Request) -> tuple[str | None, str]:
    """Where the stream starts, and the name of what said so (for a 422's ``field``)."""
    resumed = request.headers.getall(_LAST_EVENT_ID, ())
    if len(resumed) > 1:
        raise InvalidInput.of(_LAST_EVENT_ID, "must be given at most once")
    if resumed and resumed[0].strip():
        return resumed[0].strip(), _LAST_EVENT_ID
    given = request.query.getall(_SINCE, [])
    if len(given) > 1:
        raise InvalidInput.of(_SINCE, "must be given at most once")
    if given and not given[0]:
        raise InvalidInput.of(_SINCE, "must not be empty: leave it out to start now")
    return (given[0] if given else None), _SINCE


async def _follow(
    request: web.Request, subscription: Subscription, response: web.StreamResponse
) -> None:
    """Write each change as it comes, a keepalive when idle, until closed or cut off."""
    settings = request.app[SETTINGS]
    while True:
        change = await subscription.next(settings.stream_keepalive)
        if change is None:
            if subscription.closed:
                return
            data = _KEEPALIVE
        else:
            data = _event(change)
        async with asyncio.timeout(settings.stream_write_timeout):
            await response.write(data)


async def stream_events(request: web.Request) -> web.StreamResponse:
    user_id = user_id_of(request)
    since, source = _start_token(request)
    try:
        async with subscribe(request.app[STORE], user_id, since) as subscription:
            with request.app[EVENT_STREAMS].admit(user_id, subscription):
                return await _stream(request, subscription)
    except InvalidSyncToken:  # only opening raises it: _stream raises nothing
        problem: FieldProblem = {"field": source, "message": "is not a valid sync token"}
        raise InvalidInput([problem]) from None


async def _stream(request: web.Request, subscription: Subscription) -> web.StreamResponse:
    """The stream's answer, once admitted; from here on nothing is raised, since the
    status line is sent: a failure ends the stream, and the client resumes."""
    response = web.StreamResponse(headers=_STREAM_HEADERS)
    # Sent before the middlewares see the response: what they would add, added now.
    response.headers["X-Request-ID"] = request[REQUEST_ID]
    response.headers.update(stream_cors_headers(request))
    await response.prepare(request)
    if request.method == hdrs.METH_HEAD:
        return response
    connection = request.protocol
    forget = (
        connection.on_lost(subscription.close)
        if isinstance(connection, GuardedConnection)
        else lambda: None
    )
    try:
        await _follow(request, subscription, response)
    except TimeoutError:
        # A reader too slow for its stream: cut off, whatever is still buffered for it
        # dropped. Only whole events count, so the id of the last one it got resumes it
        # without a loss.
        _abort(request)
    except ConnectionError:
        pass  # the client went away
    except StoreError as error:  # the database is away: the client retries (a 503 then)
        log.warning("event stream ended: %s [request %s]", error, request[REQUEST_ID])
    except Exception:
        log.exception("event stream failed [request %s]", request[REQUEST_ID])
        _abort(request)
    finally:
        forget()
    return response


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


def add_event_streams(app: web.Application, settings: Settings) -> None:
    """Give ``app`` its stream limits, and end every stream on shutdown (``on_shutdown``
    runs before the requests in flight are waited for)."""
    streams = EventStreams(per_user=settings.max_streams_per_user, total=settings.max_streams)
    app[EVENT_STREAMS] = streams

    async def end_streams(_app: web.Application) -> None:
        await streams.end_all()

    app.on_shutdown.append(end_streams)


def add_event_routes(router: web.UrlDispatcher) -> None:
    """Register ``/{user_id}/events`` (GET, and HEAD for its headers alone)."""
    events = router.add_resource("/{user_id}/events", name="events")
    events.add_route(hdrs.METH_GET, stream_events)
    events.add_route(hdrs.METH_HEAD, stream_events)
