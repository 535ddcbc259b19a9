"""What every load benchmark's command line shares: its options, and how it ends."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Final

from benchmarks.databases import MAINTENANCE_VARIABLE, maintenance_url
from benchmarks.errors import BenchError
from benchmarks.feed import CHANGES_50, CHANGES_IDLE
from benchmarks.filtered import LIST_FILTERED
from benchmarks.harness import BENCH_DIR_VARIABLE, REPOSITORY, LoadOptions, default_bench_dir
from benchmarks.processes import interrupt_on_signals

__all__ = [
    "HARNESS_SCENARIOS",
    "OWN_SCENARIOS",
    "SCENARIOS",
    "harness_share",
    "load_options",
    "load_parser",
    "run_guarded",
]

# What bench.py's wrk script loads, and what our own (benchmarks.filtered, .feed) loads.
HARNESS_SCENARIOS: Final = ("get_one", "list", "create", "update", "mix")
OWN_SCENARIOS: Final = (LIST_FILTERED, CHANGES_IDLE, CHANGES_50)
SCENARIOS: Final = HARNESS_SCENARIOS + OWN_SCENARIOS


def load_parser(
    prog: str, description: str, scenarios: Sequence[str], writes: str
) -> argparse.ArgumentParser:
    """A parser with the load options of ``bench.py suite``, the harness, PostgreSQL and
    the output directory; ``scenarios`` is the default subset, ``writes`` names the files."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--duration", type=int, default=10, help="measured seconds per run")
    parser.add_argument("--warmup", type=int, default=2, help="unrecorded seconds before each run")
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs per scenario and server (default %(default)s)"
    )
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument(
        "--scenarios",
        default=",".join(scenarios),
        help=f"comma-separated subset of {','.join(SCENARIOS)} (default %(default)s)",
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
        help=f"where {writes} go (default %(default)s)",
    )
    return parser


def load_options(parser: argparse.ArgumentParser, arguments: argparse.Namespace) -> LoadOptions:
    """The parsed load options; a usage error (exit status 2) for unknown scenarios."""
    scenarios = tuple(name.strip() for name in arguments.scenarios.split(",") if name.strip())
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown or not scenarios:
        parser.error(f"unknown scenarios {unknown}; pick from {SCENARIOS}")
    return LoadOptions(
        scenarios=scenarios,
        duration=arguments.duration,
        warmup=arguments.warmup,
        rounds=arguments.rounds,
        connections=arguments.connections,
        quiet_wait=arguments.quiet_wait,
        pause=arguments.pause,
    )


def harness_share(options: LoadOptions) -> LoadOptions | None:
    """``options`` with the scenarios the harness loads, or None when there are none."""
    chosen = tuple(name for name in options.scenarios if name in HARNESS_SCENARIOS)
    return replace(options, scenarios=chosen) if chosen else None


def run_guarded(measure: Callable[[], None], *, needs_wrk: bool = True) -> int:
    """Run ``measure`` with Ctrl+C and SIGTERM unwinding it; return the exit status:
    0, 1 with a one-line message for a ``BenchError`` (wrk missing too, when
    ``needs_wrk``), 130 when interrupted."""
    if needs_wrk and shutil.which("wrk") is None:
        print("benchmarks: wrk is not on PATH: install it (apt-get install wrk)", file=sys.stderr)
        return 1
    try:
        with interrupt_on_signals():
            measure()
    except BenchError as error:
        print(f"benchmarks: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("benchmarks: interrupted; the servers it started are stopped", file=sys.stderr)
        return 130
    return 0
