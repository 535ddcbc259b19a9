"""Live events under load: ``python -m benchmarks.streams``.

Two measurements on a fresh PostgreSQL database, each server with one worker
(``todo-http serve``) and the clients in a load process of their own
(``benchmarks.stream_load``), so that the server's CPU is its own:

1. **Idle streams**: ``--idle-streams`` (10,000) open streams, one per user, on one
   worker. Its RSS with ``--warm`` streams open and with all of them open gives the
   memory each further stream costs; its CPU over ``--keepalive-window`` seconds, in
   which every stream gets at least one keepalive comment (one per 15 s of silence),
   gives what keeping them alive costs.
2. **Delivery**: ``--streams`` (2,000) streams over ``--users`` (1,000) users on one
   worker while the load process writes ``--rate`` (200) tasks a second for
   ``--seconds`` through another worker on the same database: the latency from each
   write's acknowledgement to its event's arrival on every stream of its user (p50,
   p99), and the events lost, which must be none. Run directly on PostgreSQL (the
   workers ``LISTEN``) and through a PgBouncer in transaction mode (they poll the
   watched users' feed heads), unless ``--no-pgbouncer`` or PgBouncer is missing.

The PgBouncer is the test suite's (``tests/pgbouncer.py``), started the same way, so
this needs the repository's ``tests`` package on the path (it is, run from the
repository's root). Writes streams.json and streams.md; docs/performance.md explains
the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from benchmarks.cli import run_guarded
from benchmarks.databases import MAINTENANCE_VARIABLE, maintenance_url, migrate, throwaway_database
from benchmarks.errors import BenchError
from benchmarks.harness import REPOSITORY
from benchmarks.processes import Running, our_server, running_server, stop_group
from benchmarks.report import commit, write_results
from benchmarks.stream_load import LINE_PREFIX
from benchmarks.wrk import busy_cores, cpu_seconds, machine_busy, memory_kib

__all__ = ["StreamOptions", "main", "stream_checks"]

# Issue 16's targets.
MAX_KIB_PER_STREAM: Final = 20.0
MAX_P99_DIRECT_MS: Final = 250.0
MAX_P99_PGBOUNCER_MS: Final = 1000.0
# Connections beyond the streams, for the writes and /readyz.
SPARE_CONNECTIONS: Final = 2000
LOAD_SECONDS: Final = 600.0


@dataclass(frozen=True)
class StreamOptions:
    """How many streams, users and writes; see the module's docstring."""

    idle_streams: int
    warm: int
    keepalive_window: float
    streams: int
    users: int
    rate: float
    seconds: float
    pgbouncer: bool


class _Load:
    """The load process: its reports by phase, and a line to it to go on."""

    def __init__(self, arguments: Sequence[str], cwd: Path) -> None:
        command = [sys.executable, "-m", "benchmarks.stream_load", *arguments]
        # The benchmarks package is not installed: found from the checkout, whatever
        # the load's working directory.
        path = os.pathsep.join(filter(None, (str(REPOSITORY), os.environ.get("PYTHONPATH"))))
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": path},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def report(self, phase: str) -> dict[str, Any]:
        """Wait for the load's ``phase`` line; fail if it ends without one."""
        output: IO[str] | None = self.process.stdout
        assert output is not None  # opened with a pipe
        for line in output:
            if line.startswith(f"{LINE_PREFIX}{phase} "):
                found: dict[str, Any] = json.loads(line.split(" ", 2)[2])
                return found
        status = self.process.wait()
        raise BenchError(f"the load process exited with status {status} before {phase!r}")

    def go_on(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        stop_group(self.process, timeout=5)


@contextmanager
def _load(arguments: Sequence[str], cwd: Path) -> Iterator[_Load]:
    load = _Load(arguments, cwd)
    try:
        yield load
    finally:
        load.stop()


def _serve(stack: ExitStack, name: str, database: str, streams: int, work: Path) -> Running:
    server = our_server(
        name,
        database,
        *("--max-streams", str(streams)),
        *("--max-connections", str(streams + SPARE_CONNECTIONS)),
    )
    return stack.enter_context(running_server(server, work / f"{name}.log", work))


def idle_streams(options: StreamOptions, database: str, work: Path) -> dict[str, Any]:
    """Phase 1: memory per idle stream, and the CPU their keepalives take."""
    with ExitStack() as stack:
        running = _serve(stack, "streams-idle", database, options.idle_streams, work)
        print(f"== {options.idle_streams} idle streams on pid {running.pid}", flush=True)
        started = memory_kib(running.pid)["VmRSS"]
        arguments = ["idle", "--base", running.base, "--streams", str(options.idle_streams)]
        load = stack.enter_context(_load([*arguments, "--warm", str(options.warm)], work))
        load.report("warm")
        time.sleep(1.0)
        warm = memory_kib(running.pid)["VmRSS"]
        opening = time.monotonic()
        load.go_on()
        load.report("open")
        opened_in = time.monotonic() - opening
        time.sleep(1.0)
        full = memory_kib(running.pid)
        cpu, machine = cpu_seconds(running.pid), machine_busy()
        time.sleep(options.keepalive_window)
        used = cpu_seconds(running.pid) - cpu
        busy = busy_cores(machine, machine_busy())
        load.go_on()
        done = load.report("done")
    added = options.idle_streams - options.warm
    return {
        "streams": options.idle_streams,
        "opened_in_s": round(opened_in, 1),
        "rss_kib": {"started": started, "warm": warm, "all_open": full["VmRSS"]},
        "kib_per_stream": round((full["VmRSS"] - warm) / added, 2),
        "kib_per_stream_from_start": round((full["VmRSS"] - started) / options.idle_streams, 2),
        "keepalive_window_s": options.keepalive_window,
        "keepalive_cpu_cores": round(used / options.keepalive_window, 4),
        "keepalive_cpu_us_each": round(used / max(1, done["keepalives"]) * 1e6, 1),
        "machine_busy_cores": round(busy, 2),
        **done,
    }


def delivery(options: StreamOptions, database: str, work: Path, label: str) -> dict[str, Any]:
    """Phase 2 on ``database``: streams on one worker, writes through another."""
    with ExitStack() as stack:
        streaming = _serve(stack, f"streams-{label}", database, options.streams, work)
        writing = _serve(stack, f"writes-{label}", database, options.streams, work)
        print(
            f"== {label}: {options.streams} streams over {options.users} users on pid "
            f"{streaming.pid}, {options.rate:g} writes/s for {options.seconds:g} s "
            f"through pid {writing.pid}",
            flush=True,
        )
        arguments = [
            "deliver",
            *("--streams-base", streaming.base, "--writes-base", writing.base),
            *("--streams", str(options.streams), "--users", str(options.users)),
            *("--rate", str(options.rate), "--seconds", str(options.seconds)),
            *("--prefix", f"live-{label}"),
        ]
        load = stack.enter_context(_load(arguments, work))
        load.report("open")
        cpu = {running.name: cpu_seconds(running.pid) for running in (streaming, writing)}
        started, machine = time.monotonic(), machine_busy()
        done = load.report("done")
        wall = time.monotonic() - started
        busy = busy_cores(machine, machine_busy())
        used = {
            name: round((cpu_seconds(running.pid) - cpu[name]) / wall, 2)
            for running in (streaming, writing)
            for name in [running.name]
        }
    return {"label": label, "server_cpu_cores": used, "machine_busy_cores": round(busy, 2), **done}


def stream_checks(idle: dict[str, Any], deliveries: Sequence[dict[str, Any]]) -> list[str]:
    """Issue 16's stream targets, one line each: ``met`` or ``MISSED`` and the figure."""
    checks: list[str] = []

    def check(ok: bool, text: str) -> None:
        checks.append(f"{'met' if ok else 'MISSED'}: {text}")

    check(
        idle["kib_per_stream"] <= MAX_KIB_PER_STREAM,
        f"RSS growth per idle stream {idle['kib_per_stream']:.1f} KiB "
        f"(target <= {MAX_KIB_PER_STREAM:g})",
    )
    check(
        idle["ended_early"] == 0 and idle["fewest_keepalives"] >= 1,
        f"{idle['streams']} idle streams stayed open, each with at least one keepalive "
        f"(fewest {idle['fewest_keepalives']}, ended {idle['ended_early']})",
    )
    for found in deliveries:
        limit = MAX_P99_PGBOUNCER_MS if found["label"] == "pgbouncer" else MAX_P99_DIRECT_MS
        p99 = found["p99_ms"]
        check(
            p99 is not None and p99 <= limit,
            f"{found['label']} delivery p99 {p99} ms (target <= {limit:g})",
        )
        check(
            found["lost"] == 0 and not found["failures"] and found["delivered"] > 0,
            f"{found['label']} events lost {found['lost']} of {found['expected_deliveries']}, "
            f"failed writes {len(found['failures'])} (target 0)",
        )
    return checks


def stream_markdown(idle: dict[str, Any], deliveries: Sequence[dict[str, Any]]) -> str:
    """The two tables docs/performance.md shows."""
    rss = idle["rss_kib"]
    lines = [
        "| idle streams | RSS at start MiB | with warm-up streams MiB | all open MiB "
        "| KiB per stream | KiB per stream from start | keepalive CPU (cores) "
        "| µs per keepalive | machine busy (cores) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {idle['streams']} | {rss['started'] / 1024:.1f} | {rss['warm'] / 1024:.1f} "
        f"| {rss['all_open'] / 1024:.1f} | {idle['kib_per_stream']:.1f} "
        f"| {idle['kib_per_stream_from_start']:.1f} | {idle['keepalive_cpu_cores']:.3f} "
        f"| {idle['keepalive_cpu_us_each']:.0f} | {idle['machine_busy_cores']} |",
        "",
        "| database | writes/s | deliveries | lost | p50 ms | p99 ms | max ms "
        "| before the ack | stream worker CPU | write worker CPU | load CPU s "
        "| machine busy (cores) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for found in deliveries:
        cores = list(found["server_cpu_cores"].values())
        lines.append(
            f"| {found['label']} | {found['write_rate']:g} | {found['delivered']} "
            f"| {found['lost']} | {found['p50_ms']} | {found['p99_ms']} | {found['max_ms']} "
            f"| {found['before_acknowledgement']} | {cores[0]} | {cores[1]} "
            f"| {found['load_cpu_s']} | {found['machine_busy_cores']} |"
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.streams",
        description="Idle event streams (memory, keepalive CPU), then delivery latency and "
        "losses with writes through another worker, directly and through PgBouncer.",
    )
    parser.add_argument(
        "--idle-streams", type=int, default=10_000, help="idle streams, one per user (%(default)s)"
    )
    parser.add_argument(
        "--warm", type=int, default=1000, help="idle streams open at the RSS baseline"
    )
    parser.add_argument(
        "--keepalive-window",
        type=float,
        default=32.0,
        help="seconds of idle streams over which CPU is measured (%(default)s)",
    )
    parser.add_argument(
        "--streams", type=int, default=2000, help="streams of the delivery runs (%(default)s)"
    )
    parser.add_argument(
        "--users", type=int, default=1000, help="users those streams follow (%(default)s)"
    )
    parser.add_argument("--rate", type=float, default=200.0, help="writes per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of writes")
    parser.add_argument("--no-pgbouncer", action="store_true", help="directly only")
    parser.add_argument(
        "--postgres-url",
        default=maintenance_url(),
        help=f"maintenance database (env {MAINTENANCE_VARIABLE}; default %(default)s)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=REPOSITORY / "docs" / "performance",
        help="where streams.json and streams.md go (default %(default)s)",
    )
    return parser


def _pgbouncer_url(stack: ExitStack, database: str) -> str | None:
    # The test suite's PgBouncer, started as the tests start it (tests/pgbouncer.py).
    from tests.pgbouncer import PgBouncer, pgbouncer_binary

    binary = pgbouncer_binary()
    if binary is None:
        return None
    bouncer = PgBouncer(binary, database)
    stack.callback(bouncer.stop)
    return bouncer.url


def _measure(options: StreamOptions, postgres_url: str) -> dict[str, Any]:
    # The servers and the load process inherit it: each stream is a socket on both sides.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="todo-streams-")))
        database = stack.enter_context(throwaway_database(postgres_url, "todo_bench_streams"))
        migrate(database)
        idle = idle_streams(options, database, work)
        print(json.dumps(idle), flush=True)
        deliveries = [delivery(options, database, work, "direct")]
        print(json.dumps(deliveries[-1]), flush=True)
        bouncer = _pgbouncer_url(stack, database) if options.pgbouncer else None
        if bouncer is not None:
            deliveries.append(delivery(options, bouncer, work, "pgbouncer"))
            print(json.dumps(deliveries[-1]), flush=True)
        elif options.pgbouncer:
            print("benchmarks: pgbouncer not installed: its delivery run is skipped")
    return {"idle": idle, "deliveries": deliveries}


def main(argv: Sequence[str] | None = None) -> int:
    """Measure; return the exit status (1 on a failure, 130 when interrupted)."""
    given = list(sys.argv[1:] if argv is None else argv)
    arguments = _parser().parse_args(given)
    options = StreamOptions(
        idle_streams=arguments.idle_streams,
        warm=min(arguments.warm, arguments.idle_streams),
        keepalive_window=arguments.keepalive_window,
        streams=arguments.streams,
        users=arguments.users,
        rate=arguments.rate,
        seconds=arguments.seconds,
        pgbouncer=not arguments.no_pgbouncer,
    )

    def measure() -> None:
        found = _measure(options, arguments.postgres_url)
        text = stream_markdown(found["idle"], found["deliveries"])
        checks = stream_checks(found["idle"], found["deliveries"])
        revision = commit()
        summary = f"commit {revision}; one worker per server; load in its own process"
        print(f"\n== live event streams ({summary})\n\n{text}\n")
        print("\n".join(["== issue 16 stream targets", *checks]))
        write_results(
            arguments.out_dir / "streams.json",
            module="benchmarks.streams",
            argv=given,
            revision=revision,
            options=options,
            details=found,
            summary=summary,
            text=text,
            checks=checks,
        )
        print(f"wrote {arguments.out_dir / 'streams.json'} and streams.md")

    return run_guarded(measure, needs_wrk=False)


if __name__ == "__main__":
    sys.exit(main())
