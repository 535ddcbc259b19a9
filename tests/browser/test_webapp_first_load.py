"""The first load: under 100 KB for the page and everything it loads, uncompressed,
and not one request to another origin."""

from __future__ import annotations

from playwright.sync_api import Request, Response, expect

from tests.browser.conftest import ContextFactory
from tests.browser.task_api import TaskApi
from tests.browser.task_page import TaskPage
from tests.http.server_process import ServerProcess

BUDGET = 100 * 1024


def body_bytes(response: Response) -> int:
    """The response's body as received, uncompressed; an event stream never ends and
    a redirect has none, so both count as their headers' worth: nothing."""
    if response.status in (204, 304) or 300 <= response.status < 400:
        return 0
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return 0
    return len(response.body())


def test_the_first_load_is_small_and_asks_no_other_origin(
    new_context: ContextFactory, server: ServerProcess, api: TaskApi, user: str
) -> None:
    task = api.create("Something to show")
    page = new_context(as_user=user).new_page()
    requests: list[Request] = []
    responses: list[Response] = []
    page.on("request", lambda request: requests.append(request))
    page.on("response", lambda response: responses.append(response))
    app = TaskPage(page).open()
    expect(app.by_id(task["id"])).to_be_visible()
    page.wait_for_timeout(500)  # whatever the page loads after its first list

    origin = f"http://127.0.0.1:{server.port}/"
    assert [request.url for request in requests if not request.url.startswith(origin)] == []
    sizes = {response.url: body_bytes(response) for response in responses}
    assert sum(sizes.values()) < BUDGET, sizes
    types = {response.url: response.headers.get("content-type", "") for response in responses}
    assert any(kind.startswith("text/javascript") for kind in types.values()), types
