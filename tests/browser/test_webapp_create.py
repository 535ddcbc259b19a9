"""Creating a task: one task per submission, however often the button is pressed or
the request retried, thanks to the Idempotency-Key each submission carries."""

from __future__ import annotations

import time

from playwright.sync_api import Request, Route, expect

from tests.browser.task_api import TaskApi
from tests.browser.task_page import TaskPage, wait_for


def test_a_double_click_on_add_task_makes_one_task(app: TaskPage, api: TaskApi) -> None:
    app.open()
    title = app.new_task.get_by_role("textbox", name="Title")
    title.fill("Buy milk")
    app.new_task.get_by_role("textbox", name="Description").fill("two litres")
    app.new_task.get_by_role("button", name="Add task").dblclick()
    app.wait_for_status("Task added")
    time.sleep(0.5)  # a second request, had there been one, would be answered by now

    created = api.titled("Buy milk")
    assert [task["description"] for task in created] == ["two litres"]
    expect(app.item("Buy milk")).to_have_count(1)
    expect(title).to_have_value("")
    expect(title).to_be_focused()


def test_a_create_whose_answer_was_lost_is_retried_with_the_same_key(
    app: TaskPage, api: TaskApi
) -> None:
    app.open()
    keys: list[str | None] = []

    def lose_the_first_answer(route: Route, request: Request) -> None:
        if request.method != "POST":
            route.fallback()
            return
        keys.append(request.headers.get("idempotency-key"))
        if len(keys) == 1:
            route.fetch()  # the server creates the task; its answer never arrives
            route.abort("connectionreset")
        else:
            route.continue_()

    app.page.route(f"**/api/{api.user}/tasks", lose_the_first_answer)
    app.add("Call the plumber")

    assert len(keys) >= 2, keys
    assert keys[0], "a create without an Idempotency-Key"
    assert len(set(keys)) == 1, keys
    assert len(api.titled("Call the plumber")) == 1
    wait_for(lambda: app.item("Call the plumber").count(), lambda n: n == 1, "items shown")
