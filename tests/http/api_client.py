"""Talking to the app in tests: replies read whole, each checked against the OpenAPI
document the app serves.

Tests talk to the app through ``ApiClient``, which reads each response whole into a
``Reply`` and hands it to ``tests.http.schema_check.check_response`` with the document
fetched from ``/api/openapi.json`` once per test. A test therefore cannot receive a
response the document does not describe.
"""

from __future__ import annotations

import importlib
import io
import re
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import CIMultiDictProxy
from yarl import URL

ORIGIN: Final = "https://app.example.com"
OTHER_ORIGIN: Final = "https://evil.example.net"
DOCUMENT_PATH: Final = "/api/openapi.json"
TIMESTAMP: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
SANE_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
TASK_FIELDS: Final = {
    "id",
    "user_id",
    "title",
    "description",
    "completed",
    "due_at",
    "priority",
    "tags",
    "recurrence",
    "time_zone",
    "completed_at",
    "next_occurrence_id",
    "created_at",
    "updated_at",
}

Query = Mapping[str, str] | Sequence[tuple[str, str]]


class _NoBody:
    """Marks an omitted ``json=`` argument (``None`` is the JSON body ``null``)."""


NO_BODY: Final = _NoBody()


@dataclass(frozen=True)
class Reply:
    """A response read whole, with the request it answers."""

    method: str
    path: str
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        assert self.headers.get("Content-Type", "").startswith("application/json"), self
        return orjson.loads(self.body)

    @property
    def data(self) -> Any:
        """``data`` of a success envelope; fails the test on any other answer."""
        envelope = self.json()
        assert envelope["success"] is True, envelope
        return envelope["data"]

    @property
    def error(self) -> dict[str, Any]:
        """``error`` of an error envelope, checked for the contract's shape."""
        envelope = self.json()
        assert envelope["success"] is False, envelope
        assert set(envelope) == {"success", "error"}, envelope
        error: dict[str, Any] = envelope["error"]
        assert set(error) == {"code", "message", "details"}, error
        assert isinstance(error["message"], str), error
        assert error["message"], error
        assert isinstance(error["details"], list), error
        return error

    @property
    def code(self) -> str:
        code: str = self.error["code"]
        return code

    @property
    def fields(self) -> list[str]:
        """``details[].field`` of an error envelope, in order."""
        return [str(problem["field"]) for problem in self.error["details"]]

    @property
    def request_id(self) -> str:
        return self.headers["X-Request-ID"]


@dataclass
class _SchemaCheck:
    """Checks replies against the served document; remembers what it could not check."""

    client: TestClient[web.Request, web.Application]
    document: Any = None
    unchecked: list[Reply] = field(default_factory=list)
    problem: str | None = None

    async def __call__(self, reply: Reply) -> None:
        try:
            module = importlib.import_module("tests.http.schema_check")
        except ModuleNotFoundError:
            self.problem = "tests/http/schema_check.py is missing: no response was validated"
            self.unchecked.append(reply)
            return
        if self.document is None:
            async with self.client.get(DOCUMENT_PATH) as response:
                assert response.status == 200, f"{DOCUMENT_PATH} answered {response.status}"
                self.document = orjson.loads(await response.read())
        module.check_response(
            self.document,
            method=reply.method,
            path=reply.path,
            status=reply.status,
            headers=reply.headers,
            body=reply.body,
        )


class ApiClient:
    """Requests against one app; every reply is validated against its OpenAPI document."""

    def __init__(self, client: TestClient[web.Request, web.Application]) -> None:
        self.raw = client
        self.check = _SchemaCheck(client)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: object = NO_BODY,
        body: bytes | io.BytesIO | AsyncIterable[bytes] | None = None,
        content_type: str | None = "application/json",
        headers: Mapping[str, str] | None = None,
        params: Query | None = None,
    ) -> Reply:
        """Send one request. ``json`` is encoded with orjson; ``body`` is sent as given
        (an async iterable goes chunked). ``content_type=None`` sends no Content-Type.
        An ASCII ``path`` is sent exactly as written, percent-escapes included."""
        if not isinstance(json, _NoBody):
            assert body is None, "give json or body, not both"
            body = orjson.dumps(json)
        if isinstance(body, bytes) and len(body) > 65_536:
            body = io.BytesIO(body)  # aiohttp warns about big raw bytes; size is still sent
        sent: dict[str, str] = {}
        skip: set[str] = set()
        if body is not None:
            if content_type is None:
                skip.add("Content-Type")
            else:
                sent["Content-Type"] = content_type
        sent.update(headers or {})
        # An ASCII path goes out exactly as written (yarl would otherwise decode %61 to
        # "a"); anything else is left to yarl to percent-encode.
        url = URL(path, encoded=True) if path.isascii() else URL(path)
        async with self.raw.request(
            method,
            url,
            data=body,
            headers=sent,
            params=params,
            skip_auto_headers=skip,
            allow_redirects=False,
        ) as response:
            reply = Reply(
                method=method,
                path=response.url.raw_path,
                status=response.status,
                headers=response.headers,
                body=await response.read(),
            )
        await self.check(reply)
        return reply

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("GET", path, **kwargs)

    async def head(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("HEAD", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("DELETE", path, **kwargs)

    async def options(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("OPTIONS", path, **kwargs)

    async def create(self, user_id: str = "alice", **fields: Any) -> dict[str, Any]:
        """POST a task (title "task" unless given) and return its data; asserts 201."""
        fields.setdefault("title", "task")
        reply = await self.post(f"/api/{user_id}/tasks", json=fields)
        assert reply.status == 201, reply
        data: dict[str, Any] = reply.data
        return data

    async def fetch(self, user_id: str, task_id: str) -> Reply:
        """GET one task; asserts 200."""
        reply = await self.get(f"/api/{user_id}/tasks/{task_id}")
        assert reply.status == 200, reply
        return reply

    async def ids(self, user_id: str, **params: str) -> list[str]:
        """The ids of one page of the user's listing."""
        reply = await self.get(f"/api/{user_id}/tasks", params=params)
        assert reply.status == 200, reply
        return [task["id"] for task in reply.data]


ClientFactory = Callable[..., Awaitable[ApiClient]]
"""The ``serve`` fixture: ``await serve(store, settings=None, authenticator=None)`` gives an
``ApiClient``."""


def tasks_path(user_id: str) -> str:
    """The collection path of ``user_id`` (give it percent-encoded where it needs to be)."""
    return f"/api/{user_id}/tasks"


def task_path(user_id: str, task_id: str) -> str:
    """The path of one task."""
    return f"/api/{user_id}/tasks/{task_id}"


def padded_json(value: object, size: int) -> bytes:
    """``value`` as JSON, padded with trailing spaces to exactly ``size`` bytes."""
    encoded = orjson.dumps(value)
    assert len(encoded) <= size
    return encoded + b" " * (size - len(encoded))


async def chunks(body: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    """``body`` as a chunked request body (aiohttp sends an async iterable chunked)."""
    for start in range(0, len(body), size):
        yield body[start : start + size]
