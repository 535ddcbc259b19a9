"""Library timings of the store against raw asyncpg: recorded per test, compared at the end."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import pytest

__all__ = ["TIMINGS", "Timing", "comparison", "markdown", "record", "write_json"]

# Issue 4's library target: each store operation within 1.5x of its bare statement.
MAX_STORE_RATIO: Final = 1.5


@dataclass(frozen=True)
class Timing:
    """One operation on one side ("store" or "raw"), in microseconds per operation."""

    operation: str
    side: str
    median_us: float
    min_us: float
    rounds: int


TIMINGS: Final = pytest.StashKey[dict[tuple[str, str], Timing]]()


def record(config: pytest.Config, timing: Timing) -> None:
    config.stash.setdefault(TIMINGS, {})[timing.operation, timing.side] = timing


def comparison(timings: Mapping[tuple[str, str], Timing]) -> list[dict[str, Any]]:
    """store/raw per operation timed on both sides, in the order they were timed."""
    operations = list(dict.fromkeys(operation for operation, _side in timings))
    result = []
    for operation in operations:
        store, raw = timings.get((operation, "store")), timings.get((operation, "raw"))
        if store is None or raw is None:
            continue
        ratio = store.median_us / raw.median_us
        result.append(
            {
                "operation": operation,
                "store_us": store.median_us,
                "raw_us": raw.median_us,
                "ratio": ratio,
                # Minimums are the least disturbed by other load on a shared machine.
                "min_ratio": store.min_us / raw.min_us,
                "target_met": ratio <= MAX_STORE_RATIO,
            }
        )
    return result


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| operation | store µs (median) | raw asyncpg µs (median) | store/raw | store/raw (min) "
        f"| target ≤ {MAX_STORE_RATIO}x |",
        "|---|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {row['operation']} | {row['store_us']:.0f} | {row['raw_us']:.0f} "
        f"| {row['ratio']:.2f}x | {row['min_ratio']:.2f}x "
        f"| {'met' if row['target_met'] else 'MISSED'} |"
        for row in rows
    ]
    return "\n".join(lines)


def write_json(path: Path, timings: Mapping[tuple[str, str], Timing]) -> None:
    data = {
        "timings": [asdict(timing) for timing in timings.values()],
        "comparison": comparison(timings),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
