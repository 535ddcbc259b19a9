"""The app at phone and desktop width, light and dark: everything fits the width (no
sideways scrolling) and the controls are on screen. Screenshots go to artifacts/."""

from __future__ import annotations

from typing import Literal

import pytest
from benchmarks.showcase import showcase_tasks
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, DESKTOP, PHONE, ContextFactory
from tests.browser.task_api import TaskApi
from tests.browser.task_page import TaskPage


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_the_app_fits_phone_and_desktop_widths(
    new_context: ContextFactory,
    api: TaskApi,
    user: str,
    width: str,
    scheme: Literal["light", "dark"],
) -> None:
    tasks = [api.create(**body) for body in showcase_tasks()]
    viewport = {"phone": PHONE, "desktop": DESKTOP}[width]
    page = new_context(as_user=user, viewport=viewport, color_scheme=scheme).new_page()
    app = TaskPage(page).open()
    app.wait_for_ids([task["id"] for task in reversed(tasks)])

    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow} px wider than the {width} viewport"
    expect(page.get_by_role("button", name="Add task")).to_be_in_viewport()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"webapp-{width}-{scheme}.png", full_page=True)
