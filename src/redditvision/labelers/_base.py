"""The shared types of generic labelers: :class:`ImageLabels` and :class:`GenericLabeler`.

A leaf module: it imports nothing of this package but :mod:`redditvision.models`, so the
labelers, the comparison, the local backend and the Beam transforms can all use these types
without importing one another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs

from redditvision.models import GenericLabel

__all__ = ["GenericLabel", "GenericLabeler", "ImageLabels"]


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

    Implementations: :class:`~redditvision.labelers.CloudVisionLabeler` and
    :class:`~redditvision.labelers.ImageNetLabeler`; any object with these members works.

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
