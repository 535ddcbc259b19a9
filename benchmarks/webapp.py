"""The web app's first load in chromium: ``python -m benchmarks.webapp``.

Starts ``todo-http serve`` on a temporary SQLite file and on a fresh PostgreSQL
database (``TODO_BENCH_POSTGRES_URL``, as the other suites; ``--no-postgres`` leaves it
out), seeds 500 tasks for one user through the API, and loads the page in Debian's
chromium, each time in a new browser context (an empty cache, as a first visit). It
reports the first load's requests and bytes (bodies, uncompressed), every request to
another origin (there must be none), and the time from navigation to the first task
shown in the list, the median of ``--loads`` loads. Issue 17's budget: under 100 KB,
no other origin. ``--screenshots DIR`` instead writes ``webapp-desktop.png`` (1280x800)
and ``webapp-phone.png`` (390x844) of a realistic handful of tasks
(``benchmarks.showcase``) into DIR: docs/images/ holds the ones the README shows.
docs/performance.md ("Web app") gives the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from playwright.sync_api import Browser, Response, ViewportSize, sync_playwright

from benchmarks.cli import run_guarded
from benchmarks.databases import maintenance_url, migrate, throwaway_database
from benchmarks.errors import BenchError
from benchmarks.processes import Running, our_server, running_server
from benchmarks.showcase import showcase_tasks

__all__ = ["main"]

CHROMIUM: Final = Path("/usr/bin/chromium")
BUDGET_BYTES: Final = 100 * 1024
USER: Final = "webapp-bench"
SHOWCASE_USER: Final = "ana"
DESKTOP: Final[ViewportSize] = {"width": 1280, "height": 800}
PHONE: Final[ViewportSize] = {"width": 390, "height": 844}
FIRST_ITEM: Final = 'ul[aria-label="Tasks"] > li[data-id]'
# Notes, relative to the navigation's start, when the list first shows a task.
_WATCH_FIRST_ITEM: Final = f"""
new MutationObserver((_, observer) => {{
    if (document.querySelector({json.dumps(FIRST_ITEM)})) {{
        window.firstTaskShownAt = performance.now();
        observer.disconnect();
    }}
}}).observe(document, {{childList: true, subtree: true}});
localStorage.setItem("todo.user", {{user}});
"""


# The first list page's request in the resource timings: when it started and ended.
_LIST_TIMING: Final = """() => {
    const list = performance.getEntriesByType("resource").find(
        (entry) => new URL(entry.name).pathname.endsWith("/tasks"));
    return [list.startTime, list.responseEnd];
}"""


@dataclass(frozen=True)
class Load:
    """One first load: what it fetched and when the first task appeared."""

    requests: int
    body_bytes: int
    other_origins: tuple[str, ...]
    first_task_ms: float
    # When the page asked for the first list page and had its answer (ms after navigation).
    list_asked_ms: float
    list_answered_ms: float
    sizes: dict[str, int]  # bytes per path


def _create(base: str, user: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{base}/api/{user}/tasks",
        json.dumps(body).encode(),
        {"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 201:
            raise BenchError(f"seeding: POST answered {response.status}")


def _body_bytes(response: Response) -> int:
    # An event stream never ends and a redirect has no body.
    if 300 <= response.status < 400 or response.status == 204:
        return 0
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return 0
    return len(response.body())


def _load(browser: Browser, base: str, user: str) -> Load:
    context = browser.new_context(viewport=DESKTOP)
    try:
        context.add_init_script(_WATCH_FIRST_ITEM.replace("{user}", json.dumps(user)))
        page = context.new_page()
        responses: list[Response] = []
        page.on("response", lambda response: responses.append(response))
        page.goto(f"{base}/")
        page.wait_for_selector(FIRST_ITEM, timeout=30_000)
        page.wait_for_timeout(500)  # whatever the page fetches after its first list
        shown: float = page.evaluate("window.firstTaskShownAt")
        asked, answered = page.evaluate(_LIST_TIMING)
        sizes = {response.url.removeprefix(base): _body_bytes(response) for response in responses}
        return Load(
            requests=len(responses),
            body_bytes=sum(sizes.values()),
            other_origins=tuple(r.url for r in responses if not r.url.startswith(f"{base}/")),
            first_task_ms=shown,
            list_asked_ms=asked,
            list_answered_ms=answered,
            sizes=sizes,
        )
    finally:
        context.close()


@contextmanager
def _chromium() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        raise BenchError(f"no {CHROMIUM}: install it (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def _servers(postgres: bool) -> Iterator[list[Running]]:
    """Our server on SQLite and, unless told otherwise, on PostgreSQL, migrated."""
    with ExitStack() as stack:
        directory = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="todo-bench-webapp-"))
        )
        databases = {"sqlite": f"sqlite:///{directory / 'webapp.db'}"}
        if postgres:
            databases["postgres"] = stack.enter_context(
                throwaway_database(maintenance_url(), "todo_bench_webapp")
            )
        started = []
        for name, url in databases.items():
            migrate(url)
            server = our_server(name, url)
            started.append(
                stack.enter_context(running_server(server, directory / f"{name}.log", directory))
            )
        yield started


def _report(name: str, loads: list[Load]) -> dict[str, Any]:
    first = loads[0]
    result = {
        "server": name,
        "requests": first.requests,
        "kilobytes": round(first.body_bytes / 1024, 1),
        "other_origins": list(first.other_origins),
        "first_task_ms_median": round(statistics.median(load.first_task_ms for load in loads), 1),
        "first_task_ms_all": [round(load.first_task_ms, 1) for load in loads],
        "list_asked_ms_median": round(statistics.median(load.list_asked_ms for load in loads), 1),
        "list_answered_ms_median": round(
            statistics.median(load.list_answered_ms for load in loads), 1
        ),
        "bytes_by_path": first.sizes,
    }
    within = first.body_bytes < BUDGET_BYTES and not first.other_origins
    print(
        f"| {name} | {first.requests} | {result['kilobytes']} KB | "
        f"{len(first.other_origins)} | {result['list_asked_ms_median']} ms | "
        f"{result['list_answered_ms_median']} ms | {result['first_task_ms_median']} ms | "
        f"{'met' if within else 'MISSED'} |"
    )
    return result


def _measure(tasks: int, loads: int, postgres: bool, output: Path | None) -> None:
    results = []
    with _servers(postgres) as servers:
        for server in servers:
            for number in range(tasks):
                _create(server.base, USER, {"title": f"Task {number:03d}", "priority": "medium"})
        print(f"First load of the web app with {tasks} tasks ({loads} loads each)\n")
        print(
            "| server | requests | bytes | other origins | list asked | list answered "
            "| first task shown | budget |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        with _chromium() as browser:
            for server in servers:
                measured = [_load(browser, server.base, USER) for _ in range(loads)]
                results.append(_report(server.name, measured))
    if output is not None:
        output.write_text(json.dumps(results, indent=2) + "\n")
    if any(
        result["other_origins"] or result["kilobytes"] * 1024 >= BUDGET_BYTES for result in results
    ):
        raise BenchError("the first load is over 100 KB or asks another origin")


def _screenshots(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with _servers(postgres=False) as (server,), _chromium() as browser:
        for body in showcase_tasks():
            _create(server.base, SHOWCASE_USER, body)
        for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            context = browser.new_context(viewport=viewport, color_scheme="light")
            context.add_init_script(
                f"localStorage.setItem('todo.user', {json.dumps(SHOWCASE_USER)})"
            )
            page = context.new_page()
            page.goto(f"{server.base}/")
            page.wait_for_selector(FIRST_ITEM)
            page.wait_for_timeout(300)
            page.screenshot(path=directory / f"webapp-{name}.png")
            context.close()
            print(f"wrote {directory / f'webapp-{name}.png'}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.webapp",
        description="Load the web app in chromium: first-load requests, bytes and time "
        "to the first task shown; or write its screenshots.",
    )
    parser.add_argument("--tasks", type=int, default=500, help="tasks seeded (default 500)")
    parser.add_argument("--loads", type=int, default=5, help="loads per server (default 5)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--screenshots",
        type=Path,
        metavar="DIR",
        help="write webapp-desktop.png and webapp-phone.png into DIR instead",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.screenshots is not None:
        return run_guarded(lambda: _screenshots(arguments.screenshots), needs_wrk=False)
    return run_guarded(
        lambda: _measure(
            arguments.tasks, arguments.loads, not arguments.no_postgres, arguments.json
        ),
        needs_wrk=False,
    )


if __name__ == "__main__":
    sys.exit(main())
