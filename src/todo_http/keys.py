"""Typed keys for application and request state (one module, so nothing imports in a cycle)."""

from __future__ import annotations

from aiohttp import web

from todo_core import TaskStore
from todo_http.settings import Settings
from todo_http.streams import EventStreams

__all__ = [
    "API",
    "AUTHENTICATED",
    "CLOSE_AFTER_ANSWER",
    "EVENT_STREAMS",
    "REQUEST_ID",
    "SETTINGS",
    "STORE",
]

STORE = web.AppKey("store", TaskStore)
SETTINGS = web.AppKey("settings", Settings)
API = web.AppKey("api", web.Application)  # the tasks sub-application, from its parent
AUTHENTICATED = web.AppKey("authenticated", bool)  # whether task requests need a token
EVENT_STREAMS = web.AppKey("event_streams", EventStreams)  # the open event streams
REQUEST_ID = web.RequestKey("request_id", str)
# Set on a request whose connection must close once it is answered, without reading
# what is left of its body (todo_http.connections does it; aiohttp alone drains it).
CLOSE_AFTER_ANSWER = web.RequestKey("close_after_answer", bool)
