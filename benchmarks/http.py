"""Load our server and the shared limit server side by side: ``python -m benchmarks.http``.

Starts four servers, each with one worker: ours on a fresh PostgreSQL database (twice:
with named and with unnamed statements), ours on a temporary SQLite file, and
``limit_server.py`` on its own PostgreSQL database. Seeds each through its API, gives
our seeded tasks priorities, tags and due dates (``benchmarks.organized``), and runs
``bench.py suite`` over all four, interleaved, so that noise on a shared machine hits
them alike; then ``list`` and ``list_filtered`` on ours with our own wrk script
(``benchmarks.filtered``), interleaved likewise. Prints markdown tables with ratios to
the limit server and of list_filtered to list, and writes results.json, results.md
and chart.png.
docs/performance.md explains every number. Without the harness (a clone of this
repository alone) it says the comparison is skipped and runs ``benchmarks.solo``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import solo
from benchmarks.cli import SCENARIOS, harness_share, load_options, load_parser, run_guarded
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
from benchmarks.filtered import (
    LIST,
    LIST_FILTERED,
    filtered_checks,
    filtered_markdown,
    filtered_ratios,
    organized_target,
)
from benchmarks.harness import Harness, LoadOptions, skipped_without_harness
from benchmarks.organized import FILTER, organize_seeded
from benchmarks.processes import Running, Server, free_port, our_server, running_server
from benchmarks.report import (
    LIMIT,
    OURS_POSTGRES,
    OURS_SQLITE,
    OURS_UNNAMED,
    commit,
    final_rss_mib,
    list_sizes,
    markdown,
    rows,
    run_summary,
    target_checks,
    write_results,
)
from benchmarks.wrk import Target, run_interleaved

__all__ = ["main"]

_COMPARISON = "the side-by-side comparison with the limit server"


def _parser() -> argparse.ArgumentParser:
    return load_parser(
        "python -m benchmarks.http",
        "Load our server (PostgreSQL, then SQLite) and the limit server with wrk through "
        "the shared harness, interleaved; print and save the results.",
        SCENARIOS,
        "results.json, results.md and chart.png",
    )


def _limit(script: Path, database: str) -> Server:
    port = free_port()
    command = (sys.executable, str(script), "--port", str(port), "--dsn", database)
    return Server(LIMIT, command, port, "/api/bench-ready/tasks")


@dataclass(frozen=True)
class Measured:
    """The harness's suite over every server, our own list runs over ours (None
    without ``list_filtered`` among the scenarios) and our feed polls beside get_one
    and list (None without ``changes_idle`` or ``changes_50``)."""

    suite: dict[str, Any]
    own: dict[str, Any] | None
    feed: dict[str, Any] | None


def _organized(running: Running, state: Path, database: str | None) -> Target:
    organized = organize_seeded(running.base, state)
    print(
        f"   organized the seeded tasks; the filter returns {organized.filtered_items} "
        f"of the list user's {organized.list_items}",
        flush=True,
    )
    return organized_target(running.name, running.pid, organized, database)


def _measure(arguments: argparse.Namespace, options: LoadOptions) -> Measured:
    harness = Harness(arguments.bench_dir)
    with ExitStack() as stack:
        # Entered in this order, unwound in reverse: servers stop before their
        # databases are dropped, and the temporary directory goes last.
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="todo-bench-")))
        ours_database = stack.enter_context(
            throwaway_database(arguments.postgres_url, "todo_bench")
        )
        unnamed_database = stack.enter_context(
            throwaway_database(arguments.postgres_url, "todo_bench_unnamed")
        )
        limit_database = stack.enter_context(
            throwaway_database(arguments.postgres_url, "todo_bench_limit")
        )
        sqlite_database = f"sqlite:///{work / 'bench.db'}"
        # Migrated first, as a deployment does: a server that finds its schema current
        # never loads Alembic (see docs/performance.md, "Memory").
        for database in (ours_database, unnamed_database, sqlite_database):
            migrate(database)
        # The databases whose backends' CPU our own runs count (not SQLite's, nor the limit's).
        postgres = {OURS_POSTGRES: ours_database, OURS_UNNAMED: unnamed_database}
        servers = (
            our_server(OURS_POSTGRES, ours_database),
            our_server(OURS_UNNAMED, unnamed_database, "--no-prepared-statements"),
            our_server(OURS_SQLITE, sqlite_database),
            _limit(harness.limit_server, limit_database),
        )
        states: dict[str, Path] = {}
        pids: dict[str, int] = {}
        ours: list[Target] = []
        fed: list[Target] = []
        for server in servers:
            running = stack.enter_context(running_server(server, work / f"{server.name}.log", work))
            print(f"== seeding {server.name} (pid {running.pid}) at {running.base}", flush=True)
            states[server.name] = work / f"{server.name}.json"
            pids[server.name] = running.pid
            harness.seed(running.base, states[server.name])
            # The limit server has none of the new fields; ours get them on every task.
            if server.name != LIMIT:
                serving = postgres.get(server.name)
                ours.append(_organized(running, states[server.name], serving))
                if {CHANGES_IDLE, CHANGES_50} & set(options.scenarios):
                    fed.append(feed_target(server.name, running.pid, running.base, serving))
        suite: dict[str, Any] = {"targets": list(states), "runs": []}
        if share := harness_share(options):
            print(f"== suite: {', '.join(share.scenarios)} x {list(states)}", flush=True)
            suite = harness.suite(states, pids, share, work / "suite.json")
        own = None
        if LIST_FILTERED in options.scenarios:
            print(f"== our wrk script: {LIST}, {LIST_FILTERED} x {[t.name for t in ours]}")
            own = run_interleaved(ours, (LIST, LIST_FILTERED), options)
        feed = None
        if fed:
            print(f"== the change feed: {', '.join(FEED_SCENARIOS)} x {[t.name for t in fed]}")
            feed = run_interleaved(fed, FEED_SCENARIOS, options)
        return Measured(suite, own, feed)


def _filtered_report(own: dict[str, Any]) -> tuple[str, list[str], dict[str, Any]]:
    """Print our own list runs; their table, their checks and what results.json keeps."""
    ratios = filtered_ratios(own)
    text = filtered_markdown(own, ratios)
    checks = filtered_checks(own, ratios)
    print(f"\n== {LIST} and {LIST_FILTERED} ({FILTER}), our wrk script\n")
    print("\n".join([text, "", "== issue 15 list_filtered target", *checks]))
    kept = {
        "rows": [row.as_dict() for row in rows(own)],
        "vs_list": ratios,
        "targets": checks,
        "runs": own,
    }
    return text, checks, kept


def _feed_report(feed: dict[str, Any]) -> tuple[str, list[str], dict[str, Any]]:
    """Print our feed runs; their table, their checks and what results.json keeps."""
    ratios = feed_ratios(feed)
    text = feed_markdown(feed, ratios)
    checks = feed_checks(feed, ratios)
    print("\n== changes polls beside get_one and list, our wrk script\n")
    print("\n".join([text, "", "== issue 16 changes targets", *checks]))
    kept = {"rows": [row.as_dict() for row in rows(feed)], "ratios": ratios, "runs": feed}
    return text, checks, kept


def _report(measured: Measured, options: LoadOptions, out_dir: Path, argv: Sequence[str]) -> None:
    suite, own = measured.suite, measured.own
    table = rows(suite)
    final = final_rss_mib(suite)
    text = markdown(table, final)
    checks = target_checks(table, final)
    sizes = list_sizes(suite)
    revision = commit()
    summary = run_summary(options, revision, suite)
    print(f"\n== todo vs limit server ({summary})\n\n{text}\n")
    print(f"list items returned: {sizes}")
    print("\n".join(["", "== issue 4 targets", *checks]))
    filtered: dict[str, Any] = {}
    drawn = table
    if own is not None:
        own_text, own_checks, filtered = _filtered_report(own)
        text += (
            f"\n\n{LIST} and {LIST_FILTERED} (`?{FILTER}`) on our servers, "
            f"interleaved, with our own wrk script (benchmarks/load.lua):\n\n{own_text}"
        )
        checks = [*checks, *own_checks]
        drawn = [*drawn, *(row for row in rows(own) if row.scenario == LIST_FILTERED)]
    fed: dict[str, Any] = {}
    if measured.feed is not None:
        feed_text, fed_checks, fed = _feed_report(measured.feed)
        text += (
            "\n\nThe change feed polled beside get_one and list on our servers, "
            f"interleaved, with our own wrk script:\n\n{feed_text}"
        )
        checks = [*checks, *fed_checks]
    write_results(
        out_dir / "results.json",
        module="benchmarks.http",
        argv=argv,
        revision=revision,
        options=options,
        details={
            "rows": [row.as_dict() for row in table],
            "final_rss_mib": final,
            "list_items": sizes,
            "targets": checks,
            "suite": suite,
            LIST_FILTERED: filtered,
            "changes": fed,
        },
        summary=summary,
        text=text,
        checks=checks,
    )
    # Only here: matplotlib is for this chart, which a run without the harness never draws.
    from benchmarks.chart import draw

    draw(drawn, out_dir / "chart.png", "todo vs limit server\n" + summary.replace("; ", "\n"))
    print(f"\nwrote {out_dir / 'results.json'}, results.md and chart.png")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite; return the exit status (1 on a failure, 130 when interrupted)."""
    given = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    arguments = parser.parse_args(given)
    options = load_options(parser, arguments)
    if note := skipped_without_harness(arguments.bench_dir, _COMPARISON):
        print(f"{note}; measuring our server alone (benchmarks.solo)", flush=True)
        return solo.main(given)

    def measure() -> None:
        _report(_measure(arguments, options), options, arguments.out_dir, given)

    return run_guarded(measure)


if __name__ == "__main__":
    sys.exit(main())
