"""The whole round with the keyboard alone: create, edit, complete, delete and undo,
the focus visible on every control reached."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.task_api import TaskApi
from tests.browser.task_page import TaskPage, wait_for


def test_a_keyboard_alone_creates_edits_completes_deletes_and_undoes(
    app: TaskPage, api: TaskApi
) -> None:
    app.open()
    keyboard = app.page.keyboard
    expect(app.page.get_by_text("No tasks")).to_be_visible()

    title = app.new_task.get_by_role("textbox", name="Title")
    app.tab_to(title)
    keyboard.type("Walk the dog")
    keyboard.press("Enter")
    app.wait_for_status("Task added")
    expect(title).to_be_focused()
    (task,) = api.titled("Walk the dog")
    item = app.by_id(task["id"])

    app.tab_to(item.get_by_role("button", name="Edit"))
    keyboard.press("Enter")
    form = app.page.get_by_role("form", name="Edit task")
    editing = form.get_by_role("textbox", name="Title")
    expect(form).to_be_visible()
    if not app.focus_shown(editing):
        app.tab_to(editing)
    keyboard.press("Control+A")
    keyboard.type("Walk the dog twice")
    keyboard.press("Enter")
    expect(form).to_have_count(0)
    expect(item.get_by_role("button", name="Edit")).to_be_focused()
    assert app.focus_shown(item.get_by_role("button", name="Edit"))
    wait_for(
        lambda: api.task(task["id"]),
        lambda t: t is not None and t["title"] == "Walk the dog twice",
        "renamed",
    )

    app.tab_to(item.get_by_role("checkbox", name="Completed"))
    keyboard.press("Space")
    wait_for(lambda: api.task(task["id"]), lambda t: t is not None and t["completed"], "completed")

    app.tab_to(item.get_by_role("button", name="Delete"))
    keyboard.press("Enter")
    expect(item).to_have_count(0)
    app.wait_for_status("Task deleted")
    assert api.task(task["id"]) is None

    app.tab_to(app.page.get_by_role("button", name="Undo"))
    keyboard.press("Enter")
    app.wait_for_status("Task restored")
    expect(item).to_have_count(1)
    restored = api.task(task["id"])
    assert restored is not None
    assert restored["completed"]
