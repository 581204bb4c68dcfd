"""Generic labelers and the comparison of their labels with a custom model.

:class:`GenericLabeler` is what both the offline ImageNet labeler (local backend) and
``CloudVisionLabeler`` implement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs

from redditvision.models import GenericLabel

__all__ = ["GenericLabeler", "ImageLabels"]


@attrs.frozen(kw_only=True)
class ImageLabels:
    """The generic labels of one image, or the error that prevented them.

    Attributes:
        labels: Labels sorted by score, best first (unscored ones last).
        best_guess: The labeler's single best guess (Cloud Vision web detection's
            ``best_guess_labels``), or None.
        error: Why this image has no labels (e.g. the service's per-image
            ``response.error.message``), or None.
    """

    labels: tuple[GenericLabel, ...] = ()
    best_guess: str | None = None
    error: str | None = None


@runtime_checkable
class GenericLabeler(Protocol):
    """A labeler that knows generic classes only ("car", "sports car", "BMW").

    Attributes:
        name: ``"imagenet"``, ``"cloud_vision"``, ...
    """

    name: str

    def label(self, images: Sequence[bytes], *, max_results: int = 10) -> list[ImageLabels]:
        """Label encoded images.

        Args:
            images: Encoded image bytes.
            max_results: Labels to keep per image (default 10).

        Returns:
            One :class:`ImageLabels` per image, in input order; a failure for one image is
            recorded in its ``error`` and never raised for the whole batch.
        """
        ...

    def close(self) -> None:
        """Release clients; safe to call twice."""
        ...
