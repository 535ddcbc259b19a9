"""From a ``bench.py suite`` result: one row per scenario and server, ratios to the limit
server, the issue's targets checked, and the markdown table docs/performance.md shows."""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from benchmarks.harness import REPOSITORY, LoadOptions

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "LIMIT",
    "OURS_POSTGRES",
    "OURS_SQLITE",
    "OURS_UNNAMED",
    "Row",
    "commit",
    "final_rss_mib",
    "foreign_load",
    "list_sizes",
    "markdown",
    "number",
    "rows",
    "run_summary",
    "target_checks",
    "times",
    "write_results",
]

OURS_POSTGRES: Final = "ours-pg"
# The same server with --no-prepared-statements: unnamed statements, as every connection
# behind a pooler uses them (ours-pg names them: its connections are direct).
OURS_UNNAMED: Final = "ours-pg-unnamed"
OURS_SQLITE: Final = "ours-sqlite"
LIMIT: Final = "limit"

# Issue 4's targets: ours on PostgreSQL against the limit server in the same suite.
MIN_RPS_RATIO: Final = 0.8
MAX_CPU_RATIO: Final = 1.25
MAX_P99_MS: Final = 100.0
# Issue 14 raised issue 4's 60 MiB: what the memory buys is in performance.md, "Memory".
MAX_RSS_MIB: Final = 80.0
MAX_SQLITE_CPU_RATIO: Final = 1.5


@dataclass(frozen=True)
class Row:
    """One server in one scenario: the round with the median req/s, errors of all rounds."""

    scenario: str
    server: str
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    cpu_us_per_req: float | None
    # CPU of every postgres process on the machine per request (bench.py's
    # cpu_cores_used.postgres): approximate, since PostgreSQL may serve others too.
    postgres_cpu_us_per_req: float | None
    rss_mib: float | None
    rps_vs_limit: float | None
    cpu_vs_limit: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(ours: float | None, limit: float | None) -> float | None:
    if ours is None or not limit:
        return None
    return ours / limit


def _postgres_us(run: Mapping[str, Any]) -> float | None:
    cores = run.get("cpu_cores_used", {}).get("postgres")
    if cores is None or not run.get("requests"):
        return None
    return float(cores) * float(run["duration_s"]) / int(run["requests"]) * 1e6


def _one(scenario: str, server: str, runs: Sequence[Mapping[str, Any]]) -> Row:
    # The median round by req/s, as bench.py's own table picks it: one slow round
    # (foreign load on a shared machine) neither drags the figure down nor hides.
    ordered = sorted(runs, key=lambda run: float(run["rps"]))
    median = ordered[(len(ordered) - 1) // 2]
    cpu = [float(run["server_cpu_us_per_req"]) for run in runs if run.get("server_cpu_us_per_req")]
    postgres = [us for run in runs if (us := _postgres_us(run)) is not None]
    rss = median.get("server_mem_kib", {}).get("VmRSS")
    return Row(
        scenario=scenario,
        server=server,
        rps=float(median["rps"]),
        p50_ms=float(median["p50_ms"]),
        p99_ms=float(median["p99_ms"]),
        non2xx=sum(int(run["non2xx"]) for run in runs),
        socket_errors=sum(sum(run["socket_errors"].values()) for run in runs),
        cpu_us_per_req=statistics.median(cpu) if cpu else None,
        postgres_cpu_us_per_req=statistics.median(postgres) if postgres else None,
        rss_mib=None if rss is None else rss / 1024,
        rps_vs_limit=None,
        cpu_vs_limit=None,
    )


def rows(suite: Mapping[str, Any]) -> list[Row]:
    """Rows in suite order (scenario, then server), with ratios to ``limit``'s row."""
    runs: list[Mapping[str, Any]] = suite["runs"]
    scenarios = list(dict.fromkeys(run["scenario"] for run in runs))
    result: list[Row] = []
    for scenario in scenarios:
        by_server = {
            server: _one(scenario, server, found)
            for server in suite["targets"]
            if (found := [r for r in runs if r["scenario"] == scenario and r["target"] == server])
        }
        limit = by_server.get(LIMIT)
        for row in by_server.values():
            if limit is not None and row.server != LIMIT:
                row = replace(
                    row,
                    rps_vs_limit=_ratio(row.rps, limit.rps),
                    cpu_vs_limit=_ratio(row.cpu_us_per_req, limit.cpu_us_per_req),
                )
            result.append(row)
    return result


def foreign_load(suite: Mapping[str, Any]) -> float:
    """Cores busy with neither wrk, PostgreSQL nor the server under test (median of the
    runs): on a shared machine req/s and latency suffer from it, CPU per request hardly."""
    other = [run["cpu_cores_used"].get("other", 0.0) for run in suite["runs"]]
    return statistics.median(other) if other else 0.0


def list_sizes(suite: Mapping[str, Any]) -> dict[str, Any]:
    """How many tasks each server's list request returned (``suite --check``). Servers may
    paginate by default; the list scenario is only comparable if they return the same."""
    checks: Mapping[str, Any] = suite.get("checks", {})
    return {server: found.get("list", {}).get("list_items") for server, found in checks.items()}


def commit() -> str:
    """The short commit measured, with ``+changes`` when the working tree differs."""

    def git(*arguments: str) -> str:
        return subprocess.run(
            ["git", *arguments], cwd=REPOSITORY, capture_output=True, text=True, check=False
        ).stdout.strip()

    found = git("rev-parse", "--short", "HEAD") or "unknown"
    return found + ("+changes" if git("status", "--porcelain") else "")


def final_rss_mib(suite: Mapping[str, Any]) -> dict[str, float]:
    """Each server's resident memory once the whole suite has run."""
    final: Mapping[str, Mapping[str, int]] = suite.get("final_mem_kib", {})
    return {server: memory["VmRSS"] / 1024 for server, memory in final.items() if "VmRSS" in memory}


def number(value: float | None, digits: int = 0) -> str:
    """``value`` rounded to ``digits``, or an empty cell."""
    return "" if value is None else f"{value:.{digits}f}"


def times(value: float | None) -> str:
    """A ratio as ``1.23x``, or an empty cell."""
    return "" if value is None else f"{value:.2f}x"


def markdown(table: Sequence[Row], final_rss: Mapping[str, float]) -> str:
    """The results as a markdown table, then final RSS per server."""
    lines = [
        "| scenario | server | req/s | p50 ms | p99 ms | non-2xx | socket errors "
        "| CPU µs/req | RSS MiB | req/s vs limit | CPU/req vs limit |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in table:
        lines.append(
            f"| {row.scenario} | {row.server} | {row.rps:.0f} | {row.p50_ms:.2f} "
            f"| {row.p99_ms:.2f} | {row.non2xx} | {row.socket_errors} "
            f"| {number(row.cpu_us_per_req)} | {number(row.rss_mib, 1)} "
            f"| {times(row.rps_vs_limit)} | {times(row.cpu_vs_limit)} |"
        )
    if final_rss:
        lines += ["", "| server | RSS MiB after the suite |", "|---|---:|"]
        lines += [f"| {server} | {mib:.1f} |" for server, mib in final_rss.items()]
    return "\n".join(lines)


def _scenario_checks(
    check: Callable[[bool, str], None], server: str, scenario: str, row: Row
) -> None:
    label = f"{server} {scenario}"
    if row.rps_vs_limit is not None:
        check(
            row.rps_vs_limit >= MIN_RPS_RATIO,
            f"{label} req/s {row.rps_vs_limit:.2f}x limit (target >= {MIN_RPS_RATIO}x)",
        )
    if row.cpu_vs_limit is not None:
        check(
            row.cpu_vs_limit <= MAX_CPU_RATIO,
            f"{label} CPU/req {row.cpu_vs_limit:.2f}x limit (target <= {MAX_CPU_RATIO}x)",
        )
    check(row.p99_ms <= MAX_P99_MS, f"{label} p99 {row.p99_ms:.1f} ms (target <= 100)")
    check(
        row.non2xx == 0 and row.socket_errors == 0,
        f"{label} non-2xx {row.non2xx}, socket errors {row.socket_errors} (target 0)",
    )


def target_checks(table: Sequence[Row], final_rss: Mapping[str, float]) -> list[str]:
    """Issue 4's targets, one line each: ``met`` or ``MISSED`` with the measured figure."""
    checks: list[str] = []

    def check(ok: bool, text: str) -> None:
        checks.append(f"{'met' if ok else 'MISSED'}: {text}")

    sqlite = {row.scenario: row for row in table if row.server == OURS_SQLITE}
    for server in (OURS_POSTGRES, OURS_UNNAMED):
        postgres = {row.scenario: row for row in table if row.server == server}
        for scenario, row in postgres.items():
            _scenario_checks(check, server, scenario, row)
            other = sqlite.get(scenario)
            if server == OURS_POSTGRES and other and other.cpu_us_per_req and row.cpu_us_per_req:
                ratio = other.cpu_us_per_req / row.cpu_us_per_req
                check(
                    ratio <= MAX_SQLITE_CPU_RATIO,
                    f"{scenario} SQLite CPU/req {ratio:.2f}x PostgreSQL's "
                    f"(target <= {MAX_SQLITE_CPU_RATIO}x)",
                )
        if server in final_rss:
            mib = final_rss[server]
            check(
                mib <= MAX_RSS_MIB,
                f"{server} RSS after the suite {mib:.1f} MiB (target <= {MAX_RSS_MIB:.0f})",
            )
    return checks


def run_summary(options: LoadOptions, revision: str, suite: Mapping[str, Any]) -> str:
    """One line on how a suite ran: load, commit, machine and the other work on it."""
    return (
        f"{options.duration} s per run after {options.warmup} s warm-up, "
        f"{options.rounds} round(s), {options.connections} connections, 1 worker each; "
        f"commit {revision}; {os.cpu_count()} CPUs, {foreign_load(suite):.2f} of them busy "
        "with other work (median)"
    )


def write_results(
    path: Path,
    *,
    module: str,
    argv: Sequence[str],
    revision: str,
    options: DataclassInstance,
    details: Mapping[str, Any],
    summary: str,
    text: str,
    checks: Sequence[str],
) -> None:
    """``path`` (JSON: how it was run, then ``details``) and its markdown twin (``.md``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    results = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": revision,
        "command": shlex.join(["python", "-m", module, *argv]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "options": asdict(options),
        **details,
    }
    path.write_text(json.dumps(results, indent=1) + "\n")
    lines = [f"Run: {summary}.", "", text, "", *(f"- {check}" for check in checks)]
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
