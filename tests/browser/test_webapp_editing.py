"""Changing a task in the list: every field edited inline (the due date in the
browser's time zone), completing and reopening (a recurring task's next occurrence
appears), and deleting with an Undo."""

from __future__ import annotations

from datetime import datetime

from playwright.sync_api import expect

from tests.browser.conftest import ContextFactory
from tests.browser.task_api import TaskApi
from tests.browser.task_page import TaskPage, wait_for


def instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_every_field_is_edited_inline_with_the_due_date_in_the_browsers_zone(
    new_context: ContextFactory, api: TaskApi, user: str
) -> None:
    task = api.create("Old title", description="old words")
    app = TaskPage(new_context(as_user=user, timezone_id="America/New_York").new_page()).open()
    item = app.by_id(task["id"])
    form = app.page.get_by_role("form", name="Edit task")

    item.get_by_role("button", name="Edit").click()
    form.get_by_role("textbox", name="Title").fill("New title")
    form.get_by_role("textbox", name="Description").fill("new words")
    form.get_by_label("Due", exact=True).fill("2026-07-04T09:30")
    form.get_by_role("combobox", name="Priority").select_option(label="High")
    form.get_by_role("textbox", name="Tags").fill("home, Errands")
    form.get_by_role("combobox", name="Repeats").select_option(label="Weekly")
    # A task in "UTC" that starts repeating counts on the browser's zone by default.
    expect(form.get_by_label("Time zone")).to_have_value("America/New_York")
    form.get_by_role("button", name="Save").click()
    expect(form).to_have_count(0)

    saved = api.task(task["id"])
    assert saved is not None
    assert (saved["title"], saved["description"]) == ("New title", "new words")
    assert instant(saved["due_at"]) == instant("2026-07-04T13:30:00Z")  # 09:30 EDT
    assert (saved["priority"], saved["tags"]) == ("high", ["home", "errands"])
    assert (saved["recurrence"], saved["time_zone"]) == ("weekly", "America/New_York")
    for shown in ("New title", "new words", "High priority", "#home", "#errands", "Repeats weekly"):
        expect(item).to_contain_text(shown)
    expect(item.locator("time")).to_have_attribute("datetime", saved["due_at"])
    expect(item.get_by_role("button", name="Edit")).to_be_focused()

    item.get_by_role("button", name="Edit").click()
    form.get_by_role("textbox", name="Title").fill("Scrapped")
    app.page.keyboard.press("Escape")
    expect(form).to_have_count(0)
    expect(item).to_contain_text("New title")

    item.get_by_role("button", name="Edit").click()
    form.get_by_role("combobox", name="Repeats").select_option(label="Never")
    form.get_by_label("Due", exact=True).fill("")
    form.get_by_role("combobox", name="Priority").select_option(label="None")
    form.get_by_role("textbox", name="Tags").fill("")
    form.get_by_role("button", name="Save").click()
    expect(form).to_have_count(0)
    cleared = api.task(task["id"])
    assert cleared is not None
    assert cleared["title"] == "New title"
    assert (cleared["due_at"], cleared["recurrence"]) == (None, None)
    assert (cleared["priority"], cleared["tags"]) == ("none", [])
    expect(item.locator("time")).to_have_count(0)


def test_completing_a_recurring_task_shows_its_next_occurrence(app: TaskPage, api: TaskApi) -> None:
    plain = api.create("Plain chore")
    recurring = api.create("Daily standup", due_at="2026-03-02T14:00:00Z", recurrence="daily")
    app.open()
    done = app.by_id(plain["id"]).get_by_role("checkbox", name="Completed")

    done.check()
    wait_for(
        lambda: api.task(plain["id"]),
        lambda task: task is not None and task["completed"],
        "completed",
    )
    done.uncheck()
    wait_for(
        lambda: api.task(plain["id"]),
        lambda task: task is not None and not task["completed"],
        "reopened",
    )
    expect(done).not_to_be_checked()

    app.by_id(recurring["id"]).get_by_role("checkbox", name="Completed").check()
    completed = wait_for(
        lambda: api.task(recurring["id"]),
        lambda task: task is not None and task["next_occurrence_id"] is not None,
        "the next occurrence",
    )
    assert completed is not None
    following = api.task(completed["next_occurrence_id"])
    assert following is not None
    upcoming = app.by_id(following["id"])
    expect(upcoming).to_contain_text("Daily standup")
    expect(upcoming.locator("time")).to_have_attribute("datetime", following["due_at"])
    expect(upcoming.get_by_role("checkbox", name="Completed")).not_to_be_checked()
    expect(app.by_id(recurring["id"]).get_by_role("checkbox", name="Completed")).to_be_checked()


def test_a_deleted_task_comes_back_with_undo(app: TaskPage, api: TaskApi) -> None:
    task = api.create("Old receipts")
    app.open()
    item = app.by_id(task["id"])
    item.get_by_role("button", name="Delete").click()
    expect(item).to_have_count(0)
    app.wait_for_status("Task deleted")
    assert api.task(task["id"]) is None
    assert [trashed["id"] for trashed in api.trash()] == [task["id"]]

    app.page.get_by_role("button", name="Undo").click()
    expect(item).to_have_count(1)
    app.wait_for_status("Task restored")
    assert api.task(task["id"]) is not None
    assert api.trash() == []
