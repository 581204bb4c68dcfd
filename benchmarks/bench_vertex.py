"""Vertex AI backend overhead: re-encoding under the 1.5 MB online limit, and predict round trips.

The round trips go through the real aiplatform_v1 PredictionServiceClient to the in-process
fake on 127.0.0.1 (tests/fakes/vertex.py), so they measure our side of a prediction (image
check, base64, request building, gRPC, parsing), not Google's latency.
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from redditvision import TrainedModel
from redditvision.backends.vertex import VertexAutoMLBackend, fit_online_limit

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT.parent / "shared/data/cars/stanford-bmw"


def _row(metric: str, value: float, unit: str, note: str = "") -> dict[str, Any]:
    return {"benchmark": "vertex", "metric": metric, "value": value, "unit": unit, "note": note}


def _noise_jpeg(width: int, height: int) -> bytes:
    pixels = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _big_photo(photos: list[Path]) -> tuple[bytes, str]:
    if not photos:
        return _noise_jpeg(4000, 3000), "12 MP noise JPEG"
    largest = max(photos, key=lambda p: p.stat().st_size)
    with Image.open(largest) as photo:
        upscaled = photo.convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    upscaled.save(buffer, format="JPEG", quality=98)
    return buffer.getvalue(), f"12 MP JPEG (q98) of {largest.name} upscaled"


def run() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    photos = sorted(PHOTOS.rglob("*.jpg")) if PHOTOS.is_dir() else []
    big, what = _big_photo(photos)
    start = time.perf_counter()
    small = fit_online_limit(big)
    seconds = time.perf_counter() - start
    rows.append(
        _row(
            "re-encode a 12 MP photo under 1.5 MB",
            seconds * 1000,
            "ms",
            f"{what}: {len(big) / 1e6:.1f} MB -> {len(small) / 1e6:.2f} MB",
        )
    )
    sys.path.insert(0, str(ROOT / "tests"))
    from fakes.vertex import FakeVertex

    images = [p.read_bytes() for p in photos[:50]] or [_noise_jpeg(640, 480)] * 50
    with FakeVertex() as fake, tempfile.TemporaryDirectory() as state:
        backend = VertexAutoMLBackend(
            **fake.clients(),
            project=fake.project,
            location=fake.location,
            state_dir=state,
            owns_clients=True,
        )
        model = TrainedModel(backend="vertex", resource=fake.add_model(), labels=("a", "b", "c"))
        predictor = backend.open_predictor(model)
        predictor.predict(images[:2])  # warm the channel
        timings = []
        for image in images:
            start = time.perf_counter()
            predictor.predict([image])
            timings.append(time.perf_counter() - start)
        predictor.close()
        backend.close()
    source = f"{len(photos[:50])} real BMW photos" if photos else "50 synthetic 640x480 JPEGs"
    rows.append(
        _row("online predict round trip (median)", statistics.median(timings) * 1000, "ms", source)
    )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
