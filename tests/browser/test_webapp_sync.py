"""Two browsers on one user's tasks: a change in one appears in the other without a
reload (the event stream), and an edit of a task changed elsewhere meanwhile is
refused (412) and shows the newer version instead of overwriting it; a stream whose
token expired (410) makes the page list everything again."""

from __future__ import annotations

from playwright.sync_api import Request, Route, expect

from tests.browser.conftest import ContextFactory
from tests.browser.task_api import TaskApi
from tests.browser.task_page import TaskPage, wait_for

# Within a few seconds, the spec says; events on loopback take milliseconds.
LIVE_MS = 5_000


def test_a_change_in_one_browser_appears_in_the_other_without_a_reload(
    new_context: ContextFactory, api: TaskApi, user: str
) -> None:
    first = TaskPage(new_context(as_user=user).new_page()).open()
    second = TaskPage(new_context(as_user=user).new_page()).open()
    for app in (first, second):
        expect(app.page.get_by_text("No tasks")).to_be_visible()
        # Gone after a reload: shows that what follows arrived without one.
        app.page.evaluate("window.notReloaded = true")

    first.add("Shared shopping list")
    task_id = api.titled("Shared shopping list")[0]["id"]
    expect(second.by_id(task_id)).to_have_count(1, timeout=LIVE_MS)

    second.by_id(task_id).get_by_role("checkbox", name="Completed").check()
    expect(first.by_id(task_id).get_by_role("checkbox", name="Completed")).to_be_checked(
        timeout=LIVE_MS
    )

    api.patch(task_id, title="Shared list, renamed elsewhere")
    for app in (first, second):
        expect(app.by_id(task_id)).to_contain_text(
            "Shared list, renamed elsewhere", timeout=LIVE_MS
        )

    first.by_id(task_id).get_by_role("button", name="Delete").click()
    expect(second.by_id(task_id)).to_have_count(0, timeout=LIVE_MS)
    for app in (first, second):
        assert app.page.evaluate("window.notReloaded") is True


def test_saving_a_task_changed_elsewhere_shows_the_newer_version(
    new_context: ContextFactory, api: TaskApi, user: str
) -> None:
    task = api.create("Plan the trip")
    first = TaskPage(new_context(as_user=user).new_page()).open()
    second = TaskPage(new_context(as_user=user).new_page()).open()
    editing = first.page.get_by_role("form", name="Edit task")
    first.by_id(task["id"]).get_by_role("button", name="Edit").click()
    editing.get_by_role("textbox", name="Title").fill("Plan the trip to Rome")

    second.by_id(task["id"]).get_by_role("button", name="Edit").click()
    elsewhere = second.page.get_by_role("form", name="Edit task")
    elsewhere.get_by_role("textbox", name="Title").fill("Plan the trip to Lisbon")
    elsewhere.get_by_role("button", name="Save").click()
    expect(elsewhere).to_have_count(0)
    saved = api.task(task["id"])
    assert saved is not None
    assert saved["title"] == "Plan the trip to Lisbon"

    editing.get_by_role("button", name="Save").click()
    expect(first.error).to_contain_text("changed elsewhere")
    expect(first.by_id(task["id"])).to_contain_text("Plan the trip to Lisbon")
    kept = api.task(task["id"])
    assert kept is not None
    assert kept["title"] == "Plan the trip to Lisbon"
    assert kept["updated_at"] == saved["updated_at"]


def test_a_stream_whose_token_expired_starts_over(app: TaskPage, api: TaskApi) -> None:
    shown = api.create("Listed at first")
    expired = {"code": "SYNC_TOKEN_EXPIRED", "message": "Sync token expired", "details": []}
    refused: list[str] = []

    def expire_once(route: Route, request: Request) -> None:
        """The first stream and the first feed read with a token: 410."""
        kind = "events" if "/events?" in request.url else "changes"
        if "since=" not in request.url or any(kind in url for url in refused):
            route.fallback()
            return
        if kind == "events":
            # A write the page can only learn of by listing again.
            missed.append(api.create("Written while the token expired"))
        refused.append(request.url)
        route.fulfill(status=410, json={"success": False, "error": expired})

    missed: list[dict[str, object]] = []
    app.page.route(f"**/api/{api.user}/events?*", expire_once)
    app.page.route(f"**/api/{api.user}/changes?*", expire_once)
    app.open()

    expect(app.by_id(shown["id"])).to_have_count(1)
    wait_for(lambda: len(missed), lambda opened: opened == 1, "streams opened", page=app.page)
    expect(app.by_id(str(missed[0]["id"]))).to_have_count(1, timeout=LIVE_MS)
    assert len(refused) == 2, refused  # the stream, then the feed asked why
    later = api.create("Live again")
    expect(app.by_id(later["id"])).to_have_count(1, timeout=LIVE_MS)
