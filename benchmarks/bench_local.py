"""Local backend per quality preset, on 2 cores: training time, prediction speed, peak RSS, CV.

For each preset (``BENCH_LOCAL_PRESETS``, default ``fast,medium``; ``high`` and ``best``
take much longer) in its own child process, so that peak RSS is the preset's own: cold
training of the 383 BMW photos (5 series, 80/10/10 split, empty caches), warm training
(embedding cache filled; fine-tuning runs again), prediction images/s at batch 1 and 32,
and the cross-validated macro-F1 of both groupings (``benchmarks/_local_cv.py``,
``BENCH_LOCAL_FOLDS`` folds, default 3; 0 leaves it out, for when ``bench_local_cv``
measured it apart) with chance levels. Goals (issue 14): the default preset
trains in at most 6 minutes cold, ``fast`` in at most 60 s, at least 40 images/s batched
for the Lite0 presets. The 1-minute load average before and after is reported: above 2,
other processes shared the 2 cores and the times are inflated.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "cars" / "stanford-bmw"
GOALS = {"fast": "goal <= 60 s", "medium": "goal <= 360 s"}


def _row(metric: str, value: Any, unit: str, note: str = "") -> dict[str, Any]:
    return {"benchmark": "local", "metric": metric, "value": value, "unit": unit, "note": note}


def _speed(predictor: Any, blobs: list[bytes]) -> tuple[float, float]:
    """Best of 3 rounds of images/s at batch 1 (16 images) and batch 32 (64 images)."""
    predictor.predict(blobs[:2])
    single = batched = 0.0
    for _ in range(3):
        started = time.perf_counter()
        for blob in blobs[:16]:
            predictor.predict([blob])
        single = max(single, 16 / (time.perf_counter() - started))
        started = time.perf_counter()
        for start in range(0, 64, 32):
            predictor.predict(blobs[start : start + 32])
        batched = max(batched, 64 / (time.perf_counter() - started))
    return single, batched


def measure(quality: str, folds: int) -> list[dict[str, Any]]:
    """All rows of one preset (run in a child process)."""
    sys.path.insert(0, str(HERE.parent))
    from benchmarks._local_cv import cross_validate, dataset
    from redditvision.backends.local import LocalBackend
    from redditvision.split import split_dataset

    load = os.getloadavg()[0]
    series = split_dataset(dataset("series"), seed=0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        backend = LocalBackend(quality=quality, cache_dir=root / "cache", model_dir=root)
        model = backend.train(series, out=root / "series")
        cold = time.perf_counter() - started
        training = model.metadata["training"]
        rows.append(
            _row(
                f"{quality}: train 383 photos, cold",
                round(cold, 1),
                "s",
                f"{GOALS.get(quality, '')}; {training['epochs_run']} epochs, stopped "
                f"{training['stopped']}; features {model.metadata['feature_seconds']:.0f} s",
            )
        )
        started = time.perf_counter()
        backend.train(series, out=root / "series-warm")
        rows.append(
            _row(f"{quality}: train 383 photos, warm", round(time.perf_counter() - started, 1), "s")
        )
        predictor = backend.open_predictor(model)
        blobs = [image.path.read_bytes() for image in series.images[:64]]
        single, batched = _speed(predictor, blobs)
        tta = " (flip TTA: 2 views each)" if predictor.tta else ""
        rows += [
            _row(f"{quality}: predict, batch 1", round(single, 1), "images/s", f"best of 3{tta}"),
            _row(
                f"{quality}: predict, batch 32",
                round(batched, 1),
                "images/s",
                f"goal >= 40 for Lite0 presets, best of 3{tta}",
            ),
        ]
    for grouping in ("series", "models") if folds else ():
        pooled = cross_validate(quality, grouping, folds)[-1]
        rows.append(
            _row(
                f"{quality}: {grouping} CV macro-F1",
                pooled["macro_f1"],
                "",
                f"{folds}-fold grouped, accuracy {pooled['accuracy']}; chance macro-F1 "
                f"{pooled['chance_macro_f1']}, accuracy {pooled['chance_accuracy']}",
            )
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(_row(f"{quality}: peak RSS", round(peak), "MiB", "the preset's own process"))
    rows.append(
        _row(
            f"{quality}: machine load (1 min average) after",
            round(os.getloadavg()[0], 1),
            "",
            f"{load:.1f} before; above 2 means other processes shared the 2 cores",
        )
    )
    return rows


def run() -> list[dict[str, Any]]:
    """Measure every preset of ``BENCH_LOCAL_PRESETS``, each in its own process."""
    from benchmarks import skipped

    if not DATA.is_dir():
        return [skipped("local", "local", f"{DATA} is absent")]
    presets = os.environ.get("BENCH_LOCAL_PRESETS", "fast,medium").split(",")
    folds = int(os.environ.get("BENCH_LOCAL_FOLDS", "3"))
    rows: list[dict[str, Any]] = []
    for quality in presets:
        done = subprocess.run(
            [sys.executable, __file__, quality, str(folds)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        if done.returncode != 0:
            rows.append(
                skipped(
                    "local", f"{quality}: failed", f"exit {done.returncode}: {done.stderr[-300:]}"
                )
            )
            continue
        parsed = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        rows += [row for row in parsed if row.get("benchmark") == "local"]
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 3:
        for item in measure(sys.argv[1], int(sys.argv[2])):
            print(json.dumps(item), flush=True)
    else:
        for item in run():
            print(item)
