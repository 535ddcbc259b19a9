"""Polling the change feed, loaded with our own wrk script beside ``get_one`` and ``list``.

Issue 16: ``GET /api/{user_id}/changes?since=...`` with nothing new, and with 50
changes to return, should cost within 1.5x the CPU per request of reading one task
and of listing 50. Each server gets a user with 50 tasks (``benchmarks.organized``'s
fields, as the list user's), created after a token was taken: that token polls all
50 changes (``changes_50``), and the one taken after them nothing (``changes_idle``).
Polling changes nothing, so both tokens stay where they are for the whole run. The
four scenarios run round by round on every server (``benchmarks.wrk``), so the
ratios compare runs that shared the machine's noise.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from benchmarks.errors import BenchError
from benchmarks.filtered import error_checks, ratio_check, scenario_ratios, total_us
from benchmarks.organized import fields
from benchmarks.report import number, rows, times
from benchmarks.wrk import Request, Target

__all__ = [
    "CHANGES_50",
    "CHANGES_IDLE",
    "FEED_PAIRS",
    "FEED_SCENARIOS",
    "MAX_FEED_RATIO",
    "feed_checks",
    "feed_markdown",
    "feed_ratios",
    "feed_target",
]

CHANGES_IDLE: Final = "changes_idle"
CHANGES_50: Final = "changes_50"
GET_ONE: Final = "get_one"
LIST: Final = "list"
CHANGES: Final = 50
FEED_USER: Final = "feed-poll"
# What each poll is compared with, and how it is judged: nothing new against one
# task's read, 50 changes against a 50-task list.
FEED_PAIRS: Final = ((CHANGES_IDLE, GET_ONE), (CHANGES_50, LIST))
FEED_SCENARIOS: Final = (GET_ONE, LIST, CHANGES_IDLE, CHANGES_50)
MAX_FEED_RATIO: Final = 1.5
_TIMEOUT: Final = 10.0


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    payload = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, payload, {"Content-Type": "application/json"}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
            return json.load(response)
    except OSError as error:
        raise BenchError(f"{method} {url} failed: {error}") from error


def _head(changes_url: str) -> str:
    """A token at the user's newest change (the feed read without ``since``)."""
    token: str = _call("GET", changes_url)["meta"]["next_since"]
    return token


def feed_target(name: str, pid: int, base: str, database: str | None) -> Target:
    """Seed ``base`` with the feed user's 50 tasks; the server as a target of the four
    scenarios (``database``: as ``benchmarks.wrk.Target`` has it)."""
    tasks_url = f"{base}/api/{FEED_USER}/tasks"
    changes_url = f"{base}/api/{FEED_USER}/changes"
    before = _head(changes_url)
    now = datetime.now(UTC)
    created = [
        _call("POST", tasks_url, {"title": f"Fed task {index}", **fields(index, now)})["data"]
        for index in range(CHANGES)
    ]
    after = _head(changes_url)
    polls = {
        CHANGES_50: f"{changes_url}?since={urllib.parse.quote(before)}",
        CHANGES_IDLE: f"{changes_url}?since={urllib.parse.quote(after)}",
    }
    items = {scenario: len(_call("GET", url)["data"]) for scenario, url in polls.items()}
    if items != {CHANGES_50: CHANGES, CHANGES_IDLE: 0}:
        raise BenchError(f"the feed of {FEED_USER} on {base} returned {items}, not 50 and 0")
    requests = {scenario: Request(url) for scenario, url in polls.items()}
    requests[GET_ONE] = Request(f"{tasks_url}/{created[0]['id']}")
    requests[LIST] = Request(tasks_url)
    return Target(name, pid, database, requests, {**items, GET_ONE: 1, LIST: CHANGES})


def feed_ratios(suite: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per poll scenario, then per target: its CPU per request over its baseline's."""
    return {
        scenario: scenario_ratios(suite, scenario, baseline) for scenario, baseline in FEED_PAIRS
    }


def feed_markdown(
    suite: Mapping[str, Any], ratios: Mapping[str, Mapping[str, Mapping[str, Any]]]
) -> str:
    """Every row of the feed runs, with each poll's ratios to its baseline on its row."""
    items: Mapping[str, Mapping[str, int]] = suite["items"]
    baselines = dict(FEED_PAIRS)
    lines = [
        "| scenario | server | items | req/s | p50 ms | p99 ms | non-2xx | CPU µs/req "
        "| PostgreSQL CPU µs/req | both µs/req | vs | CPU/req ratio | both ratio "
        "| CPU/req ratio per round |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for row in rows(suite):
        ratio: Mapping[str, Any] = ratios.get(row.scenario, {}).get(row.server, {})
        lines.append(
            f"| {row.scenario} | {row.server} | {items[row.server][row.scenario]} "
            f"| {row.rps:.0f} | {row.p50_ms:.2f} | {row.p99_ms:.2f} | {row.non2xx} "
            f"| {number(row.cpu_us_per_req)} | {number(row.postgres_cpu_us_per_req)} "
            f"| {number(total_us(row))} | {baselines.get(row.scenario, '')} "
            f"| {times(ratio.get('cpu'))} | {times(ratio.get('cpu_with_postgres'))} "
            f"| {' / '.join(f'{value:.2f}' for value in ratio.get('cpu_per_round', []))} |"
        )
    return "\n".join(lines)


def feed_checks(
    suite: Mapping[str, Any], ratios: Mapping[str, Mapping[str, Mapping[str, Any]]]
) -> list[str]:
    """Issue 16's poll targets per server, and no error in any of the feed runs."""
    checks: list[str] = []

    def check(ok: bool, text: str) -> None:
        checks.append(f"{'met' if ok else 'MISSED'}: {text}")

    for scenario, baseline in FEED_PAIRS:
        for target, ratio in ratios.get(scenario, {}).items():
            label = f"{target} {scenario} CPU/req vs {baseline}"
            ratio_check(check, label, ratio, MAX_FEED_RATIO)
    error_checks(check, suite)
    return checks
