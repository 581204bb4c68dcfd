"""Label names: the rule both Vertex AI and legacy AutoML accept, and the reversible mapping."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

from redditvision.errors import DatasetError
from redditvision.models import LabeledDataset, LabeledImage

__all__ = [
    "LABEL_PATTERN",
    "dataset_name",
    "map_labels",
    "normalize_label",
    "suggest_label",
    "with_label_map",
]

LABEL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
"""A label both Vertex AI and legacy AutoML v1 (``[A-Za-z0-9_]{1,32}``) accept: a letter
first, then up to 31 letters, digits or underscores."""


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
            suggestions = ", ".join(f"{name!r} (try {suggest_label(name)!r})" for name in bad)
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


def suggest_label(name: str) -> str:
    """Return a valid label to suggest for ``name`` in an error message (``"label"`` at worst).

    Args:
        name: Any label name.

    Returns:
        :func:`normalize_label` of it, or ``"label"`` when nothing usable is left.
    """
    try:
        return normalize_label(name)
    except DatasetError:
        return "label"


def dataset_name(text: str) -> str:
    """Return a dataset display name built from ``text`` (a folder or file name).

    Args:
        text: The name to start from.

    Returns:
        :func:`normalize_label` of it, or ``"redditvision"`` when nothing usable is left.
    """
    try:
        return normalize_label(text)
    except DatasetError:
        return "redditvision"


def with_label_map(
    images: Sequence[tuple[Path, str, str | None, str | None, str | None]],
    *,
    normalize: bool,
    name: str,
) -> LabeledDataset:
    """Build a dataset from (path, original label, sha256, group, source) tuples.

    Args:
        images: One tuple per image, in the dataset's order.
        normalize: Map invalid labels through :func:`normalize_label`, or reject them.
        name: The dataset's display name.

    Returns:
        The dataset; its ``label_map`` maps service label -> original label.

    Raises:
        DatasetError: Labels are invalid (``normalize=False``) or clash (see :func:`map_labels`).
    """
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
