"""Location and Link reach the task for every valid user_id, `.` and `..` included,
and are built from the route, not copied from the client's spelling."""

from __future__ import annotations

import pytest

from tests.hostile.conftest import HostileServer
from tests.hostile.wire import JSON, exchange, request_bytes


@pytest.mark.parametrize(("user", "segment"), [(".", "%2E"), ("..", "%2E%2E"), ("a.b", "a.b")])
def test_location_and_link_reach_the_tasks_of_dot_users(
    server: HostileServer, user: str, segment: str
) -> None:
    ids = []
    for title in ("first", "second"):
        body = f'{{"title": "{title}"}}'.encode()
        created = exchange(
            server.port, request_bytes("POST", f"/api/{segment}/tasks", [JSON], body)
        )
        assert created.status == 201, created
        location = created.header("location")
        assert location == f"/api/{segment}/tasks/{created.json()['data']['id']}"
        fetched = exchange(server.port, request_bytes("GET", location))
        assert fetched.status == 200, fetched
        assert fetched.json()["data"]["user_id"] == user
        ids.append(fetched.json()["data"]["id"])
    # Spelled differently, with a parameter the listing ignores.
    spelled = "%2e" * len(user) if user.strip(".") == "" else user
    first = exchange(
        server.port,
        request_bytes("GET", f"/api/{spelled}/tasks?limit=1&sort=created_at&junk=%0A"),
    )
    link = first.header("link")
    assert link is not None
    assert link.startswith(f"</api/{segment}/tasks?sort=created_at&limit=1&cursor=")
    assert "junk" not in link
    target = link[1 : link.index(">")]
    second = exchange(server.port, request_bytes("GET", target))
    assert [task["id"] for task in first.json()["data"] + second.json()["data"]] == ids
