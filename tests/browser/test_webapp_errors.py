"""What goes wrong, shown: an error envelope's message and details with the input at
fault marked, and the offline banner (no network, or the API answering 503), which
goes away by itself once the server can be reached again."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.task_api import TaskApi
from tests.browser.task_page import TaskPage

TOO_LONG_TAG = "x" * 41  # tags are 1-40 characters


def test_an_error_envelope_is_shown_with_its_details(app: TaskPage, api: TaskApi) -> None:
    task = api.create("Tagged")
    refused = api.request("PATCH", f"/tasks/{task['id']}", {"tags": [TOO_LONG_TAG]})
    assert refused.status == 422
    envelope = refused.json()["error"]
    assert envelope["details"]
    app.open()

    app.by_id(task["id"]).get_by_role("button", name="Edit").click()
    form = app.page.get_by_role("form", name="Edit task")
    form.get_by_role("textbox", name="Tags").fill(TOO_LONG_TAG)
    form.get_by_role("button", name="Save").click()

    expect(app.error).to_have_attribute("role", "alert")
    expect(app.error).to_contain_text(envelope["message"])
    for detail in envelope["details"]:
        expect(app.error).to_contain_text(f"{detail['field']}: {detail['message']}")
    expect(form.get_by_role("textbox", name="Tags")).to_have_attribute("aria-invalid", "true")
    unchanged = api.task(task["id"])
    assert unchanged is not None
    assert unchanged["tags"] == []


def test_the_offline_banner_shows_and_hides_by_itself(app: TaskPage, api: TaskApi) -> None:
    app.open()
    expect(app.page.get_by_text("No tasks")).to_be_visible()
    expect(app.offline).to_be_hidden()

    app.page.context.set_offline(True)
    expect(app.offline).to_be_visible()
    expect(app.offline).to_have_text("You are offline. Retrying…")
    expect(app.offline).to_have_attribute("role", "alert")
    task = api.create("Written while the browser was offline")

    app.page.context.set_offline(False)
    # Probes every 2 s, backing off to 10 s: the first after going online is near.
    expect(app.offline).to_be_hidden(timeout=12_000)
    expect(app.by_id(task["id"])).to_have_count(1)

    # A server whose database is down answers 503: the same banner, the same recovery.
    unavailable = {"code": "SERVICE_UNAVAILABLE", "message": "Database unavailable", "details": []}
    app.page.route(
        f"**/api/{api.user}/**",
        lambda route: route.fulfill(
            status=503,
            headers={"Retry-After": "1"},
            json={"success": False, "error": unavailable},
        ),
    )
    app.filters.get_by_role("combobox", name="Show").select_option(label="Active")
    expect(app.offline).to_be_visible()
    app.page.unroute(f"**/api/{api.user}/**")
    expect(app.offline).to_be_hidden(timeout=12_000)
    app.wait_for_ids([task["id"]])
