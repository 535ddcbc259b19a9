"""The error table: 400, 404, 405, 413, 415, 422, 500 and 503, each as an envelope."""

from __future__ import annotations

import logging
from uuid import uuid4

import pytest

from tests.http.api_client import (
    ApiClient,
    ClientFactory,
    Reply,
    chunks,
    padded_json,
    task_path,
    tasks_path,
)
from tests.http.faulty_store import FaultyStore, unavailable
from todo_core import StoreError, TaskCreate

ALICE = "alice"
LIMIT = 65_536
WRITES = ["POST", "PUT", "PATCH"]
MERGE_PATCH = "application/merge-patch+json"


async def write_path(client: ApiClient, method: str) -> str:
    """Where ``method`` writes: the collection for POST, an existing task otherwise."""
    if method == "POST":
        return tasks_path(ALICE)
    return task_path(ALICE, (await client.create(ALICE, title="existing"))["id"])


async def snapshot(client: ApiClient) -> bytes:
    """The user's whole listing, to show later that nothing changed."""
    reply = await client.get(tasks_path(ALICE), params={"limit": "500"})
    assert reply.status == 200
    return reply.body


def assert_error(reply: Reply, status: int, code: str) -> None:
    """An error envelope with this status and code, as application/json."""
    assert reply.status == status, reply
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.code == code, reply


INVALID_JSON = [
    b'{"title":',
    b"",
    b"   \n",
    b"NaN",
    b'{"title": "x", "completed": NaN}',
    b'{"title": "x", "description": Infinity}',
    b'{"title": "x", "description": -Infinity}',
    b'{"title": "\xff"}',
    b'{"title": "\xc0\xaf"}',
    b'{"title": "\xed\xa0\x80"}',
    b"\xff\xfe{\x00}\x00",
    b"[" * 60_000,
    b'{"a":' * 13_000,
    b"[" * 30_000 + b"]" * 30_000,
    b'{"title": "x", "completed": ' + b"1" * 5000 + b"}",
    b"{'title': 'x'}",
    b'{"title": "x",}',
    b'{"title": "x"} {}',
    b'\xef\xbb\xbf{"title": "x"}',
]


class TestInvalidJson:
    """A body that is not UTF-8 JSON is 400 INVALID_JSON, changes nothing, and harms nothing."""

    @pytest.mark.parametrize("method", WRITES)
    async def test_is_400(self, client: ApiClient, subtests: pytest.Subtests, method: str) -> None:
        """POST, PUT and PATCH answer 400; the listing is unchanged; /healthz still serves."""
        path = await write_path(client, method)
        for body in INVALID_JSON:
            with subtests.test(body=body[:40]):
                before = await snapshot(client)
                reply = await client.request(method, path, body=body)
                assert_error(reply, 400, "INVALID_JSON")
                assert reply.error["details"] == []
                assert b"NaN" not in reply.body
                assert await snapshot(client) == before
                assert (await client.get("/healthz")).status == 200


class TestLoneSurrogates:
    """A lone surrogate escape is 400 or 422, never 500, and stores nothing."""

    @pytest.mark.parametrize("method", WRITES)
    async def test_is_refused(
        self, client: ApiClient, subtests: pytest.Subtests, method: str
    ) -> None:
        """The answer is 400 INVALID_JSON or 422 VALIDATION_ERROR; nothing changes."""
        path = await write_path(client, method)
        for body in [
            b'{"title": "\\ud800"}',
            b'{"title": "a\\udfffb"}',
            b'{"title": "x", "description": "\\ud83d"}',
            b'{"title": "\\ude00\\ud83d"}',
        ]:
            with subtests.test(body=body):
                before = await snapshot(client)
                reply = await client.request(method, path, body=body)
                assert reply.status in {400, 422}, reply
                assert reply.code == {400: "INVALID_JSON", 422: "VALIDATION_ERROR"}[reply.status]
                assert await snapshot(client) == before

    async def test_a_surrogate_pair_is_one_character(self, client: ApiClient) -> None:
        """An escaped pair is the astral character it encodes."""
        reply = await client.post(tasks_path(ALICE), body=b'{"title": "\\ud83d\\ude00"}')
        assert reply.status == 201
        assert reply.data["title"] == "\U0001f600"


class TestNonObjectBodies:
    """A JSON body that is not an object is 422 with details naming "body"."""

    @pytest.mark.parametrize("method", WRITES)
    async def test_is_422_naming_body(
        self, client: ApiClient, subtests: pytest.Subtests, method: str
    ) -> None:
        """Arrays, strings, null, numbers and booleans are refused whole."""
        path = await write_path(client, method)
        for value in [[], "x", None, 1, 1.5, True, [{"title": "x"}]]:
            with subtests.test(value=value):
                before = await snapshot(client)
                reply = await client.request(method, path, json=value)
                assert_error(reply, 422, "VALIDATION_ERROR")
                assert reply.fields == ["body"]
                assert await snapshot(client) == before


# Not "/" nor "/docs": the standalone server redirects them to the docs page
# (test_openapi.py).
UNKNOWN_ROUTES = [
    "/nope",
    "/docs/x",
    "/api",
    "/api/",
    "/api/alice",
    "/api/alice/",
    "/api/alice/task",
    "/api/alice/tasks/",
    "/api/alice/tasks/00000000-0000-4000-8000-000000000000/x",
    "/api/alice/tasks/x/y",
    "/API/alice/tasks",
    "/api/alice/TASKS",
    "/healthz/x",
    "/api/alice/tasks%2F00000000-0000-4000-8000-000000000000",
]
MALFORMED_TASK_IDS = [
    "abc",
    "-1",
    "0",
    "99999999999999999999999",
    "%20",
    "%00",
    "00000000000040008000000000000000",
    "{00000000-0000-4000-8000-000000000000}",
    "urn:uuid:00000000-0000-4000-8000-000000000000",
    "00000000-0000-4000-8000-0000000000000",
    "00000000-0000-4000-8000-00000000000",
    "0000000g-0000-4000-8000-000000000000",
    "00000000-0000-4000-8000-000000000000%20",
    "%C3%A9",
]


class TestNotFound:
    """Unknown routes and malformed task ids are 404 NOT_FOUND envelopes."""

    async def test_unknown_route(self, client: ApiClient, subtests: pytest.Subtests) -> None:
        """Any method on a path no route knows is 404 (HEAD without a body)."""
        for path in UNKNOWN_ROUTES:
            for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]:
                with subtests.test(method=method, path=path):
                    reply = await client.request(method, path, json={"title": "x"})
                    assert reply.status == 404, reply
                    assert "X-Request-ID" in reply.headers
                    if method == "HEAD":
                        assert reply.body == b""
                    else:
                        assert_error(reply, 404, "NOT_FOUND")

    async def test_malformed_task_id(self, client: ApiClient, subtests: pytest.Subtests) -> None:
        """An id that is not the 8-4-4-4-12 hex form names no task: 404, never 500."""
        await client.create(ALICE)
        for task_id in MALFORMED_TASK_IDS:
            for method in ["GET", "HEAD", "PUT", "PATCH", "DELETE"]:
                with subtests.test(method=method, task_id=task_id):
                    before = await snapshot(client)
                    path = task_path(ALICE, task_id)
                    reply = await client.request(method, path, json={"title": "x"})
                    assert reply.status == 404, reply
                    if method != "HEAD":
                        assert_error(reply, 404, "NOT_FOUND")
                    assert await snapshot(client) == before


COLLECTION = frozenset({"GET", "HEAD", "POST"})
ITEM = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
PROBE = frozenset({"GET", "HEAD"})
SOME_ID = "00000000-0000-4000-8000-000000000000"


class TestMethodNotAllowed:
    """A known path with a wrong method is 405 with an Allow header that lists HEAD."""

    async def test_is_405_with_allow(self, client: ApiClient, subtests: pytest.Subtests) -> None:
        """The envelope says METHOD_NOT_ALLOWED and Allow names every method of the path."""
        for method, path, allowed in [
            ("PUT", tasks_path(ALICE), COLLECTION),
            ("PATCH", tasks_path(ALICE), COLLECTION),
            ("DELETE", tasks_path(ALICE), COLLECTION),
            ("OPTIONS", tasks_path(ALICE), COLLECTION),
            ("TRACE", tasks_path(ALICE), COLLECTION),
            ("POST", task_path(ALICE, SOME_ID), ITEM),
            ("OPTIONS", task_path(ALICE, SOME_ID), ITEM),
            ("TRACE", task_path(ALICE, SOME_ID), ITEM),
            ("POST", "/healthz", PROBE),
            ("DELETE", "/readyz", PROBE),
            ("POST", "/api/openapi.json", PROBE),
        ]:
            with subtests.test(method=method, path=path):
                before = await snapshot(client)
                reply = await client.request(method, path, json={"title": "x"})
                assert_error(reply, 405, "METHOD_NOT_ALLOWED")
                allow = {name.strip() for name in reply.headers["Allow"].split(",")}
                assert allow == allowed
                assert await snapshot(client) == before


class TestPayloadTooLarge:
    """A body over 65,536 bytes as sent, chunked or not, is 413; 65,536 is accepted."""

    @pytest.mark.parametrize("method", WRITES)
    async def test_over_the_limit_is_413(
        self, client: ApiClient, subtests: pytest.Subtests, method: str
    ) -> None:
        """Otherwise valid JSON padded past the limit is refused and changes nothing."""
        path = await write_path(client, method)
        for size in [LIMIT + 1, 4 * LIMIT, 1024 * 1024 + 1]:
            for chunked in [False, True]:
                with subtests.test(size=size, chunked=chunked):
                    before = await snapshot(client)
                    body = padded_json({"title": "big"}, size)
                    sent = chunks(body) if chunked else body
                    reply = await client.request(method, path, body=sent)
                    assert_error(reply, 413, "PAYLOAD_TOO_LARGE")
                    assert await snapshot(client) == before
                    assert (await client.get("/healthz")).status == 200

    async def test_100000_deep_nesting_is_over_the_limit(self, client: ApiClient) -> None:
        """100,000 brackets are 100,000 bytes: the size check answers before the parser."""
        reply = await client.post(tasks_path(ALICE), body=b"[" * 100_000)
        assert_error(reply, 413, "PAYLOAD_TOO_LARGE")
        assert (await client.get("/healthz")).status == 200

    @pytest.mark.parametrize("method", WRITES)
    async def test_exactly_the_limit_is_accepted(
        self, client: ApiClient, subtests: pytest.Subtests, method: str
    ) -> None:
        """65,536 bytes of valid JSON, padded with whitespace, is a normal write."""
        path = await write_path(client, method)
        for chunked in [False, True]:
            with subtests.test(chunked=chunked):
                body = padded_json({"title": "big", "description": "d" * 1000}, LIMIT)
                assert len(body) == LIMIT
                reply = await client.request(method, path, body=chunks(body) if chunked else body)
                assert reply.status == {"POST": 201}.get(method, 200), reply
                assert reply.data["title"] == "big"


REFUSED_TYPES = [
    None,
    "",
    "text/plain",
    "text/plain; charset=utf-8",
    "text/json",
    "application/xml",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/octet-stream",
    "application/jsonx",
    "application/json-patch+json",
    "application/json; charset=latin-1",
    "application/json; charset=iso-8859-1",
    "application/json; charset=utf-16",
    "application/json; charset=bogus",
    "APPLICATION/JSON; CHARSET=ascii",
]
JSON_SPELLINGS = [
    "application/json",
    'APPLICATION/JSON; Charset="UTF-8"',
    "application/json;charset=utf-8",
    "Application/Json ; charset=UTF-8",
]


class TestUnsupportedMediaType:
    """A body without a JSON content type, or in another charset, is 415."""

    @pytest.mark.parametrize("method", WRITES)
    async def test_is_415(self, client: ApiClient, subtests: pytest.Subtests, method: str) -> None:
        """A valid UTF-8 JSON body under a wrong or missing type changes nothing."""
        path = await write_path(client, method)
        refused = REFUSED_TYPES if method == "PATCH" else [*REFUSED_TYPES, MERGE_PATCH]
        for content_type in refused:
            with subtests.test(content_type=content_type):
                before = await snapshot(client)
                reply = await client.request(
                    method, path, json={"title": "x"}, content_type=content_type
                )
                assert_error(reply, 415, "UNSUPPORTED_MEDIA_TYPE")
                assert await snapshot(client) == before

    @pytest.mark.parametrize("method", WRITES)
    async def test_json_is_matched_case_insensitively(
        self, client: ApiClient, subtests: pytest.Subtests, method: str
    ) -> None:
        """Any spelling of application/json in UTF-8 is accepted (merge patch for PATCH too)."""
        path = await write_path(client, method)
        accepted = [*JSON_SPELLINGS, MERGE_PATCH] if method == "PATCH" else JSON_SPELLINGS
        for content_type in accepted:
            with subtests.test(content_type=content_type):
                reply = await client.request(
                    method, path, json={"title": "ok"}, content_type=content_type
                )
                assert reply.status == {"POST": 201}.get(method, 200), reply
                assert reply.data["title"] == "ok"


class TestValidationDetails:
    """422 details name the body member, path parameter or query parameter at fault."""

    async def test_names_each_failing_member(self, client: ApiClient) -> None:
        """Every broken member is listed, each with a message."""
        reply = await client.post(
            tasks_path(ALICE), json={"title": "", "completed": "no", "extra": 1}
        )
        assert_error(reply, 422, "VALIDATION_ERROR")
        assert set(reply.fields) == {"title", "completed", "extra"}
        for problem in reply.error["details"]:
            assert set(problem) == {"field", "message"}
            assert isinstance(problem["message"], str)
            assert problem["message"]

    async def test_names_the_path_parameter(self, client: ApiClient) -> None:
        """A bad user_id is named user_id."""
        reply = await client.get(tasks_path("a%2Fb"))
        assert_error(reply, 422, "VALIDATION_ERROR")
        assert reply.fields == ["user_id"]

    async def test_names_the_query_parameter(self, client: ApiClient) -> None:
        """A bad listing parameter is named by its query name."""
        reply = await client.get(tasks_path(ALICE), params={"limit": "0", "sort": "x"})
        assert_error(reply, 422, "VALIDATION_ERROR")
        assert set(reply.fields) == {"limit", "sort"}

    async def test_other_errors_have_empty_details(self, client: ApiClient) -> None:
        """Errors other than 422 carry details: []."""
        replies = [
            await client.get("/nope"),
            await client.delete(tasks_path(ALICE)),
            await client.post(tasks_path(ALICE), body=b"{"),
            await client.post(tasks_path(ALICE), json={"title": "x"}, content_type="text/plain"),
            await client.get(task_path(ALICE, str(uuid4()))),
        ]
        assert [reply.status for reply in replies] == [404, 405, 400, 415, 404]
        assert all(reply.error["details"] == [] for reply in replies)


SECRET = "SELECT password FROM users WHERE name = 'admin' -- postgresql://u:hunter2@db"
FORBIDDEN_TEXT = [b"SELECT", b"password", b"hunter2", b"Traceback", b"RuntimeError", b"10.1.2.3"]

CALLS: list[tuple[str, str, object]] = [
    ("GET", tasks_path(ALICE), None),
    ("POST", tasks_path(ALICE), {"title": "x"}),
    ("GET", "{task}", None),
    ("PUT", "{task}", {"title": "x"}),
    ("PATCH", "{task}", {"title": "x"}),
    ("DELETE", "{task}", None),
    ("PUT", "{task}#if-match", {"title": "x"}),
]


async def call(
    client: ApiClient, store: FaultyStore, method: str, path: str, body: object
) -> Reply:
    """One of ``CALLS``, with ``{task}`` standing for a task the store holds."""
    created = await store.inner.create(ALICE, TaskCreate(title="held"))
    headers = {"X-Request-ID": "trace-0042"}
    if path.endswith("#if-match"):
        headers["If-Match"] = '"v1", "v2"'
        path = path.removesuffix("#if-match")
    path = path.replace("{task}", task_path(ALICE, str(created.id)))
    if body is None:
        return await client.request(method, path, headers=headers)
    return await client.request(method, path, json=body, headers=headers)


class TestInternalError:
    """A bug is 500 INTERNAL_ERROR: logged with the request id, never detailed to the client."""

    @pytest.mark.parametrize(("method", "path", "body"), CALLS)
    @pytest.mark.parametrize(
        "fault", [RuntimeError(SECRET), StoreError(SECRET), KeyError(SECRET)], ids=repr
    )
    async def test_hides_the_cause_and_logs_the_request_id(
        self,
        serve: ClientFactory,
        caplog: pytest.LogCaptureFixture,
        method: str,
        path: str,
        body: object,
        fault: Exception,
    ) -> None:
        """The body has no SQL, secret or traceback; it and the log carry the request id."""
        store = FaultyStore()
        client = await serve(store)
        store.fault = fault
        with caplog.at_level(logging.ERROR):
            reply = await call(client, store, method, path, body)
        assert_error(reply, 500, "INTERNAL_ERROR")
        assert reply.error["details"] == []
        for text in FORBIDDEN_TEXT:
            assert text not in reply.body
        assert reply.request_id == "trace-0042"
        assert "trace-0042" in reply.error["message"]
        logged = [r for r in caplog.records if "trace-0042" in r.getMessage()]
        assert logged, caplog.text
        assert any(r.levelno >= logging.ERROR and r.exc_info for r in logged)
        store.fault = None
        assert (await client.get(tasks_path(ALICE))).status == 200

    async def test_a_generated_request_id_is_logged_too(
        self, serve: ClientFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Without a client request id, the one the server made is in header, body and log."""
        store = FaultyStore(RuntimeError(SECRET))
        client = await serve(store)
        with caplog.at_level(logging.ERROR):
            reply = await client.get(tasks_path(ALICE))
        assert_error(reply, 500, "INTERNAL_ERROR")
        request_id = reply.request_id
        assert request_id in reply.error["message"]
        assert any(request_id in record.getMessage() for record in caplog.records)


class TestServiceUnavailable:
    """An unreachable database is 503 with Retry-After; the server stays up and recovers."""

    @pytest.mark.parametrize(("method", "path", "body"), CALLS)
    async def test_task_calls_are_503(
        self, serve: ClientFactory, method: str, path: str, body: object
    ) -> None:
        """Each endpoint answers 503 SERVICE_UNAVAILABLE without driver text, then recovers."""
        store = FaultyStore()
        client = await serve(store)
        store.fault = unavailable()
        reply = await call(client, store, method, path, body)
        assert_error(reply, 503, "SERVICE_UNAVAILABLE")
        assert reply.error["details"] == []
        assert int(reply.headers["Retry-After"]) > 0
        assert reply.request_id == "trace-0042"
        for text in FORBIDDEN_TEXT:
            assert text not in reply.body
        store.fault = None
        assert (await client.get(tasks_path(ALICE))).status == 200

    async def test_readyz_is_503_while_healthz_stays_200(self, serve: ClientFactory) -> None:
        """/readyz pings the store; /healthz never does."""
        store = FaultyStore(unavailable())
        client = await serve(store)
        ready = await client.get("/readyz")
        assert_error(ready, 503, "SERVICE_UNAVAILABLE")
        assert int(ready.headers["Retry-After"]) > 0
        assert b"hunter2" not in ready.body
        pings = store.pings
        health = await client.get("/healthz")
        assert health.status == 200
        assert health.json()["success"] is True
        assert store.pings == pings
        store.fault = None
        assert (await client.get("/readyz")).status == 200
