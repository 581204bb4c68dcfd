"""What Vertex AI AutoML image classification accepts: schemas, limits, import formats.

Everything here is a figure or a name from the Vertex AI documentation; importing this
module imports no Google client (the backend registry reads :data:`LIMITS` from it).

Sources: Vertex AI docs "Prepare image training data" (import file, ML_USE, formats,
30 MB, at least 10 images per label), the ``AutoMlImageClassificationInputs`` reference
(model types and budget ranges), "Get online predictions from an AutoML image model"
(1.5 MB limit), "Get batch predictions from an AutoML image model" (instances file).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from redditvision.backends._protocol import ImportFileFormat, TargetLimits
from redditvision.errors import ConfigError
from redditvision.models import LabeledDataset, LabeledImage, MLUse

__all__ = [
    "AUTOML_IMAGE_CLASSIFICATION_DEFINITION",
    "CSV_FORMAT",
    "IMAGE_DATASET_METADATA_SCHEMA",
    "IMAGE_SINGLE_LABEL_IMPORT_SCHEMA",
    "IMPORT_FORMATS",
    "JSONL_FORMAT",
    "LIMITS",
    "ML_USE_KEY",
    "ML_USE_LABEL",
    "MODEL_TYPE_BUDGETS",
    "ONLINE_PREDICTION_LIMIT_BYTES",
    "RUN_LABEL",
    "SERVICE",
    "batch_instances",
    "image_uris_from_import_csv",
    "normalize_model_type",
    "render_csv",
    "render_jsonl",
]

SERVICE = "vertex"
"""The service name in errors and the backend's registry name."""

LIMITS = TargetLimits(
    name="vertex",
    # "Prepare image training data": JPEG, GIF, PNG, BMP, ICO; 30 MB; >= 10 per label;
    # largest/smallest label <= 100 recommended.
    min_images_per_label=10,
    recommended_images_per_label=100,
    max_imbalance=100.0,
    formats=frozenset({"JPEG", "GIF", "PNG", "BMP", "ICO"}),
    max_bytes=30 * 1024 * 1024,
)
"""Training limits of Vertex AI AutoML image classification."""

IMAGE_DATASET_METADATA_SCHEMA = (
    "gs://google-cloud-aiplatform/schema/dataset/metadata/image_1.0.0.yaml"
)
"""``Dataset.metadata_schema_uri`` of an image dataset (Vertex AI dataset schemas)."""

IMAGE_SINGLE_LABEL_IMPORT_SCHEMA = (
    "gs://google-cloud-aiplatform/schema/dataset/ioformat/"
    "image_classification_single_label_io_format_1.0.0.yaml"
)
"""``ImportDataConfig.import_schema_uri`` for single-label image classification (CSV or JSONL)."""

AUTOML_IMAGE_CLASSIFICATION_DEFINITION = (
    "gs://google-cloud-aiplatform/schema/trainingjob/definition/"
    "automl_image_classification_1.0.0.yaml"
)
"""``TrainingPipeline.training_task_definition`` of AutoML image classification."""

ML_USE_LABEL = "aiplatform.googleapis.com/ml_use"
"""The data item label that the import file's ``ML_USE`` column sets (training|validation|test);
it is honoured only by a filter split on it."""

MODEL_TYPE_BUDGETS: Mapping[str, tuple[int, int]] = {
    "CLOUD": (8_000, 800_000),
    "MOBILE_TF_LOW_LATENCY_1": (1_000, 100_000),
    "MOBILE_TF_VERSATILE_1": (1_000, 100_000),
    "MOBILE_TF_HIGH_ACCURACY_1": (1_000, 100_000),
}
"""Model type -> inclusive budget range in milli node hours
(``AutoMlImageClassificationInputs.budgetMilliNodeHours``)."""

ONLINE_PREDICTION_LIMIT_BYTES = 1_500_000
"""Largest base64 ``content`` of one online prediction instance (Vertex AI: 1.5 MB)."""

ML_USE_KEY = ML_USE_LABEL
"""The data item label key of a JSONL line's ``dataItemResourceLabels``."""

RUN_LABEL = "redditvision-run"
"""Resource label holding the run id, used to find a create whose answer was lost."""

MIME_TYPES: Mapping[str, str] = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
    ".ico": "image/vnd.microsoft.icon",
    ".webp": "image/webp",
}
"""File suffix -> ``mimeType`` of a batch prediction instance."""


def normalize_model_type(model_type: str) -> str:
    """Return the Vertex AI spelling of a model type.

    Accepts the Vertex AI names (``CLOUD``, ``MOBILE_TF_VERSATILE_1``, ...) in any case, with
    ``-`` or ``_``, and the legacy AutoML v1 names (``cloud``, ``mobile-versatile-1``,
    ``mobile-low-latency-1``, ``mobile-high-accuracy-1``), so one ``--model-type`` serves
    both cloud backends.

    Args:
        model_type: The name given.

    Returns:
        A key of :data:`MODEL_TYPE_BUDGETS`.

    Raises:
        ConfigError: The name is not a known model type.
    """
    name = model_type.strip().upper().replace("-", "_")
    if name.startswith("MOBILE_") and not name.startswith("MOBILE_TF_"):
        name = "MOBILE_TF_" + name[len("MOBILE_") :]
    if name not in MODEL_TYPE_BUDGETS:
        raise ConfigError(
            f"unknown model_type {model_type!r}; use one of {', '.join(MODEL_TYPE_BUDGETS)}"
        )
    return name


def image_uris_from_import_csv(text: str, *, ml_use: str | None = None) -> list[str]:
    """Read the image URIs of a Vertex AI import CSV (``[ML_USE,]GCS_FILE_PATH[,LABEL]``).

    Args:
        text: The CSV text.
        ml_use: Keep only rows of this split (``"training"``, ``"validation"``,
            ``"test"``); rows without an ML_USE column are kept only when None.

    Returns:
        The ``gs://`` URIs, in file order.
    """
    uris: list[str] = []
    for row in csv.reader(io.StringIO(text)):
        cells = [cell.strip() for cell in row]
        if not cells or not any(cells):
            continue
        if cells[0].startswith("gs://"):
            if ml_use is None:
                uris.append(cells[0])
        elif (
            len(cells) > 1
            and cells[1].startswith("gs://")
            and (ml_use is None or cells[0].lower() == ml_use)
        ):
            uris.append(cells[1])
    return uris


def batch_instances(image_uris: Sequence[str]) -> str:
    """Build the JSONL instances file of an AutoML image batch prediction.

    Each line is ``{"content": "gs://...", "mimeType": "image/jpeg"}`` (Vertex AI "Get batch
    predictions from an AutoML image model"); the MIME type comes from the file suffix.

    Args:
        image_uris: ``gs://`` URIs of the images.

    Returns:
        The JSONL text, one line per image, ending in a newline.

    Raises:
        ConfigError: A URI is not on Cloud Storage or its suffix is not an image type.
    """
    lines = []
    for uri in image_uris:
        suffix = os.path.splitext(uri)[1].lower()
        if not uri.startswith("gs://") or suffix not in MIME_TYPES:
            raise ConfigError(
                f"batch prediction reads gs:// images ({', '.join(sorted(MIME_TYPES))}); got {uri}"
            )
        lines.append(json.dumps({"content": uri, "mimeType": MIME_TYPES[suffix]}))
    return "\n".join(lines) + "\n" if lines else ""


def render_csv(dataset: LabeledDataset, uri_for: Callable[[LabeledImage], str]) -> str:
    """Render the Vertex AI image classification CSV, ``[ML_USE,]GCS_FILE_PATH[,LABEL]``.

    ML_USE is ``training``, ``validation`` or ``test``; the column is left out when the
    dataset is unsplit (Vertex AI then splits it itself).

    Args:
        dataset: The dataset.
        uri_for: Maps an image to its ``gs://`` URI.

    Returns:
        The CSV text, one line per image.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    unsplit = all(image.ml_use is None for image in dataset.images)
    for image in dataset.images:
        uri = uri_for(image)
        if unsplit:
            writer.writerow([uri, image.label])
        else:
            use = image.ml_use.value if image.ml_use else MLUse.TRAINING.value
            writer.writerow([use, uri, image.label])
    return buffer.getvalue()


def render_jsonl(dataset: LabeledDataset, uri_for: Callable[[LabeledImage], str]) -> str:
    """Render the Vertex AI single-label JSONL import file.

    Each line is ``{"imageGcsUri": ..., "classificationAnnotation": {"displayName": label},
    "dataItemResourceLabels": {"aiplatform.googleapis.com/ml_use": ml_use}}`` (the labels
    only when the image has an ML use).

    Args:
        dataset: The dataset.
        uri_for: Maps an image to its ``gs://`` URI.

    Returns:
        The JSONL text.
    """
    lines = []
    for image in dataset.images:
        line: dict[str, Any] = {
            "imageGcsUri": uri_for(image),
            "classificationAnnotation": {"displayName": image.label},
        }
        if image.ml_use is not None:
            line["dataItemResourceLabels"] = {ML_USE_KEY: image.ml_use.value}
        lines.append(json.dumps(line, ensure_ascii=False) + "\n")
    return "".join(lines)


CSV_FORMAT = ImportFileFormat(name="vertex_csv", file_name="import.csv", render=render_csv)
"""The CSV import file, ``import.csv``."""

JSONL_FORMAT = ImportFileFormat(name="vertex_jsonl", file_name="import.jsonl", render=render_jsonl)
"""The JSON Lines import file, ``import.jsonl``."""

IMPORT_FORMATS: Mapping[str, ImportFileFormat] = {
    CSV_FORMAT.name: CSV_FORMAT,
    JSONL_FORMAT.name: JSONL_FORMAT,
}
"""Import formats Vertex AI reads, by name: the CSV ``[ML_USE,]GCS_FILE_PATH[,LABEL]`` and
the JSON Lines ``imageGcsUri``/``classificationAnnotation`` form."""
