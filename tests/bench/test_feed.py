"""The changes polls' verdict (benchmarks.feed): each poll against its own baseline,
measured in the same run, on the server's CPU and on the server's plus PostgreSQL's."""

from __future__ import annotations

from typing import Any

import pytest
from benchmarks.feed import CHANGES_50, CHANGES_IDLE, feed_checks, feed_markdown, feed_ratios

TARGET = "ours-pg"


def _run(scenario: str, index: int, cpu: float, postgres: float, non2xx: int = 0) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "target": TARGET,
        "round": index,
        "rps": 1000.0,
        "requests": 10_000,
        "p50_ms": 5.0,
        "p99_ms": 20.0,
        "non2xx": non2xx,
        "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0},
        "duration_s": 10.0,
        "server_cpu_us_per_req": cpu,
        "cpu_cores_used": {"postgres": postgres * 10_000 / 10.0 / 1e6},
    }


def _suite(idle: float, fifty: float, *, fifty_postgres: float = 60.0) -> dict[str, Any]:
    runs = [
        _run("get_one", 1, 200.0, 50.0),
        _run("list", 1, 500.0, 60.0),
        _run(CHANGES_IDLE, 1, idle, 50.0),
        _run(CHANGES_50, 1, fifty, fifty_postgres),
    ]
    items = {"get_one": 1, "list": 50, CHANGES_IDLE: 0, CHANGES_50: 50}
    return {"targets": [TARGET], "items": {TARGET: items}, "runs": runs}


def test_nothing_new_is_judged_against_get_one_and_fifty_changes_against_list() -> None:
    suite = _suite(idle=250.0, fifty=700.0)
    ratios = feed_ratios(suite)
    assert ratios[CHANGES_IDLE][TARGET]["cpu"] == pytest.approx(250.0 / 200.0)
    assert ratios[CHANGES_50][TARGET]["cpu"] == pytest.approx(700.0 / 500.0)
    assert ratios[CHANGES_50][TARGET]["cpu_with_postgres"] == pytest.approx(760.0 / 560.0)
    [idle, fifty, *errors] = feed_checks(suite, ratios)
    assert idle.startswith(f"met: {TARGET} {CHANGES_IDLE} CPU/req vs get_one: server 1.25x")
    assert fifty.startswith(f"met: {TARGET} {CHANGES_50} CPU/req vs list: server 1.40x")
    assert len(errors) == 4
    assert all(line.startswith("met: ") for line in errors)
    table = feed_markdown(suite, ratios)
    assert f"| {CHANGES_50} | {TARGET} | 50 |" in table
    assert "| list | 1.40x |" in table


@pytest.mark.parametrize(
    ("idle", "fifty", "fifty_postgres", "missed"),
    [
        (301.0, 500.0, 60.0, CHANGES_IDLE),  # 1.505x one task's read
        (200.0, 751.0, 60.0, CHANGES_50),  # 1.502x the list, on the server alone
        (200.0, 700.0, 200.0, CHANGES_50),  # 1.40x alone, 1.61x with PostgreSQL's
    ],
)
def test_a_poll_past_one_and_a_half_times_its_baseline_is_a_miss(
    idle: float, fifty: float, fifty_postgres: float, missed: str
) -> None:
    suite = _suite(idle, fifty, fifty_postgres=fifty_postgres)
    verdicts = feed_checks(suite, feed_ratios(suite))[:2]
    assert [line.split(": ")[0] for line in verdicts] == [
        "MISSED" if scenario == missed else "met" for scenario in (CHANGES_IDLE, CHANGES_50)
    ]


def test_an_error_answer_in_a_poll_run_is_a_miss() -> None:
    suite = _suite(idle=200.0, fifty=500.0)
    suite["runs"][2] = _run(CHANGES_IDLE, 1, 200.0, 50.0, non2xx=3)
    checks = feed_checks(suite, feed_ratios(suite))
    assert f"MISSED: {TARGET} {CHANGES_IDLE} (our wrk script): non-2xx 3, socket errors 0" in [
        line.split(" (target")[0] for line in checks
    ]
