"""HEAD, X-Request-ID, CORS and the operations endpoints."""

from __future__ import annotations

import pytest

from tests.http.api_client import (
    ORIGIN,
    OTHER_ORIGIN,
    SANE_REQUEST_ID,
    ApiClient,
    Reply,
    task_path,
    tasks_path,
)

ALICE = "alice"
VOLATILE = frozenset({"Date", "X-Request-ID"})
EXPOSED = {"etag", "location", "link", "x-request-id"}


def stable_headers(reply: Reply) -> dict[str, str]:
    """The headers that must not differ between a GET and its HEAD."""
    return {name: value for name, value in reply.headers.items() if name not in VOLATILE}


def cors_headers(reply: Reply) -> list[str]:
    return [name for name in reply.headers if name.lower().startswith("access-control-")]


def token_set(value: str) -> set[str]:
    return {token.strip().lower() for token in value.split(",") if token.strip()}


class TestHead:
    """HEAD is served wherever GET is: same status and headers, no body."""

    async def test_mirrors_get(self, client: ApiClient, subtests: pytest.Subtests) -> None:
        """Task, listing (with Link), probes and the document answer HEAD like GET."""
        created = await client.create(ALICE)
        await client.create(ALICE)
        for path in [
            task_path(ALICE, created["id"]),
            task_path(ALICE, created["id"].upper()),
            tasks_path(ALICE) + "?limit=1",
            tasks_path(ALICE) + "?sort=title&q=task",
            tasks_path("nobody"),
            "/healthz",
            "/readyz",
            "/api/openapi.json",
            "/api/docs",
            task_path(ALICE, "00000000-0000-4000-8000-000000000000"),
            task_path(ALICE, "abc"),
            tasks_path("a%2Fb"),
            tasks_path(ALICE) + "?limit=0",
        ]:
            with subtests.test(path=path):
                get = await client.get(path)
                head = await client.head(path)
                assert head.status == get.status
                assert head.body == b""
                assert get.body != b""
                assert stable_headers(head) == stable_headers(get)
                assert "X-Request-ID" in head.headers

    async def test_allow_lists_head(self, client: ApiClient) -> None:
        """Every 405 names HEAD wherever GET is allowed."""
        for path in [tasks_path(ALICE), task_path(ALICE, "abc"), "/healthz", "/readyz"]:
            reply = await client.request("TRACE", path)
            assert reply.status == 405
            assert {"GET", "HEAD"} <= {m.strip() for m in reply.headers["Allow"].split(",")}


class TestRequestId:
    """A sane client X-Request-ID is echoed; otherwise the server makes one."""

    async def test_echoes_sane_values(self, client: ApiClient, subtests: pytest.Subtests) -> None:
        """1-128 characters of A-Z a-z 0-9 . _ : @ / + = - come back unchanged."""
        for value in [
            "a",
            "A" * 128,
            "AZaz09._:@/+=-",
            "0b7c1f2e-5d7a-4c1e-9f55-0a9c4a4cbb21",
            "trace/abc+def==",
        ]:
            with subtests.test(value=value):
                reply = await client.get("/healthz", headers={"X-Request-ID": value})
                assert reply.request_id == value

    async def test_replaces_other_values(
        self, client: ApiClient, subtests: pytest.Subtests
    ) -> None:
        """Too long, empty, or with other characters: a fresh sane id instead."""
        seen: set[str] = set()
        for value in ["A" * 129, "has space", "", "a,b", "semi;colon", "star*", "quote'", "<x>"]:
            with subtests.test(value=value):
                reply = await client.get("/healthz", headers={"X-Request-ID": value})
                assert reply.request_id != value
                assert SANE_REQUEST_ID.fullmatch(reply.request_id)
                assert reply.request_id not in seen
                seen.add(reply.request_id)

    async def test_generates_unique_ids(self, client: ApiClient) -> None:
        """Requests without one each get their own."""
        ids = {(await client.get("/healthz")).request_id for _ in range(5)}
        assert len(ids) == 5
        assert all(SANE_REQUEST_ID.fullmatch(value) for value in ids)

    async def test_every_kind_of_answer_carries_it(
        self, client: ApiClient, subtests: pytest.Subtests
    ) -> None:
        """Successes, 304, and each error, aiohttp's own included, echo the id."""
        created = await client.create(ALICE)
        path = task_path(ALICE, created["id"])
        tag = (await client.get(path)).headers["ETag"]
        requests: list[tuple[str, str, dict[str, str], bytes | None, int]] = [
            ("GET", tasks_path(ALICE), {}, None, 200),
            ("POST", tasks_path(ALICE), {}, b'{"title": "x"}', 201),
            ("GET", path, {"If-None-Match": tag}, None, 304),
            ("HEAD", path, {}, None, 200),
            ("GET", "/nope", {}, None, 404),
            ("HEAD", "/nope", {}, None, 404),
            ("DELETE", tasks_path(ALICE), {}, None, 405),
            ("POST", tasks_path(ALICE), {}, b"{", 400),
            ("POST", tasks_path(ALICE), {}, b" " * 70_000, 413),
            ("PUT", path, {"If-Match": '"v9"'}, b'{"title": "x"}', 412),
            ("GET", tasks_path(ALICE) + "?limit=0", {}, None, 422),
        ]
        for method, target, headers, body, status in requests:
            with subtests.test(method=method, target=target, status=status):
                reply = await client.request(
                    method, target, body=body, headers={**headers, "X-Request-ID": "rid-7"}
                )
                assert reply.status == status, reply
                assert reply.request_id == "rid-7"
        unsupported = await client.post(
            tasks_path(ALICE), json={}, content_type="text/plain", headers={"X-Request-ID": "r"}
        )
        assert unsupported.status == 415
        assert unsupported.request_id == "r"


class TestWithoutCors:
    """With no origins configured no CORS header is ever sent and OPTIONS is a 405."""

    async def test_no_cors_headers(self, client: ApiClient) -> None:
        """Even a request with an Origin gets none."""
        created = await client.post(
            tasks_path(ALICE), json={"title": "x"}, headers={"Origin": ORIGIN}
        )
        listed = await client.get(tasks_path(ALICE), headers={"Origin": ORIGIN})
        for reply in [created, listed]:
            assert cors_headers(reply) == []

    async def test_preflight_is_405(self, client: ApiClient) -> None:
        """A preflight is just an OPTIONS request: 405 with Allow."""
        reply = await client.options(
            tasks_path(ALICE),
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
        )
        assert reply.status == 405
        assert reply.code == "METHOD_NOT_ALLOWED"
        assert "Allow" in reply.headers
        assert cors_headers(reply) == []


class TestWithCors:
    """A configured origin gets preflights and exposed headers; any other origin nothing."""

    @pytest.mark.parametrize(
        ("path", "methods"),
        [
            (tasks_path(ALICE), {"get", "head", "post"}),
            (task_path(ALICE, "00000000-0000-4000-8000-000000000000"), {"put", "patch", "delete"}),
        ],
    )
    async def test_preflight(self, cors_client: ApiClient, path: str, methods: set[str]) -> None:
        """204 with Allow-Origin, Allow-Methods, Allow-Headers, Max-Age and a request id."""
        reply = await cors_client.options(
            path,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "content-type, if-match",
            },
        )
        assert reply.status == 204, reply
        assert reply.body == b""
        assert reply.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert methods <= token_set(reply.headers["Access-Control-Allow-Methods"])
        allowed_headers = token_set(reply.headers["Access-Control-Allow-Headers"])
        assert {"content-type", "if-match", "if-none-match", "x-request-id"} <= allowed_headers
        assert int(reply.headers["Access-Control-Max-Age"]) > 0
        assert "origin" in token_set(reply.headers.get("Vary", ""))
        assert SANE_REQUEST_ID.fullmatch(reply.request_id)

    async def test_responses_expose_headers(
        self, cors_client: ApiClient, subtests: pytest.Subtests
    ) -> None:
        """Successes and errors alike carry Allow-Origin and Expose-Headers for the origin."""
        headers = {"Origin": ORIGIN}
        created = await cors_client.post(tasks_path(ALICE), json={"title": "x"}, headers=headers)
        path = created.headers["Location"]
        replies = {
            "create": created,
            "list": await cors_client.get(tasks_path(ALICE), headers=headers),
            "get": await cors_client.get(path, headers=headers),
            "head": await cors_client.head(path, headers=headers),
            "invalid": await cors_client.post(tasks_path(ALICE), json={}, headers=headers),
            "missing": await cors_client.get(path + "0", headers=headers),
            "stale": await cors_client.put(
                path, json={"title": "y"}, headers={**headers, "If-Match": '"v0"'}
            ),
            "unsupported": await cors_client.post(
                tasks_path(ALICE), json={}, content_type="text/plain", headers=headers
            ),
            "unknown route": await cors_client.get("/api/alice/nope", headers=headers),
            "bad user": await cors_client.get(tasks_path("a%2Fb"), headers=headers),
        }
        for name, reply in replies.items():
            with subtests.test(name):
                assert reply.headers.get("Access-Control-Allow-Origin") == ORIGIN, reply
                exposed = token_set(reply.headers.get("Access-Control-Expose-Headers", ""))
                assert exposed >= EXPOSED
                assert "origin" in token_set(reply.headers.get("Vary", ""))

    async def test_other_origins_get_nothing(self, cors_client: ApiClient) -> None:
        """An origin not configured gets no CORS header, and its preflight is a 405."""
        headers = {"Origin": OTHER_ORIGIN}
        listed = await cors_client.get(tasks_path(ALICE), headers=headers)
        assert listed.status == 200
        assert cors_headers(listed) == []
        preflight = await cors_client.options(
            tasks_path(ALICE), headers={**headers, "Access-Control-Request-Method": "POST"}
        )
        assert preflight.status == 405
        assert cors_headers(preflight) == []
        for origin in [ORIGIN.upper(), ORIGIN + "/", ORIGIN + ":443", "null", "*"]:
            reply = await cors_client.get(tasks_path(ALICE), headers={"Origin": origin})
            assert "Access-Control-Allow-Origin" not in reply.headers, origin

    async def test_requests_without_origin_are_plain(self, cors_client: ApiClient) -> None:
        """Same-origin and non-browser requests see no CORS headers."""
        reply = await cors_client.get(tasks_path(ALICE))
        assert reply.status == 200
        assert cors_headers(reply) == []


class TestProbes:
    """/healthz and /readyz answer with the envelope."""

    @pytest.mark.parametrize("path", ["/healthz", "/readyz"])
    async def test_answer_200_envelopes(self, client: ApiClient, path: str) -> None:
        """success true, a message and data, as application/json."""
        reply = await client.get(path)
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("application/json")
        envelope = reply.json()
        assert set(envelope) == {"success", "data", "message"}
        assert envelope["success"] is True
        assert isinstance(envelope["message"], str)
        assert envelope["message"]


class TestParserRejections:
    """What aiohttp's HTTP parser refuses is a 400 before any middleware; serving goes on.

    These are the one kind of answer that is not the envelope (the parser answers before
    the application sees a request), so they are read raw rather than checked against
    the document.
    """

    @pytest.mark.parametrize(
        ("method", "path"),
        [("GET", tasks_path(ALICE) + "?q=" + "x" * 9000), ("FOO", tasks_path(ALICE))],
        ids=["request-line-over-8190-bytes", "unknown-method-token"],
    )
    async def test_refused_with_400(self, client: ApiClient, method: str, path: str) -> None:
        """The request is refused and the next one is served normally."""
        async with client.raw.request(method, path) as response:
            assert response.status == 400
            await response.read()
        assert (await client.get("/healthz")).status == 200
        assert (await client.get(tasks_path(ALICE))).status == 200
