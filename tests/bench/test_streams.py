"""The live events benchmark (benchmarks.streams, benchmarks.stream_load): how it reads
a stream, counts what arrived and what was lost, judges the targets, and a small run
of the whole thing against real servers on PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks.stream_load import deliveries, latency_summary, split_events, task_id_of
from benchmarks.streams import stream_checks

from tests.backends import postgres_url
from todo_core.engine import database_url

REPOSITORY = Path(__file__).resolve().parents[2]


def test_events_are_split_whole_and_the_rest_waits_for_more() -> None:
    upsert = b'id: t1\nevent: upsert\ndata: {"type": "upsert", "task": {"id": "a"}}'
    delete = b'id: t2\nevent: delete\ndata: {"type": "delete", "id": "b", "deleted_at": "x"}'
    events, rest = split_events(upsert + b"\n\n: keepalive\n\n" + delete[:10])
    assert events == [upsert, b": keepalive"]
    assert rest == delete[:10]
    assert [task_id_of(event) for event in (upsert, b": keepalive", delete)] == ["a", None, "b"]


def test_every_write_is_expected_on_every_stream_of_its_user() -> None:
    acked = {"a": ("u1", 10.0), "b": ("u2", 20.0)}
    arrivals = {
        "u1": [{"a": 10.050}, {"a": 9.990}],  # the second beat the acknowledgement
        "u2": [{"b": 20.2}, {}],  # the second stream never got b
        "u3": [{"a": 11.0}],  # another user's stream: not counted for a
    }
    found = deliveries(acked, arrivals)
    assert (found["delivered"], found["lost"], found["before_acknowledgement"]) == (3, 1, 1)
    assert found["p50_ms"] == pytest.approx(50.0)
    assert found["max_ms"] == pytest.approx(200.0)


def test_percentiles_are_latencies_that_happened() -> None:
    samples = [index / 1000 for index in range(1, 201)]  # 1..200 ms
    assert latency_summary(samples) == {"p50_ms": 100.0, "p99_ms": 198.0, "max_ms": 200.0}
    assert latency_summary([0.5]) == {"p50_ms": 500.0, "p99_ms": 500.0, "max_ms": 500.0}
    assert latency_summary([])["p99_ms"] is None


def _idle(kib: float, fewest: int = 2) -> dict[str, Any]:
    return {"streams": 10_000, "kib_per_stream": kib, "fewest_keepalives": fewest, "ended_early": 0}


def _delivery(label: str, p99: float, lost: int = 0) -> dict[str, Any]:
    return {
        "label": label,
        "p99_ms": p99,
        "lost": lost,
        "failures": [],
        "delivered": 100 - lost,
        "expected_deliveries": 100,
    }


@pytest.mark.parametrize(
    ("idle", "deliveries_", "verdicts"),
    [
        (_idle(19.9), [_delivery("direct", 250), _delivery("pgbouncer", 1000)], "met" * 6),
        (_idle(20.1), [_delivery("direct", 10)], "MISSED" + "met" * 3),
        (_idle(5, fewest=0), [_delivery("direct", 10)], "met" + "MISSED" + "met" * 2),
        # The pooled limit is a second; a direct one is a quarter of that.
        (
            _idle(5),
            [_delivery("direct", 251), _delivery("pgbouncer", 999)],
            "metmetMISSEDmetmetmet",
        ),
        (_idle(5), [_delivery("pgbouncer", 1001)], "metmetMISSEDmet"),
        (_idle(5), [_delivery("direct", 10, lost=1)], "metmetmetMISSED"),
    ],
)
def test_stream_targets(
    idle: dict[str, Any], deliveries_: list[dict[str, Any]], verdicts: str
) -> None:
    found = "".join(line.split(": ")[0] for line in stream_checks(idle, deliveries_))
    assert found == verdicts


@pytest.mark.postgres
def test_a_small_run_delivers_every_event_and_reports_it(tmp_path: Path) -> None:
    """Real servers and a real load process, scaled down: every write reaches both
    streams of its user, directly and through PgBouncer, and the idle streams each
    get a keepalive within the window."""
    maintenance = database_url(postgres_url()).set(database="postgres")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.streams",
            *("--idle-streams", "60", "--warm", "20", "--keepalive-window", "16"),
            *("--streams", "40", "--users", "20", "--rate", "40", "--seconds", "2"),
            *("--postgres-url", maintenance.render_as_string(hide_password=False)),
            *("--out-dir", str(tmp_path)),
        ],
        cwd=REPOSITORY,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = json.loads((tmp_path / "streams.json").read_text())
    assert (found["idle"]["streams"], found["idle"]["ended_early"]) == (60, 0)
    assert found["idle"]["fewest_keepalives"] >= 1
    for delivery in found["deliveries"]:
        assert delivery["acknowledged"] == 80
        assert (delivery["delivered"], delivery["lost"]) == (160, 0)
    assert "| direct |" in (tmp_path / "streams.md").read_text()
