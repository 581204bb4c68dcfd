"""Benchmarks of redditvision; run them all with ``nox -s benchmarks``.

Each ``benchmarks/bench_<topic>.py`` exposes ``run() -> list[dict]``. A row is one of:

* a measurement repeated: :func:`measured` (``runs``: every run's raw value, in order); the
  table shows the median and the spread (lowest to highest), never only the best run;
* a single measurement: ``value`` without ``runs`` (a figure computed once, such as a
  cross-validated score, or a run too long to repeat); the table says "1 run";
* not measured: :func:`skipped` (``skipped``: why). It is never written as a value: the
  topic's earlier results are kept and the reason is printed.

``python -m benchmarks`` keeps the raw rows (with ``runs``) in ``benchmarks/results/<topic>.json``
beside the table it renders into ``docs/performance.rst``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["measured", "rate_runs", "repeat", "skipped", "summary"]


def repeat(fn: Callable[[], object], times: int) -> list[float]:
    """Call ``fn`` ``times`` times; return each call's wall-clock seconds (perf_counter)."""
    seconds = []
    for _ in range(times):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds


def rate_runs(count: int, seconds: Sequence[float]) -> list[float]:
    """Items per second of each run that handled ``count`` items in ``seconds[i]``."""
    return [count / s if s > 0 else float("inf") for s in seconds]


def measured(
    benchmark: str, metric: str, runs: Sequence[float], unit: str, note: str = ""
) -> dict[str, Any]:
    """A repeated measurement: the raw per-run values, with their median as ``value``.

    Raises:
        ValueError: ``runs`` is empty.
    """
    if not runs:
        raise ValueError(f"{benchmark} / {metric}: no runs")
    return {
        "benchmark": benchmark,
        "metric": metric,
        "value": statistics.median(runs),
        "unit": unit,
        "note": note,
        "runs": [float(r) for r in runs],
    }


def skipped(benchmark: str, metric: str, reason: str) -> dict[str, Any]:
    """A measurement that could not be made here (data absent ...): never shown as a value."""
    return {"benchmark": benchmark, "metric": metric, "skipped": reason}


def summary(row: dict[str, Any]) -> dict[str, Any]:
    """Median, spread and run count of a row: ``{"value", "low", "high", "n"}``.

    ``n`` is 1 and ``low``/``high`` are None for a single measurement.
    """
    runs = row.get("runs")
    if not runs:
        return {"value": row["value"], "low": None, "high": None, "n": 1}
    return {
        "value": statistics.median(runs),
        "low": min(runs),
        "high": max(runs),
        "n": len(runs),
    }
