"""Dataset speed on the 383 real BMW photos: label, group, split, check, write and upload."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from redditvision.checks import check_dataset
from redditvision.labels import LabelMap, label_folders
from redditvision.split import group_near_duplicates, split_dataset
from redditvision.storage import GcsDatasetWriter, LocalDatasetWriter

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT.parent / "shared/data/cars/stanford-bmw"
LABEL_MAP = ROOT / "examples/bmw-series.toml"


def _row(metric: str, value: float, unit: str, note: str = "") -> dict[str, Any]:
    return {"benchmark": "dataset", "metric": metric, "value": value, "unit": unit, "note": note}


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def run() -> list[dict[str, Any]]:
    if not PHOTOS.is_dir():
        return []
    rows: list[dict[str, Any]] = []
    label_map = LabelMap.from_toml(LABEL_MAP)
    dataset, seconds = _timed(label_folders, PHOTOS, label_map=label_map)
    n = len(dataset.images)
    rows.append(_row("label_folders (sha256 of each image)", seconds, "s", f"{n} photos"))
    grouped, seconds = _timed(group_near_duplicates, dataset)
    groups = len({image.group for image in grouped.images})
    rows.append(_row("group_near_duplicates (phash)", seconds, "s", f"{groups} groups"))
    split, seconds = _timed(split_dataset, grouped)
    rows.append(_row("split_dataset", seconds, "s", "80/10/10, seed 0"))
    report, seconds = _timed(check_dataset, split)
    rows.append(_row("check_dataset (vertex)", seconds, "s", f"{len(report.errors)} errors"))
    with tempfile.TemporaryDirectory() as folder:
        with LocalDatasetWriter(Path(folder) / "local") as writer:
            first, seconds = _timed(writer.write, split)
            rows.append(_row("LocalDatasetWriter first run", seconds, "s", f"{first.bytes} bytes"))
            again, seconds = _timed(writer.write, split)
            rows.append(
                _row("LocalDatasetWriter second run", seconds, "s", f"{again.bytes} bytes copied")
            )
        sys.path.insert(0, str(ROOT / "tests"))
        try:
            from harness_gcs import GcsEmulator
        except ImportError:  # pragma: no cover - emulator not installed
            return rows
        emulator = GcsEmulator(Path(folder) / "gcs")
        emulator.start()
        try:
            emulator.create_bucket("bench")
            with GcsDatasetWriter(client=emulator.client(), bucket="bench") as gcs:
                first, seconds = _timed(gcs.write, split)
                rows.append(
                    _row(
                        "GcsDatasetWriter first run (emulator)",
                        seconds,
                        "s",
                        f"{first.uploaded} objects, 8 threads, gcp-storage-emulator on loopback",
                    )
                )
                again, seconds = _timed(gcs.write, split)
                rows.append(
                    _row(
                        "GcsDatasetWriter second run (emulator)",
                        seconds,
                        "s",
                        f"{again.uploaded} uploaded, {again.bytes} bytes",
                    )
                )
        finally:
            emulator.stop()
    return rows


if __name__ == "__main__":
    for result in run():
        print(result)
