"""Check a dataset against a training target's limits before paying for anything.

:func:`check_dataset` returns a :class:`DatasetCheckReport` of errors (the service would
refuse the dataset or the model would be unsound) and warnings; :func:`convert_unsupported`
turns images a target does not train on into PNG or JPEG. Each target's figures are one
:class:`TargetLimits` in :data:`TARGET_LIMITS`, read through :func:`target_limits` only.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from redditvision._files import bytes_sha256
from redditvision.errors import DatasetError
from redditvision.labels._names import LABEL_PATTERN, suggest_label
from redditvision.models import LabeledDataset, LabeledImage, MLUse

__all__ = [
    "TARGET_LIMITS",
    "CheckIssue",
    "DatasetCheckReport",
    "TargetLimits",
    "check_dataset",
    "convert_unsupported",
    "sniff_format",
    "target_limits",
]


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


def target_limits(target: str) -> TargetLimits:
    """Return the limits of a training target.

    Args:
        target: ``"vertex"``, ``"automl"`` or ``"local"`` (:data:`TARGET_LIMITS`).

    Returns:
        Its limits.

    Raises:
        DatasetError: ``target`` is unknown (the message lists the known ones).
    """
    limits = TARGET_LIMITS.get(target)
    if limits is None:
        raise DatasetError(
            f"unknown check target {target!r}; choose one of {', '.join(TARGET_LIMITS)}"
        )
    return limits


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


def sniff_format(path: Path) -> str | None:
    """Return the Pillow format name of an image file (header read only), or None.

    Args:
        path: The file.

    Returns:
        E.g. ``"JPEG"``; None when Pillow cannot identify it or it cannot be read.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as handle:
            return str(handle.format) if handle.format else None
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def check_dataset(dataset: LabeledDataset, *, target: str = "vertex") -> DatasetCheckReport:
    """Check a dataset against a training target's limits before paying for anything.

    Errors: empty dataset; label not matching :data:`~redditvision.labels.LABEL_PATTERN`;
    fewer than ``min_images_per_label`` images in a label (10 for Vertex AI and AutoML); missing or
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
    limits = target_limits(target)
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
                    f"try {suggest_label(label)!r}",
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
        fmt = sniff_format(image.path)
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

    limits = target_limits(target)
    if limits.formats is None:
        return dataset
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    converted: list[LabeledImage] = []
    for image in dataset.images:
        fmt = sniff_format(image.path)
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
        sha = bytes_sha256(data)
        path = folder / f"{sha}.{'jpg' if to == 'JPEG' else 'png'}"
        path.write_bytes(data)
        converted.append(attrs.evolve(image, path=path, sha256=sha, group=image.group or sha))
    return attrs.evolve(dataset, images=tuple(converted))
