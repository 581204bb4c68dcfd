"""Hand labeling: export a CSV with an empty label column, read it back once filled in."""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from redditvision.errors import DatasetError
from redditvision.labels._folders import image_sha256
from redditvision.labels._names import dataset_name, with_label_map
from redditvision.models import ImageRecord, LabeledDataset, LabeledImage, RecordStatus

__all__ = ["export_label_csv", "label_csv", "path_from"]

logger = logging.getLogger(__name__)


def path_from(text: str, base: Path) -> Path:
    """Turn a path or ``file://`` URI from a file into a path.

    Args:
        text: A local path (relative ones resolve against ``base``) or a ``file://`` URI.
        base: The folder relative paths are resolved against.

    Returns:
        The path (not resolved, not checked).
    """
    if text.startswith("file://"):
        parsed = urlparse(text)
        return Path(url2pathname(unquote(parsed.path)))
    path = Path(text)
    return path if path.is_absolute() else base / path


def label_csv(
    path: str | Path,
    *,
    normalize: bool = True,
    missing: Literal["error", "skip"] = "error",
    name: str | None = None,
) -> LabeledDataset:
    """Read a hand-labeled CSV: one image per row, ``path`` and ``label`` columns.

    The first row is a header naming the columns (``path`` or ``image``, ``label``; the
    file written by :func:`export_label_csv` also has ``url``, ``title``, ``flair``, ...,
    which are ignored). A file without a header is read as ``path,label`` rows. Paths
    are local paths (relative ones resolve against the CSV's folder) or ``file://`` URIs.
    Rows with an empty label are unlabeled and left out. A UTF-8 byte order mark and
    CRLF line ends (as spreadsheet programs write) are fine.

    Args:
        path: The CSV file.
        normalize: Map invalid label names through :func:`normalize_label` (default).
        missing: ``"error"`` (default) to fail on rows whose file does not exist, naming
            every such row; ``"skip"`` to leave them out with a warning in the log.
        name: Dataset display name (default: the CSV file's stem).

    Returns:
        An unsplit dataset in file order, with SHA-256 per image.

    Raises:
        DatasetError: The file cannot be read; a path is an ``http(s)``/``gs`` URL (not
            downloaded here; use ``redditvision download``); rows point at missing files
            (with ``missing="error"``); no row has a label; labels are invalid.
    """
    csv_path = Path(path)
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DatasetError(f"cannot read label CSV {csv_path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"label CSV {csv_path} is not UTF-8 text: {exc}") from exc
    rows = list(csv.reader(io.StringIO(text, newline="")))
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
    entries: list[tuple[Path, str, str | None, str | None, str | None]] = []
    missing_rows: list[str] = []
    for line, row in body:
        if not any(cell.strip() for cell in row):
            continue
        cell = row[path_column].strip() if len(row) > path_column else ""
        label = row[label_column].strip() if len(row) > label_column else ""
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
        image = path_from(cell, base)
        if not image.is_file():
            missing_rows.append(f"row {line}: {cell}")
            continue
        sha = image_sha256(image)
        entries.append((image, label, sha, sha, f"{csv_path.name}:{line}"))
    if missing_rows:
        message = (
            f"label CSV {csv_path}: {len(missing_rows)} row(s) point at missing files: "
            f"{'; '.join(missing_rows[:20])}{' ...' if len(missing_rows) > 20 else ''}"
        )
        if missing == "error":
            raise DatasetError(message + "; fix the paths or delete the rows")
        logger.warning("%s; left out", message)
    if not entries:
        raise DatasetError(f"label CSV {csv_path} has no labeled rows; fill in the label column")
    return with_label_map(entries, normalize=normalize, name=name or dataset_name(csv_path.stem))


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
    ``\n`` line ends.

    Args:
        items: Downloaded records, labeled images or image paths.
        path: The CSV file to write (its folder must exist).

    Returns:
        Number of rows written (header not counted).

    Raises:
        DatasetError: The file cannot be written.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "label", "url", "title", "flair", "subreddit", "permalink"])
    count = 0
    for item in items:
        if isinstance(item, ImageRecord):
            if item.status is not RecordStatus.OK or item.path is None:
                continue
            writer.writerow(
                [
                    str(item.path),
                    "",
                    item.url,
                    item.title,
                    item.flair_text or "",
                    item.subreddit,
                    item.permalink,
                ]
            )
        elif isinstance(item, LabeledImage):
            writer.writerow([str(item.path), item.original_label, "", "", "", "", ""])
        else:
            writer.writerow([str(item), "", "", "", "", "", ""])
        count += 1
    try:
        Path(path).write_text(buffer.getvalue(), encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot write label CSV {path}: {exc.strerror or exc}") from exc
    return count
