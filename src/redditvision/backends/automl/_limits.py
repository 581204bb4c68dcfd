"""What legacy AutoML v1 image classification accepted: limits, import format, names.

Importing this module imports no Google client (the backend registry reads :data:`LIMITS`).
Sources: AutoML Vision (v1) "Preparing your training data" (formats, 30 MB, at least 10
images per label), the ``ImageClassificationModelMetadata`` reference (model types and
``train_budget_milli_node_hours`` ranges), ``Dataset.display_name`` (32 characters of
``[A-Za-z0-9_]``, a letter first).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping

from redditvision.backends._protocol import ImportFileFormat, TargetLimits
from redditvision.models import LabeledDataset, LabeledImage, MLUse

__all__ = [
    "AUTOML_SHUTDOWN_NOTICE",
    "CSV_FORMAT",
    "IMPORT_FORMATS",
    "LIMITS",
    "MAX_PREDICT_IMAGE_BYTES",
    "ML_USE",
    "MODEL_TYPE_BUDGETS",
    "SERVICE",
    "AutoMLShutdownWarning",
    "automl_display_name",
    "normalize_model_type",
    "render_csv",
]

SERVICE = "automl"
"""The service name in errors and the backend's registry name."""

LIMITS = TargetLimits(
    name="automl",
    # AutoML Vision (v1) "Preparing your training data": JPEG, PNG, WEBP, GIF, BMP, TIFF,
    # ICO; 30 MB; >= 10 per label.
    min_images_per_label=10,
    recommended_images_per_label=100,
    max_imbalance=100.0,
    formats=frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "ICO"}),
    max_bytes=30 * 1024 * 1024,
)
"""Training limits of AutoML Vision (v1) image classification."""

ML_USE: Mapping[MLUse | None, str] = {
    MLUse.TRAINING: "TRAIN",
    MLUse.VALIDATION: "VALIDATION",
    MLUse.TEST: "TEST",
    None: "UNASSIGNED",
}
"""The first column of an AutoML v1 import CSV for each ML use."""


def render_csv(dataset: LabeledDataset, uri_for: Callable[[LabeledImage], str]) -> str:
    """Render the AutoML Vision v1 import CSV: ``TRAIN|VALIDATION|TEST|UNASSIGNED,gs://...,label``.

    Args:
        dataset: The dataset.
        uri_for: Maps an image to its ``gs://`` URI.

    Returns:
        The CSV text, one line per image.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for image in dataset.images:
        writer.writerow([ML_USE[image.ml_use], uri_for(image), image.label])
    return buffer.getvalue()


CSV_FORMAT = ImportFileFormat(name="automl_csv", file_name="import_automl.csv", render=render_csv)
"""The AutoML v1 import CSV, ``import_automl.csv``."""

IMPORT_FORMATS: Mapping[str, ImportFileFormat] = {CSV_FORMAT.name: CSV_FORMAT}
"""The AutoML v1 import CSV: rows ``TRAIN|VALIDATION|TEST|UNASSIGNED,gs://...,label``."""

AUTOML_SHUTDOWN_NOTICE = (
    "Google shut the legacy AutoML API (google-cloud-automl, AutoML v1) down for Vision "
    "image classification on 2024-03-31; use VertexAutoMLBackend (AutoML image "
    "classification in Vertex AI) instead. See docs/backends/automl for the migration."
)
"""The warning text: the service's shutdown date and where to go instead."""

MAX_PREDICT_IMAGE_BYTES = 30 * 1024 * 1024
"""Largest ``image_bytes`` of one online prediction: 30 MB for AutoML Vision classification
(``PredictionServiceClient.predict`` documentation of ``google-cloud-automl``)."""

MODEL_TYPE_BUDGETS: Mapping[str, tuple[int, int]] = {
    "cloud": (8_000, 800_000),
    "mobile-low-latency-1": (1_000, 100_000),
    "mobile-versatile-1": (1_000, 100_000),
    "mobile-high-accuracy-1": (1_000, 100_000),
    "mobile-core-ml-low-latency-1": (1_000, 100_000),
    "mobile-core-ml-versatile-1": (1_000, 100_000),
    "mobile-core-ml-high-accuracy-1": (1_000, 100_000),
}
"""Model type -> inclusive range in milli node hours
(``ImageClassificationModelMetadata.train_budget_milli_node_hours``)."""

_DISPLAY_NAME_MAX = 32  # Dataset/Model.display_name: up to 32 of [A-Za-z0-9_], letter first.


def normalize_model_type(model_type: str) -> str:
    """Return the AutoML v1 spelling of a model type, accepting Vertex AI spellings too.

    ``CLOUD`` becomes ``cloud`` and ``MOBILE_TF_LOW_LATENCY_1`` ``mobile-low-latency-1``.

    Args:
        model_type: The name given.

    Returns:
        The lowercase, dashed name (a key of :data:`MODEL_TYPE_BUDGETS` when known).
    """
    return model_type.strip().lower().replace("_", "-").replace("mobile-tf-", "mobile-")


class AutoMLShutdownWarning(UserWarning):
    """Warns that legacy AutoML v1 no longer serves Vision (shut down on 2024-03-31).

    A ``UserWarning`` (shown by default, unlike ``DeprecationWarning`` in library code) so
    that users of :class:`LegacyAutoMLBackend` see it; filter it with
    ``warnings.filterwarnings("ignore", category=AutoMLShutdownWarning)``.
    """


def automl_display_name(name: str, *, suffix: str = "") -> str:
    """Make a display name that AutoML v1 accepts.

    AutoML v1 ``Dataset.display_name`` and ``Model.display_name`` allow up to 32 ASCII
    letters, digits and underscores, starting with a letter.

    Args:
        name: Any name, e.g. the dataset's name ``"r/BMW cars"``.
        suffix: Appended after an underscore (kept whole; the name is shortened instead).

    Returns:
        The name with other characters replaced by ``_``, a leading ``d`` added when it
        does not start with a letter, shortened to 32 characters.
    """
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "redditvision"
    if not cleaned[0].isalpha():
        cleaned = f"d{cleaned}"
    tail = f"_{suffix}" if suffix else ""
    return cleaned[: _DISPLAY_NAME_MAX - len(tail)].rstrip("_") + tail
