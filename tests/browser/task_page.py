"""``TaskPage``: the web app as its users meet it, located by the roles and accessible
names issue 17 makes binding (docs/webapp.md), plus waits for what
the page shows to settle and a check that keyboard focus is visible."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from playwright.sync_api import Locator, Page

__all__ = ["SETTLE", "TaskPage", "wait_for"]

# How long a test waits for the page to show what the API already holds.
SETTLE = 5.0
T = TypeVar("T")


def wait_for(
    read: Callable[[], T],
    wanted: Callable[[T], bool],
    what: str,
    timeout: float = SETTLE,
    page: Page | None = None,
) -> T:
    """Poll ``read`` until its value is ``wanted``; fail showing the last one.

    Waiting for a route handler's doing needs ``page``: the handlers run only while the
    test is inside a Playwright call, so the pauses are the page's, not ``time.sleep``.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if wanted(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {value!r} after {timeout} s")
        if page is None:
            time.sleep(0.1)
        else:
            page.wait_for_timeout(100)


# Whether an element shows that it has the focus: an outline or a ring drawn by a shadow.
_FOCUS_SHOWN = """element => {
    const style = getComputedStyle(element);
    const outlined = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
    return element === document.activeElement && (outlined || style.boxShadow !== "none");
}"""


class TaskPage:
    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self, path: str = "/") -> TaskPage:
        self.page.goto(path)
        return self

    # The regions every view has.
    @property
    def status(self) -> Locator:
        return self.page.locator("#status")

    @property
    def error(self) -> Locator:
        return self.page.locator("#error")

    @property
    def offline(self) -> Locator:
        return self.page.locator("#offline")

    @property
    def new_task(self) -> Locator:
        return self.page.get_by_role("form", name="New task")

    @property
    def filters(self) -> Locator:
        return self.page.get_by_role("search", name="Filter tasks")

    @property
    def task_list(self) -> Locator:
        return self.page.get_by_role("list", name="Tasks")

    @property
    def trash_list(self) -> Locator:
        return self.page.get_by_role("list", name="Trash")

    def item(self, title: str, within: Locator | None = None) -> Locator:
        """The list items with an element whose text is exactly ``title``."""
        items = (within or self.task_list).locator(":scope > li")
        return items.filter(has=self.page.get_by_text(title, exact=True))

    def by_id(self, task_id: str, within: Locator | None = None) -> Locator:
        return (within or self.task_list).locator(f':scope > li[data-id="{task_id}"]')

    def ids(self, within: Locator | None = None) -> list[str]:
        """The ``data-id`` of each item the list shows, top to bottom."""
        found: list[str] = (
            (within or self.task_list)
            .locator(":scope > li[data-id]")
            .evaluate_all("items => items.map(item => item.dataset.id)")
        )
        return found

    def wait_for_ids(
        self, expected: list[str], within: Locator | None = None, timeout: float = SETTLE
    ) -> None:
        """Until the list (``within``, else the tasks) shows exactly ``expected``, in order."""
        wait_for(lambda: self.ids(within), lambda ids: ids == expected, "the listed ids", timeout)

    def add(self, title: str, description: str = "") -> None:
        """Create a task through the "New task" form and wait for "Task added"."""
        self.new_task.get_by_role("textbox", name="Title").fill(title)
        self.new_task.get_by_role("textbox", name="Description").fill(description)
        self.new_task.get_by_role("button", name="Add task").click()
        self.wait_for_status("Task added")

    def wait_for_status(self, text: str) -> None:
        wait_for(self.status.inner_text, lambda shown: text in shown, "the status region")

    def focus_shown(self, locator: Locator) -> bool:
        """Whether ``locator`` has the focus and draws it (outline or box-shadow)."""
        shown: bool = locator.evaluate(_FOCUS_SHOWN)
        return shown

    def tab_to(self, locator: Locator, limit: int = 60) -> None:
        """Press Tab until ``locator`` has the focus, which must then be visible."""
        for _ in range(limit):
            self.page.keyboard.press("Tab")
            if locator.evaluate("element => element === document.activeElement"):
                assert self.focus_shown(locator), "the focused element draws no focus ring"
                return
        raise AssertionError(f"{limit} presses of Tab never reached {locator}")
