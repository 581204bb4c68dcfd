"""Label, split and check a dataset, and write its import files.

This module knows nothing of any cloud: it turns images into a
:class:`~redditvision.models.LabeledDataset` and the dataset into import-file text.
:mod:`redditvision.storage` copies the images and writes that text where a backend reads it.

Labelers, each producing an unsplit :class:`~redditvision.models.LabeledDataset`:

* :func:`label_folders`: label = folder name, optionally grouped and renamed by a
  :class:`LabelMap` (TOML ``[labels]``: target label -> glob patterns over folder names);
* :func:`label_csv`: ``path,label`` rows, the hand-labeling workflow with
  :func:`export_label_csv`;
* :func:`label_records`: ordered regular expressions (:class:`RuleSet`) over the title,
  flair and subreddit of downloaded :class:`~redditvision.models.ImageRecord` objects.

Label names must pass both Vertex AI and legacy AutoML: ``^[A-Za-z][A-Za-z0-9_]{0,31}$``
(:data:`LABEL_PATTERN`). :func:`normalize_label` maps any name to one that passes; the
mapping (service label -> the user's original) is kept in
:attr:`~redditvision.models.LabeledDataset.label_map` so predictions can be shown in the
user's names.

Then :func:`split_dataset` (seeded, stratified, near-duplicate groups kept on one side),
:func:`check_dataset` (the service limits, as a report of errors and warnings) and the
import-file writers (:func:`render_import_file`, :func:`write_local_dataset`,
:func:`load_local_dataset`).
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import json
import logging
import math
import random
import re
import tomllib
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import attrs

from redditvision.errors import DatasetError
from redditvision.models import ImageRecord, LabeledDataset, LabeledImage, MLUse, RecordStatus

__all__ = [
    "IMAGE_SUFFIXES",
    "IMPORT_FILE_NAMES",
    "IMPORT_FORMATS",
    "LABEL_PATTERN",
    "TARGET_LIMITS",
    "CheckIssue",
    "DatasetCheckReport",
    "ImportFormat",
    "LabelMap",
    "LabelingReport",
    "Rule",
    "RuleSet",
    "TargetLimits",
    "check_dataset",
    "convert_unsupported",
    "export_label_csv",
    "file_sha256",
    "group_near_duplicates",
    "label_csv",
    "label_folders",
    "label_records",
    "load_local_dataset",
    "map_labels",
    "normalize_label",
    "render_import_file",
    "split_dataset",
    "write_local_dataset",
]

logger = logging.getLogger(__name__)

LABEL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
"""A label both Vertex AI and legacy AutoML v1 (``[A-Za-z0-9_]{1,32}``) accept: a letter
first, then up to 31 letters, digits or underscores."""

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".ico", ".webp", ".tif", ".tiff"}
)
"""File suffixes (lower case) that the folder labeler treats as images."""

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

_VERTEX_ML_USE_KEY = "aiplatform.googleapis.com/ml_use"
_AUTOML_ML_USE = {
    MLUse.TRAINING: "TRAIN",
    MLUse.VALIDATION: "VALIDATION",
    MLUse.TEST: "TEST",
    None: "UNASSIGNED",
}


# --------------------------------------------------------------------------- label names


def normalize_label(name: str) -> str:
    """Map any label name to one Vertex AI and legacy AutoML both accept.

    The rule (``^[A-Za-z][A-Za-z0-9_]{0,31}$``, :data:`LABEL_PATTERN`) comes from the
    Vertex AI and AutoML v1 dataset docs. The mapping: accents are stripped (NFKD to
    ASCII), every run of other characters becomes one ``_``, leading and trailing ``_``
    go, a name that starts with a digit gets the prefix ``L_``, and the result is cut to
    32 characters. A valid name is returned unchanged.

    Examples: ``"BMW 1 Series Coupe 2012"`` -> ``"BMW_1_Series_Coupe_2012"``,
    ``"3-4series"`` -> ``"L_3_4series"``, ``"cars/bmw"`` -> ``"cars_bmw"``.

    Args:
        name: The user's label, any Unicode.

    Returns:
        A valid label of 1 to 32 characters.

    Raises:
        DatasetError: Nothing usable is left (the name has no letter or digit).
    """
    if LABEL_PATTERN.match(name):
        return name
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"[^A-Za-z0-9]+", "_", ascii_name).strip("_")
    if not cleaned:
        raise DatasetError(
            f"label {name!r} has no letter or digit to build a valid label from; "
            "rename it (labels must match ^[A-Za-z][A-Za-z0-9_]{0,31}$)"
        )
    if not cleaned[0].isalpha():
        cleaned = "L_" + cleaned
    return cleaned[:32].rstrip("_")


def map_labels(originals: Iterable[str], *, normalize: bool = True) -> dict[str, str]:
    """Build the reversible mapping from the user's labels to service labels.

    Args:
        originals: The user's label names (duplicates are fine).
        normalize: ``True`` (default) to map invalid names through
            :func:`normalize_label`; ``False`` to reject them.

    Returns:
        Original label -> service label, one entry per distinct original, sorted.

    Raises:
        DatasetError: With ``normalize=False``, some names are invalid: the message lists
            every bad label with a suggested valid name. With either setting, two
            different originals map to the same service label (the message names both;
            give them distinct names, e.g. with a label map).
    """
    names = sorted(set(originals))
    if not normalize:
        bad = [name for name in names if not LABEL_PATTERN.match(name)]
        if bad:
            suggestions = ", ".join(f"{name!r} (try {_suggest(name)!r})" for name in bad)
            raise DatasetError(
                f"{len(bad)} label(s) are not valid for Vertex AI / AutoML "
                f"(^[A-Za-z][A-Za-z0-9_]{{0,31}}$): {suggestions}; rename them or allow "
                "normalization (--normalize / normalize=True)"
            )
    mapping: dict[str, str] = {}
    owners: dict[str, str] = {}
    clashes: list[str] = []
    for name in names:
        service = normalize_label(name) if normalize else name
        other = owners.get(service.lower())
        if other is not None:
            clashes.append(f"{other!r} and {name!r} both become {service!r}")
        owners[service.lower()] = name
        mapping[name] = service
    if clashes:
        raise DatasetError(
            "labels clash after normalization (service labels must be distinct, ignoring "
            f"case): {'; '.join(clashes)}; give them distinct names in a label map"
        )
    return mapping


def _suggest(name: str) -> str:
    try:
        return normalize_label(name)
    except DatasetError:
        return "label"


# --------------------------------------------------------------------------- files


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB chunks.

    Args:
        path: The file.

    Returns:
        64 lower-case hex digits.

    Raises:
        DatasetError: The file cannot be read (names it).
    """
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise DatasetError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def _is_image_file(path: Path) -> bool:
    return (
        path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    )


def _with_label_map(
    images: Sequence[tuple[Path, str, str | None, str | None, str | None]],
    *,
    normalize: bool,
    name: str,
) -> LabeledDataset:
    """Build a dataset from (path, original label, sha256, group, source) tuples."""
    mapping = map_labels((original for _, original, _, _, _ in images), normalize=normalize)
    labeled = tuple(
        LabeledImage(
            path=path,
            label=mapping[original],
            original_label=original,
            sha256=sha,
            group=group,
            source=source,
        )
        for path, original, sha, group, source in images
    )
    return LabeledDataset(
        images=labeled,
        label_map={service: original for original, service in sorted(mapping.items())},
        name=name,
    )


# --------------------------------------------------------------------------- folders


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
        data = _read_toml(Path(path))
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


def _read_toml(path: Path) -> dict[str, Any]:
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
    (:func:`group_near_duplicates` widens this to near-duplicates).

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
            sha = file_sha256(path)
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
    return _with_label_map(
        entries, normalize=normalize, name=name or _dataset_name(root_path.resolve().name)
    )


def _dataset_name(text: str) -> str:
    try:
        return normalize_label(text)
    except DatasetError:
        return "redditvision"


# --------------------------------------------------------------------------- CSV


def _path_from(text: str, base: Path) -> Path:
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
        image = _path_from(cell, base)
        if not image.is_file():
            missing_rows.append(f"row {line}: {cell}")
            continue
        sha = file_sha256(image)
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
    return _with_label_map(entries, normalize=normalize, name=name or _dataset_name(csv_path.stem))


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


# --------------------------------------------------------------------------- rules


@attrs.frozen(kw_only=True)
class Rule:
    """One labeling rule: a label and regular expressions over a record's text fields.

    A rule matches when every pattern it has matches (``re.search``) its field; a missing
    field (no flair) never matches a pattern. Patterns are Python regular expressions;
    write ``(?i)`` for case-insensitive matching.

    Attributes:
        label: The label given on a match (the user's name; normalized later).
        title: Pattern over the submission title, or None.
        flair: Pattern over the link flair text, or None.
        subreddit: Pattern over the subreddit name, or None.
        name: How the rule is named in errors and reports (default ``"rule N (label)"``).
    """

    label: str
    title: re.Pattern[str] | None = None
    flair: re.Pattern[str] | None = None
    subreddit: re.Pattern[str] | None = None
    name: str = ""

    def matches(self, *, title: str, flair: str | None, subreddit: str) -> bool:
        """Tell whether this rule matches a record's fields.

        Args:
            title: The submission title.
            flair: The link flair text, or None.
            subreddit: The subreddit name.

        Returns:
            True when every pattern of the rule matches.
        """
        checks = ((self.title, title), (self.flair, flair), (self.subreddit, subreddit))
        for pattern, value in checks:
            if pattern is None:
                continue
            if value is None or pattern.search(value) is None:
                return False
        return True


@attrs.frozen
class RuleSet:
    r"""Ordered labeling rules; the first rule that matches a record gives its label.

    Written in TOML as an array of ``[[rules]]`` tables, each with a ``label`` and at
    least one of ``title``, ``flair``, ``subreddit`` (regular expressions)::

        [[rules]]
        label = "z3-4-8"
        title = '(?i)\bZ[348]\b'

    Attributes:
        rules: The rules in priority order.
    """

    rules: tuple[Rule, ...]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "rules") -> RuleSet:
        """Build a rule set from parsed TOML (``{"rules": [{...}, ...]}``).

        Args:
            data: The parsed document.
            source: Name of the document for error messages (e.g. the file path).

        Returns:
            The rule set.

        Raises:
            DatasetError: No rules; a rule without ``label`` or without any pattern; an
                unknown key; an invalid regular expression (the message names the rule,
                the field and the regex error).
        """
        raw = data.get("rules")
        if not isinstance(raw, list) or not raw:
            raise DatasetError(
                f"{source} has no [[rules]]; write one [[rules]] table per rule with a "
                "label and a title, flair or subreddit pattern"
            )
        rules: list[Rule] = []
        for number, entry in enumerate(raw, start=1):
            if not isinstance(entry, dict):
                raise DatasetError(f"{source}: rule {number} is not a table")
            label = entry.get("label")
            rule_name = str(entry.get("name") or f"rule {number} ({label})")
            if not isinstance(label, str) or not label.strip():
                raise DatasetError(f"{source}: {rule_name} has no label")
            unknown = set(entry) - {"label", "title", "flair", "subreddit", "name"}
            if unknown:
                raise DatasetError(
                    f"{source}: {rule_name} has unknown key(s) {', '.join(sorted(unknown))}; "
                    "allowed: label, title, flair, subreddit, name"
                )
            compiled: dict[str, re.Pattern[str] | None] = {}
            for field in ("title", "flair", "subreddit"):
                pattern = entry.get(field)
                if pattern is None:
                    compiled[field] = None
                    continue
                if not isinstance(pattern, str):
                    raise DatasetError(f"{source}: {rule_name} field {field} must be a string")
                try:
                    compiled[field] = re.compile(pattern)
                except re.error as exc:
                    raise DatasetError(
                        f"{source}: {rule_name} has an invalid {field} regex {pattern!r}: {exc}"
                    ) from exc
            if all(value is None for value in compiled.values()):
                raise DatasetError(
                    f"{source}: {rule_name} has no pattern; give title, flair or subreddit"
                )
            rules.append(Rule(label=label.strip(), name=rule_name, **compiled))
        return cls(tuple(rules))

    @classmethod
    def from_toml(cls, path: str | Path) -> RuleSet:
        """Read rules from a TOML file of ``[[rules]]`` tables.

        Args:
            path: The file.

        Returns:
            The rule set.

        Raises:
            DatasetError: The file cannot be read or parsed, or a rule is invalid (see
                :meth:`from_mapping`).
        """
        return cls.from_mapping(_read_toml(Path(path)), source=str(path))

    def match(self, *, title: str, flair: str | None, subreddit: str) -> Rule | None:
        """Return the first rule that matches, or None.

        Args:
            title: The submission title.
            flair: The link flair, or None.
            subreddit: The subreddit name.

        Returns:
            The winning rule, or None.
        """
        for rule in self.rules:
            if rule.matches(title=title, flair=flair, subreddit=subreddit):
                return rule
        return None


@attrs.frozen(kw_only=True)
class LabelingReport:
    """What a labeler did with each input that did not become a labeled image.

    Attributes:
        labeled: Number of images labeled.
        per_rule: Rule name -> images it labeled, in rule order.
        unmatched: Records no rule matched (``ok`` records with a file).
        not_ok: Records left out because their status is not ``ok`` or they have no file.
    """

    labeled: int
    per_rule: Mapping[str, int] = attrs.field(factory=dict, hash=False)
    unmatched: tuple[ImageRecord, ...] = ()
    not_ok: tuple[ImageRecord, ...] = ()


def label_records(
    records: Iterable[ImageRecord],
    rules: RuleSet,
    *,
    normalize: bool = True,
    name: str = "redditvision",
) -> tuple[LabeledDataset, LabelingReport]:
    """Label downloaded records with ordered rules over title, flair and subreddit.

    Only ``ok`` records with a file are labeled; the others are reported in
    :attr:`LabelingReport.not_ok`. Records no rule matches are reported in
    :attr:`LabelingReport.unmatched`, never silently dropped. An image's ``group`` is the
    record's ``near_duplicate_group`` (from the download step's perceptual hashes), else
    its SHA-256.

    Args:
        records: Records from the download step (e.g. ``ImageManifest.records("ok")``).
        rules: The rules.
        normalize: Map invalid label names through :func:`normalize_label` (default).
        name: Dataset display name.

    Returns:
        The unsplit dataset (in record order; source = record key) and the report. The
        dataset may be empty; :func:`check_dataset` reports that.

    Raises:
        DatasetError: Labels are invalid (``normalize=False``) or clash.
    """
    entries: list[tuple[Path, str, str | None, str | None, str | None]] = []
    per_rule: dict[str, int] = {rule.name: 0 for rule in rules.rules}
    unmatched: list[ImageRecord] = []
    not_ok: list[ImageRecord] = []
    for record in records:
        if record.status is not RecordStatus.OK or record.path is None:
            not_ok.append(record)
            continue
        rule = rules.match(title=record.title, flair=record.flair_text, subreddit=record.subreddit)
        if rule is None:
            unmatched.append(record)
            continue
        per_rule[rule.name] += 1
        group = record.near_duplicate_group or record.sha256
        entries.append((Path(record.path), rule.label, record.sha256, group, record.key))
    dataset = _with_label_map(entries, normalize=normalize, name=name)
    report = LabelingReport(
        labeled=len(entries), per_rule=per_rule, unmatched=tuple(unmatched), not_ok=tuple(not_ok)
    )
    return dataset, report


# --------------------------------------------------------------------------- near-duplicates


def group_near_duplicates(dataset: LabeledDataset, *, max_distance: int = 2) -> LabeledDataset:
    """Give perceptually near-identical images one ``group``, so a split keeps them together.

    Uses ``imagehash.phash`` (64-bit DCT hash) and joins images whose hashes differ in at
    most ``max_distance`` bits (default 2 of 64). Measured on the real BMW photos: copies
    at half size and JPEG quality 70 were 0 bits (52 of 60) or 2 bits (8 of 60) away from
    their originals, while at 4 bits two different white studio shots (an M3 coupe and an
    M5 sedan) already collide. Exact copies (same SHA-256) are always joined, and so are
    images that already share a ``group`` (from the download step). Groups
    are named by the smallest SHA-256 (or path) among their members, so the result does
    not depend on input order. Cost: one image decode per image (about 10 ms for a
    1 MB JPEG) and a pairwise comparison (fine to tens of thousands of images).

    Args:
        dataset: The dataset.
        max_distance: Largest Hamming distance between hashes of one group, in bits
            (default 2).

    Returns:
        The dataset with ``group`` set on every image. Unreadable images keep their own
        group (the check reports them).
    """
    import imagehash
    from PIL import Image, UnidentifiedImageError

    images = dataset.images
    keys = [image.sha256 or str(image.path) for image in images]
    parent = list(range(len(images)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    first_by_key: dict[str, int] = {}
    first_by_group: dict[str, int] = {}
    hashes: list[tuple[int, int]] = []
    for index, image in enumerate(images):
        if image.group is not None:
            union(first_by_group.setdefault(image.group, index), index)
        if keys[index] in first_by_key:
            union(first_by_key[keys[index]], index)
            continue
        first_by_key[keys[index]] = index
        try:
            with Image.open(image.path) as handle:
                value = int(str(imagehash.phash(handle)), 16)
        except (OSError, UnidentifiedImageError, ValueError):
            continue
        hashes.append((index, value))
    for position, (i, hash_i) in enumerate(hashes):
        for j, hash_j in hashes[position + 1 :]:
            if (hash_i ^ hash_j).bit_count() <= max_distance:
                union(i, j)
    names: dict[int, str] = {}
    for index in range(len(images)):
        root = find(index)
        if root not in names or keys[index] < names[root]:
            names[root] = keys[index]
    grouped = tuple(
        attrs.evolve(image, group=names[find(index)]) for index, image in enumerate(images)
    )
    return attrs.evolve(dataset, images=grouped)


# --------------------------------------------------------------------------- splits


def split_dataset(
    dataset: LabeledDataset,
    *,
    train: float = 0.8,
    validation: float = 0.1,
    test: float = 0.1,
    seed: int = 0,
) -> LabeledDataset:
    """Assign every image an ML use: stratified by label, seeded, groups kept together.

    Images that share a ``group`` (near-duplicates from the download step or
    :func:`group_near_duplicates`; exact copies when only SHA-256 is known) always get
    the same split, so reposts cannot leak from training into test. Within each label
    the groups are shuffled with a generator seeded by ``seed`` and the label name, then
    each group goes to the split furthest below its target count (targets by largest
    remainder: 10 images at 80/10/10 give 8/1/1). A group spanning labels follows its
    most common label. The result depends only on the images, their labels and groups,
    and ``seed``; not on input order.

    Args:
        dataset: The dataset (any existing ``ml_use`` is replaced).
        train: Fraction for training, default 0.8.
        validation: Fraction for validation, default 0.1.
        test: Fraction for test, default 0.1.
        seed: Seed of the shuffle, default 0.

    Returns:
        The dataset with ``ml_use`` set on every image, in the original order.

    Raises:
        DatasetError: A fraction is negative, or they do not sum to 1 (±0.001), or
            ``train`` is 0.
    """
    fractions = {MLUse.TRAINING: train, MLUse.VALIDATION: validation, MLUse.TEST: test}
    if any(value < 0 for value in fractions.values()) or train <= 0:
        raise DatasetError(
            f"split fractions must be non-negative with train > 0, got "
            f"train={train}, validation={validation}, test={test}"
        )
    if not math.isclose(sum(fractions.values()), 1.0, abs_tol=1e-3):
        raise DatasetError(
            f"split fractions must sum to 1, got {train} + {validation} + {test} = "
            f"{train + validation + test:g}"
        )
    images = dataset.images
    members: dict[str, list[int]] = defaultdict(list)
    for index, image in enumerate(images):
        key = image.group or image.sha256 or f"path:{image.path}"
        members[key].append(index)
    by_label: dict[str, list[str]] = defaultdict(list)
    for key, indexes in members.items():
        labels = sorted(images[i].label for i in indexes)
        majority = max(sorted(set(labels)), key=labels.count)
        by_label[majority].append(key)
    assignment: dict[str, MLUse] = {}
    order = (MLUse.TRAINING, MLUse.VALIDATION, MLUse.TEST)
    for label in sorted(by_label):
        groups = sorted(by_label[label])
        random.Random(f"{seed}:{label}").shuffle(groups)  # noqa: S311 - reproducible split
        total = sum(len(members[key]) for key in groups)
        targets = _largest_remainder(total, [fractions[use] for use in order])
        counts = [0, 0, 0]
        for key in groups:
            size = len(members[key])
            slot = max(range(3), key=lambda s: (targets[s] - counts[s], -s))
            counts[slot] += size
            assignment[key] = order[slot]
    new_images = tuple(
        attrs.evolve(image, ml_use=assignment[image.group or image.sha256 or f"path:{image.path}"])
        for image in images
    )
    return attrs.evolve(dataset, images=new_images)


def _largest_remainder(total: int, fractions: Sequence[float]) -> list[int]:
    raw = [total * fraction for fraction in fractions]
    counts = [math.floor(value) for value in raw]
    rest = total - sum(counts)
    by_remainder = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in by_remainder[:rest]:
        counts[i] += 1
    return counts


# --------------------------------------------------------------------------- checks


@attrs.frozen(kw_only=True)
class TargetLimits:
    """What one training target accepts; the source of each figure is in the docs.

    Attributes:
        name: ``"vertex"``, ``"automl"`` or ``"local"``.
        min_images_per_label: Fewer is an error (Vertex AI and AutoML: 10).
        recommended_images_per_label: Fewer is a warning (100; Vertex suggests ~1000).
        max_imbalance: Largest/smallest label count above this is a warning (100).
        formats: Pillow format names accepted for training; None accepts any format
            Pillow reads.
        max_bytes: Largest image file in bytes, or None.
    """

    name: str
    min_images_per_label: int
    recommended_images_per_label: int
    max_imbalance: float
    formats: frozenset[str] | None
    max_bytes: int | None


TARGET_LIMITS: Mapping[str, TargetLimits] = {
    # Vertex AI "Prepare image training data": JPEG, GIF, PNG, BMP, ICO; 30 MB; >= 10 per
    # label; largest/smallest label <= 100 recommended.
    "vertex": TargetLimits(
        name="vertex",
        min_images_per_label=10,
        recommended_images_per_label=100,
        max_imbalance=100.0,
        formats=frozenset({"JPEG", "GIF", "PNG", "BMP", "ICO"}),
        max_bytes=30 * 1024 * 1024,
    ),
    # AutoML Vision (v1) "Preparing your training data": JPEG, PNG, WEBP, GIF, BMP, TIFF,
    # ICO; 30 MB; >= 10 per label.
    "automl": TargetLimits(
        name="automl",
        min_images_per_label=10,
        recommended_images_per_label=100,
        max_imbalance=100.0,
        formats=frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "ICO"}),
        max_bytes=30 * 1024 * 1024,
    ),
    # The local backend reads anything Pillow decodes; 2 images per label is the least a
    # classifier can be fitted and checked on.
    "local": TargetLimits(
        name="local",
        min_images_per_label=2,
        recommended_images_per_label=10,
        max_imbalance=100.0,
        formats=None,
        max_bytes=None,
    ),
}
"""Limits per training target, keyed by target name."""


@attrs.frozen(kw_only=True)
class CheckIssue:
    """One finding of :func:`check_dataset`.

    Attributes:
        code: Machine-readable kind, e.g. ``"too_few_images"``, ``"format"``,
            ``"leak"``.
        message: What is wrong and how to fix it.
        label: The service label concerned, or None.
        item: The image path concerned, or None.
    """

    code: str
    message: str
    label: str | None = None
    item: str | None = None


@attrs.frozen(kw_only=True)
class DatasetCheckReport:
    """Errors (the service would refuse or the model would be unsound) and warnings.

    Attributes:
        target: The target checked against.
        errors: Findings that must be fixed before uploading.
        warnings: Findings worth knowing (small labels, imbalance, no test split).
        counts: Images per service label.
        split_counts: Images per split (``"training"``, ``"validation"``, ``"test"``,
            ``"unassigned"``).
    """

    target: str
    errors: tuple[CheckIssue, ...] = ()
    warnings: tuple[CheckIssue, ...] = ()
    counts: Mapping[str, int] = attrs.field(factory=dict, hash=False)
    split_counts: Mapping[str, int] = attrs.field(factory=dict, hash=False)

    @property
    def ok(self) -> bool:
        """True when there are no errors."""
        return not self.errors

    def raise_for_errors(self) -> None:
        """Raise when the report holds errors.

        Raises:
            DatasetError: Listing every error message.
        """
        if self.errors:
            listed = "; ".join(issue.message for issue in self.errors[:20])
            more = f" (and {len(self.errors) - 20} more)" if len(self.errors) > 20 else ""
            raise DatasetError(
                f"dataset fails {len(self.errors)} check(s) for {self.target}: {listed}{more}"
            )

    def to_json(self) -> dict[str, Any]:
        """Return the report as a JSON-compatible dict.

        Returns:
            ``{"target", "ok", "counts", "split_counts", "errors": [...], "warnings": [...]}``
            where each issue is ``{"code", "message", "label", "item"}``.
        """
        return {
            "target": self.target,
            "ok": self.ok,
            "counts": dict(self.counts),
            "split_counts": dict(self.split_counts),
            "errors": [attrs.asdict(issue) for issue in self.errors],
            "warnings": [attrs.asdict(issue) for issue in self.warnings],
        }


def _sniff_format(path: Path) -> str | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as handle:
            return str(handle.format) if handle.format else None
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def check_dataset(dataset: LabeledDataset, *, target: str = "vertex") -> DatasetCheckReport:
    """Check a dataset against a training target's limits before paying for anything.

    Errors: empty dataset; label not matching :data:`LABEL_PATTERN`; fewer than
    ``min_images_per_label`` images in a label (10 for Vertex AI and AutoML); missing or
    unreadable file; format not accepted for training (Vertex AI: JPEG, GIF, PNG, BMP,
    ICO; use :func:`convert_unsupported`); file over ``max_bytes`` (30 MB); one group
    (near-duplicates or exact copies) in more than one split (a leak). Warnings: fewer
    than ``recommended_images_per_label`` (100); largest/smallest label count over
    ``max_imbalance`` (100); a label with no validation or test image in a split dataset;
    no split assigned. Each file's header is read once (Pillow) to sniff its format.

    Args:
        dataset: The dataset.
        target: ``"vertex"`` (default), ``"automl"`` or ``"local"`` (:data:`TARGET_LIMITS`).

    Returns:
        The report; :attr:`DatasetCheckReport.ok` tells whether it holds no errors.

    Raises:
        DatasetError: ``target`` is unknown.
    """
    limits = TARGET_LIMITS.get(target)
    if limits is None:
        raise DatasetError(
            f"unknown check target {target!r}; choose one of {', '.join(TARGET_LIMITS)}"
        )
    errors: list[CheckIssue] = []
    warnings: list[CheckIssue] = []
    counts = dataset.counts()
    split_counts: dict[str, int] = {"training": 0, "validation": 0, "test": 0, "unassigned": 0}
    for image in dataset.images:
        split_counts[image.ml_use.value if image.ml_use else "unassigned"] += 1
    if not dataset.images:
        errors.append(
            CheckIssue(
                code="empty",
                message="the dataset has no images; label some images first",
            )
        )
    for label, count in counts.items():
        if not LABEL_PATTERN.match(label):
            errors.append(
                CheckIssue(
                    code="label_name",
                    label=label,
                    message=f"label {label!r} is not valid (^[A-Za-z][A-Za-z0-9_]{{0,31}}$); "
                    f"try {_suggest(label)!r}",
                )
            )
        original = dataset.label_map.get(label, label)
        shown = label if original == label else f"{label} ({original})"
        if count < limits.min_images_per_label:
            errors.append(
                CheckIssue(
                    code="too_few_images",
                    label=label,
                    message=f"label {shown} has {count} image(s); {target} needs at least "
                    f"{limits.min_images_per_label} per label: add images or merge the label",
                )
            )
        elif count < limits.recommended_images_per_label:
            warnings.append(
                CheckIssue(
                    code="few_images",
                    label=label,
                    message=f"label {shown} has {count} images; at least "
                    f"{limits.recommended_images_per_label} per label give a better model",
                )
            )
    if counts:
        largest, smallest = max(counts.values()), min(counts.values())
        if smallest and largest / smallest > limits.max_imbalance:
            warnings.append(
                CheckIssue(
                    code="imbalance",
                    message=f"largest label has {largest} images, smallest {smallest} "
                    f"(ratio {largest / smallest:.0f} > {limits.max_imbalance:g}); balance "
                    "the labels",
                )
            )
    for image in dataset.images:
        item = str(image.path)
        try:
            size = image.path.stat().st_size
        except OSError:
            errors.append(
                CheckIssue(
                    code="missing", label=image.label, item=item, message=f"{item} is missing"
                )
            )
            continue
        fmt = _sniff_format(image.path)
        if fmt is None:
            errors.append(
                CheckIssue(
                    code="unreadable",
                    label=image.label,
                    item=item,
                    message=f"{item} is not an image Pillow can read; remove it",
                )
            )
            continue
        if limits.formats is not None and fmt not in limits.formats:
            errors.append(
                CheckIssue(
                    code="format",
                    label=image.label,
                    item=item,
                    message=f"{item} is {fmt}, which {target} does not train on "
                    f"({', '.join(sorted(limits.formats))}); convert it (--convert png)",
                )
            )
        if limits.max_bytes is not None and size > limits.max_bytes:
            errors.append(
                CheckIssue(
                    code="too_large",
                    label=image.label,
                    item=item,
                    message=f"{item} is {size / 1e6:.1f} MB, over the {target} limit of "
                    f"{limits.max_bytes // (1024 * 1024)} MB; resize it",
                )
            )
    split_images = [image for image in dataset.images if image.ml_use is not None]
    if dataset.images and not split_images:
        warnings.append(
            CheckIssue(
                code="unsplit",
                message="no image has an ML use; split the dataset (split_dataset) or the "
                "service splits it at random, leaking near-duplicates",
            )
        )
    if split_images:
        uses_by_group: dict[str, set[MLUse]] = defaultdict(set)
        items_by_group: dict[str, list[str]] = defaultdict(list)
        for image in split_images:
            assert image.ml_use is not None
            for key in {image.group, image.sha256} - {None}:
                assert key is not None
                uses_by_group[key].add(image.ml_use)
                items_by_group[key].append(str(image.path))
        for key, uses in sorted(uses_by_group.items()):
            if len(uses) > 1:
                errors.append(
                    CheckIssue(
                        code="leak",
                        item=items_by_group[key][0],
                        message=f"near-duplicate group {key[:16]} spans "
                        f"{', '.join(sorted(use.value for use in uses))}: "
                        f"{', '.join(items_by_group[key][:3])}; re-split so it stays on one side",
                    )
                )
        for label in counts:
            present = {image.ml_use for image in split_images if image.label == label}
            lacking = [use.value for use in (MLUse.VALIDATION, MLUse.TEST) if use not in present]
            if lacking:
                warnings.append(
                    CheckIssue(
                        code="split_coverage",
                        label=label,
                        message=f"label {label} has no {' or '.join(lacking)} image",
                    )
                )
    return DatasetCheckReport(
        target=target,
        errors=tuple(errors),
        warnings=tuple(warnings),
        counts=counts,
        split_counts=split_counts,
    )


def convert_unsupported(
    dataset: LabeledDataset,
    out_dir: str | Path,
    *,
    target: str = "vertex",
    to: Literal["PNG", "JPEG"] = "PNG",
) -> LabeledDataset:
    """Convert images the target does not train on (e.g. WEBP for Vertex AI) to PNG or JPEG.

    Converted files are written as ``{out_dir}/{sha256}.png`` (or ``.jpg``) with their new
    SHA-256; ``group`` is kept so the split stays leak-free. Only the first frame of an
    animation is kept. JPEG output is RGB at quality 95.

    Args:
        dataset: The dataset.
        out_dir: Folder for the converted files (created).
        target: Target whose :attr:`TargetLimits.formats` decide what is converted.
        to: ``"PNG"`` (default, lossless) or ``"JPEG"``.

    Returns:
        The dataset with converted images pointing at the new files.

    Raises:
        DatasetError: Unknown target, or a file cannot be converted (names it).
    """
    from PIL import Image, UnidentifiedImageError

    limits = TARGET_LIMITS.get(target)
    if limits is None:
        raise DatasetError(f"unknown target {target!r}; choose one of {', '.join(TARGET_LIMITS)}")
    if limits.formats is None:
        return dataset
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    converted: list[LabeledImage] = []
    for image in dataset.images:
        fmt = _sniff_format(image.path)
        if fmt is None or fmt in limits.formats:
            converted.append(image)
            continue
        buffer = io.BytesIO()
        try:
            with Image.open(image.path) as handle:
                frame = handle.convert("RGB" if to == "JPEG" else "RGBA")
                frame.save(buffer, format=to, **({"quality": 95} if to == "JPEG" else {}))
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise DatasetError(f"cannot convert {image.path} to {to}: {exc}") from exc
        data = buffer.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        path = folder / f"{sha}.{'jpg' if to == 'JPEG' else 'png'}"
        path.write_bytes(data)
        converted.append(attrs.evolve(image, path=path, sha256=sha, group=image.group or sha))
    return attrs.evolve(dataset, images=tuple(converted))


# --------------------------------------------------------------------------- import files


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
      "group", "source"}`` per image, read by :func:`load_local_dataset`; here ``path``
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
                writer.writerow([_AUTOML_ML_USE[image.ml_use], uri, image.label])
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
                line["dataItemResourceLabels"] = {_VERTEX_ML_USE_KEY: image.ml_use.value}
            buffer.write(json.dumps(line, ensure_ascii=False) + "\n")
    elif import_format == "local_jsonl":
        for image in dataset.images:
            buffer.write(json.dumps(_local_line(image, uri_for(image)), ensure_ascii=False))
            buffer.write("\n")
    else:
        raise DatasetError(
            f"unknown import format {import_format!r}; choose one of {', '.join(IMPORT_FORMATS)}"
        )
    return buffer.getvalue()


def _local_line(image: LabeledImage, path: str) -> dict[str, Any]:
    return {
        "path": path,
        "label": image.label,
        "original_label": image.original_label,
        "ml_use": image.ml_use.value if image.ml_use else None,
        "sha256": image.sha256,
        "group": image.group,
        "source": image.source,
    }


def write_local_dataset(dataset: LabeledDataset, path: str | Path) -> Path:
    """Write a dataset as a local JSONL manifest (the ``local_jsonl`` import format).

    One JSON object per line: ``path`` (relative to the file's folder when the image is
    under it, else absolute), ``label``, ``original_label``, ``ml_use``, ``sha256``,
    ``group``, ``source``. Written atomically (temporary file, then rename).

    Args:
        dataset: The dataset.
        path: The file to write, conventionally ``dataset.jsonl``; its folder is created.

    Returns:
        The file's path.

    Raises:
        DatasetError: The file cannot be written.
    """
    target = Path(path)
    base = target.resolve().parent

    def relative(image: LabeledImage) -> str:
        resolved = image.path.resolve()
        try:
            return resolved.relative_to(base).as_posix()
        except ValueError:
            return str(resolved)

    text = render_import_file(dataset, "local_jsonl", uri_for=relative)
    try:
        base.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(target)
    except OSError as exc:
        raise DatasetError(f"cannot write dataset file {target}: {exc.strerror or exc}") from exc
    return target


def load_local_dataset(path_or_uri: str | Path) -> LabeledDataset:
    """Read a local JSONL manifest written by :func:`write_local_dataset` or a writer.

    Args:
        path_or_uri: The ``dataset.jsonl`` file, as a path or ``file://`` URI, or a folder
            holding ``dataset.jsonl``.

    Returns:
        The dataset, in file order; relative paths are resolved against the file's folder;
        ``label_map`` is rebuilt from ``label`` / ``original_label``; the name is the
        folder's.

    Raises:
        DatasetError: The file is missing or unreadable, a line is not a JSON object with
            ``path`` and ``label``, an ``ml_use`` is not training/validation/test, or one
            service label carries two original labels. Messages give the line number.
    """
    text_path = str(path_or_uri)
    path = _path_from(text_path, Path.cwd()) if text_path.startswith("file://") else Path(text_path)
    if path.is_dir():
        path = path / IMPORT_FILE_NAMES["local_jsonl"]
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(
            f"cannot read dataset file {path}: {exc.strerror or exc}; write it with "
            "`redditvision label --out DIR`"
        ) from exc
    base = path.resolve().parent
    images: list[LabeledImage] = []
    label_map: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise TypeError("not an object")
            label = str(data["label"])
            original = str(data.get("original_label") or label)
            use = data.get("ml_use")
            image = LabeledImage(
                path=_path_from(str(data["path"]), base),
                label=label,
                original_label=original,
                ml_use=MLUse(use) if use else None,
                sha256=data.get("sha256"),
                group=data.get("group"),
                source=data.get("source"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(
                f"{path} line {number} is not a dataset line ({exc}); expected a JSON object "
                "with path, label, original_label, ml_use, sha256, group"
            ) from exc
        if label_map.setdefault(label, original) != original:
            raise DatasetError(
                f"{path} line {number}: label {label!r} stands for both "
                f"{label_map[label]!r} and {original!r}"
            )
        images.append(image)
    return LabeledDataset(
        images=tuple(images),
        label_map=dict(sorted(label_map.items())),
        name=_dataset_name(base.name),
    )
