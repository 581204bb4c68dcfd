"""What the local backend's training accepts, and the import format it reads.

Declared here, next to the backend, and read by :func:`~redditvision.check_dataset`
through the backend registry. Importing this module imports neither torch nor
scikit-learn.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from redditvision.backends._protocol import ImportFileFormat, TargetLimits
from redditvision.models import LabeledDataset, LabeledImage

__all__ = ["IMPORT_FORMATS", "JSONL_FORMAT", "LIMITS", "local_line", "render_jsonl"]

LIMITS = TargetLimits(
    name="local",
    # The local backend reads anything Pillow decodes; 2 images per label is the least a
    # classifier can be fitted and checked on.
    min_images_per_label=2,
    recommended_images_per_label=10,
    max_imbalance=100.0,
    formats=None,
    max_bytes=None,
)
"""Limits of the local backend."""


def local_line(image: LabeledImage, path: str) -> dict[str, Any]:
    """Return one line of the ``local_jsonl`` format (``dataset.jsonl``) as a dict.

    Args:
        image: The image.
        path: Its path as written in the file (relative to the file's folder, or absolute).

    Returns:
        ``{"path", "label", "original_label", "ml_use", "sha256", "group", "source"}``.
    """
    return {
        "path": path,
        "label": image.label,
        "original_label": image.original_label,
        "ml_use": image.ml_use.value if image.ml_use else None,
        "sha256": image.sha256,
        "group": image.group,
        "source": image.source,
    }


def render_jsonl(dataset: LabeledDataset, uri_for: Callable[[LabeledImage], str]) -> str:
    """Render ``dataset.jsonl``: one :func:`local_line` per image, ``path`` from ``uri_for``.

    Args:
        dataset: The dataset.
        uri_for: Maps an image to its path in the written dataset.

    Returns:
        The JSONL text, read back by :func:`~redditvision.storage.load_local_dataset`.
    """
    return "".join(
        json.dumps(local_line(image, uri_for(image)), ensure_ascii=False) + "\n"
        for image in dataset.images
    )


JSONL_FORMAT = ImportFileFormat(name="local_jsonl", file_name="dataset.jsonl", render=render_jsonl)
"""The local dataset file, ``dataset.jsonl``: one labeled image per line."""

IMPORT_FORMATS: Mapping[str, ImportFileFormat] = {JSONL_FORMAT.name: JSONL_FORMAT}
"""The local dataset file format, by name."""
