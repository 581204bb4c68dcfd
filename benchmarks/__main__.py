"""Run every benchmark (or those named) and write the results table into the docs.

Usage::

    python -m benchmarks                 # all benchmarks/bench_*.py
    python -m benchmarks download local  # only bench_download.py and bench_local.py

Each ``benchmarks/bench_<topic>.py`` exposes ``run() -> list[dict]`` whose rows have the keys
``benchmark``, ``metric``, ``value``, ``unit`` and ``note``. Each topic's rows are written to
its own file, ``benchmarks/results/<topic>.json`` (so two benchmarks run at once never
overwrite each other), and all topics are rendered as one table between the markers in
``docs/performance.rst``.
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

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOC = HERE.parent / "docs" / "performance.rst"
BEGIN = ".. benchmark-table-begin"
END = ".. benchmark-table-end"


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _table(results: dict[str, Any]) -> str:
    rows = [("Benchmark", "Metric", "Value", "Unit", "Note")]
    for topic in sorted(results["topics"]):
        entry = results["topics"][topic]
        for row in entry["rows"]:
            value = row["value"]
            text = f"{value:,.3g}" if isinstance(value, float) else str(value)
            rows.append(
                (
                    str(row["benchmark"]),
                    str(row["metric"]),
                    text,
                    str(row["unit"]),
                    str(row.get("note", "")),
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    line = "  ".join("=" * w for w in widths)
    out = [line, "  ".join(c.ljust(w) for c, w in zip(rows[0], widths, strict=True)).rstrip(), line]
    for r in rows[1:]:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    out.append(line)
    dates = sorted({results["topics"][t]["date"] for t in results["topics"]})
    machines = sorted({results["topics"][t]["machine"] for t in results["topics"]})
    header = f"Measured {', '.join(dates)} on {'; '.join(machines)}."
    return header + "\n\n" + "\n".join(out)


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        rows = module.run()
        for row in rows:
            print(f"   {row['metric']}: {row['value']} {row['unit']}", flush=True)
        entry = {
            "rows": rows,
            "date": time.strftime("%Y-%m-%d"),
            "machine": _machine(),
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
