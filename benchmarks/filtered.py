"""``list`` and ``list_filtered`` on our servers, loaded with our own wrk script.

The harness's scenarios have no filter, so ``list_filtered`` (the list user's 50
tasks, ``benchmarks.organized.FILTER``) runs with ``benchmarks.wrk``, round by round
beside a plain ``list`` measured the same way: issue 15's target compares their CPU
per request, the server's and the server's plus PostgreSQL's, within 1.3x.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from benchmarks.organized import Organized
from benchmarks.report import Row, number, rows, times
from benchmarks.wrk import Request, Target

__all__ = [
    "LIST",
    "LIST_FILTERED",
    "MAX_FILTERED_RATIO",
    "error_checks",
    "filtered_checks",
    "filtered_markdown",
    "filtered_ratios",
    "organized_target",
    "ratio_check",
    "scenario_ratios",
    "total_us",
]

LIST: Final = "list"
LIST_FILTERED: Final = "list_filtered"
# Issue 15: list_filtered's CPU per request within 1.3x of plain list's.
MAX_FILTERED_RATIO: Final = 1.3


def organized_target(name: str, pid: int, organized: Organized, database: str | None) -> Target:
    """A server whose seeded tasks are organized, loaded with ``list`` and
    ``list_filtered`` (``database``: as ``benchmarks.wrk.Target`` has it)."""
    return Target(
        name,
        pid,
        database,
        requests={
            LIST: Request(organized.list_url),
            LIST_FILTERED: Request(organized.filtered_url),
        },
        items={LIST: organized.list_items, LIST_FILTERED: organized.filtered_items},
    )


def total_us(row: Row) -> float | None:
    """The server's CPU per request plus PostgreSQL's; None where either is unknown."""
    if row.cpu_us_per_req is None or row.postgres_cpu_us_per_req is None:
        return None
    return row.cpu_us_per_req + row.postgres_cpu_us_per_req


def _quotient(numerator: float | None, denominator: float | None) -> float | None:
    return None if numerator is None or not denominator else numerator / denominator


def _per_round(suite: Mapping[str, Any], target: str, scenario: str, baseline: str) -> list[float]:
    """``scenario``'s server CPU per request over ``baseline``'s, round by round on ``target``."""
    cpu = {
        (run["scenario"], run["round"]): run.get("server_cpu_us_per_req")
        for run in suite["runs"]
        if run["target"] == target
    }
    rounds = sorted({index for _scenario, index in cpu})
    return [
        measured / plain
        for index in rounds
        if (plain := cpu.get((baseline, index))) and (measured := cpu.get((scenario, index)))
    ]


def scenario_ratios(
    suite: Mapping[str, Any], scenario: str, baseline: str
) -> dict[str, dict[str, Any]]:
    """Per target: ``scenario``'s CPU per request over ``baseline``'s, the server's and
    the server's plus PostgreSQL's, overall (median rounds) and round by round."""
    found = {(row.scenario, row.server): row for row in rows(suite)}
    result: dict[str, dict[str, Any]] = {}
    for target in suite["targets"]:
        plain, measured = found.get((baseline, target)), found.get((scenario, target))
        if plain is None or measured is None:
            continue
        result[target] = {
            "cpu": _quotient(measured.cpu_us_per_req, plain.cpu_us_per_req),
            "cpu_with_postgres": _quotient(total_us(measured), total_us(plain)),
            "cpu_per_round": _per_round(suite, target, scenario, baseline),
        }
    return result


def filtered_ratios(suite: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per target: list_filtered's CPU per request over plain list's."""
    return scenario_ratios(suite, LIST_FILTERED, LIST)


def ratio_check(
    check: Callable[[bool, str], None], label: str, ratio: Mapping[str, Any], limit: float
) -> None:
    """One target line for a ``scenario_ratios`` entry: met when neither the server's
    ratio nor the one with PostgreSQL's CPU added passes ``limit``."""
    measured = [
        f"{name} {value:.2f}x"
        for name, value in (
            ("server", ratio["cpu"]),
            ("server + PostgreSQL", ratio["cpu_with_postgres"]),
        )
        if value is not None
    ]
    if measured:
        worst = max(v for v in (ratio["cpu"], ratio["cpu_with_postgres"]) if v is not None)
        check(worst <= limit, f"{label}: {', '.join(measured)} (target <= {limit}x)")


def error_checks(check: Callable[[bool, str], None], suite: Mapping[str, Any]) -> None:
    """A target line per row of our own runs: no non-2xx answer, no socket error."""
    for row in rows(suite):
        check(
            row.non2xx == 0 and row.socket_errors == 0,
            f"{row.server} {row.scenario} (our wrk script): non-2xx {row.non2xx}, "
            f"socket errors {row.socket_errors} (target 0)",
        )


def filtered_markdown(suite: Mapping[str, Any], ratios: Mapping[str, Mapping[str, Any]]) -> str:
    """The rows of our own runs, with list_filtered's ratios to list on its own rows."""
    items: Mapping[str, Mapping[str, int]] = suite["items"]
    lines = [
        "| scenario | server | tasks returned | req/s | p50 ms | p99 ms | non-2xx "
        "| socket errors | CPU µs/req | PostgreSQL CPU µs/req | both µs/req "
        "| CPU/req vs list | both vs list | CPU/req vs list, per round |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows(suite):
        ratio: Mapping[str, Any] = ratios.get(row.server, {}) if row.scenario != LIST else {}
        lines.append(
            f"| {row.scenario} | {row.server} | {items[row.server][row.scenario]} "
            f"| {row.rps:.0f} | {row.p50_ms:.2f} | {row.p99_ms:.2f} | {row.non2xx} "
            f"| {row.socket_errors} | {number(row.cpu_us_per_req)} "
            f"| {number(row.postgres_cpu_us_per_req)} | {number(total_us(row))} "
            f"| {times(ratio.get('cpu'))} | {times(ratio.get('cpu_with_postgres'))} "
            f"| {' / '.join(f'{value:.2f}' for value in ratio.get('cpu_per_round', []))} |"
        )
    return "\n".join(lines)


def filtered_checks(suite: Mapping[str, Any], ratios: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Issue 15's list_filtered target per server, and no error in any of our runs."""
    checks: list[str] = []

    def check(ok: bool, text: str) -> None:
        checks.append(f"{'met' if ok else 'MISSED'}: {text}")

    for target, ratio in ratios.items():
        ratio_check(check, f"{target} list_filtered CPU/req vs list", ratio, MAX_FILTERED_RATIO)
    error_checks(check, suite)
    return checks
