"""Run every benchmark (or those named) and write the results table into the docs.

Usage::

    python -m benchmarks                 # all benchmarks/bench_*.py
    python -m benchmarks download local  # only bench_download.py and bench_local.py

Each ``benchmarks/bench_<topic>.py`` exposes ``run() -> list[dict]`` (row format in
:mod:`benchmarks`). Each topic's rows, with every run's raw value, are written to its own
file, ``benchmarks/results/<topic>.json`` (so two benchmarks run at once never overwrite
each other), and all topics are rendered as one table between the markers in
``docs/performance.rst``: the median of the runs, their spread (lowest to highest) and how
many there were. A skipped row is never written as a value: a topic that measured nothing
keeps its earlier results file, and the reasons are printed.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import summary

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOC = HERE.parent / "docs" / "performance.rst"
BEGIN = ".. benchmark-table-begin"
END = ".. benchmark-table-end"


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _number(value: Any) -> str:
    return f"{value:,.3g}" if isinstance(value, float) else str(value)


def _check(topic: str, row: dict[str, Any]) -> None:
    missing = {"benchmark", "metric"} - set(row)
    if "skipped" not in row:
        missing |= {"value", "unit"} - set(row)
    if missing:
        raise SystemExit(f"bench_{topic}: a row lacks {sorted(missing)}: {row}")
    if "skipped" not in row and not isinstance(row["value"], int | float):
        raise SystemExit(f"bench_{topic}: value {row['value']!r} is not a number: {row}")


def _table(results: dict[str, Any]) -> str:
    rows = [("Benchmark", "Metric", "Median", "Spread", "Runs", "Unit", "Note")]
    for topic in sorted(results["topics"]):
        entry = results["topics"][topic]
        for row in entry["rows"]:
            if "skipped" in row:  # written by an older runner: never a value
                continue
            figures = summary(row)
            spread = (
                "-"
                if figures["low"] is None
                else f"{_number(figures['low'])} - {_number(figures['high'])}"
            )
            rows.append(
                (
                    str(row["benchmark"]),
                    str(row["metric"]),
                    _number(figures["value"]),
                    spread,
                    str(figures["n"]),
                    str(row["unit"]),
                    str(row.get("note", "")),
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    line = "  ".join("=" * w for w in widths)
    out = [line, "  ".join(c.ljust(w) for c, w in zip(rows[0], widths, strict=True)).rstrip(), line]
    for r in rows[1:]:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    out.append(line)
    topics = results["topics"]
    dates = sorted({topics[t]["date"] for t in topics})
    machines = sorted({topics[t]["machine"] for t in topics})
    header = f"Measured {', '.join(dates)} on {'; '.join(machines)}."
    loads = [
        f"{t} {topics[t]['load_average']}" for t in sorted(topics) if "load_average" in topics[t]
    ]
    if loads:
        header += f" Load average (1 min) when a topic started: {', '.join(loads)}."
    legend = (
        "Median and spread (lowest - highest) are over the runs; the raw value of every run is "
        "kept in ``benchmarks/results/<topic>.json``. Runs 1: a single measurement (or one "
        "recorded before the raw runs were kept; a note saying *best of N* is such a result)."
    )
    return header + "\n\n" + "\n".join(out) + "\n\n" + legend


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        load = os.getloadavg()[0]  # a busy machine measures less: recorded with the rows
        rows = module.run()
        for row in rows:
            _check(name, row)
        done = [row for row in rows if "skipped" not in row]
        for row in rows:
            if "skipped" in row:
                print(f"   {row['metric']}: not measured ({row['skipped']})", flush=True)
                continue
            figures = summary(row)
            spread = "" if figures["low"] is None else f" ({figures['low']} - {figures['high']})"
            print(
                f"   {row['metric']}: {figures['value']}{spread} {row['unit']}"
                f" [{figures['n']} run(s)]",
                flush=True,
            )
        if not done:
            print(f"   nothing measured: {RESULTS.name}/{name}.json kept as it was", flush=True)
            continue
        entry = {
            "rows": done,
            "skipped": [row for row in rows if "skipped" in row],
            "date": time.strftime("%Y-%m-%d"),
            "machine": _machine(),
            "load_average": round(load, 1),
            "seconds": round(time.perf_counter() - started, 1),
        }
        (RESULTS / f"{name}.json").write_text(json.dumps(entry, indent=2) + "\n")
    results: dict[str, Any] = {
        "topics": {
            path.stem: json.loads(path.read_text()) for path in sorted(RESULTS.glob("*.json"))
        }
    }
    text = DOC.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(text[:start] + "\n\n" + _table(results) + "\n\n" + text[end:])
    print(f"wrote {DOC.relative_to(HERE.parent)} and {RESULTS.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
