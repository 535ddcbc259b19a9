"""The PNG bar chart of docs/performance.md: req/s and CPU µs per request, per scenario."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmarks.report import Row

__all__ = ["draw"]


def draw(table: Sequence[Row], path: Path, title: str) -> None:
    """Two panels of grouped bars, one group per scenario and one bar per server."""
    scenarios = list(dict.fromkeys(row.scenario for row in table))
    servers = list(dict.fromkeys(row.server for row in table))
    found = {(row.scenario, row.server): row for row in table}
    width = 0.8 / max(1, len(servers))
    # A bare Figure on the Agg canvas: no pyplot global state, no display needed.
    figure = Figure(figsize=(12, 5), layout="constrained")
    FigureCanvasAgg(figure)
    speed, cost = figure.subplots(1, 2)
    for index, server in enumerate(servers):
        offsets = [n + (index - (len(servers) - 1) / 2) * width for n in range(len(scenarios))]
        measured = [found.get((scenario, server)) for scenario in scenarios]
        speed.bar(offsets, [row.rps if row else 0.0 for row in measured], width, label=server)
        cpu = [(row.cpu_us_per_req or 0.0) if row else 0.0 for row in measured]
        cost.bar(offsets, cpu, width, label=server)
    panels = (
        (speed, "requests per second (higher is better)"),
        (cost, "server CPU µs per request (lower is better)"),
    )
    for axes, label in panels:
        axes.set_xticks(range(len(scenarios)), scenarios)
        axes.set_title(label)
        axes.grid(axis="y", alpha=0.3)
        axes.set_axisbelow(True)
    speed.legend()
    figure.suptitle(title, fontsize="medium")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
