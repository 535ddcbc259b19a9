"""Mounting the tasks API inside a user's own aiohttp application at /todo."""

from __future__ import annotations

import re

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from yarl import URL

from tests.http.api_client import ORIGIN, padded_json
from todo_core import TaskStore
from todo_http import Settings, create_api

Client = TestClient[web.Request, web.Application]


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"hello": "world"})


def host_app(api: web.Application) -> web.Application:
    """A user's application with a route of its own and the API under /todo."""
    app = web.Application()
    app.router.add_get("/hello", hello)
    app.add_subapp("/todo", api)
    return app


@pytest.fixture
async def mounted(aiohttp_client: AiohttpClient, store: TaskStore) -> Client:
    """The user's application with ``create_api(store)`` mounted at /todo."""
    return await aiohttp_client(host_app(create_api(store)))


class TestMounted:
    """The API works under the mount point, and the host's own routes are untouched."""

    async def test_create_get_and_location(self, mounted: Client) -> None:
        """POST is 201 with Location under /todo, and GET of it is the task."""
        async with mounted.post("/todo/alice/tasks", json={"title": "mounted"}) as response:
            assert response.status == 201
            location = response.headers["Location"]
            data = orjson.loads(await response.read())["data"]
            etag = response.headers["ETag"]
            assert "X-Request-ID" in response.headers
        assert location == f"/todo/alice/tasks/{data['id']}"
        async with mounted.get(location) as response:
            assert response.status == 200
            assert orjson.loads(await response.read())["data"] == data
            assert response.headers["ETag"] == etag

    async def test_link_points_under_the_mount(self, mounted: Client) -> None:
        """The next-page link of a listing is a /todo path that continues the walk."""
        ids = []
        for n in range(3):
            async with mounted.post("/todo/alice/tasks", json={"title": f"t{n}"}) as response:
                ids.append(orjson.loads(await response.read())["data"]["id"])
        seen: list[str] = []
        target: str | None = "/todo/alice/tasks?limit=2&sort=created_at"
        while target is not None:
            async with mounted.get(URL(target, encoded=True)) as response:
                assert response.status == 200
                seen += [task["id"] for task in orjson.loads(await response.read())["data"]]
                link = response.headers.get("Link")
            if link is None:
                target = None
                continue
            match = re.fullmatch(r'<([^<>]+)>; rel="next"', link)
            assert match is not None
            target = match.group(1)
            assert URL(target).path == "/todo/alice/tasks"
        assert seen == ids

    @pytest.mark.parametrize(
        "path", ["/todo/alice/nope", "/todo/alice/tasks/x/y", "/todo/alice/tasks/abc", "/todo/"]
    )
    async def test_unknown_routes_are_404_envelopes(self, mounted: Client, path: str) -> None:
        """Under /todo, unknown routes and malformed ids answer the API's envelope."""
        async with mounted.get(path) as response:
            assert response.status == 404
            assert response.headers["Content-Type"].startswith("application/json")
            body = orjson.loads(await response.read())
            assert body["success"] is False
            assert body["error"]["code"] == "NOT_FOUND"
            assert "X-Request-ID" in response.headers

    async def test_wrong_method_and_bad_input(self, mounted: Client) -> None:
        """405 with Allow, 422 and 413 are the API's envelopes under /todo too."""
        async with mounted.delete("/todo/alice/tasks") as response:
            assert response.status == 405
            assert "HEAD" in response.headers["Allow"]
            assert orjson.loads(await response.read())["error"]["code"] == "METHOD_NOT_ALLOWED"
        async with mounted.get("/todo/a%2Fb/tasks") as response:
            assert response.status == 422
            assert orjson.loads(await response.read())["error"]["details"][0]["field"] == "user_id"
        big = padded_json({"title": "x"}, 65_537)
        async with mounted.post(
            "/todo/alice/tasks", data=big, headers={"Content-Type": "application/json"}
        ) as response:
            assert response.status == 413
            assert orjson.loads(await response.read())["error"]["code"] == "PAYLOAD_TOO_LARGE"

    async def test_host_routes_keep_working(self, mounted: Client) -> None:
        """The host's route answers as before, and its 404s are its own."""
        async with mounted.get("/hello") as response:
            assert response.status == 200
            assert await response.json() == {"hello": "world"}
            assert "X-Request-ID" not in response.headers
        async with mounted.get("/elsewhere") as response:
            assert response.status == 404
            assert "X-Request-ID" not in response.headers
            assert not response.headers["Content-Type"].startswith("application/json")


class TestMountedWithoutAStore:
    """Without a store, the mounted API opens one from its settings and closes it."""

    async def test_opens_its_own_store(self, aiohttp_client: AiohttpClient) -> None:
        """A memory:// database URL serves requests under the mount."""
        api = create_api(settings=Settings(database_url="memory://"))
        client = await aiohttp_client(host_app(api))
        async with client.post("/todo/bob/tasks", json={"title": "own store"}) as response:
            assert response.status == 201
        async with client.get("/todo/bob/tasks") as response:
            assert len(orjson.loads(await response.read())["data"]) == 1


class TestMountedWithCors:
    """CORS configured on the mounted API answers preflights under /todo."""

    async def test_preflight_and_exposed_headers(
        self, aiohttp_client: AiohttpClient, store: TaskStore
    ) -> None:
        """A preflight is 204 with a request id; answers expose the API's headers."""
        api = create_api(store, settings=Settings(cors_origins=(ORIGIN,)))
        client = await aiohttp_client(host_app(api))
        async with client.options(
            "/todo/alice/tasks",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
        ) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert "X-Request-ID" in response.headers
        async with client.post(
            "/todo/alice/tasks", json={"title": "x"}, headers={"Origin": ORIGIN}
        ) as response:
            assert response.status == 201
            assert "Location" in response.headers["Access-Control-Expose-Headers"]
