"""Load our server and the shared limit server side by side: ``python -m benchmarks.http``.

Starts three servers, each with one worker: ours on a fresh PostgreSQL database, ours
on a temporary SQLite file, and ``limit_server.py`` on its own PostgreSQL database.
Seeds each through its API and runs ``bench.py suite`` over all three, interleaved,
so that noise on a shared machine hits them alike. Prints a markdown table with
ratios to the limit server and writes results.json, results.md and chart.png.
docs/performance.md explains every number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

from benchmarks.chart import draw
from benchmarks.databases import MAINTENANCE_VARIABLE, maintenance_url, throwaway_database
from benchmarks.errors import BenchError
from benchmarks.harness import (
    BENCH_DIR_VARIABLE,
    REPOSITORY,
    Harness,
    LoadOptions,
    default_bench_dir,
)
from benchmarks.processes import Server, free_port, interrupt_on_signals, running_server
from benchmarks.report import (
    LIMIT,
    OURS_POSTGRES,
    OURS_SQLITE,
    final_rss_mib,
    markdown,
    rows,
    target_checks,
)

__all__ = ["main"]

SCENARIOS: Final = ("get_one", "list", "create", "update", "mix")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.http",
        description="Load our server (PostgreSQL, then SQLite) and the limit server with "
        "wrk through the shared harness, interleaved; print and save the results.",
    )
    parser.add_argument("--duration", type=int, default=10, help="measured seconds per run")
    parser.add_argument("--warmup", type=int, default=2, help="unrecorded seconds before each run")
    parser.add_argument("--rounds", type=int, default=1, help="runs per scenario and server")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="comma-separated subset of %(default)s",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=3.0,
        help="before each run, wait up to this many seconds for the machine to be idle",
    )
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between runs")
    parser.add_argument(
        "--bench-dir",
        type=Path,
        default=default_bench_dir(),
        help=f"the shared load harness (env {BENCH_DIR_VARIABLE}; default %(default)s)",
    )
    parser.add_argument(
        "--postgres-url",
        default=maintenance_url(),
        help=f"maintenance database to create and drop the bench databases through "
        f"(env {MAINTENANCE_VARIABLE}; default %(default)s)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=REPOSITORY / "docs" / "performance",
        help="where results.json, results.md and chart.png go (default %(default)s)",
    )
    return parser


def _ours(name: str, database: str) -> Server:
    port = free_port()
    command = (sys.executable, "-m", "todo_http", "serve", "--workers", "1", "--port", str(port))
    return Server(name, (*command, "--database-url", database), port, "/readyz")


def _limit(script: Path, database: str) -> Server:
    port = free_port()
    command = (sys.executable, str(script), "--port", str(port), "--dsn", database)
    return Server(LIMIT, command, port, "/api/bench-ready/tasks")


def _measure(arguments: argparse.Namespace, options: LoadOptions) -> dict[str, Any]:
    harness = Harness(arguments.bench_dir)
    with ExitStack() as stack:
        # Entered in this order, unwound in reverse: servers stop before their
        # databases are dropped, and the temporary directory goes last.
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="todo-bench-")))
        ours_database = stack.enter_context(
            throwaway_database(arguments.postgres_url, "todo_bench")
        )
        limit_database = stack.enter_context(
            throwaway_database(arguments.postgres_url, "todo_bench_limit")
        )
        servers = (
            _ours(OURS_POSTGRES, ours_database),
            _ours(OURS_SQLITE, f"sqlite:///{work / 'bench.db'}"),
            _limit(harness.limit_server, limit_database),
        )
        states: dict[str, Path] = {}
        pids: dict[str, int] = {}
        for server in servers:
            running = stack.enter_context(running_server(server, work / f"{server.name}.log", work))
            print(f"== seeding {server.name} (pid {running.pid}) at {running.base}", flush=True)
            states[server.name] = work / f"{server.name}.json"
            pids[server.name] = running.pid
            harness.seed(running.base, states[server.name])
        print(f"== suite: {', '.join(options.scenarios)} x {list(states)}", flush=True)
        return harness.suite(states, pids, options, work / "suite.json")


def _commit() -> str:
    def git(*arguments: str) -> str:
        return subprocess.run(
            ["git", *arguments], cwd=REPOSITORY, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain") else "")


def _foreign_load(suite: Mapping[str, Any]) -> float:
    # Cores busy with neither wrk, PostgreSQL nor the server under test: on a shared
    # machine req/s and latency suffer from it, CPU per request hardly does.
    other = [run["cpu_cores_used"].get("other", 0.0) for run in suite["runs"]]
    return statistics.median(other) if other else 0.0


def _list_sizes(suite: Mapping[str, Any]) -> dict[str, Any]:
    # Servers may paginate by default; the list scenario is only comparable if all
    # of them return the list user's 50 tasks.
    checks: Mapping[str, Any] = suite.get("checks", {})
    return {server: found.get("list", {}).get("list_items") for server, found in checks.items()}


def _report(
    suite: dict[str, Any], options: LoadOptions, out_dir: Path, argv: Sequence[str]
) -> None:
    table = rows(suite)
    final = final_rss_mib(suite)
    text = markdown(table, final)
    checks = target_checks(table, final)
    sizes = _list_sizes(suite)
    commit = _commit()
    summary = (
        f"{options.duration} s per run after {options.warmup} s warm-up, "
        f"{options.rounds} round(s), {options.connections} connections, 1 worker each; "
        f"commit {commit}; {os.cpu_count()} CPUs, {_foreign_load(suite):.2f} of them busy "
        "with other work (median)"
    )
    print(f"\n== todo vs limit server ({summary})\n\n{text}\n")
    print(f"list items returned: {sizes}")
    print("\n".join(["", "== issue 4 targets", *checks]))
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": commit,
        "command": shlex.join(["python", "-m", "benchmarks.http", *argv]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "options": asdict(options),
        "rows": [row.as_dict() for row in table],
        "final_rss_mib": final,
        "list_items": sizes,
        "targets": checks,
        "suite": suite,
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = [f"Run: {summary}.", "", text, "", *(f"- {check}" for check in checks)]
    (out_dir / "results.md").write_text("\n".join(lines) + "\n")
    draw(table, out_dir / "chart.png", "todo vs limit server\n" + summary.replace("; ", "\n"))
    print(f"\nwrote {out_dir / 'results.json'}, results.md and chart.png")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite; return the exit status (1 on a failure, 130 when interrupted)."""
    given = list(sys.argv[1:] if argv is None else argv)
    arguments = _parser().parse_args(given)
    if shutil.which("wrk") is None:
        print("benchmarks: wrk is not on PATH: install it (apt-get install wrk)", file=sys.stderr)
        return 1
    scenarios = tuple(name.strip() for name in arguments.scenarios.split(",") if name.strip())
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown or not scenarios:
        print(f"benchmarks: unknown scenarios {unknown}; pick from {SCENARIOS}", file=sys.stderr)
        return 2
    options = LoadOptions(
        scenarios=scenarios,
        duration=arguments.duration,
        warmup=arguments.warmup,
        rounds=arguments.rounds,
        connections=arguments.connections,
        quiet_wait=arguments.quiet_wait,
        pause=arguments.pause,
    )
    try:
        with interrupt_on_signals():
            suite = _measure(arguments, options)
    except BenchError as error:
        print(f"benchmarks: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("benchmarks: interrupted; the servers it started are stopped", file=sys.stderr)
        return 130
    _report(suite, options, arguments.out_dir, given)
    return 0


if __name__ == "__main__":
    sys.exit(main())
