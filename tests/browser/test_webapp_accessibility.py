"""axe-core finds nothing serious or critical on any view, in light and dark: the user
form, the list, the edit form and the trash."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from axe_playwright_python.sync_playwright import Axe
from benchmarks.showcase import showcase_tasks
from playwright.sync_api import Page, expect

from tests.browser.conftest import ContextFactory
from tests.browser.task_api import TaskApi
from tests.browser.task_page import TaskPage

BLOCKING = frozenset({"serious", "critical"})


def blocking_violations(page: Page) -> list[str]:
    """axe's serious and critical violations on the page, one line per rule."""
    response: dict[str, Any] = Axe().run(page).response
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"])
        for violation in response["violations"]
        if violation["impact"] in BLOCKING
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_view_has_serious_accessibility_violations(
    new_context: ContextFactory, api: TaskApi, scheme: Literal["light", "dark"]
) -> None:
    tasks = [api.create(**body) for body in showcase_tasks()]
    api.delete(tasks[0]["id"])
    page = new_context().new_page()
    page.emulate_media(color_scheme=scheme)
    app = TaskPage(page).open()
    found: dict[str, list[str]] = {}

    form = page.get_by_role("form", name="Choose a user")
    expect(form).to_be_visible()
    found["user form"] = blocking_violations(page)
    form.get_by_role("textbox", name="User id").fill(api.user)
    form.get_by_role("button", name="Continue").click()

    expect(app.by_id(tasks[-1]["id"])).to_be_visible()
    found["list"] = blocking_violations(page)

    app.by_id(tasks[-1]["id"]).get_by_role("button", name="Edit").click()
    expect(page.get_by_role("form", name="Edit task")).to_be_visible()
    found["edit form"] = blocking_violations(page)
    page.keyboard.press("Escape")

    page.get_by_role("navigation", name="Views").get_by_role("link", name="Trash").click()
    expect(app.by_id(tasks[0]["id"], within=app.trash_list)).to_be_visible()
    found["trash"] = blocking_violations(page)

    assert {view: problems for view, problems in found.items() if problems} == {}
