"""Who the page works for without authentication: a user id chosen on the first visit,
checked before use, kept in localStorage and changeable."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import ContextFactory
from tests.browser.task_api import TaskApi
from tests.browser.task_page import TaskPage
from tests.http.server_process import ServerProcess


def test_the_first_visit_asks_for_a_user_who_can_be_changed_later(
    new_context: ContextFactory, server: ServerProcess, api: TaskApi, user: str
) -> None:
    other = TaskApi(server, f"{user}.b")
    api.create("Mine")
    other.create("Theirs")
    app = TaskPage(new_context().new_page()).open()
    form = app.page.get_by_role("form", name="Choose a user")
    user_id = form.get_by_role("textbox", name="User id")
    expect(form).to_be_visible()

    user_id.fill("not a user id!")
    form.get_by_role("button", name="Continue").click()
    expect(form).to_be_visible()
    refused = user_id.evaluate("input => input.validationMessage") or app.error.inner_text()
    assert refused.strip(), "a refused user id shows no message"
    assert app.page.evaluate("localStorage.getItem('todo.user')") is None

    user_id.fill(user)
    form.get_by_role("button", name="Continue").click()
    expect(app.page.get_by_text(f"User: {user}", exact=True)).to_be_visible()
    expect(app.item("Mine")).to_have_count(1)
    expect(app.item("Theirs")).to_have_count(0)
    assert app.page.evaluate("localStorage.getItem('todo.user')") == user

    app.page.get_by_role("button", name="Change user").click()
    expect(user_id).to_have_value(user)
    user_id.fill(other.user)
    form.get_by_role("button", name="Continue").click()
    expect(app.page.get_by_text(f"User: {other.user}", exact=True)).to_be_visible()
    expect(app.item("Theirs")).to_have_count(1)
    expect(app.item("Mine")).to_have_count(0)

    app.page.reload()
    expect(app.page.get_by_text(f"User: {other.user}", exact=True)).to_be_visible()
    expect(form).to_have_count(0)
    expect(app.item("Theirs")).to_have_count(1)
