"""Label images by folder name, optionally grouped and renamed by a TOML label map."""

from __future__ import annotations

import fnmatch
import logging
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from redditvision._files import file_sha256
from redditvision.errors import DatasetError
from redditvision.labels._names import dataset_name, with_label_map
from redditvision.models import LabeledDataset

__all__ = ["IMAGE_SUFFIXES", "LabelMap", "image_sha256", "label_folders", "read_toml"]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".ico", ".webp", ".tif", ".tiff"}
)
"""File suffixes (lower case) that the folder labeler treats as images."""


def image_sha256(path: Path) -> str:
    """Return the hex SHA-256 of an image file being labeled.

    Args:
        path: The file.

    Returns:
        64 lower-case hex digits.

    Raises:
        DatasetError: The file cannot be read (names it).
    """
    try:
        return file_sha256(path)
    except OSError as exc:
        raise DatasetError(f"cannot read image {path}: {exc.strerror or exc}") from exc


def _is_image_file(path: Path) -> bool:
    return (
        path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    )


@attrs.frozen
class LabelMap:
    """Groups and renames folders: target label -> glob patterns over folder names.

    Written in TOML as a ``[labels]`` table whose keys are target labels and whose values
    are lists of :mod:`fnmatch` patterns (case-sensitive)::

        [labels]
        "1-2series" = ["BMW 1 Series *", "BMW 2 Series *"]
        "3-4series" = ["BMW 3 Series *", "BMW M3 *"]

    The first target (in file order) with a matching pattern wins.

    Attributes:
        targets: (target label, patterns) pairs in priority order.
    """

    targets: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def from_mapping(cls, labels: Mapping[str, Sequence[str] | str]) -> LabelMap:
        """Build a label map from a mapping of target label -> patterns.

        Args:
            labels: Target label -> a pattern or a list of patterns; order is priority.

        Returns:
            The label map.

        Raises:
            DatasetError: A value is not a string or a list of strings, or a target has
                no pattern.
        """
        targets: list[tuple[str, tuple[str, ...]]] = []
        for target, patterns in labels.items():
            values = [patterns] if isinstance(patterns, str) else patterns
            if not isinstance(values, list | tuple) or not values:
                raise DatasetError(
                    f"label map entry {target!r} must be a non-empty list of glob patterns, "
                    f'e.g. {target!r} = ["BMW 3 Series *"]'
                )
            if not all(isinstance(value, str) for value in values):
                raise DatasetError(f"label map entry {target!r} holds a pattern that is not text")
            targets.append((str(target), tuple(values)))
        return cls(tuple(targets))

    @classmethod
    def from_toml(cls, path: str | Path) -> LabelMap:
        """Read a label map from a TOML file with a ``[labels]`` table.

        Args:
            path: The file.

        Returns:
            The label map.

        Raises:
            DatasetError: The file cannot be read, is not TOML, or lacks ``[labels]``.
        """
        data = read_toml(Path(path))
        labels = data.get("labels")
        if not isinstance(labels, dict) or not labels:
            raise DatasetError(
                f"label map {path} has no [labels] table; write one target label per line, "
                'e.g. "3-4series" = ["BMW 3 Series *", "BMW M3 *"]'
            )
        return cls.from_mapping(labels)

    def label_for(self, name: str) -> str | None:
        """Return the target label of a folder name, or None when no pattern matches.

        Args:
            name: The folder name (not a path).

        Returns:
            The first target whose patterns match, else None.
        """
        for target, patterns in self.targets:
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
                return target
        return None

    def unmatched(self, names: Iterable[str]) -> list[str]:
        """Return the names no pattern matches, sorted.

        Args:
            names: Folder names.

        Returns:
            The unmatched names.
        """
        return sorted(name for name in set(names) if self.label_for(name) is None)


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file.

    Args:
        path: The file.

    Returns:
        The parsed document.

    Raises:
        DatasetError: The file cannot be read or is not TOML (names the file).
    """
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise DatasetError(f"{path} is not valid TOML: {exc}") from exc


def label_folders(
    root: str | Path,
    *,
    label_map: LabelMap | None = None,
    normalize: bool = True,
    name: str | None = None,
) -> LabeledDataset:
    """Label the images under ``root`` by the name of their folder.

    Every direct subfolder of ``root`` is a label; its image files (by suffix,
    :data:`IMAGE_SUFFIXES`, nested folders included, hidden files skipped) are its
    images. With a :class:`LabelMap` the folder names are grouped into target labels and
    folders no pattern matches are left out (logged as a warning; see
    :meth:`LabelMap.unmatched`). The SHA-256 of every image is computed (about 2 ms per
    1 MB image); each image's ``group`` is its SHA-256, so exact copies share a split
    (:func:`~redditvision.split.group_near_duplicates` widens this to near-duplicates).

    Args:
        root: The folder of label folders.
        label_map: Optional grouping of folder names into target labels.
        normalize: Map invalid label names through :func:`normalize_label` (default) or
            reject them.
        name: Dataset display name (default: the folder's name, normalized).

    Returns:
        An unsplit dataset (``ml_use`` None), images sorted by label then path; its
        ``label_map`` maps service label -> original (target or folder) name.

    Raises:
        DatasetError: ``root`` is not a folder, holds no images, or labels are invalid
            (``normalize=False``) or clash after normalization.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise DatasetError(f"image folder {root_path} does not exist or is not a folder")
    entries: list[tuple[Path, str, str | None, str | None, str | None]] = []
    skipped_folders: list[str] = []
    for folder in sorted(p for p in root_path.iterdir() if p.is_dir()):
        if folder.name.startswith("."):
            continue
        original = label_map.label_for(folder.name) if label_map is not None else folder.name
        if original is None:
            skipped_folders.append(folder.name)
            continue
        for path in sorted(p for p in folder.rglob("*") if _is_image_file(p)):
            sha = image_sha256(path)
            entries.append((path, original, sha, sha, str(path.relative_to(root_path))))
    if skipped_folders:
        logger.warning(
            "%d folder(s) match no label map pattern and are left out: %s",
            len(skipped_folders),
            ", ".join(skipped_folders),
        )
    if not entries:
        raise DatasetError(
            f"no images found under {root_path}: expected one subfolder per label holding "
            f"image files ({', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    entries.sort(key=lambda entry: (entry[1], str(entry[0])))
    return with_label_map(
        entries, normalize=normalize, name=name or dataset_name(root_path.resolve().name)
    )
