"""The list: every filter and sort of the filter form shows what the API answers for
the same query, and paging (the "Load more" button, then scrolling) walks every page
once."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import ContextFactory
from tests.browser.task_api import TaskApi
from tests.browser.task_page import TaskPage

# (title, fields): priorities, tags, due dates either side of New York's midnight,
# descriptions that a search finds, some completed.
SEEDED: list[tuple[str, dict[str, Any]]] = [
    (
        "Buy milk",
        {
            "description": "corner shop",
            "priority": "high",
            "tags": ["home", "errands"],
            "due_at": "2026-03-01T04:30:00Z",
        },
    ),
    (
        "Pay rent",
        {
            "priority": "medium",
            "tags": ["home"],
            "due_at": "2026-03-01T05:30:00Z",
            "completed": True,
        },
    ),
    (
        "Write report",
        {
            "description": "milk budget",
            "priority": "low",
            "tags": ["work"],
            "due_at": "2026-03-10T15:00:00Z",
        },
    ),
    ("Call mom", {}),
    (
        "Fix bike",
        {
            "priority": "high",
            "tags": ["home", "work"],
            "due_at": "2026-04-01T12:00:00Z",
            "completed": True,
        },
    ),
    ("Read book", {"priority": "low", "tags": ["work"], "due_at": "2026-03-31T23:00:00Z"}),
    ("Water plants", {"tags": ["home"], "due_at": "2026-02-15T10:00:00Z"}),
]
SORTS = {
    "Newest first": "-created_at",
    "Oldest first": "created_at",
    "Recently updated": "-updated_at",
    "Least recently updated": "updated_at",
    "Title A\u2013Z": "title",
    "Title Z\u2013A": "-title",
    "Due soonest": "due_at",
    "Due latest": "-due_at",
    "Priority high to low": "-priority",
    "Priority low to high": "priority",
}


def test_every_filter_and_sort_shows_what_the_api_answers(
    new_context: ContextFactory, api: TaskApi, user: str
) -> None:
    for title, fields in SEEDED:
        api.create(title, **fields)
    api.patch(api.titled("Call mom")[0]["id"], description="updated last")
    app = TaskPage(new_context(as_user=user, timezone_id="America/New_York").new_page()).open()
    form = app.filters

    def shows(**query: str) -> None:
        app.wait_for_ids([task["id"] for task in api.tasks(**query)])

    shows()
    form.get_by_role("searchbox", name="Search").fill("milk")
    shows(q="milk")
    form.get_by_role("searchbox", name="Search").fill("")
    shows()

    show = form.get_by_role("combobox", name="Show")
    show.select_option(label="Active")
    shows(completed="false")
    show.select_option(label="Completed")
    shows(completed="true")
    show.select_option(label="All")
    shows()

    priority = form.get_by_role("group", name="Priority")
    priority.get_by_role("checkbox", name="High").check()
    priority.get_by_role("checkbox", name="Low").check()
    shows(priority="high,low")
    priority.get_by_role("checkbox", name="High").uncheck()
    priority.get_by_role("checkbox", name="Low").uncheck()
    priority.get_by_role("checkbox", name="None").check()
    shows(priority="none")
    priority.get_by_role("checkbox", name="None").uncheck()
    shows()

    tags = form.get_by_role("textbox", name="Tags")
    tags.fill("home, Work")
    tags.press("Tab")
    shows(tag="home,work")
    tags.fill("")
    tags.press("Tab")
    shows()

    # Midnight in New York: 05:00Z in winter (EST), 04:00Z after the clocks change.
    form.get_by_label("Due from").fill("2026-03-01T00:00")
    shows(due_min="2026-03-01T05:00:00Z")
    form.get_by_label("Due before").fill("2026-04-01T00:00")
    shows(due_min="2026-03-01T05:00:00Z", due_max="2026-04-01T04:00:00Z")
    form.get_by_label("Due from").fill("")
    form.get_by_label("Due before").fill("")
    shows()

    sort = form.get_by_role("combobox", name="Sort")
    assert sort.input_value() == "-created_at"
    for label, value in SORTS.items():
        sort.select_option(label=label)
        shows(sort=value)

    show.select_option(label="Active")
    tags.fill("home")
    tags.press("Tab")
    shows(sort="priority", completed="false", tag="home")


def test_scrolling_down_walks_every_page_once(app: TaskPage, api: TaskApi) -> None:
    for number in range(120):
        api.create(f"Task {number:03d}")
    listed = [task["id"] for task in api.tasks()]
    app.open()
    items = app.task_list.locator(":scope > li[data-id]")
    expect(items).to_have_count(50)
    # The button for keyboard users loads the next page too; scrolling loads the last.
    app.page.get_by_role("button", name="Load more").click()
    expect(items).to_have_count(100)

    deadline = time.monotonic() + 15
    while items.count() < 120 and time.monotonic() < deadline:
        items.last.scroll_into_view_if_needed()
        app.page.mouse.wheel(0, 2000)
        time.sleep(0.2)

    app.wait_for_ids(listed)
    expect(app.page.get_by_role("button", name="Load more")).to_have_count(0)
