"""``todo-http serve --no-ui`` serves the API without the app: ``/`` keeps the v1
behaviour (a redirect to the API's documentation) and the app's files are not found."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import ContextFactory
from tests.http.server_process import ServerProcess, serving


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with serving(database, tmp_path_factory.mktemp("server"), "--no-ui") as started:
        yield started


def test_no_ui_answers_the_root_without_the_app(
    new_context: ContextFactory, server: ServerProcess
) -> None:
    root = server.request("GET", "/", check=False)
    assert root.status == 302
    assert root.headers["location"] == "/api/docs"
    for path in ("/ui/app.js", "/ui/app.css"):
        assert server.request("GET", path, check=False).status == 404
    page = new_context().new_page()
    page.goto("/")
    assert page.url.endswith("/api/docs")
    assert page.get_by_role("form", name="New task").count() == 0
