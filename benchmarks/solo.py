"""Our server alone, for a clone without the shared load harness: ``python -m benchmarks.solo``.

``benchmarks.http`` runs this when ``../shared/bench`` is missing, after saying that the
side-by-side comparison was skipped. With no harness there is neither a limit server to
compare with nor ``bench.py``, so this drives wrk itself, for the scenarios that a wrk
command line says without the harness's script: ``get_one`` (one task, again and
again), ``list`` (a user's 50 tasks), ``create`` and ``list_filtered`` (those 50 tasks
filtered, ``benchmarks.organized``). It loads ours on PostgreSQL and on SQLite,
interleaved, with ``benchmarks.wrk``, reports req/s, latency, CPU per request and RSS,
and writes solo.json and solo.md. It checks no target of issue 4 (those are ratios to
the limit server), but does check issue 16's feed polls (``changes_idle``,
``changes_50``), whose targets are ratios to our own get_one and list
(``benchmarks.feed``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from benchmarks.cli import load_options, load_parser, run_guarded
from benchmarks.databases import migrate, throwaway_database
from benchmarks.feed import (
    CHANGES_50,
    CHANGES_IDLE,
    FEED_SCENARIOS,
    feed_checks,
    feed_markdown,
    feed_ratios,
    feed_target,
)
from benchmarks.harness import LoadOptions
from benchmarks.organized import FILTER, fields, matches
from benchmarks.processes import our_server, running_server
from benchmarks.report import OURS_POSTGRES, OURS_SQLITE, Row, commit, markdown, rows, write_results
from benchmarks.wrk import Request, Target, run_interleaved

__all__ = ["SOLO_SCENARIOS", "main"]

SOLO_SCENARIOS: Final = ("get_one", "list", "create", "list_filtered", CHANGES_IDLE, CHANGES_50)
LIST_TASKS: Final = 50
_CREATE_BODY: Final = '{"title": "Solo bench task", "description": "created by benchmarks.solo"}'


def _post(url: str, body: dict[str, Any]) -> str:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        task_id: str = json.load(response)["data"]["id"]
        return task_id


def _requests(base: str) -> dict[str, Request]:
    """Seed through the API (the listed tasks with benchmarks.organized's fields); the
    request each scenario sends."""
    now = datetime.now(UTC)
    for index in range(LIST_TASKS):
        _post(
            f"{base}/api/solo-list/tasks", {"title": f"Listed task {index}", **fields(index, now)}
        )
    task_id = _post(f"{base}/api/solo-get/tasks", {"title": "The task get_one reads"})
    return {
        "get_one": Request(f"{base}/api/solo-get/tasks/{task_id}"),
        "list": Request(f"{base}/api/solo-list/tasks"),
        "create": Request(f"{base}/api/solo-create/tasks", "POST", _CREATE_BODY),
        "list_filtered": Request(f"{base}/api/solo-list/tasks?{FILTER}"),
    }


def _measure(
    arguments: argparse.Namespace, options: LoadOptions, scenarios: Sequence[str]
) -> tuple[list[Row], dict[str, Any] | None]:
    """The rows of the plain scenarios, and the feed runs (None when no poll is asked)."""
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="todo-solo-")))
        databases = {
            OURS_POSTGRES: stack.enter_context(
                throwaway_database(arguments.postgres_url, "todo_bench_solo")
            ),
            OURS_SQLITE: f"sqlite:///{work / 'solo.db'}",
        }
        targets: list[Target] = []
        fed: list[Target] = []
        polls = {CHANGES_IDLE, CHANGES_50} & set(scenarios)
        plain = [name for name in scenarios if name not in polls]
        for name, database in databases.items():
            migrate(database)
            server = our_server(name, database)
            running = stack.enter_context(running_server(server, work / f"{name}.log", work))
            print(f"== seeding {name} (pid {running.pid}) at {running.base}", flush=True)
            own = None if name == OURS_SQLITE else database
            targets.append(Target(name, running.pid, own, _requests(running.base)))
            if polls:
                fed.append(feed_target(name, running.pid, running.base, own))
        suite = run_interleaved(targets, plain, options) if plain else {"runs": []}
        feed = run_interleaved(fed, FEED_SCENARIOS, options) if fed else None
    return rows(suite), feed


def main(argv: Sequence[str] | None = None) -> int:
    """Measure; return the exit status (1 on a failure, 130 when interrupted)."""
    given = list(sys.argv[1:] if argv is None else argv)
    parser = load_parser(
        "python -m benchmarks.solo",
        "Load our server alone (PostgreSQL, then SQLite) with wrk; print and save the results.",
        SOLO_SCENARIOS,
        "solo.json and solo.md",
    )
    arguments = parser.parse_args(given)
    options = load_options(parser, arguments)
    scenarios = [name for name in options.scenarios if name in SOLO_SCENARIOS]
    if left_out := [name for name in options.scenarios if name not in SOLO_SCENARIOS]:
        print(
            f"benchmarks: {', '.join(left_out)} skipped: without the harness's wrk script "
            f"only {', '.join(SOLO_SCENARIOS)} are measured"
        )
    if not scenarios:
        return 0

    def measure() -> None:
        rows, feed = _measure(arguments, options, scenarios)
        parts = [markdown(rows, {})] if rows else []
        checks: list[str] = []
        details: dict[str, Any] = {"rows": [row.as_dict() for row in rows]}
        if feed is not None:
            ratios = feed_ratios(feed)
            checks = feed_checks(feed, ratios)
            parts.append(
                "The change feed polled beside get_one and list, interleaved:\n\n"
                + feed_markdown(feed, ratios)
            )
            details["changes"] = {"ratios": ratios, "runs": feed}
        revision = commit()
        text = "\n\n".join(parts)
        median = ""
        if rows:
            cpu = statistics.median(row.cpu_us_per_req or 0.0 for row in rows)
            median = f"; median CPU {cpu:.0f} µs/req"
        summary = (
            f"our server alone, {options.duration} s per run after {options.warmup} s "
            f"warm-up, {options.rounds} round(s), {options.connections} connections, "
            f"1 worker each; commit {revision}{median}; "
            f"list_filtered is ?{FILTER}, {matches(LIST_TASKS)} of the {LIST_TASKS} tasks"
        )
        print(f"\n== todo alone ({summary})\n\n{text}\n")
        if checks:
            print("\n".join(["== issue 16 changes targets", *checks, ""]))
        write_results(
            arguments.out_dir / "solo.json",
            module="benchmarks.solo",
            argv=given,
            revision=revision,
            options=options,
            details=details,
            summary=summary,
            text=text,
            checks=checks,
        )
        print(f"wrote {arguments.out_dir / 'solo.json'} and solo.md")

    return run_guarded(measure)


if __name__ == "__main__":
    sys.exit(main())
