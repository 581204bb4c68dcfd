"""What both dataset writers share: the protocol, the result, the content-addressed layout."""

from __future__ import annotations

import json
import logging
import mimetypes
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from redditvision._files import file_digests
from redditvision.errors import DatasetError
from redditvision.models import DatasetLocation, LabeledDataset, LabeledImage

__all__ = ["DatasetWriter", "ProgressCallback", "UploadResult"]

logger = logging.getLogger("redditvision.storage")

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` in images, after each batch (skipped ones count)."""


@runtime_checkable
class DatasetWriter(Protocol):
    """Writes a dataset's images and import file; both writers here implement it."""

    def write(self, dataset: LabeledDataset, *, import_format: str = ...) -> UploadResult:
        """Write the images, then the import file.

        Args:
            dataset: The labeled (and usually split) dataset.
            import_format: One of :data:`~redditvision.storage.IMPORT_FORMATS`.

        Returns:
            What was written; ``.location`` is where the dataset lives.
        """
        ...


@attrs.frozen(kw_only=True)
class UploadResult:
    """What one write did.

    Attributes:
        location: Where the dataset lives (its import file lists only written images).
        uploaded: Images written by this run.
        skipped_unchanged: Images already there with the same checksum.
        bytes: Bytes of image data written by this run.
        failed: ``(image path, reason)`` of images that could not be written; they are
            left out of the import file.
    """

    location: DatasetLocation
    uploaded: int
    skipped_unchanged: int
    bytes: int
    failed: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Return the summary the CLI prints with ``--json-summary``.

        Returns:
            ``{"uploaded", "skipped_unchanged", "bytes", "failed", "images", "labels",
            "uri", "import_file", "import_format"}``.
        """
        return {
            "uploaded": self.uploaded,
            "skipped_unchanged": self.skipped_unchanged,
            "bytes": self.bytes,
            "failed": [{"path": path, "reason": reason} for path, reason in self.failed],
            "images": self.location.images,
            "labels": list(self.location.labels),
            "uri": self.location.uri,
            "import_file": self.location.import_file_uri,
            "import_format": self.location.import_format,
        }


@attrs.define
class _Item:
    image: LabeledImage
    name: str
    size: int
    md5: str
    content_type: str


def _extension(path: Path) -> str:
    ext = path.suffix.lower().lstrip(".")
    return {"jpeg": "jpg", "tif": "tiff"}.get(ext, ext) or "bin"


def _prepare(dataset: LabeledDataset, prefix: str) -> tuple[list[_Item], list[tuple[str, str]]]:
    """Hash every image and name its object; unreadable files go to the failures."""
    if not dataset.images:
        raise DatasetError("the dataset is empty; nothing to write (label some images first)")
    items: list[_Item] = []
    failed: list[tuple[str, str]] = []
    for image in dataset.images:
        try:
            digests = file_digests(image.path)
        except OSError as exc:
            failed.append((str(image.path), f"cannot read: {exc.strerror or exc}"))
            logger.warning("left out %s: cannot read it (%s)", image.path, exc)
            continue
        ext = _extension(image.path)
        name = "/".join(part for part in (prefix, image.label, f"{digests.sha256}.{ext}") if part)
        content_type = mimetypes.guess_type(f"x.{ext}")[0] or "application/octet-stream"
        items.append(
            _Item(
                image=attrs.evolve(image, sha256=digests.sha256),
                name=name,
                size=digests.size,
                md5=digests.md5_base64,
                content_type=content_type,
            )
        )
    return items, failed


def _label_map_json(dataset: LabeledDataset) -> str:
    mapping = dict(dataset.label_map) or {label: label for label in dataset.labels}
    return json.dumps(mapping, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def _atomic_write_text(path: Path, text: str) -> None:
    """Write a text file through a temporary name and a rename (no half file after a kill)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
