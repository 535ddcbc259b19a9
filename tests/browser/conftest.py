"""Fixtures: chromium, a server per test module on SQLite and on PostgreSQL, a fresh
browser context per test (screenshots of its pages when the test fails), and a user
of its own per test with the API to seed and check that user's tasks.

Everything here is synchronous: Playwright's sync API may not run inside an event
loop, and these tests have none.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import Browser, BrowserContext, ViewportSize, sync_playwright

from tests.backends import unavailable
from tests.browser.app_server import module_database
from tests.browser.task_api import TaskApi
from tests.browser.task_page import TaskPage
from tests.http.server_process import ServerProcess, serving

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
# Playwright's waits, short: the page talks to a server on loopback.
TIMEOUT_MS = 5_000

ContextFactory = Callable[..., BrowserContext]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium; Playwright may not download one. Module-scoped, not session:
    while Playwright runs, the main thread's loop counts as running, which the
    asyncio tests of the other folders could not live with."""
    if not CHROMIUM.is_file():
        unavailable(f"browser tests need {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, migrated database of each backend in turn, one per test module."""
    with module_database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``todo-http serve`` with its defaults (the app at ``/``) on the module's database;
    tests share it, each with a user of its own."""
    with serving(database, tmp_path_factory.mktemp("server")) as started:
        yield started


@pytest.fixture
def user() -> str:
    return f"u{uuid.uuid4().hex[:12]}"


@pytest.fixture
def api(server: ServerProcess, user: str) -> TaskApi:
    return TaskApi(server, user)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keeps each phase's report on the item, for ``new_context`` to see a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _screenshot_failure(request: pytest.FixtureRequest, contexts: list[BrowserContext]) -> None:
    report = getattr(request.node, "report_call", None)
    if report is None or not report.failed:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.nodeid.rpartition("/")[2])
    for number, context in enumerate(contexts):
        for tab, page in enumerate(context.pages):
            page.screenshot(path=ARTIFACTS / f"failed-{name}-{number}-{tab}.png", full_page=True)


@pytest.fixture
def new_context(
    browser: Browser, server: ServerProcess, request: pytest.FixtureRequest
) -> Iterator[ContextFactory]:
    """Opens fresh browser contexts on the module's server (or ``base_url``), closed
    after the test; a failed test leaves screenshots of their pages in ``artifacts/``.

    ``as_user`` stores that user id in localStorage before the page's scripts run, as
    if chosen on an earlier visit (unless the page has chosen one since).
    """
    contexts: list[BrowserContext] = []

    def factory(
        as_user: str | None = None, base_url: str | None = None, **options: Any
    ) -> BrowserContext:
        options = {"viewport": DESKTOP} | options
        context = browser.new_context(
            base_url=base_url or f"http://127.0.0.1:{server.port}", **options
        )
        context.set_default_timeout(TIMEOUT_MS)
        if as_user is not None:
            context.add_init_script(
                f"if (!localStorage.getItem('todo.user')) "
                f"localStorage.setItem('todo.user', {orjson.dumps(as_user).decode()});"
            )
        contexts.append(context)
        return context

    yield factory
    try:
        _screenshot_failure(request, contexts)
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def app(new_context: ContextFactory, user: str) -> TaskPage:
    """A desktop-sized page as the test's user; ``open()`` it once the test has seeded
    what the first list should show (later changes arrive through live events)."""
    return TaskPage(new_context(as_user=user).new_page())
