"""``nox -s bench`` in a clone of this repository alone: without ``../shared/bench`` it
says the comparisons are skipped and measures our server by itself (benchmarks.solo).

The harness is pointed at a directory that does not exist, with ``--bench-dir`` or
``TODO_BENCH_DIR``, as a clean clone would find it; runs last one second each.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks.harness import skipped_without_harness

from tests.backends import postgres_url, unavailable
from todo_core.engine import database_url

REPOSITORY = Path(__file__).resolve().parents[2]
SKIPPED = "the side-by-side comparison with the limit server is skipped"


def _bench(module: str, *arguments: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=REPOSITORY,
        env={**os.environ, **variables},
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.postgres
def test_the_http_bench_measures_our_server_alone(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        unavailable("the bench needs wrk (apt-get install wrk)")
    maintenance = database_url(postgres_url()).set(database="postgres")
    out = tmp_path / "out"
    result = _bench(
        "benchmarks.http",
        *("--bench-dir", str(tmp_path / "no-harness")),
        *("--duration", "1", "--warmup", "0", "--quiet-wait", "0", "--pause", "0"),
        *("--connections", "4", "--out-dir", str(out)),
        *("--postgres-url", maintenance.render_as_string(hide_password=False)),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [first, *_] = result.stdout.splitlines()
    assert SKIPPED in first
    assert "measuring our server alone" in first
    rows = json.loads((out / "solo.json").read_text())["rows"]
    assert {(row["scenario"], row["server"]) for row in rows} == {
        (scenario, server)
        for scenario in ("get_one", "list", "create", "list_filtered")
        for server in ("ours-pg", "ours-sqlite")
    }
    assert all(row["rps"] > 0 and row["non2xx"] == 0 for row in rows)
    # The feed polls, judged against get_one and list measured in the same run.
    changes = json.loads((out / "solo.json").read_text())["changes"]
    assert {
        (scenario, server)
        for scenario, by_server in changes["ratios"].items()
        for server in by_server
    } == {
        (scenario, server)
        for scenario in ("changes_idle", "changes_50")
        for server in ("ours-pg", "ours-sqlite")
    }
    assert "| changes_50 | ours-pg | 50 |" in (out / "solo.md").read_text()
    assert "| get_one | ours-pg |" in (out / "solo.md").read_text()
    assert not (out / "results.json").exists()  # the comparison's file: not written


def test_scenarios_only_the_harness_can_load_are_named_as_skipped(tmp_path: Path) -> None:
    """update and mix need the harness's wrk script; asked for alone, nothing runs."""
    result = _bench(
        "benchmarks.http",
        *("--bench-dir", str(tmp_path), "--scenarios", "update,mix"),
        *("--out-dir", str(tmp_path / "out")),
    )
    assert result.returncode == 0, result.stderr
    assert SKIPPED in result.stdout
    assert "update, mix skipped" in result.stdout
    assert not (tmp_path / "out").exists()


def test_the_scale_bench_says_it_is_skipped(tmp_path: Path) -> None:
    """The large-table comparison seeds and loads through bench.py: it is left out."""
    result = _bench("benchmarks.scale", TODO_BENCH_DIR=str(tmp_path / "no-harness"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("the large-table comparison is skipped")
    assert "TODO_BENCH_DIR" in result.stdout


def test_with_the_harness_present_nothing_is_skipped(tmp_path: Path) -> None:
    """The detection looks for the harness's two files, nothing else."""
    for name in ("bench.py", "limit_server.py"):
        (tmp_path / name).write_text("")
    assert skipped_without_harness(tmp_path, "x") is None
    (tmp_path / "bench.py").unlink()
    note = skipped_without_harness(tmp_path, "the thing")
    assert note is not None
    assert note.endswith(
        "(bench.py not found; --bench-dir or TODO_BENCH_DIR name it): the thing is skipped"
    )
