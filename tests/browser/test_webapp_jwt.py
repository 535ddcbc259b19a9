"""With ``--auth jwt`` the page asks for a token instead of a user id: its ``sub`` is
the user, a refused token shows a clear state and the form again, and the event
stream carries the token too. A token refused for the tasks (403) says so."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ContextFactory
from tests.browser.task_api import TaskApi
from tests.browser.task_page import TaskPage
from tests.http.server_process import ServerProcess, serving
from tests.http.tokens import SECRET, claims, hs


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The module's server, requiring HS256 tokens signed with the tests' secret."""
    with serving(
        database, tmp_path_factory.mktemp("server"), "--auth", "jwt", TODO_JWT_SECRET=SECRET
    ) as started:
        yield started


def test_a_token_signs_in_and_a_refused_one_says_so(
    new_context: ContextFactory, server: ServerProcess, user: str
) -> None:
    token = hs(claims(user))
    api = TaskApi(server, user, token)
    api.create("Behind a token")
    app = TaskPage(new_context().new_page()).open()
    form = app.page.get_by_role("form", name="Sign in with a token")
    field = form.get_by_role("textbox", name="Access token")

    field.fill(hs(claims(user), secret="not the server's secret, though long enough"))
    form.get_by_role("button", name="Use token").click()
    expect(app.error).to_contain_text("token was not accepted")
    expect(form).to_be_visible()

    field.fill(token)
    form.get_by_role("button", name="Use token").click()
    expect(app.page.get_by_text(f"User: {user}", exact=True)).to_be_visible()
    expect(app.item("Behind a token")).to_have_count(1)
    assert app.page.evaluate("localStorage.getItem('todo.token')") == token

    app.add("Sent with a token")
    assert len(api.titled("Sent with a token")) == 1
    live = api.create("From another device")
    expect(app.by_id(live["id"])).to_have_count(1)

    app.page.get_by_role("button", name="Change token").click()
    expect(form).to_be_visible()
    field.fill(token)
    form.get_by_role("button", name="Use token").click()
    expect(app.item("Behind a token")).to_have_count(1)

    # A valid token refused for these tasks (403), as the server answers it for
    # another user's: the page says so.
    refused = TaskApi(server, f"{user}.other", token).request("GET", "/tasks")
    assert refused.status == 403
    app.page.route(
        f"**/api/{user}/tasks?*",
        lambda route: route.fulfill(status=403, body=refused.body, content_type="application/json"),
    )
    app.filters.get_by_role("combobox", name="Show").select_option(label="Active")
    expect(app.error).to_contain_text("not allowed")
    expect(form).to_be_visible()  # another token may do
