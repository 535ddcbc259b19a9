"""The shared load harness (``../shared/bench``), called where it lives, never copied."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from benchmarks.errors import BenchError
from benchmarks.processes import run_command

__all__ = [
    "BENCH_DIR_VARIABLE",
    "SEEDED_TASKS",
    "SEEDED_USERS",
    "Harness",
    "LoadOptions",
    "default_bench_dir",
    "skipped_without_harness",
]

BENCH_DIR_VARIABLE: Final = "TODO_BENCH_DIR"
REPOSITORY: Final = Path(__file__).resolve().parent.parent
SEED_SECONDS: Final = 300.0
# What ``bench.py seed`` creates with its defaults: 100 users x 10 tasks, and a list
# user with 50 tasks that the suite never writes to.
SEEDED_USERS: Final = 100 + 1
SEEDED_TASKS: Final = 100 * 10 + 50
_FILES: Final = ("bench.py", "limit_server.py")


def default_bench_dir() -> Path:
    """``$TODO_BENCH_DIR``, else ``../shared/bench`` beside this repository."""
    given = os.environ.get(BENCH_DIR_VARIABLE)
    return Path(given) if given else REPOSITORY.parent / "shared" / "bench"


def skipped_without_harness(directory: Path, what: str) -> str | None:
    """None when ``directory`` holds the harness, else the line that says ``what`` is
    skipped: a clone of this repository alone has no ``../shared/bench``."""
    missing = [name for name in _FILES if not (directory / name).is_file()]
    if not missing:
        return None
    return (
        f"benchmarks: no load harness in {directory} ({', '.join(missing)} not found; "
        f"--bench-dir or {BENCH_DIR_VARIABLE} name it): {what} is skipped"
    )


@dataclass(frozen=True)
class LoadOptions:
    """How ``bench.py suite`` loads each target; see its README for each number's meaning."""

    scenarios: tuple[str, ...]
    duration: int
    warmup: int
    rounds: int
    connections: int
    quiet_wait: float
    pause: float

    def worst_case_seconds(self, targets: int) -> float:
        """An upper bound of the suite's length, to stop it if something hangs."""
        runs = len(self.scenarios) * self.rounds * targets
        # +1 s of quiet sampling per run; +10 s for wrk's socket timeout at the end.
        per_run = self.quiet_wait + 1 + self.warmup + self.duration + self.pause + 10
        return 120 + runs * per_run


class Harness:
    """``bench.py`` in ``directory``: seeds a server through its API, runs the suite."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()
        self.script = self.directory / "bench.py"
        self.limit_server = self.directory / "limit_server.py"
        if note := skipped_without_harness(self.directory, "this benchmark"):
            raise BenchError(note.removeprefix("benchmarks: "))

    def seed(self, base: str, state: Path) -> None:
        """100 users x 10 tasks plus a list user with 50, created through ``base``'s API."""
        command = [sys.executable, str(self.script), "seed", "--base", base, "--state", str(state)]
        run_command(command, label="bench.py seed", timeout=SEED_SECONDS, cwd=self.directory)

    def suite(
        self,
        states: Mapping[str, Path],
        pids: Mapping[str, int],
        options: LoadOptions,
        out: Path,
    ) -> dict[str, Any]:
        """Run every scenario over every target, interleaved; return the result file."""
        command = [
            sys.executable,
            str(self.script),
            "suite",
            *(f"--state={name}={path}" for name, path in states.items()),
            *(f"--pid={name}={pid}" for name, pid in pids.items()),
            f"--scenarios={','.join(options.scenarios)}",
            f"--rounds={options.rounds}",
            f"--duration={options.duration}",
            f"--warmup={options.warmup}",
            f"--connections={options.connections}",
            f"--quiet-wait={options.quiet_wait}",
            f"--pause={options.pause}",
            "--check",
            f"--out={out}",
        ]
        limit = options.worst_case_seconds(len(states))
        run_command(command, label="bench.py suite", timeout=limit, cwd=self.directory)
        result: dict[str, Any] = json.loads(out.read_text())
        return result
