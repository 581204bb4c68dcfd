"""Hand labeling: export a CSV with an empty label column, read it back once filled in."""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from redditvision._csv import Cell, restore_cell, write_csv
from redditvision.errors import DatasetError
from redditvision.labels._folders import image_sha256
from redditvision.labels._names import dataset_name, with_label_map
from redditvision.labels._paths import confined_path
from redditvision.models import ImageRecord, LabeledDataset, LabeledImage, RecordStatus

__all__ = ["export_label_csv", "label_csv"]

logger = logging.getLogger(__name__)


def label_csv(
    path: str | Path,
    *,
    root: str | Path | None = None,
    normalize: bool = True,
    missing: Literal["error", "skip"] = "error",
    name: str | None = None,
) -> LabeledDataset:
    """Read a hand-labeled CSV: one image per row, ``path`` and ``label`` columns.

    The first row is a header naming the columns (``path`` or ``image``, ``label``; the
    file written by :func:`export_label_csv` also has ``url``, ``title``, ``flair``, ...,
    which are ignored). A file without a header is read as ``path,label`` rows. Paths
    are local paths (relative ones resolve against the CSV's folder) or ``file://`` URIs.
    Every path must resolve, symlinks followed, inside ``root``: a row naming
    ``/etc/passwd``, ``../../secret``, another URL scheme or a symlink pointing out of the
    folder fails the whole read before any file is opened. Rows with an empty label are
    unlabeled and left out. A UTF-8 byte order mark and CRLF line ends (as spreadsheet
    programs write) are fine; the ``'`` that :func:`export_label_csv` puts before a cell
    starting with ``=``, ``+``, ``-``, ``@``, tab, CR or ``'`` is taken off again.

    Args:
        path: The CSV file.
        root: The folder the images must be in (default: the CSV's folder). For a CSV
            exported from a download folder, the download folder.
        normalize: Map invalid label names through :func:`normalize_label` (default).
        missing: ``"error"`` (default) to fail on rows whose file does not exist, naming
            every such row; ``"skip"`` to leave them out with a warning in the log.
        name: Dataset display name (default: the CSV file's stem).

    Returns:
        An unsplit dataset in file order, with SHA-256 per image; paths are resolved.

    Raises:
        DatasetError: The file cannot be read or is not CSV; a path is an
            ``http(s)``/``gs`` URL (not downloaded here; use ``redditvision download``);
            rows name paths outside ``root`` (every such row is named); rows point at
            missing files (with ``missing="error"``); no row has a label; labels are
            invalid.
    """
    csv_path = Path(path)
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DatasetError(f"cannot read label CSV {csv_path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"label CSV {csv_path} is not UTF-8 text: {exc}") from exc
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise DatasetError(f"label CSV {csv_path} is not valid CSV: {exc}") from exc
    if not rows:
        raise DatasetError(f"label CSV {csv_path} is empty; expected rows of path,label")
    header = [cell.strip().lower() for cell in rows[0]]
    if "label" in header:
        path_column = next((header.index(c) for c in ("path", "image", "file") if c in header), -1)
        if path_column < 0:
            raise DatasetError(
                f"label CSV {csv_path} has no 'path' column (header: {', '.join(rows[0])})"
            )
        label_column = header.index("label")
        body = list(enumerate(rows[1:], start=2))
    else:
        path_column, label_column = 0, 1
        body = list(enumerate(rows, start=1))
    base = csv_path.resolve().parent
    images_root = Path(root) if root is not None else base
    found: list[tuple[Path, str, int]] = []
    missing_rows: list[str] = []
    outside_rows: list[str] = []
    for line, row in body:
        if not any(cell.strip() for cell in row):
            continue
        cell = restore_cell(row[path_column].strip()) if len(row) > path_column else ""
        label = restore_cell(row[label_column].strip()) if len(row) > label_column else ""
        if not label:
            continue
        if not cell:
            missing_rows.append(f"row {line}: empty path")
            continue
        if re.match(r"^(https?|gs)://", cell):
            raise DatasetError(
                f"label CSV {csv_path} row {line}: {cell!r} is a remote URL; download the "
                "images first (redditvision download) and list local paths"
            )
        image, reason = confined_path(cell, base=base, root=images_root)
        if image is None:
            outside_rows.append(f"row {line}: {cell!r} {reason}")
            continue
        try:
            exists = image.is_file()
        except OSError:
            exists = False
        if not exists:
            missing_rows.append(f"row {line}: {cell}")
            continue
        found.append((image, label, line))
    if outside_rows:
        raise DatasetError(
            f"label CSV {csv_path}: {len(outside_rows)} row(s) name files outside the images "
            f"folder {images_root}: {_listed(outside_rows)}; list only images inside it, or "
            "declare the folder they are in (root= / --images-root DIR)"
        )
    if missing_rows:
        message = (
            f"label CSV {csv_path}: {len(missing_rows)} row(s) point at missing files: "
            f"{_listed(missing_rows)}"
        )
        if missing == "error":
            raise DatasetError(message + "; fix the paths or delete the rows")
        logger.warning("%s; left out", message)
    if not found:
        raise DatasetError(f"label CSV {csv_path} has no labeled rows; fill in the label column")
    entries: list[tuple[Path, str, str | None, str | None, str | None]] = []
    for image, label, line in found:
        sha = image_sha256(image)
        entries.append((image, label, sha, sha, f"{csv_path.name}:{line}"))
    return with_label_map(entries, normalize=normalize, name=name or dataset_name(csv_path.stem))


def _listed(items: list[str]) -> str:
    return f"{'; '.join(items[:20])}{' ...' if len(items) > 20 else ''}"


def export_label_csv(
    items: Iterable[ImageRecord | LabeledImage | Path],
    path: str | Path,
) -> int:
    r"""Write a CSV for hand labeling: one row per image, the ``label`` column empty.

    Columns: ``path,label,url,title,flair,subreddit,permalink`` (provenance from
    :class:`~redditvision.models.ImageRecord`; empty for plain paths). For a
    :class:`~redditvision.models.LabeledImage` the label is filled in with its original
    label. Fill in the labels in any spreadsheet and read the file back with
    :func:`label_csv`. Records that are not ``ok`` are left out. Written as UTF-8 with
    ``\n`` line ends, atomically. Titles and flair are strangers' text: a cell starting
    with ``=``, ``+``, ``-``, ``@``, tab or CR gets a leading ``'`` so a spreadsheet shows
    it as text instead of running it as a formula (OWASP CSV injection;
    :func:`label_csv` takes the ``'`` off again).

    Args:
        items: Downloaded records, labeled images or image paths.
        path: The CSV file to write (its folder must exist).

    Returns:
        Number of rows written (header not counted).

    Raises:
        DatasetError: The file cannot be written.
    """

    def rows() -> Iterable[list[Cell]]:
        for item in items:
            if isinstance(item, ImageRecord):
                if item.status is not RecordStatus.OK or item.path is None:
                    continue
                yield [
                    str(item.path),
                    "",
                    item.url,
                    item.title,
                    item.flair_text,
                    item.subreddit,
                    item.permalink,
                ]
            elif isinstance(item, LabeledImage):
                yield [str(item.path), item.original_label, "", "", "", "", ""]
            else:
                yield [str(item), "", "", "", "", "", ""]

    header = ["path", "label", "url", "title", "flair", "subreddit", "permalink"]
    try:
        return write_csv(path, header, rows())
    except OSError as exc:
        raise DatasetError(f"cannot write label CSV {path}: {exc.strerror or exc}") from exc
