"""Cross-validated macro-F1 of the local backend's presets on both groupings of the BMW photos.

For each preset of ``BENCH_CV_PRESETS`` (default ``fast,medium``) and each grouping (the 5
series of ``examples/bmw-series.toml`` and the 13 model folders): ``BENCH_CV_FOLDS``-fold
(default 5) stratified cross-validation grouped by near-duplicates
(:mod:`benchmarks._local_cv`), pooled out-of-fold macro-F1 and accuracy, chance levels, the
mean training time of a fold and the load average. On 2 cores a fine-tuning preset takes
about 20 minutes per grouping, so the runs can be made apart (``python -m
benchmarks._local_cv PRESET GROUPING FOLDS > LOG``) and read back: ``BENCH_CV_FROM`` names
those logs (comma-separated); their JSON lines are taken as they are.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from benchmarks import skipped
from benchmarks._local_cv import DATA, cross_validate


def _row(metric: str, value: Any, unit: str, note: str = "") -> dict[str, Any]:
    return {"benchmark": "local_cv", "metric": metric, "value": value, "unit": unit, "note": note}


def _rows(folds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pooled = folds[-1]
    runs = folds[:-1]
    quality, grouping = pooled["quality"], pooled["grouping"]
    loads = [row["load_after"] for row in runs]
    best = [int(row["best_epoch"]) for row in runs]
    return [
        _row(
            f"{quality}: {grouping} CV macro-F1",
            pooled["macro_f1"],
            "",
            f"{pooled['folds']}-fold pooled, accuracy {pooled['accuracy']}; fold mean "
            f"{pooled['mean_fold_macro_f1']} (lowest {min(r['macro_f1'] for r in runs)}, "
            f"highest {max(r['macro_f1'] for r in runs)}); chance macro-F1 "
            f"{pooled['chance_macro_f1']}, accuracy {pooled['chance_accuracy']}"
            + (
                f"; without flip TTA {pooled['macro_f1_without_tta']}"
                if "macro_f1_without_tta" in pooled
                else ""
            ),
        ),
        _row(
            f"{quality}: {grouping} CV training time per fold",
            pooled["mean_seconds"],
            "s",
            f"about {runs[0]['train'] + runs[0]['validation']} photos per fold; epochs kept "
            f"{sorted(set(best))}; load average {min(loads)} to {max(loads)}",
        ),
    ]


def _read(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    return [json.loads(line) for line in lines]


def run() -> list[dict[str, Any]]:
    """Measure (or read back) each preset on both groupings."""
    given = [Path(p) for p in os.environ.get("BENCH_CV_FROM", "").split(",") if p]
    if given:
        return [row for path in given for row in _rows(_read(path))]
    if not DATA.is_dir():
        return [skipped("local_cv", "cv", f"{DATA} is absent")]
    folds = int(os.environ.get("BENCH_CV_FOLDS", "5"))
    rows: list[dict[str, Any]] = []
    for quality in os.environ.get("BENCH_CV_PRESETS", "fast,medium").split(","):
        for grouping in ("series", "models"):
            rows += _rows(cross_validate(quality, grouping, folds))
    return rows
