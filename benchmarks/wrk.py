"""Load runs that our own code drives with wrk and ``load.lua``, measured as ``bench.py
run`` measures the harness's: the server's CPU per request, PostgreSQL's, the
machine's other load, RSS, and a result of the same shape as one of the harness's
runs, so that ``benchmarks.report.rows`` reads both alike.

One difference: given the server's database, PostgreSQL's CPU is that of the backends
connected to it (``postgres``), not of every ``postgres`` process on the machine
(kept as ``postgres_all``), which on a shared server counts other people's queries."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from benchmarks.databases import backend_pids
from benchmarks.errors import BenchError
from benchmarks.harness import LoadOptions

__all__ = [
    "LOAD_SCRIPT",
    "Request",
    "Target",
    "busy_cores",
    "cpu_seconds",
    "machine_busy",
    "measured_run",
    "memory_kib",
    "run_interleaved",
]

LOAD_SCRIPT: Final = Path(__file__).resolve().with_name("load.lua")
THREADS: Final = 2
# wrk's own timeout per request, as the harness sets it; the run itself gets slack on top.
TIMEOUT_SECONDS: Final = 10
WRK_SLACK_SECONDS: Final = 30.0
# "Idle" before a run: fewer busy cores than this over one second (bench.py's default).
QUIET_THRESHOLD: Final = 0.3
_SUMMARY: Final = "LOAD_JSON "


@dataclass(frozen=True)
class Request:
    """What wrk sends, again and again: a GET of ``url`` unless a method is given."""

    url: str
    method: str | None = None
    body: str = ""


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0  # a process that ended: its CPU is lost, as the harness loses it
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def memory_kib(pid: int) -> dict[str, int]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    found = {name: line for line in lines for name in ("VmRSS", "VmHWM") if line.startswith(name)}
    return {name: int(line.split()[1]) for name, line in found.items()}


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds of every process named ``postgres``, by pid (the harness's measure)."""
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
        except OSError:
            continue
        found[int(entry.name)] = cpu_seconds(int(entry.name))
    return found


def machine_busy() -> tuple[int, int]:
    """Busy and total jiffies of all CPUs since boot."""
    with Path("/proc/stat").open() as stat:
        parts = [int(part) for part in stat.readline().split()[1:]]
    return sum(parts) - parts[3] - parts[4], sum(parts)  # idle and iowait are not busy


def busy_cores(before: tuple[int, int], after: tuple[int, int]) -> float:
    return (after[0] - before[0]) / max(1, after[1] - before[1]) * (os.cpu_count() or 1)


def _wait_quiet(max_wait: float) -> dict[str, float]:
    """Wait up to ``max_wait`` seconds for the machine to be idle; what it found."""
    started = time.monotonic()
    while True:
        before = machine_busy()
        time.sleep(1.0)
        level = busy_cores(before, machine_busy())
        if level <= QUIET_THRESHOLD or time.monotonic() - started >= max_wait:
            return {"waited_s": round(time.monotonic() - started, 1), "busy_cores": round(level, 2)}


def _wrk(request: Request, seconds: int, connections: int) -> dict[str, Any]:
    command = [
        "wrk",
        f"-t{THREADS}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={TIMEOUT_SECONDS}s",
        "-s",
        str(LOAD_SCRIPT),
        request.url,
    ]
    if request.method is not None:
        command += ["--", request.method, request.body]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + WRK_SLACK_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk on {request.url} did not finish") from None
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(_SUMMARY)), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk on {request.url} failed: {(done.stderr or done.stdout).strip()}")
    summary: dict[str, Any] = json.loads(line.removeprefix(_SUMMARY))
    if not summary["requests"]:
        raise BenchError(f"wrk completed no request on {request.url}")
    return summary


def measured_run(
    request: Request, pid: int, options: LoadOptions, database: str | None
) -> dict[str, Any]:
    """One run of ``request`` against the server ``pid`` on the PostgreSQL ``database``
    (None: no PostgreSQL of its own, such as SQLite): a quiet wait, an unrecorded
    warm-up, then ``options.duration`` measured seconds; the result in the shape of one
    of ``bench.py suite``'s runs (without scenario, target and round)."""
    quiet = _wait_quiet(options.quiet_wait) if options.quiet_wait > 0 else None
    if options.warmup > 0:
        _wrk(request, options.warmup, options.connections)
    machine, postgres, server = machine_busy(), _postgres_cpu(), cpu_seconds(pid)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    summary = _wrk(request, options.duration, options.connections)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = cpu_seconds(pid) - server
    # Backends that ended during the run are lost, as in the harness; ours keep a pool.
    postgres_now = _postgres_cpu()
    busy = busy_cores(machine, machine_busy())
    used = {p: cpu - postgres.get(p, 0.0) for p, cpu in postgres_now.items()}
    serving = asyncio.run(backend_pids(database)) if database is not None else frozenset()
    wrk_seconds = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    requests = int(summary["requests"])
    seconds = summary["duration_us"] / 1e6
    latency = summary["latency_us"]
    cores = {
        "machine_busy": round(busy, 2),
        "wrk": round(wrk_seconds / wall, 2),
        "postgres_all": round(sum(used.values()) / wall, 2),
        "server": round(server / wall, 2),
    }
    if database is not None:
        cores["postgres"] = round(sum(used.get(p, 0.0) for p in serving) / wall, 3)
    others = cores["wrk"] + cores["postgres_all"] + cores["server"]
    cores["other"] = round(max(0.0, busy - others), 2)
    run: dict[str, Any] = {
        "url": request.url,
        "rps": round(requests / seconds, 1),
        "requests": requests,
        "p50_ms": latency["p50"] / 1000,
        "p90_ms": latency["p90"] / 1000,
        "p99_ms": latency["p99"] / 1000,
        "max_ms": latency["max"] / 1000,
        "non2xx": summary["errors"]["status"],
        "socket_errors": {k: v for k, v in summary["errors"].items() if k != "status"},
        "duration_s": round(seconds, 2),
        "connections": options.connections,
        "threads": THREADS,
        "cpu_cores_used": cores,
        "server_cpu_us_per_req": round(server / requests * 1e6, 1),
        "server_mem_kib": memory_kib(pid),
    }
    if quiet is not None:
        run["pre_run_quiet"] = quiet
    return run


@dataclass(frozen=True)
class Target:
    """A running server of ours: its process, its PostgreSQL database (None on SQLite:
    then what PostgreSQL does is someone else's), the request each scenario sends, and
    how many tasks the reads among them return, when known."""

    name: str
    pid: int
    database: str | None
    requests: Mapping[str, Request]
    items: Mapping[str, int] = field(default_factory=dict)


def run_interleaved(
    targets: Sequence[Target], scenarios: Sequence[str], options: LoadOptions
) -> dict[str, Any]:
    """Every scenario on every target, round by round (within a round: each scenario
    over all targets in turn), as ``bench.py suite`` interleaves; a result of its shape,
    plus the number of tasks each request returns (``items``)."""
    suite: dict[str, Any] = {
        "targets": [target.name for target in targets],
        "items": {target.name: dict(target.items) for target in targets},
        "runs": [],
    }
    for index in range(1, options.rounds + 1):
        for scenario in scenarios:
            for target in targets:
                run = measured_run(target.requests[scenario], target.pid, options, target.database)
                run.update(scenario=scenario, target=target.name, round=index)
                suite["runs"].append(run)
                print(
                    f"{scenario:14s} r{index} {target.name:16s} {run['rps']:9.1f} req/s  "
                    f"p99 {run['p99_ms']:8.2f} ms  non2xx {run['non2xx']}  "
                    f"CPU {run['server_cpu_us_per_req']:.0f} µs/req  {run['cpu_cores_used']}",
                    flush=True,
                )
                time.sleep(options.pause)
    return suite
