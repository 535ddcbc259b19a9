"""The trash view: what was deleted, restored one by one, deleted for good, or all
emptied after a confirmation."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.task_api import TaskApi
from tests.browser.task_page import TaskPage


def test_the_trash_view_restores_deletes_forever_and_empties(app: TaskPage, api: TaskApi) -> None:
    trashed = {
        title: api.create(title)["id"] for title in ("Keep me", "Gone for good", "Also gone")
    }
    for task_id in trashed.values():
        api.delete(task_id)
    app.open()
    views = app.page.get_by_role("navigation", name="Views")
    expect(views.get_by_role("link", name="Tasks")).to_have_attribute("aria-current", "page")

    views.get_by_role("link", name="Trash").click()
    expect(views.get_by_role("link", name="Trash")).to_have_attribute("aria-current", "page")
    assert app.page.url.endswith("#/trash")
    trash = app.trash_list
    app.wait_for_ids([task["id"] for task in api.trash()], within=trash)

    app.by_id(trashed["Keep me"], within=trash).get_by_role("button", name="Restore").click()
    expect(app.by_id(trashed["Keep me"], within=trash)).to_have_count(0)
    assert api.task(trashed["Keep me"]) is not None

    app.by_id(trashed["Gone for good"], within=trash).get_by_role(
        "button", name="Delete forever"
    ).click()
    expect(app.by_id(trashed["Gone for good"], within=trash)).to_have_count(0)
    assert [task["id"] for task in api.trash()] == [trashed["Also gone"]]

    app.page.get_by_role("button", name="Empty trash").click()
    app.page.get_by_role("button", name="Keep").click()
    expect(app.by_id(trashed["Also gone"], within=trash)).to_have_count(1)
    app.page.get_by_role("button", name="Empty trash").click()
    app.page.get_by_role("button", name="Yes, empty the trash").click()
    expect(app.page.get_by_text("Trash is empty")).to_be_visible()
    assert api.trash() == []

    views.get_by_role("link", name="Tasks").click()
    app.wait_for_ids([trashed["Keep me"]])
