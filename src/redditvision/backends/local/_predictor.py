"""``LocalPredictor``: a loaded model folder (frozen-feature or fine-tuned) that predicts."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from redditvision.backends.local._backbones import FineTunedExtractor, load_weights, make_backbone
from redditvision.backends.local._deps import require
from redditvision.backends.local._extractor import (
    FeatureExtractor,
    ImageDecodeError,
    extract_views,
)
from redditvision.backends.local._folder import WEIGHTS_FILE, load_head, read_manifest
from redditvision.backends.local._search import probabilities
from redditvision.errors import ConfigError, ModelFormatError, PredictionError
from redditvision.models import Prediction

__all__ = ["LocalPredictor", "folder_extractor"]


def folder_extractor(
    folder: Path,
    manifest: Mapping[str, Any],
    extractor: FeatureExtractor,
    *,
    device: str | None = None,
) -> FeatureExtractor:
    """Return the extractor that computes a model folder's features.

    A fine-tuned folder (with ``network`` and ``network.safetensors``) gets its own network,
    built without pretrained weights and loaded from the folder (``extractor``'s
    ``num_threads`` is kept); a frozen-feature folder needs ``extractor`` itself, with the
    id and version it records.

    Raises:
        ModelFormatError: The extractor does not match, or the weights do not fit.
        MissingDependencyError: The backbone's extra is not installed.
    """
    network = manifest.get("network")
    if network is not None:
        st = require("safetensors.torch")
        path = folder / WEIGHTS_FILE
        try:
            state = st.load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types on bad files
            raise ModelFormatError(f"{path} cannot be read as safetensors: {exc}") from exc
        try:
            backbone = make_backbone(
                network["backbone"], image_size=network["image_size"], pretrained=False
            )
        except ConfigError as exc:
            raise ModelFormatError(
                f"{folder} names a backbone that cannot be built: {exc}"
            ) from exc
        load_weights(backbone, state, source=str(path))
        return FineTunedExtractor(
            backbone,
            version=manifest["files"][WEIGHTS_FILE],
            num_threads=getattr(extractor, "num_threads", None),
            device=device,
        )
    recorded = manifest["extractor"]
    if (recorded.get("id"), recorded.get("version")) != (extractor.id, extractor.version):
        raise ModelFormatError(
            f"{folder} was trained with extractor {recorded.get('id')!r} version "
            f"{recorded.get('version')!r}, but this backend uses {extractor.id!r} version "
            f"{extractor.version!r}: retrain the model with this version, or install the "
            "redditvision version that trained it"
        )
    return extractor


class LocalPredictor:
    """A loaded local model folder that answers predictions (a :class:`Predictor`).

    Fine-tuned folders bring their own network (``network.safetensors``); frozen-feature
    folders use ``extractor``. Prediction runs in batches of the extractor's batch size;
    with TTA (when the folder says so) the probabilities of an image and its mirror are
    averaged.

    Args:
        folder: The model folder.
        extractor: The feature extractor of frozen-feature folders; must have the id and
            version the folder records.
        device: torch device of a fine-tuned network (default ``cuda`` when available).

    Raises:
        ModelFormatError: The folder is missing, tampered with, from a format this version
            does not read, inconsistent (labels vs head) or from another extractor version.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        extractor: FeatureExtractor,
        device: str | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.extractor = folder_extractor(self.folder, self.manifest, extractor, device=device)
        self.head: Any = load_head(self.folder, self.manifest)
        self.labels: tuple[str, ...] = tuple(self.manifest["labels"])
        self.label_map: dict[str, str] = dict(self.manifest.get("label_map", {}))
        self.tta = bool(self.manifest.get("head", {}).get("tta", False))
        self._closed = False

    def __repr__(self) -> str:
        return f"LocalPredictor({str(self.folder)!r}, labels={len(self.labels)}, tta={self.tta})"

    def probabilities(self, images: Sequence[bytes]) -> NDArray[np.float64]:
        """Return class probabilities, columns in :attr:`labels` order.

        Args:
            images: Encoded images.

        Returns:
            Shape (len(images), len(labels)).

        Raises:
            PredictionError: An image cannot be decoded (named by its position).
        """
        if self._closed:
            raise PredictionError(f"the predictor of {self.folder} is closed")
        if not images:
            return np.zeros((0, len(self.labels)))
        try:
            views = extract_views(
                self.extractor, images, ("none", "hflip") if self.tta else ("none",)
            )
            proba = probabilities(self.head, views["none"], len(self.labels))
            if self.tta:
                proba = (proba + probabilities(self.head, views["hflip"], len(self.labels))) / 2
        except ImageDecodeError as exc:
            raise PredictionError(f"{exc.message}; pass JPEG, PNG, GIF, WebP or BMP bytes") from exc
        return proba

    def predict(
        self,
        images: Sequence[bytes],
        *,
        confidence_threshold: float = 0.0,
        max_predictions: int | None = None,
    ) -> list[list[Prediction]]:
        """Predict labels for encoded images (see :meth:`Predictor.predict`).

        Args:
            images: Encoded image bytes, any format Pillow reads.
            confidence_threshold: Drop predictions scored below this (default 0.0).
            max_predictions: Keep at most this many per image, or None for all.

        Returns:
            One list per image, best first, labels in the user's names; ``[]`` for no images.

        Raises:
            PredictionError: An image cannot be decoded, or the predictor is closed.
        """
        proba = self.probabilities(images)
        results: list[list[Prediction]] = []
        for row in proba:
            order = np.argsort(-row, kind="stable")
            predictions = [
                Prediction(
                    label=self.label_map.get(self.labels[j], self.labels[j]),
                    score=float(row[j]),
                    model_label=self.labels[j],
                )
                for j in order
                if row[j] >= confidence_threshold
            ]
            results.append(predictions[:max_predictions] if max_predictions else predictions)
        return results

    def close(self) -> None:
        """Drop the loaded head and network; safe to call twice."""
        self._closed = True
        self.head = None
