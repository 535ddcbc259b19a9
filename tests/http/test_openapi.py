"""The OpenAPI document and the docs page: valid OpenAPI 3.1, in step with the router,
truthful about the input rules, and usable with no internet access.

The document's request schemas must accept exactly what the server accepts (schemathesis
tests both directions); the server's rules live in pydantic validators, so the
equivalence is checked here, against the models, over generated strings.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from typing import Any, Final

import orjson
import pytest
from aiohttp import web
from aiohttp.web_urldispatcher import PrefixedSubAppResource
from hypothesis import example, given
from hypothesis import strategies as st
from openapi_spec_validator import OpenAPIV31SpecValidator
from pydantic import ValidationError
from pytest_aiohttp import AiohttpClient
from swagger_ui_bundle import swagger_ui_path
from yarl import URL

from tests.http.schema_check import check_response, component_validator
from todo_core import MemoryTaskStore, TaskCreate, TaskPatch
from todo_http import JwtSettings, Settings, create_api, create_app
from todo_http.answers import ERRORS
from todo_http.openapi import WHITESPACE_CLASS, openapi_document

DOCUMENT = openapi_document()
# What a server with authentication on serves (docs/security.md).
AUTHENTICATED = openapi_document(authenticated=True)
JWT_SETTINGS: Final = Settings(auth="jwt", jwt=JwtSettings(secret="s" * 32))
METHODS = {"get", "head", "post", "put", "patch", "delete", "options", "trace"}
PYTHON_WHITESPACE = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())


def routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route of ``app`` and its sub-applications."""
    found: set[tuple[str, str]] = set()
    for resource in app.router.resources():
        if isinstance(resource, PrefixedSubAppResource):
            found |= routes(resource.get_info()["app"])
        else:
            found |= {(route.method, resource.canonical) for route in resource}
    return found


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def accepts(model: type[TaskCreate | TaskPatch], body: dict[str, Any]) -> bool:
    try:
        model.model_validate(body)
    except ValidationError:
        return False
    return True


class TestDocument:
    async def test_is_served_as_valid_openapi_3_1(self, aiohttp_client: AiohttpClient) -> None:
        client = await aiohttp_client(create_app(MemoryTaskStore()))
        async with client.get("/api/openapi.json") as response:
            assert response.status == 200
            assert response.content_type == "application/json"
            assert "X-Request-ID" in response.headers
            served = orjson.loads(await response.read())
        assert served == DOCUMENT
        assert served["openapi"].startswith("3.1.")
        OpenAPIV31SpecValidator(served).validate()

    def test_lists_exactly_the_routes_of_the_standalone_app(self) -> None:
        assert operations(DOCUMENT) == routes(create_app(MemoryTaskStore()))

    async def test_follows_the_mount_point_of_an_embedded_api(
        self, aiohttp_client: AiohttpClient
    ) -> None:
        """Mounted by someone else's app, the API describes itself at its own prefix."""
        app = web.Application()
        app.add_subapp("/todo/v1", create_api(MemoryTaskStore()))
        client = await aiohttp_client(app)
        async with client.get("/todo/v1/openapi.json") as response:
            assert response.status == 200
            served = orjson.loads(await response.read())
        OpenAPIV31SpecValidator(served).validate()
        assert operations(served) == routes(app)
        assert "/todo/v1/{user_id}/tasks" in served["paths"]

    def test_lists_every_error_code_the_server_answers_with(self) -> None:
        """Codes are a closed list in the error schema: one the server can send must be on it."""
        listed = DOCUMENT["components"]["schemas"]["ErrorEnvelope"]["properties"]["error"]
        assert set(ERRORS) == set(listed["properties"]["code"]["enum"])

    def test_operations_have_unique_ids(self) -> None:
        ids = [
            operation["operationId"]
            for item in DOCUMENT["paths"].values()
            for method, operation in item.items()
            if method in METHODS
        ]
        assert len(ids) == len(set(ids))


def task_operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method} {path}", operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS and "/{user_id}/" in path
    ]


class TestAuthentication:
    """Described exactly when the server checks tokens: a client generated from the
    document asks for a token if and only if one is needed."""

    def test_the_authenticated_variant_is_valid_openapi_3_1(self) -> None:
        OpenAPIV31SpecValidator(AUTHENTICATED).validate()
        scheme = AUTHENTICATED["components"]["securitySchemes"]["bearerAuth"]
        assert scheme == {**scheme, "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}

    def test_every_task_operation_needs_a_bearer_token_and_answers_401_and_403(self) -> None:
        operations = task_operations(AUTHENTICATED)
        # tasks (8), tags (GET, HEAD), changes (GET, HEAD), trash (GET, HEAD, DELETE),
        # one trashed task (DELETE) and its restore (POST), events (GET, HEAD)
        assert len(operations) == 19
        for name, operation in operations:
            assert operation["security"] == [{"bearerAuth": []}], name
            assert {"401", "403"} <= set(operation["responses"]), name
        unauthorized = AUTHENTICATED["components"]["responses"]["UNAUTHORIZED"]
        assert unauthorized["headers"]["WWW-Authenticate"] == {
            "$ref": "#/components/headers/WWW-Authenticate"
        }
        assert AUTHENTICATED["components"]["headers"]["WWW-Authenticate"]["required"] is True

    def test_documentation_and_probes_stay_open(self) -> None:
        for path, item in AUTHENTICATED["paths"].items():
            if not path.startswith("/api/{user_id}/"):
                for method in set(item) & METHODS:
                    assert "security" not in item[method], (method, path)
                    assert "401" not in item[method]["responses"], (method, path)
        assert "security" not in AUTHENTICATED  # nothing global to override

    def test_without_authentication_no_token_is_mentioned(self) -> None:
        assert "securitySchemes" not in DOCUMENT["components"]
        for name, operation in task_operations(DOCUMENT):
            assert "security" not in operation, name
            assert not {"401", "403"} & set(operation["responses"]), name

    async def test_a_server_with_authentication_serves_that_variant(
        self, aiohttp_client: AiohttpClient
    ) -> None:
        app = create_app(MemoryTaskStore(), settings=JWT_SETTINGS)
        client = await aiohttp_client(app)
        async with client.get("/api/openapi.json") as response:
            assert response.status == 200
            assert orjson.loads(await response.read()) == AUTHENTICATED
        assert operations(AUTHENTICATED) == routes(app)

    async def test_an_embedded_api_with_authentication_describes_it_at_its_prefix(
        self, aiohttp_client: AiohttpClient
    ) -> None:
        app = web.Application()
        app.add_subapp("/todo", create_api(MemoryTaskStore(), settings=JWT_SETTINGS))
        client = await aiohttp_client(app)
        async with client.get("/todo/openapi.json") as response:
            served = orjson.loads(await response.read())
        assert served == openapi_document("/todo", standalone=False, authenticated=True)


class TestIdempotency:
    """The exactly-once create of the contract, as the document describes it."""

    CREATE: Final = DOCUMENT["paths"]["/api/{user_id}/tasks"]["post"]

    def test_create_takes_an_optional_idempotency_key_of_1_to_255_characters(self) -> None:
        assert {"$ref": "#/components/parameters/IdempotencyKey"} in self.CREATE["parameters"]
        parameter = DOCUMENT["components"]["parameters"]["IdempotencyKey"]
        assert (parameter["name"], parameter["in"]) == ("Idempotency-Key", "header")
        assert not parameter.get("required", False)
        assert parameter["schema"] == {"type": "string", "minLength": 1, "maxLength": 255}

    def test_only_create_takes_one(self) -> None:
        reference = {"$ref": "#/components/parameters/IdempotencyKey"}
        takers = [name for name, op in task_operations(DOCUMENT) if reference in op["parameters"]]
        assert takers == ["post /api/{user_id}/tasks"]

    def test_create_answers_replays_conflicts_and_reused_keys(self) -> None:
        responses = self.CREATE["responses"]
        assert "Idempotent-Replayed" in responses["201"]["headers"]
        assert responses["409"] == {"$ref": "#/components/responses/CONFLICT"}
        codes = responses["422"]["content"]["application/json"]["schema"]["allOf"][1]
        assert codes["properties"]["error"]["properties"]["code"] == {
            "enum": ["VALIDATION_ERROR", "IDEMPOTENCY_KEY_REUSED"]
        }


class TestInputSchemas:
    """Schema-valid input is accepted and schema-invalid input rejected, as schemathesis
    requires: the schemas express what the pydantic validators enforce."""

    def test_whitespace_class_is_pythons(self) -> None:
        spelled = re.compile(f"[{WHITESPACE_CLASS}]")
        assert "".join(spelled.findall("".join(map(chr, range(sys.maxunicode + 1))))) == (
            PYTHON_WHITESPACE
        )

    @given(
        lead=st.text(st.sampled_from(PYTHON_WHITESPACE + "\ufeff"), max_size=3),
        core=st.integers(0, 203).flatmap(
            lambda n: st.text(
                st.characters(codec="utf-8") | st.sampled_from(PYTHON_WHITESPACE),
                min_size=n,
                max_size=n,
            )
        ),
        trail=st.text(st.sampled_from(PYTHON_WHITESPACE + "\x00"), max_size=3),
    )
    @example(lead="", core="\x1c", trail="")
    @example(lead="", core="\ufeff", trail="")
    @example(lead=" ", core="a" * 200, trail="\x85")
    @example(lead="", core="a" * 201, trail="")
    @example(lead="", core="a\x00b", trail="")
    def test_title(self, lead: str, core: str, trail: str) -> None:
        for model in (TaskCreate, TaskPatch):
            body = {"title": lead + core + trail}
            valid = component_validator(DOCUMENT, model.__name__).is_valid(body)
            assert valid == accepts(model, body), body

    @given(
        description=st.integers(995, 1005).flatmap(
            lambda n: st.text(st.characters(codec="utf-8"), min_size=n, max_size=n)
        )
        | st.text(st.characters(codec="utf-8"))
        | st.none()
    )
    @example(description="\x00")
    @example(description="")
    def test_description(self, description: str | None) -> None:
        for model in (TaskCreate, TaskPatch):
            body = {"title": "t", "description": description}
            valid = component_validator(DOCUMENT, model.__name__).is_valid(body)
            assert valid == accepts(model, body), body

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"title": None},
            {"completed": None},
            {"description": None},
            {"completed": "true"},
            {"completed": 1},
            {"id": "x"},
            {"title": "t", "user_id": "alice"},
        ],
    )
    def test_patch_nulls_and_strict_types(self, body: dict[str, Any]) -> None:
        valid = component_validator(DOCUMENT, "TaskPatch").is_valid(body)
        assert valid == accepts(TaskPatch, body)


HEADERS: Final = {"X-Request-ID": "r1", "Content-Type": "application/json"}
SOME_TASK: Final[dict[str, Any]] = {
    "id": "0b9a3f5e-8f4c-4d2a-9c71-3e5f2a1b7c64",
    "user_id": "alice",
    "title": "t",
    "description": None,
    "completed": False,
    "due_at": None,
    "priority": "none",
    "tags": [],
    "recurrence": None,
    "time_zone": "UTC",
    "completed_at": None,
    "next_occurrence_id": None,
    "created_at": "2026-01-01T00:00:00.000001Z",
    "updated_at": "2026-01-01T00:00:00.000001Z",
}
PAGE: Final = {
    "success": True,
    "data": [],
    "message": "ok",
    "meta": {"limit": 100, "next_cursor": None},
}

CHALLENGE: Final = 'Bearer realm="todo", error="invalid_token"'


def error(code: str) -> dict[str, Any]:
    return {"success": False, "error": {"code": code, "message": "m", "details": []}}


NOT_ALLOWED: Final = {
    "success": False,
    "error": {"code": "METHOD_NOT_ALLOWED", "message": "Method Not Allowed", "details": []},
}


class TestCheckResponse:
    """The helper every HTTP test relies on catches what does not conform."""

    def check(self, method: str, path: str, status: int, body: Any, **headers: str) -> None:
        self.check_in(DOCUMENT, method, path, status, body, headers)

    def check_in(
        self,
        document: dict[str, Any],
        method: str,
        path: str,
        status: int,
        body: Any,
        headers: dict[str, str],
    ) -> None:
        raw = orjson.dumps(body) if body is not None else b""
        check_response(document, method, path, status, {**HEADERS, **headers}, raw)

    @pytest.mark.parametrize(
        ("method", "path", "status", "body", "headers"),
        [
            ("GET", "/api/alice/tasks?limit=5", 200, PAGE, {}),
            ("HEAD", "/api/alice/tasks", 200, None, {}),
            ("HEAD", "/nowhere", 404, None, {}),  # an error without its body
            ("OPTIONS", "/api/alice/tasks", 204, None, {}),  # a CORS preflight
            ("DELETE", "/api/alice/tasks", 405, NOT_ALLOWED, {"Allow": "GET,HEAD,POST"}),
        ],
    )
    def test_accepts(
        self, method: str, path: str, status: int, body: Any, headers: dict[str, str]
    ) -> None:
        self.check(method, path, status, body, **headers)

    @pytest.mark.parametrize(
        ("method", "path", "status", "body", "headers"),
        [
            ("GET", "/api/alice/tasks", 418, None, {}),  # undocumented status
            ("GET", "/api/alice/tasks", 200, {"success": True, "data": []}, {}),  # no meta
            ("GET", "/nowhere", 200, None, {}),  # unknown route answered
            ("DELETE", "/api/alice/tasks", 405, None, {"Allow": "GET"}),  # wrong Allow
            ("HEAD", "/api/alice/tasks", 200, PAGE, {}),  # HEAD with a body
            ("GET", "/api/alice/tasks", 200, PAGE, {"Content-Type": "text/plain"}),
            ("GET", "/api/alice/tasks", 200, PAGE, {"X-Request-ID": "bad id"}),
        ],
    )
    def test_rejects(
        self, method: str, path: str, status: int, body: Any, headers: dict[str, str]
    ) -> None:
        with pytest.raises(AssertionError):
            self.check(method, path, status, body, **headers)

    @pytest.mark.parametrize(
        ("method", "path", "status", "code", "headers"),
        [
            ("GET", "/api/alice/tasks", 401, "UNAUTHORIZED", {"WWW-Authenticate": CHALLENGE}),
            ("HEAD", "/api/alice/tasks/x", 401, None, {"WWW-Authenticate": CHALLENGE}),
            ("DELETE", "/api/alice/tasks/x", 403, "FORBIDDEN", {}),
            ("POST", "/api/alice/tasks", 409, "CONFLICT", {"Retry-After": "1"}),
            ("POST", "/api/alice/tasks", 422, "IDEMPOTENCY_KEY_REUSED", {}),
        ],
    )
    def test_accepts_the_answers_of_authentication_and_idempotency(
        self, method: str, path: str, status: int, code: str | None, headers: dict[str, str]
    ) -> None:
        body = error(code) if code else None
        self.check_in(AUTHENTICATED, method, path, status, body, headers)

    @pytest.mark.parametrize(
        ("method", "path", "status", "code", "headers", "document"),
        [
            ("GET", "/api/alice/tasks", 401, "UNAUTHORIZED", {}, AUTHENTICATED),  # no challenge
            ("GET", "/api/alice/tasks", 401, "UNAUTHORIZED", {"WWW-Authenticate": CHALLENGE}, None),
            ("GET", "/api/alice/tasks", 403, "UNAUTHORIZED", {}, AUTHENTICATED),  # wrong code
            ("POST", "/api/alice/tasks", 409, "CONFLICT", {}, None),  # no Retry-After
            ("PUT", "/api/alice/tasks/x", 422, "IDEMPOTENCY_KEY_REUSED", {}, None),
        ],
    )
    def test_rejects_misplaced_authentication_and_idempotency_answers(
        self,
        method: str,
        path: str,
        status: int,
        code: str,
        headers: dict[str, str],
        document: dict[str, Any] | None,
    ) -> None:
        with pytest.raises(AssertionError):
            self.check_in(document or DOCUMENT, method, path, status, error(code), headers)

    def test_checks_the_replay_header(self) -> None:
        created = {"success": True, "data": SOME_TASK, "message": "Task created"}
        written = {"ETag": '"v1"', "Location": f"/api/alice/tasks/{SOME_TASK['id']}"}
        for replayed, conforms in ((None, True), ("true", True), ("false", False), ("", False)):
            headers = written if replayed is None else {**written, "Idempotent-Replayed": replayed}
            if conforms:
                self.check_in(DOCUMENT, "POST", "/api/alice/tasks", 201, created, headers)
            else:
                with pytest.raises(AssertionError):
                    self.check_in(DOCUMENT, "POST", "/api/alice/tasks", 201, created, headers)


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in {"src", "href"} and value]


class TestDocsPage:
    def test_swagger_ui_reads_openapi_3_1(self) -> None:
        """Swagger UI before 5.0 refuses 3.1 documents ("does not specify a valid version")."""
        version = swagger_ui_path.name.removeprefix("swagger-ui-")
        assert int(version.split(".")[0]) >= 5, version

    async def test_uses_only_local_assets_which_are_served(
        self, aiohttp_client: AiohttpClient
    ) -> None:
        client = await aiohttp_client(create_app(MemoryTaskStore()))
        page_url = URL("/api/docs")
        async with client.get(page_url) as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            page = await response.text()
        assert "http://" not in page
        assert "https://" not in page
        references = _References()
        references.feed(page)
        document_url = re.search(r'url: "([^"]+)"', page)
        assert document_url is not None
        urls = [*references.urls, document_url.group(1)]
        assert len(urls) >= 3, urls
        for url in urls:
            assert not URL(url).is_absolute(), url
            assert not url.startswith("/"), url
            async with client.get(page_url.join(URL(url))) as asset:
                assert asset.status == 200, url
                body = await asset.read()
                assert body, url
                check_response(DOCUMENT, "GET", asset.url.raw_path, 200, asset.headers, body)

    @pytest.mark.parametrize(
        ("path", "ui"), [("/", False), ("/docs", True), ("/docs", False), ("/api/docs/", True)]
    )
    async def test_the_addresses_people_try_first_redirect_to_the_page(
        self, aiohttp_client: AiohttpClient, path: str, ui: bool
    ) -> None:
        """``/`` too, when the web app is off (test_webapp_serving has it on)."""
        app = create_app(MemoryTaskStore(), settings=Settings(ui=ui))
        client = await aiohttp_client(app)
        document = openapi_document(ui=ui)
        for method in ("GET", "HEAD"):
            async with client.request(method, path, allow_redirects=False) as response:
                assert response.status == 302
                assert response.headers["Location"] == "/api/docs"
                body = await response.read()
                check_response(document, method, path, 302, response.headers, body)
        async with client.get(path) as followed:  # as a browser does
            assert followed.status == 200
            assert followed.content_type == "text/html"
            assert str(followed.url.path) == "/api/docs"

    async def test_a_mounted_api_redirects_its_own_docs_slash_and_nothing_else(
        self, aiohttp_client: AiohttpClient
    ) -> None:
        """The application that mounts the API owns ``/``: embedding.md says why."""
        app = web.Application()
        app.add_subapp("/todo/v1", create_api(MemoryTaskStore()))
        client = await aiohttp_client(app)
        async with client.get("/todo/v1/docs/", allow_redirects=False) as response:
            assert response.status == 302
            assert response.headers["Location"] == "/todo/v1/docs"
        for path in ("/", "/docs"):
            async with client.get(path, allow_redirects=False) as response:
                assert response.status == 404

    async def test_an_unknown_asset_is_a_404_envelope(self, aiohttp_client: AiohttpClient) -> None:
        client = await aiohttp_client(create_app(MemoryTaskStore()))
        async with client.get("/api/docs/static/secrets.txt") as response:
            assert response.status == 404
            body = await response.read()
            check_response(DOCUMENT, "GET", response.url.raw_path, 404, response.headers, body)


DELETED_AT: Final = "2026-01-02T00:00:00.000000Z"
FEED_META: Final = {"limit": 100, "next_since": "t", "has_more": False}


def feed(*items: Any) -> dict[str, Any]:
    return {"success": True, "data": list(items), "message": "m", "meta": FEED_META}


class TestSyncAndTrash:
    """The feed's and the trash's answers are described exactly: a client generated
    from the document can tell an upsert from a delete and needs every field it reads."""

    CHANGES = "/api/alice/changes"

    @pytest.mark.parametrize(
        "body",
        [
            feed(),
            feed({"type": "upsert", "task": SOME_TASK}),
            feed({"type": "delete", "id": SOME_TASK["id"], "deleted_at": DELETED_AT}),
        ],
    )
    def test_accepts_the_feeds_items(self, body: Any) -> None:
        check_response(DOCUMENT, "GET", self.CHANGES, 200, HEADERS, orjson.dumps(body))

    @pytest.mark.parametrize(
        "body",
        [
            feed({"type": "upsert"}),
            feed({"type": "delete", "id": SOME_TASK["id"]}),
            feed({"type": "update", "task": SOME_TASK}),
            feed({"type": "delete", "id": SOME_TASK["id"], "deleted_at": DELETED_AT, "x": 1}),
            {**feed(), "meta": {"limit": 100, "next_since": "t"}},
            {**feed(), "meta": {**FEED_META, "next_cursor": None}},
        ],
    )
    def test_rejects_what_is_not_a_feed_page(self, body: Any) -> None:
        with pytest.raises(AssertionError):
            check_response(DOCUMENT, "GET", self.CHANGES, 200, HEADERS, orjson.dumps(body))

    def test_an_expired_token_is_documented_on_the_feed_only(self) -> None:
        gone = orjson.dumps(error("SYNC_TOKEN_EXPIRED"))
        check_response(DOCUMENT, "GET", self.CHANGES, 410, HEADERS, gone)
        with pytest.raises(AssertionError):
            check_response(DOCUMENT, "GET", "/api/alice/trash", 410, HEADERS, gone)

    def test_the_trash_shows_when_each_task_was_deleted(self) -> None:
        page = {**PAGE, "data": [{**SOME_TASK, "deleted_at": DELETED_AT}]}
        check_response(DOCUMENT, "GET", "/api/alice/trash", 200, HEADERS, orjson.dumps(page))
        page = {**PAGE, "data": [SOME_TASK]}
        with pytest.raises(AssertionError):
            check_response(DOCUMENT, "GET", "/api/alice/trash", 200, HEADERS, orjson.dumps(page))

    def test_a_restore_answers_the_task_with_its_etag(self) -> None:
        path = f"/api/alice/trash/{SOME_TASK['id']}/restore"
        body = orjson.dumps({"success": True, "data": SOME_TASK, "message": "m"})
        check_response(DOCUMENT, "POST", path, 200, {**HEADERS, "ETag": '"v2"'}, body)
        with pytest.raises(AssertionError):
            check_response(DOCUMENT, "POST", path, 200, HEADERS, body)

    def test_a_deleted_task_links_to_its_restore_and_purge(self) -> None:
        delete = DOCUMENT["paths"]["/api/{user_id}/tasks/{task_id}"]["delete"]
        links = delete["responses"]["200"]["links"]
        assert set(links) == {"restoreTask", "purgeTask"}
        ids = {
            operation["operationId"]
            for item in DOCUMENT["paths"].values()
            for operation in item.values()
        }
        assert set(links) <= ids
