"""The web app benchmark (benchmarks.webapp), small: it measures a first load that is
within the budget and asks no other origin, and writes the two pictures the README
shows at the sizes it names."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends import unavailable

REPOSITORY = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(autouse=True)
def chromium() -> None:
    if not CHROMIUM.is_file():
        unavailable(f"the web app benchmark needs {CHROMIUM} (apt-get install chromium)")


def _webapp(*arguments: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.webapp", *arguments],
        cwd=REPOSITORY,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_benchmark_measures_a_first_load_within_the_budget(tmp_path: Path) -> None:
    figures = tmp_path / "webapp.json"
    _webapp("--no-postgres", "--tasks", "60", "--loads", "2", "--json", str(figures))
    (sqlite,) = json.loads(figures.read_text())
    assert sqlite["server"] == "sqlite"
    assert sqlite["other_origins"] == []
    assert 0 < sqlite["kilobytes"] < 100
    assert sqlite["bytes_by_path"]["/"] > 0  # the page itself
    assert any(path.startswith("/api/webapp-bench/tasks?") for path in sqlite["bytes_by_path"])
    assert len(sqlite["first_task_ms_all"]) == 2
    assert 0 < sqlite["list_asked_ms_median"] <= sqlite["list_answered_ms_median"]
    assert sqlite["list_answered_ms_median"] <= sqlite["first_task_ms_median"]


def test_the_benchmark_writes_the_readmes_screenshots(tmp_path: Path) -> None:
    _webapp("--screenshots", str(tmp_path))
    for name, size in (("desktop", (1280, 800)), ("phone", (390, 844))):
        header = (tmp_path / f"webapp-{name}.png").read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", header[16:24]) == size
