"""A tiny, fast model for the serving and classify tests.

:class:`ThumbnailExtractor` is a real :class:`~redditvision.backends.local.FeatureExtractor`
(an 8 x 8 RGB thumbnail, 192 features, decoded by Pillow): models trained with it predict in
microseconds, so tests of the server, the REST backend and ``classify`` stay fast. The
EfficientNet extractor is exercised by the local backend's own tests and the slow CLI test.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from redditvision.backends.local import Candidate, ImageDecodeError, LocalBackend
from redditvision.classify import Classifier
from redditvision.models import LabeledDataset, LabeledImage, MLUse, TrainedModel

FOLDERS = {
    "z3_4_8": ("BMW Z4 Convertible 2012", "z3-4-8"),
    "x_suv": ("BMW X5 SUV 2007", "x-suv"),
    "L_3_4series": ("BMW 3 Series Sedan 2012", "3-4series"),
}
USES = [MLUse.TRAINING] * 6 + [MLUse.VALIDATION, MLUse.TEST]


class ThumbnailExtractor:
    """8 x 8 RGB thumbnails scaled to [0, 1]: 192 features per image."""

    id = "test-thumbnail-8"
    version = "1"
    dim = 192
    preprocessing: dict[str, Any] = {"resize": "8x8 box", "scale": "x / 255"}

    def extract(
        self, images: Sequence[bytes], *, augmentation: str = "none"
    ) -> NDArray[np.float32]:
        rows = []
        for index, data in enumerate(images):
            try:
                with Image.open(io.BytesIO(data)) as opened:
                    picture = opened.convert("RGB").resize((8, 8), Image.Resampling.BOX)
            except Exception as exc:
                raise ImageDecodeError(
                    f"image {index} cannot be decoded: {exc}", index=index
                ) from exc
            if augmentation == "hflip":
                picture = ImageOps.mirror(picture)
            rows.append(np.asarray(picture, dtype=np.float32).reshape(-1) / 255.0)
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack(rows)


def photos(bmw_photos: Path) -> dict[str, list[Path]]:
    """Eight photos of each of three BMW models, by label."""
    return {
        label: sorted((bmw_photos / folder).iterdir())[:8] for label, (folder, _) in FOLDERS.items()
    }


_TRAINED: dict[Path, TrainedModel] = {}


def tiny_model(bmw_photos: Path) -> TrainedModel:
    """The thumbnail model, trained once per test session into a temporary folder."""
    if bmw_photos not in _TRAINED:
        folder = Path(tempfile.mkdtemp(prefix="redditvision-tiny-model-")) / "model"
        _TRAINED[bmw_photos] = train_tiny_model(bmw_photos, folder)
    return _TRAINED[bmw_photos]


def wait_ready(url: str, *, api_key: str | None = None) -> None:
    """Poll ``GET /health`` until the model is loaded (at most about 30 s)."""
    for _ in range(600):
        if httpx.get(url + "/health", timeout=5).status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"{url} never became ready")


def holdout_images(bmw_photos: Path, count: int = 12) -> list[bytes]:
    """Real photos not used for training, from every folder in turn."""
    folders = [sorted((bmw_photos / folder).iterdir())[8:] for folder, _ in FOLDERS.values()]
    picked = [paths[i] for i in range(count) for paths in folders][:count]
    return [path.read_bytes() for path in picked]


def train_tiny_model(bmw_photos: Path, folder: Path) -> TrainedModel:
    """Train the thumbnail model on 24 real photos into ``folder`` (seconds)."""
    images = [
        LabeledImage(path=path, label=label, original_label=FOLDERS[label][1], ml_use=use)
        for label, paths in photos(bmw_photos).items()
        for path, use in zip(paths, USES, strict=True)
    ]
    dataset = LabeledDataset(
        images=tuple(images),
        label_map={label: original for label, (_, original) in FOLDERS.items()},
        name="bmw-thumbnails",
    )
    with LocalBackend(
        extractor=ThumbnailExtractor(),
        use_cache=False,
        model_dir=folder.parent,
        candidates=[Candidate(name="logreg", head="logreg", c=1.0, train_flip=False)],
    ) as backend:
        return backend.train(dataset, out=folder)


def tiny_classifier(model: TrainedModel | Path, *, batch_size: int = 32) -> Classifier:
    """A classifier over a thumbnail model folder."""
    resource = model.resource if isinstance(model, TrainedModel) else str(model)
    return Classifier(
        TrainedModel(backend="local", resource=resource),
        backend=LocalBackend(extractor=ThumbnailExtractor(), use_cache=False),
        batch_size=batch_size,
    )


SERVE_SCRIPT = """
import sys
from redditvision.serve import serve
sys.path.insert(0, {tests!r})
from serve_support import tiny_classifier

with tiny_classifier({folder!r}) as classifier:
    _ = classifier.predictor
    serve(classifier, port=0, on_ready=lambda url: print("READY", url, flush=True),
          max_wait={max_wait!r}, max_batch_size={max_batch_size!r})
print("STOPPED", flush=True)
"""


def serve_command(folder: Path, *, max_wait: float = 0.005, max_batch_size: int = 32) -> list[str]:
    """A ``python -c`` command serving the thumbnail model on a free port, printing READY URL."""
    script = SERVE_SCRIPT.format(
        tests=str(Path(__file__).parent),
        folder=str(folder),
        max_wait=max_wait,
        max_batch_size=max_batch_size,
    )
    return [sys.executable, "-c", script]
