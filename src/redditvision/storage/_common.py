"""What both dataset writers share: the protocol, the result, the content-addressed layout."""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from redditvision._files import file_digests
from redditvision.checks import sniff_format
from redditvision.errors import ConfigError, DatasetError
from redditvision.labels._names import LABEL_PATTERN
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


def validate_prefix(prefix: str, *, where: str) -> str:
    """Check an object-name prefix: folders separated by single ``/``, no ``.`` or ``..``.

    Leading and trailing ``/`` are dropped. Cloud Storage object names may hold ``./.`` or
    ``a//b``, but such names break the folder view of the console and of ``gcloud``, and a
    local ``..`` would write outside the writer's folder; both writers refuse them.

    Args:
        prefix: The prefix as given.
        where: What it is for, in the message (e.g. ``"Cloud Storage prefix"``).

    Returns:
        The prefix without leading and trailing ``/`` (``""`` for none).

    Raises:
        ConfigError: Empty segments, ``.`` or ``..`` segments, a backslash or a control
            character; the message names the fix.
    """
    cleaned = prefix.strip("/")
    if not cleaned:
        return ""
    problem = ""
    segments = cleaned.split("/")
    if any(not segment for segment in segments):
        problem = "has an empty folder ('//')"
    elif any(segment in (".", "..") for segment in segments):
        problem = "has a '.' or '..' folder"
    elif "\\" in cleaned or any(ord(char) < 32 or ord(char) == 127 for char in cleaned):
        problem = "holds a backslash or a control character"
    elif len(cleaned.encode("utf-8")) > 512:
        problem = "is longer than 512 bytes (object names are at most 1024)"
    if problem:
        raise ConfigError(
            f"{where} {prefix!r} {problem}; give folder names separated by single '/', "
            "e.g. 'bmw/v1'"
        )
    return cleaned


def _refusal(image: LabeledImage, images_root: Path | None) -> tuple[Path | None, str]:
    """Re-check one image before it is written: a regular image file, inside the root."""
    if not LABEL_PATTERN.match(image.label):
        return None, f"label {image.label!r} is not a valid service label"
    try:
        resolved = image.path.resolve(strict=True)
        regular = stat.S_ISREG(resolved.stat().st_mode)
    except (OSError, RuntimeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return None, f"cannot read: {reason}"
    if images_root is not None and not resolved.is_relative_to(images_root):
        return None, f"resolves to {resolved}, outside the images folder {images_root}"
    if not regular:
        return None, "is not a regular file"
    if sniff_format(resolved) is None:
        return None, "is not an image Pillow can read"
    return resolved, ""


def _prepare(
    dataset: LabeledDataset, prefix: str, *, images_root: Path | None = None
) -> tuple[list[_Item], list[tuple[str, str]]]:
    """Re-check, hash and name every image; refused or unreadable ones go to the failures.

    The dataset may come from a file written elsewhere, so each image is checked again
    before anything is written: its label must be a valid service label (it becomes a
    folder), and its path must resolve (symlinks followed) to a regular file Pillow reads
    as an image, inside ``images_root`` when one is given.
    """
    if not dataset.images:
        raise DatasetError("the dataset is empty; nothing to write (label some images first)")
    root = images_root.resolve() if images_root is not None else None
    items: list[_Item] = []
    failed: list[tuple[str, str]] = []
    for image in dataset.images:
        resolved, reason = _refusal(image, root)
        if resolved is None:
            failed.append((str(image.path), reason))
            logger.warning("left out %s: %s", image.path, reason)
            continue
        try:
            digests = file_digests(resolved)
        except OSError as exc:
            failed.append((str(image.path), f"cannot read: {exc.strerror or exc}"))
            logger.warning("left out %s: cannot read it (%s)", image.path, exc)
            continue
        ext = _extension(image.path)
        name = "/".join(part for part in (prefix, image.label, f"{digests.sha256}.{ext}") if part)
        content_type = mimetypes.guess_type(f"x.{ext}")[0] or "application/octet-stream"
        items.append(
            _Item(
                image=attrs.evolve(image, path=resolved, sha256=digests.sha256),
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
