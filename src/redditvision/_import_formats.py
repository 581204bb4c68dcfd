"""Import-file formats of the training targets, read from the backends that declare them.

Each backend declares the formats it trains from, in its own module
(:data:`redditvision.backends.vertex.IMPORT_FORMATS`: ``vertex_csv``, ``vertex_jsonl``;
:data:`redditvision.backends.automl.IMPORT_FORMATS`: ``automl_csv``; the local backend's
``local_jsonl``), with the file name and the renderer. This module is what the dataset
writers use: :func:`render_import_file` and the views :data:`IMPORT_FORMATS` and
:data:`IMPORT_FILE_NAMES` over the backend registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, overload

from redditvision.errors import DatasetError
from redditvision.models import LabeledDataset, LabeledImage

__all__ = [
    "IMPORT_FILE_NAMES",
    "IMPORT_FORMATS",
    "ImportFormat",
    "local_line",
    "render_import_file",
]

ImportFormat = Literal["vertex_csv", "vertex_jsonl", "automl_csv", "local_jsonl"]
"""The import-file formats :func:`render_import_file` writes."""


class _FormatNames(Sequence[str]):
    """Every registered import format name (read from the registry on each use)."""

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        from redditvision.backends._registry import import_format_names

        return import_format_names()[index]

    def __len__(self) -> int:
        from redditvision.backends._registry import import_format_names

        return len(import_format_names())

    def __repr__(self) -> str:
        return repr(tuple(self))


class _FileNames(Mapping[str, str]):
    """Import format name -> its file name (read from the registry on each use)."""

    def __getitem__(self, name: str) -> str:
        from redditvision.backends._registry import import_format

        return import_format(name).file_name

    def __iter__(self) -> Iterator[str]:
        return iter(IMPORT_FORMATS)

    def __len__(self) -> int:
        return len(IMPORT_FORMATS)


IMPORT_FORMATS: Sequence[str] = _FormatNames()
"""Every import format, backend by backend (``local_jsonl``, ``vertex_csv``,
``vertex_jsonl``, ``automl_csv`` with the built-in backends)."""

IMPORT_FILE_NAMES: Mapping[str, str] = _FileNames()
"""File name of each import format inside a dataset folder or prefix."""


def render_import_file(
    dataset: LabeledDataset,
    import_format: str,
    *,
    uri_for: Callable[[LabeledImage], str],
) -> str:
    r"""Render the import file of a dataset as text, with the renderer of its backend.

    The built-in formats (one line per image, ``\n`` line ends):

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
    from redditvision.backends._registry import import_format as find_format

    try:
        kind = find_format(import_format)
    except KeyError:
        raise DatasetError(
            f"unknown import format {import_format!r}; choose one of {', '.join(IMPORT_FORMATS)}"
        ) from None
    return kind.render(dataset, uri_for)


def local_line(image: LabeledImage, path: str) -> dict[str, Any]:
    """Return one line of the ``local_jsonl`` format (``dataset.jsonl``) as a dict.

    Args:
        image: The image.
        path: Its path as written in the file (relative to the file's folder, or absolute).

    Returns:
        ``{"path", "label", "original_label", "ml_use", "sha256", "group", "source"}``.
    """
    from redditvision.backends.local._limits import local_line as line

    return line(image, path)
