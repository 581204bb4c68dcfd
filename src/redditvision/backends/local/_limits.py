"""What the local backend's training accepts, and the import format it reads.

Declared here, next to the backend, and read by :func:`~redditvision.check_dataset`
through the backend registry. Importing this module imports neither torch nor
scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping

from redditvision.backends._protocol import TargetLimits

__all__ = ["IMPORT_FORMATS", "LIMITS"]

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

IMPORT_FORMATS: Mapping[str, str] = {"local_jsonl": ".jsonl"}
"""The local dataset file (``dataset.jsonl``: one labeled image per line)."""
