"""Check a dataset against a training target's limits before paying for anything.

:func:`check_dataset` returns a :class:`DatasetCheckReport` of errors (the service would
refuse the dataset or the model would be unsound) and warnings; :func:`convert_unsupported`
turns images a target does not train on into PNG or JPEG. A target is a registered backend:
its figures are the :class:`~redditvision.backends.TargetLimits` the backend declares
(in its own module), read through the backend registry by :func:`target_limits` only.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from redditvision._files import bytes_sha256
from redditvision.backends._protocol import TargetLimits
from redditvision.errors import DatasetError
from redditvision.labels._names import LABEL_PATTERN, suggest_label
from redditvision.models import LabeledDataset, LabeledImage, MLUse

if TYPE_CHECKING:
    from redditvision.backends import Backend

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


class _TargetLimitsView(Mapping[str, TargetLimits]):
    """The registered backends' limits, by backend name (read from the registry each time)."""

    def __getitem__(self, name: str) -> TargetLimits:
        from redditvision.backends import backend_names, get_backend

        if name not in backend_names():
            raise KeyError(name)
        return get_backend(name).limits

    def __iter__(self) -> Iterator[str]:
        from redditvision.backends import backend_names

        return iter(backend_names())

    def __len__(self) -> int:
        from redditvision.backends import backend_names

        return len(backend_names())


TARGET_LIMITS: Mapping[str, TargetLimits] = _TargetLimitsView()
"""Limits per training target, keyed by backend name: each registered backend's declared
:class:`~redditvision.backends.TargetLimits` (they live in the backend modules, e.g.
``redditvision/backends/vertex/_limits.py``)."""


def target_limits(target: str | Backend) -> TargetLimits:
    """Return the limits a backend declares.

    Args:
        target: A registered backend name (``"vertex"``, ``"automl"``, ``"local"``, ...) or
            a backend (its ``name`` is looked up).

    Returns:
        Its limits.

    Raises:
        DatasetError: ``target`` is not a registered backend (the message lists them).
    """
    from redditvision.backends import backend_names, get_backend

    name = target if isinstance(target, str) else target.name
    if name not in backend_names():
        raise DatasetError(
            f"unknown check target {name!r}; choose one of {', '.join(backend_names())}"
        )
    return get_backend(name).limits


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
        label_names: Service label -> the user's label name.
    """

    target: str
    errors: tuple[CheckIssue, ...] = ()
    warnings: tuple[CheckIssue, ...] = ()
    counts: Mapping[str, int] = attrs.field(factory=dict, hash=False)
    split_counts: Mapping[str, int] = attrs.field(factory=dict, hash=False)
    label_names: Mapping[str, str] = attrs.field(factory=dict, hash=False)

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
            A dict with ``target``, ``ok``, ``counts`` (keyed by service label),
            ``label_counts`` (keyed by the user's label names), ``split_counts``,
            ``errors`` and ``warnings``; each issue is a dict with ``code``, ``message``,
            ``label`` (the service label), ``original_label`` and ``item``.
        """

        def issue_json(issue: CheckIssue) -> dict[str, Any]:
            original = self.label_names.get(issue.label, issue.label) if issue.label else None
            return {**attrs.asdict(issue), "original_label": original}

        return {
            "target": self.target,
            "ok": self.ok,
            "counts": dict(self.counts),
            "label_counts": {
                self.label_names.get(label, label): count for label, count in self.counts.items()
            },
            "split_counts": dict(self.split_counts),
            "errors": [issue_json(issue) for issue in self.errors],
            "warnings": [issue_json(issue) for issue in self.warnings],
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


def check_dataset(
    dataset: LabeledDataset, *, target: str | Backend = "vertex"
) -> DatasetCheckReport:
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
        target: A registered backend name (``"vertex"``, the default, ``"automl"``,
            ``"local"``, ...) or a backend; its declared limits apply.

    Returns:
        The report; :attr:`DatasetCheckReport.ok` tells whether it holds no errors.

    Raises:
        DatasetError: ``target`` is unknown.
    """
    limits = target_limits(target)
    target = limits.name
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
        shown = _shown(label, dataset.label_map)
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
                        message=f"label {_shown(label, dataset.label_map)} has no "
                        f"{' or '.join(lacking)} image",
                    )
                )
    return DatasetCheckReport(
        target=target,
        errors=tuple(errors),
        warnings=tuple(warnings),
        counts=counts,
        split_counts=split_counts,
        label_names={label: dataset.label_map.get(label, label) for label in counts},
    )


def _shown(label: str, label_map: Mapping[str, str]) -> str:
    """A label as the user knows it, with the service label after it when they differ."""
    original = label_map.get(label, label)
    return label if original == label else f"{original!r} (service label {label})"


def convert_unsupported(
    dataset: LabeledDataset,
    out_dir: str | Path,
    *,
    target: str | Backend = "vertex",
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
