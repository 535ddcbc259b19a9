"""The OpenAPI pieces of "Live events": ``GET /{user_id}/events`` and its parameters.

Kept apart from ``openapi.py`` (which assembles the document), like the organizing
pieces. An event stream has no JSON schema of its own: the 200 is described as
``text/event-stream`` text, with the format of its events in the description; its
refusals (422, 410, 429) are the envelope like every other error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = ["EVENTS_DESCRIPTION", "event_parameters", "event_paths"]

EVENTS_DESCRIPTION: Final = """\
One event per change of the user's feed, as it is committed by any worker (within a
second), after the `Last-Event-ID` header's token (an empty header counts as absent),
else the `since` parameter's, else now:

```
id: <the token to resume after this change>
event: upsert            (or delete)
data: {"type": "upsert", "task": {...}}   (or {"type": "delete", "id": "...", "deleted_at": "..."})
```

`data` is one line of JSON, the feed item exactly as `/changes` returns it. A comment
line `: keepalive` comes at least every 15 seconds. A stream that falls behind a slow
reader is ended; reconnecting with `Last-Event-ID` loses nothing (browsers'
`EventSource` does so by itself). A bad token is a 422 and an expired one a 410, as
JSON, before any event and before the stream limits: at most 10 open streams per user
and 10,000 per server process by default, past which the answer is 429 with
`Retry-After`. With authentication on, this endpoint alone also takes the token as the
`access_token` query parameter, for `EventSource`, which cannot send headers.
"""


def event_parameters(
    query: Callable[[str, str, dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """The parameters only the event stream takes, by component name; ``query`` makes a
    query parameter's object."""
    return {
        "EventsSince": query(
            "since",
            "A feed token to start after (a `meta.next_since` of `/changes`, or an event's "
            "`id`); `Last-Event-ID` wins over it. Tampered or another user's: 422; older "
            "than the retention window: 410; empty: 422.",
            {"type": "string", "minLength": 1},
        ),
        "LastEventId": {
            "name": "Last-Event-ID",
            "in": "header",
            "description": "The `id` of the last event received: the stream resumes after it.",
            "schema": {"type": "string"},
        },
        "AccessToken": query(
            "access_token",
            "With authentication on: the bearer token, for clients that cannot send "
            "`Authorization` (`EventSource`). Accepted on this endpoint only; never logged.",
            {"type": "string"},
        ),
    }


def event_paths(
    operation: Callable[..., dict[str, Any]],
    errors: Callable[..., dict[str, Any]],
    head: Callable[[dict[str, Any], str], dict[str, Any]],
    response: Callable[..., dict[str, Any]],
    *,
    authenticated: bool,
) -> dict[str, Any]:
    """``/{user_id}/events`` (GET and HEAD), built with ``openapi.py``'s own makers."""
    parameters: tuple[str, ...] = ("UserId", "EventsSince", "LastEventId")
    if authenticated:
        parameters = (*parameters, "AccessToken")
    stream = operation(
        "streamEvents",
        "Follow the user's changes live, as server-sent events",
        {
            "200": response(
                EVENTS_DESCRIPTION,
                {"type": "string"},
                media_type="text/event-stream",
            ),
            **errors(
                "VALIDATION_ERROR",
                "SYNC_TOKEN_EXPIRED",
                "TOO_MANY_REQUESTS",
                "SERVICE_UNAVAILABLE",
            ),
        },
        parameters=parameters,
        tag="tasks",
    )
    return {"/{user_id}/events": {"get": stream, "head": head(stream, "headEvents")}}
