"""What the report pages say, format-free: titles, the headline, tables and column notes.

The HTML (:mod:`redditvision.report.html`) and Markdown (:mod:`redditvision.report.markdown`)
pages render the same :class:`Table` objects, so both show the same figures and explain the
same columns. A cell is a :data:`Cell`: the text shown and the key a sortable HTML table
sorts by.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

import attrs

from redditvision.models import Evaluation

if TYPE_CHECKING:
    from redditvision.compare import ComparisonReport, ImageComparison

__all__ = [
    "GENERIC_NAMES",
    "IMAGE_COLUMNS",
    "MISCLASSIFIED_LIMIT",
    "Cell",
    "ImageNames",
    "Table",
    "class_table",
    "comparison_plot_texts",
    "evaluation_label_table",
    "evaluation_overall_table",
    "evaluation_plot_texts",
    "generic_display_name",
    "generic_text",
    "headline",
    "match_text",
    "misclassified_table",
    "overall_table",
    "report_title",
]

Cell = tuple[str, float | str | None]
"""(text shown, sort key): a number sorts numerically, None sorts last."""

MISCLASSIFIED_LIMIT = 200
"""Misclassified items listed at most (the evaluation's list may be longer)."""

GENERIC_NAMES = {
    "imagenet": "ImageNet labels (offline)",
    "cloud_vision": "Google Cloud Vision labels",
}
"""Reader-facing names of the generic labelers, by their ``name``."""


@attrs.frozen(kw_only=True)
class Table:
    """A table for a report page.

    Attributes:
        id: The HTML ``id`` (also the anchor in Markdown-rendered pages).
        header: Column names.
        rows: Cells, one sequence per row, as long as ``header``.
        notes: (column, what it means) for every column that needs saying; shown under
            the table.
        row_classes: A CSS class per row (``"wrong"``, ``"error"`` or ``""``), or empty.
    """

    id: str
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    notes: tuple[tuple[str, str], ...] = ()
    row_classes: tuple[str, ...] = ()


def fmt(value: float | None, digits: int = 3) -> str:
    """Format a figure with ``digits`` decimals, ``"n/a"`` for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def percent(value: float | None) -> str:
    """Format a fraction as a whole percent, ``"n/a"`` for None."""
    return "n/a" if value is None else f"{value:.0%}"


def num(value: float | None, digits: int = 3) -> Cell:
    """A figure cell."""
    return fmt(value, digits), value


def count(value: int) -> Cell:
    """A count cell."""
    return str(value), value


def text(value: str | None) -> Cell:
    """A text cell (None shows empty)."""
    return value or "", value or ""


def generic_display_name(name: str) -> str:
    """Return a generic labeler's reader-facing name (``"imagenet"`` -> ImageNet labels ...)."""
    return GENERIC_NAMES.get(name, f"{name} labels")


def report_title(report: ComparisonReport) -> str:
    """Return the page title, e.g. ``Custom model "bmw" against ImageNet labels (offline)``."""
    return (
        f"Custom model “{report.custom_name}” against {generic_display_name(report.generic_name)}"
    )


def headline(report: ComparisonReport) -> str:
    """Return the report's one-sentence finding.

    Returns:
        E.g. "On 120 images with a known class, the custom model names the right class for
        92% of them; the ImageNet labels (offline) name it for 0%, and only generic words
        for 97%." Or a sentence saying why there is nothing to compare.
    """
    s = report.summary
    generic = generic_display_name(report.generic_name)
    if not s.with_truth:
        return (
            f"{s.images} images compared without a known class, so neither side can be "
            "scored; give label folders to see how often each names the right class."
        )
    sentence = (
        f"On {s.with_truth} images with a known class, the custom model names the right class "
        f"for {percent(s.custom_accuracy)} of them; the {generic} name it for "
        f"{percent(s.generic_names_truth)}"
    )
    if s.generic_only_generic:
        sentence += f", and only generic words for {percent(s.generic_only_generic)}"
    return sentence + "."


_MATCH_TEXT = {
    "class": "the true class",
    "other_class": "another class",
    "generic": "only generic words",
    "none": "nothing relevant",
}


def match_text(match: str | None) -> str:
    """Return a :class:`~redditvision.compare.GenericMatch` value in words ("" for None)."""
    return _MATCH_TEXT.get(match or "", match or "")


def generic_text(image: ImageComparison, limit: int = 5) -> str:
    """Return an image's first ``limit`` generic labels as ``"label (0.91); ..."``."""
    parts = []
    for label in image.generic.labels[:limit]:
        parts.append(label.label if label.score is None else f"{label.label} ({label.score:.2f})")
    return "; ".join(parts)


class ImageNames:
    """Show image paths relative to one folder, named once on the page.

    Args:
        names: The images' names as the comparison holds them (paths, or ``"image N"``).
        root: The folder to show paths relative to; None (default) takes the deepest folder
            holding every path. Names outside it are shown as given.
    """

    def __init__(self, names: Sequence[str], root: str | os.PathLike[str] | None = None) -> None:
        self.root: PurePath | None = Path(root) if root is not None else self._common(names)

    @staticmethod
    def _common(names: Sequence[str]) -> PurePath | None:
        paths = [PurePath(name) for name in names if "/" in name or os.sep in name]
        if not paths or len(paths) != len(names):
            return None
        try:
            common = PurePath(os.path.commonpath([str(p.parent) for p in paths]))
        except ValueError:  # absolute and relative paths mixed
            return None
        return common if str(common) not in ("", ".") else None

    def show(self, name: str) -> str:
        """Return ``name`` relative to :attr:`root` when it lies inside it, else unchanged."""
        if self.root is None:
            return name
        try:
            return PurePath(name).relative_to(self.root).as_posix()
        except ValueError:
            return name


def overall_table(report: ComparisonReport) -> Table:
    """The comparison's overall figures, one metric a row."""
    s = report.summary
    rows: list[tuple[str, Cell]] = [
        ("images", count(s.images)),
        ("images with a known class (truth)", count(s.with_truth)),
        ("custom model names the true class (top-1 accuracy)", num(s.custom_accuracy)),
        ("custom model macro F1", num(s.custom_macro_f1)),
        ("generic labels name the true class", num(s.generic_names_truth)),
        ("generic labels name another class only", num(s.generic_names_other_class)),
        ("generic labels name only generic words (make, kind)", num(s.generic_only_generic)),
        ("generic labels name nothing relevant", num(s.generic_none)),
        ("generic labels name the custom model's class (agreement)", num(s.agreement)),
        ("images the generic labeler failed on", count(s.generic_errors)),
        ("images the custom model failed on", count(s.custom_errors)),
        ("true classes unknown to the model", text(", ".join(s.unknown_truth_labels) or "none")),
    ]
    return Table(
        id="overall-table",
        header=("metric", "value"),
        rows=tuple((text(name), cell) for name, cell in rows),
        notes=(("value", "a fraction from 0 to 1 of the images with a known class, or a count"),),
    )


def class_table(report: ComparisonReport) -> Table:
    """The comparison per true class."""
    rows = []
    for c in report.classes:
        name = c.label if c.known_to_model else f"{c.label} (unknown to model)"
        rows.append(
            (
                text(name),
                count(c.support),
                count(c.predicted),
                num(c.precision),
                num(c.recall),
                num(c.f1),
                num(c.generic_names_class),
                num(c.generic_only_generic),
                num(c.agreement),
            )
        )
    return Table(
        id="class-table",
        header=(
            "class",
            "images",
            "predicted",
            "custom precision",
            "custom recall",
            "custom F1",
            "generic names class",
            "generic only generic words",
            "agreement",
        ),
        rows=tuple(rows),
        notes=(
            ("images", "images whose true class this is"),
            ("predicted", "images the custom model put in this class (its top-1 answer)"),
            ("custom precision", "of the images predicted as this class, the share that are"),
            ("custom recall", "of this class's images, the share the custom model found"),
            ("custom F1", "the harmonic mean of precision and recall"),
            (
                "generic names class",
                "share of this class's images whose generic labels contain the words of the "
                "class's name or aliases (e.g. “Z4”)",
            ),
            (
                "generic only generic words",
                "share whose generic labels name only the make or a kind of thing (“car”)",
            ),
            ("agreement", "share where the generic labels name the custom model's answer"),
        ),
    )


IMAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("image", "the image file, relative to the folder named above the table"),
    ("truth", "the true class: the image's label folder, grouped by the label map"),
    ("custom", "the custom model's answer (its top-1 class); the row is red when it is wrong"),
    ("score", "the custom model's score for that answer, from 0 to 1"),
    ("generic labels", "the generic labeler's first labels, best first, with scores from 0 to 1"),
    (
        "best guess",
        "the generic labeler's one-phrase guess for the whole image (Cloud Vision's "
        "web-detection best guess; for ImageNet its first class)",
    ),
    (
        "generic labels name",
        "what the generic labels and best guess name, held against the truth: the true "
        "class, another class, only generic words (the make, “car”), or nothing relevant",
    ),
    ("error", "why one side gave no answer for this image"),
)
"""The image table's columns (thumbnail aside) and what each means."""


def evaluation_overall_table(evaluation: Evaluation) -> Table:
    """An evaluation's overall figures."""
    rows: list[tuple[str, Cell]] = [
        ("evaluated items", count(evaluation.evaluated_items)),
        ("accuracy", num(evaluation.accuracy)),
        ("macro precision", num(evaluation.macro_precision)),
        ("macro recall", num(evaluation.macro_recall)),
        ("macro F1", num(evaluation.macro_f1)),
        ("micro precision", num(evaluation.micro_precision)),
        ("micro recall", num(evaluation.micro_recall)),
        ("micro F1", num(evaluation.micro_f1)),
        ("auPRC", num(evaluation.au_prc)),
        ("log loss", num(evaluation.log_loss)),
        ("source", text(evaluation.source or "n/a")),
    ]
    return Table(
        id="evaluation-overall",
        header=("metric", "value"),
        rows=tuple((text(name), cell) for name, cell in rows),
        notes=(
            ("macro", "the mean over labels, each label counting once"),
            ("micro", "pooled over all items, each item counting once"),
            ("auPRC", "area under the precision-recall curve, 0 to 1 (1 is perfect)"),
        ),
    )


def evaluation_label_table(evaluation: Evaluation) -> Table:
    """An evaluation's figures per label."""
    return Table(
        id="evaluation-labels",
        header=("label", "precision", "recall", "F1", "support", "auPRC"),
        rows=tuple(
            (
                text(m.label),
                num(m.precision),
                num(m.recall),
                num(m.f1),
                count(m.support),
                num(m.au_prc),
            )
            for m in evaluation.per_label
        ),
        notes=(
            ("support", "evaluated items whose true label this is"),
            ("auPRC", "area under this label's precision-recall curve"),
        ),
    )


def misclassified_table(evaluation: Evaluation, names: ImageNames | None = None) -> Table:
    """The first :data:`MISCLASSIFIED_LIMIT` misclassified items of an evaluation."""
    show = names.show if names is not None else (lambda name: name)
    return Table(
        id="evaluation-misclassified",
        header=("item", "true", "predicted", "score"),
        rows=tuple(
            (text(show(m.item)), text(m.true_label), text(m.predicted_label), num(m.score))
            for m in evaluation.misclassified[:MISCLASSIFIED_LIMIT]
        ),
        notes=(("score", "the model's score for the wrong answer, 0 to 1"),),
    )


def _share_text(shares: dict[str, float | None]) -> str:
    return ", ".join(f"{name} for {percent(value)}" for name, value in shares.items())


def comparison_plot_texts(report: ComparisonReport) -> dict[str, tuple[str, str]]:
    """Return plot name -> (title, caption) of a comparison's plots, captions from the data.

    Args:
        report: The comparison.

    Returns:
        Texts for ``headline``, ``generic_naming``, ``generic_labels``,
        ``confusion_matrix`` and ``label_metrics``.
    """
    from redditvision.report.plots import generic_labels_table

    s = report.summary
    generic = generic_display_name(report.generic_name)
    classes, names, shares = generic_labels_table(report)
    firsts = []
    for label, row in zip(classes, shares, strict=True):
        if row:
            best = max(range(len(row)), key=row.__getitem__)
            firsts.append(f"{label}: “{names[best]}” ({row[best]:.0%})")
    return {
        "headline": (
            "How often each side names the right class",
            f"The custom model's top-1 answer against the {generic}, over the "
            f"{s.with_truth} images with a known class.",
        ),
        "generic_naming": (
            "What the generic labels name, per true class",
            f"Over all images with a known class, the {generic} name "
            + _share_text(
                {
                    "the true class": s.generic_names_truth,
                    "another class only": s.generic_names_other_class,
                    "only generic words": s.generic_only_generic,
                    "nothing relevant": s.generic_none,
                }
            )
            + ".",
        ),
        "generic_labels": (
            "The first generic label of each class's images",
            "Each cell is the share of a class's images whose first generic label is that "
            "column; a class the labeler tells apart has a bright cell of its own. Most "
            "common per class: " + ("; ".join(firsts) or "none") + ".",
        ),
        "confusion_matrix": (
            "Confusion matrix of the custom model",
            "Rows are the true classes, columns the custom model's answers; the diagonal "
            "counts the right answers.",
        ),
        "label_metrics": (
            "Precision, recall and F1 per class (custom model)",
            "Each bar runs from 0 to 1; longer is better.",
        ),
    }


def evaluation_plot_texts(evaluation: Evaluation) -> dict[str, tuple[str, str]]:
    """Return plot name -> (title, caption) of an evaluation's plots.

    Args:
        evaluation: The evaluation.

    Returns:
        Texts for ``confusion_matrix``, ``label_metrics`` and ``pr_curves``.
    """
    items = f"over the {evaluation.evaluated_items} evaluated items"
    return {
        "confusion_matrix": (
            "Confusion matrix",
            f"Rows are the true labels, columns the model's answers, {items}; the diagonal "
            "counts the right answers.",
        ),
        "label_metrics": (
            "Precision, recall and F1 per label",
            f"Each bar runs from 0 to 1, {items}; longer is better.",
        ),
        "pr_curves": (
            "Precision-recall curve per label",
            "One curve per label through the confidence thresholds of the evaluation, drawn "
            "as steps with interpolated precision (the best precision at that recall or "
            "higher; each dot is a threshold); the black curve pools every label. The "
            "legend gives each label's auPRC.",
        ),
    }
