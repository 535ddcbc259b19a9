"""An HTTP client for fault tests: many requests at once, each timed, none raising.

A request that gets no answer (the server died, the connection was reset) is an
``Outcome`` with ``status`` None instead of an exception, so a load can be counted.
Every answer is checked against the OpenAPI document the server serves.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from tests.http.schema_check import check_response

__all__ = ["FaultClient", "Outcome", "assert_unavailable", "statuses"]


@dataclass(frozen=True)
class Outcome:
    method: str
    path: str
    status: int | None  # None: no answer at all
    headers: dict[str, str]  # names in lower case
    body: bytes
    sent: float  # time.monotonic() when sent
    elapsed: float  # seconds until the answer (or the failure)
    failure: str = ""

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def answered(self) -> float:
        return self.sent + self.elapsed


def statuses(outcomes: Iterable[Outcome]) -> dict[int | None, int]:
    """How many outcomes had each status (None: no answer)."""
    return dict(Counter(outcome.status for outcome in outcomes))


def assert_unavailable(outcome: Outcome) -> None:
    """A 503 with the contract's envelope and a Retry-After header."""
    assert outcome.status == 503, outcome
    assert outcome.json()["error"]["code"] == "SERVICE_UNAVAILABLE", outcome
    assert int(outcome.headers["retry-after"]) > 0, outcome


class FaultClient:
    """Requests to ``base`` (``http://127.0.0.1:PORT``) over a keep-alive session."""

    def __init__(self, base: str, *, timeout: float = 30.0, connections: int = 100) -> None:
        self.base = base
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, force_close=False)
        )
        self._document: Any = None

    async def __aenter__(self) -> FaultClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self._session.close()

    async def send(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Outcome:
        """One request; the answer checked against the served document."""
        data = None if body is None else orjson.dumps(body)
        headers = dict(headers or {})
        if body is not None:
            headers["Content-Type"] = "application/json"
        sent = time.monotonic()
        try:
            async with self._session.request(
                method, self.base + path, data=data, headers=headers, timeout=self._timeout
            ) as response:
                outcome = Outcome(
                    method,
                    path,
                    response.status,
                    {name.lower(): value for name, value in response.headers.items()},
                    await response.read(),
                    sent,
                    time.monotonic() - sent,
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            return Outcome(method, path, None, {}, b"", sent, time.monotonic() - sent, repr(error))
        await self.check(outcome)
        return outcome

    async def check(self, outcome: Outcome) -> None:
        if self._document is None:
            async with self._session.get(self.base + "/api/openapi.json") as response:
                assert response.status == 200, response
                self._document = orjson.loads(await response.read())
        assert outcome.status is not None
        check_response(
            self._document,
            method=outcome.method,
            path=outcome.path.partition("?")[0],
            status=outcome.status,
            headers=outcome.headers,
            body=outcome.body,
        )
