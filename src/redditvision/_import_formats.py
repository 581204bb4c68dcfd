"""Import-file formats of the training targets: one line per image.

A temporary home: each cloud's formats (the ML-use keys, the CSV and JSONL shapes) move into
its backend module.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from redditvision.errors import DatasetError
from redditvision.models import LabeledDataset, LabeledImage, MLUse

__all__ = [
    "AUTOML_ML_USE",
    "IMPORT_FILE_NAMES",
    "IMPORT_FORMATS",
    "VERTEX_ML_USE_KEY",
    "ImportFormat",
    "local_line",
    "render_import_file",
]

ImportFormat = Literal["vertex_csv", "vertex_jsonl", "automl_csv", "local_jsonl"]
"""The import-file formats :func:`render_import_file` writes."""

IMPORT_FORMATS: tuple[str, ...] = ("vertex_csv", "vertex_jsonl", "automl_csv", "local_jsonl")
"""Every import format, in the order the docs list them."""

IMPORT_FILE_NAMES: Mapping[str, str] = {
    "vertex_csv": "import.csv",
    "vertex_jsonl": "import.jsonl",
    "automl_csv": "import_automl.csv",
    "local_jsonl": "dataset.jsonl",
}
"""File name of each import format inside a dataset folder or prefix."""

VERTEX_ML_USE_KEY = "aiplatform.googleapis.com/ml_use"
AUTOML_ML_USE = {
    MLUse.TRAINING: "TRAIN",
    MLUse.VALIDATION: "VALIDATION",
    MLUse.TEST: "TEST",
    None: "UNASSIGNED",
}


def render_import_file(
    dataset: LabeledDataset,
    import_format: str,
    *,
    uri_for: Callable[[LabeledImage], str],
) -> str:
    r"""Render the import file of a dataset as text.

    Formats (one line per image, ``\n`` line ends):

    * ``vertex_csv``: ``ml_use,gs://...,label`` with ml_use ``training``, ``validation``
      or ``test`` (Vertex AI image classification CSV, ``[ML_USE,]GCS_FILE_PATH[,LABEL]``;
      the ml_use column is left out when the dataset is unsplit);
    * ``vertex_jsonl``: ``{"imageGcsUri": ..., "classificationAnnotation":
      {"displayName": label}, "dataItemResourceLabels":
      {"aiplatform.googleapis.com/ml_use": ml_use}}`` (Vertex AI single-label JSONL);
    * ``automl_csv``: ``TRAIN|VALIDATION|TEST|UNASSIGNED,gs://...,label`` (legacy AutoML
      Vision v1 CSV);
    * ``local_jsonl``: ``{"path", "label", "original_label", "ml_use", "sha256",
      "group", "source"}`` per image, read by
      :func:`~redditvision.storage.load_local_dataset`; here ``path``
      is what ``uri_for`` returns.

    Args:
        dataset: The dataset.
        import_format: One of :data:`IMPORT_FORMATS`.
        uri_for: Maps an image to its URI in the written dataset (``gs://`` or
            ``file://``; for ``local_jsonl`` a path).

    Returns:
        The file's text.

    Raises:
        DatasetError: Unknown format.
    """
    buffer = io.StringIO()
    if import_format in ("vertex_csv", "automl_csv"):
        writer = csv.writer(buffer, lineterminator="\n")
        unsplit = all(image.ml_use is None for image in dataset.images)
        for image in dataset.images:
            uri = uri_for(image)
            if import_format == "automl_csv":
                writer.writerow([AUTOML_ML_USE[image.ml_use], uri, image.label])
            elif unsplit:
                writer.writerow([uri, image.label])
            else:
                use = image.ml_use.value if image.ml_use else MLUse.TRAINING.value
                writer.writerow([use, uri, image.label])
    elif import_format == "vertex_jsonl":
        for image in dataset.images:
            line: dict[str, Any] = {
                "imageGcsUri": uri_for(image),
                "classificationAnnotation": {"displayName": image.label},
            }
            if image.ml_use is not None:
                line["dataItemResourceLabels"] = {VERTEX_ML_USE_KEY: image.ml_use.value}
            buffer.write(json.dumps(line, ensure_ascii=False) + "\n")
    elif import_format == "local_jsonl":
        for image in dataset.images:
            buffer.write(json.dumps(local_line(image, uri_for(image)), ensure_ascii=False))
            buffer.write("\n")
    else:
        raise DatasetError(
            f"unknown import format {import_format!r}; choose one of {', '.join(IMPORT_FORMATS)}"
        )
    return buffer.getvalue()


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
