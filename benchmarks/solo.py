"""Our server alone, for a clone without the shared load harness: ``python -m benchmarks.solo``.

``benchmarks.http`` runs this when ``../shared/bench`` is missing, after saying that the
side-by-side comparison was skipped. With no harness there is neither a limit server to
compare with nor ``bench.py``, so this drives wrk itself, for the scenarios that a wrk
command line says without the harness's script: ``get_one`` (one task, again and
again), ``list`` (a user's 50 tasks) and ``create``. It loads ours on PostgreSQL and on
SQLite, interleaved, reports req/s, latency, CPU per request and RSS, and writes
solo.json and solo.md. It checks no target: the targets are ratios to the limit server.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Final

from benchmarks.cli import load_options, load_parser, run_guarded
from benchmarks.databases import migrate, throwaway_database
from benchmarks.errors import BenchError
from benchmarks.harness import LoadOptions
from benchmarks.processes import our_server, running_server
from benchmarks.report import OURS_POSTGRES, OURS_SQLITE, Row, commit, markdown, write_results

__all__ = ["SOLO_SCENARIOS", "main"]

SOLO_SCENARIOS: Final = ("get_one", "list", "create")
LIST_TASKS: Final = 50
WRK_SLACK_SECONDS: Final = 30.0
# wrk sends the same request every time; a create needs its method, header and body.
_CREATE_SCRIPT: Final = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title": "Solo bench task", "description": "created by benchmarks.solo"}'
"""
_LATENCY: Final = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_MS_PER_UNIT: Final = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_SOCKET_ERRORS: Final = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)


def _post(url: str, body: dict[str, str]) -> str:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        task_id: str = json.load(response)["data"]["id"]
        return task_id


def _targets(base: str) -> dict[str, str]:
    """Seed through the API; the URL each scenario loads."""
    for index in range(LIST_TASKS):
        _post(f"{base}/api/solo-list/tasks", {"title": f"Listed task {index}"})
    task_id = _post(f"{base}/api/solo-get/tasks", {"title": "The task get_one reads"})
    return {
        "get_one": f"{base}/api/solo-get/tasks/{task_id}",
        "list": f"{base}/api/solo-list/tasks",
        "create": f"{base}/api/solo-create/tasks",
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for process {pid}")


def _wrk(url: str, seconds: int, options: LoadOptions, script: Path | None) -> str:
    command = ["wrk", "-t2", f"-c{options.connections}", f"-d{seconds}s", "--latency"]
    command += [] if script is None else ["-s", str(script)]
    try:
        done = subprocess.run(
            [*command, url], capture_output=True, text=True, timeout=seconds + WRK_SLACK_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk on {url} did not finish") from None
    if done.returncode != 0:
        raise BenchError(f"wrk on {url} failed: {done.stderr.strip()}")
    return done.stdout


def _run(scenario: str, server: str, pid: int, url: str, options: LoadOptions, script: Path) -> Row:
    """One measured wrk run (after an unrecorded warm-up) against ``pid``; the columns
    that compare with the limit server stay empty."""
    chosen = script if scenario == "create" else None
    if options.warmup:
        _wrk(url, options.warmup, options, chosen)
    cpu_before = _cpu_seconds(pid)
    output = _wrk(url, options.duration, options, chosen)
    cpu = _cpu_seconds(pid) - cpu_before
    requests = re.search(r"(\d+) requests in", output)
    if requests is None or not int(requests.group(1)):
        raise BenchError(f"wrk completed no request on {url}:\n{output}")
    latency = {p: float(v) * _MS_PER_UNIT[unit] for p, v, unit in _LATENCY.findall(output)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = _SOCKET_ERRORS.search(output)
    return Row(
        scenario=scenario,
        server=server,
        rps=int(requests.group(1)) / options.duration,
        p50_ms=latency["50"],
        p99_ms=latency["99"],
        non2xx=0 if non2xx is None else int(non2xx.group(1)),
        socket_errors=0 if socket_errors is None else sum(map(int, socket_errors.groups())),
        cpu_us_per_req=cpu / int(requests.group(1)) * 1e6,
        postgres_cpu_us_per_req=None,
        rss_mib=_rss_mib(pid),
        rps_vs_limit=None,
        cpu_vs_limit=None,
    )


def _measure(
    arguments: argparse.Namespace, options: LoadOptions, scenarios: Sequence[str]
) -> list[Row]:
    runs: dict[tuple[str, str], list[Row]] = {}
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="todo-solo-")))
        script = work / "create.lua"
        script.write_text(_CREATE_SCRIPT)
        databases = {
            OURS_POSTGRES: stack.enter_context(
                throwaway_database(arguments.postgres_url, "todo_bench_solo")
            ),
            OURS_SQLITE: f"sqlite:///{work / 'solo.db'}",
        }
        servers: dict[str, tuple[int, dict[str, str]]] = {}
        for name, database in databases.items():
            migrate(database)
            server = our_server(name, database)
            running = stack.enter_context(running_server(server, work / f"{name}.log", work))
            print(f"== seeding {name} (pid {running.pid}) at {running.base}", flush=True)
            servers[name] = (running.pid, _targets(running.base))
        for round_index in range(options.rounds):
            for scenario in scenarios:
                for name, (pid, urls) in servers.items():
                    print(f"== {scenario} on {name}, round {round_index + 1}", flush=True)
                    row = _run(scenario, name, pid, urls[scenario], options, script)
                    runs.setdefault((scenario, name), []).append(row)
                    time.sleep(options.pause)
    return [sorted(rows, key=lambda r: r.rps)[(len(rows) - 1) // 2] for rows in runs.values()]


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
        rows = _measure(arguments, options, scenarios)
        text = markdown(rows, {})
        revision = commit()
        cpu = statistics.median(row.cpu_us_per_req or 0.0 for row in rows)
        summary = (
            f"our server alone, {options.duration} s per run after {options.warmup} s "
            f"warm-up, {options.rounds} round(s), {options.connections} connections, "
            f"1 worker each; commit {revision}; median CPU {cpu:.0f} µs/req"
        )
        print(f"\n== todo alone ({summary})\n\n{text}\n")
        write_results(
            arguments.out_dir / "solo.json",
            module="benchmarks.solo",
            argv=given,
            revision=revision,
            options=options,
            details={"rows": [row.as_dict() for row in rows]},
            summary=summary,
            text=text,
            checks=[],
        )
        print(f"wrote {arguments.out_dir / 'solo.json'} and solo.md")

    return run_guarded(measure)


if __name__ == "__main__":
    sys.exit(main())
