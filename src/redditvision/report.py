"""Reports of comparisons and evaluations: Markdown, self-contained HTML, CSV/JSON Lines, plots.

:func:`write_report` writes a :class:`~redditvision.vision.ComparisonReport` (and, when given,
the custom model's :class:`~redditvision.models.Evaluation`) into a folder::

    report.html          one self-contained page: tables (click a header to sort),
                         thumbnails and plots inlined as data: URIs, no outside requests
    report.md            the same tables in Markdown, plots linked as files
    comparison.csv       one row per image
    comparison.jsonl     one JSON object per image, every label and score
    summary.json         the aggregates (what ``redditvision compare --json-summary`` prints)
    confusion_matrix.png, label_metrics.png, generic_naming.png, pr_curves.png

:func:`write_evaluation_report` writes an evaluation alone; an evaluation from any backend
(local, Vertex AI, AutoML) renders the same way, since they share one type.

Plots are drawn with matplotlib's object API on an Agg canvas (``matplotlib.figure.Figure``
with ``FigureCanvasAgg``): no pyplot state, no GUI backend and no change to matplotlib's
global configuration. Every text from data (labels, file names, errors) is HTML-escaped.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from redditvision.errors import ComparisonError, ConfigError
from redditvision.models import Evaluation, LabelMetrics, ThresholdMetrics
from redditvision.vision import ComparisonReport, GenericMatch, ImageComparison

__all__ = [
    "PLOT_DPI",
    "PR_CURVE_INCHES",
    "ReportFiles",
    "bar_chart_inches",
    "comparison_records",
    "confusion_matrix_inches",
    "evaluate_comparison",
    "plot_confusion_matrix",
    "plot_generic_naming",
    "plot_label_metrics",
    "plot_pr_curves",
    "render_evaluation_html",
    "render_evaluation_markdown",
    "render_html",
    "render_markdown",
    "write_evaluation_report",
    "write_report",
]

PLOT_DPI = 100
"""Dots per inch of every plot: a figure of W x H inches is a PNG of 100 W x 100 H pixels."""


@attrs.frozen(kw_only=True)
class ReportFiles:
    """The files a report writer wrote.

    Attributes:
        folder: The report folder.
        html: The self-contained HTML page.
        markdown: The Markdown page.
        csv: The CSV table (one row per image, or per label for an evaluation).
        jsonl: One JSON object per image, or None for an evaluation alone.
        summary: The aggregates as JSON.
        plots: Plot name (``"confusion_matrix"``, ``"label_metrics"``,
            ``"generic_naming"``, ``"pr_curves"``) -> PNG file; a plot without data is left
            out.
    """

    folder: Path
    html: Path
    markdown: Path
    csv: Path
    jsonl: Path | None
    summary: Path
    plots: Mapping[str, Path] = attrs.field(factory=dict, hash=False)


# -- plots -------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=PLOT_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PLOT_DPI, metadata={"Software": None})
    return buffer.getvalue()


def _short(label: str, limit: int = 28) -> str:
    """Shorten a label for a plot and escape ``$`` so matplotlib never reads it as math."""
    text = label if len(label) <= limit else label[: limit - 1] + "…"
    return text.replace("$", r"\$")


def confusion_matrix_inches(n_labels: int) -> tuple[float, float]:
    """Return the confusion matrix figure size in inches for ``n_labels`` labels.

    Args:
        n_labels: Number of labels (rows and columns).

    Returns:
        (width, height), both ``min(20, max(5, 2.5 + 0.6 * n_labels))``: 5 x 5 inches
        (500 x 500 pixels) up to 4 labels, 1450 x 1450 pixels for 20.
    """
    side = min(20.0, max(5.0, 2.5 + 0.6 * n_labels))
    return side, side


def bar_chart_inches(n_labels: int) -> tuple[float, float]:
    """Return the per-label bar chart size in inches.

    Args:
        n_labels: Number of bars (labels).

    Returns:
        (8, ``min(30, max(3, 1.5 + 0.45 * n_labels))``): 800 x 300 pixels up to 3 labels.
    """
    return 8.0, min(30.0, max(3.0, 1.5 + 0.45 * n_labels))


PR_CURVE_INCHES = (8.0, 6.0)
"""Size of the precision-recall plot in inches (800 x 600 pixels)."""


def plot_confusion_matrix(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> bytes:
    """Draw a confusion matrix heatmap (rows true, columns predicted, counts in cells).

    Args:
        labels: Label names in matrix order.
        matrix: Counts, shape (len(labels), len(labels)).

    Returns:
        PNG bytes, :func:`confusion_matrix_inches` times :data:`PLOT_DPI` pixels.

    Raises:
        ComparisonError: The matrix shape does not match the labels, or there are none.
    """
    n = len(labels)
    if n == 0 or len(matrix) != n or any(len(row) != n for row in matrix):
        raise ComparisonError(
            f"a confusion matrix needs shape ({n}, {n}) for {n} labels, got {len(matrix)} rows"
        )
    figure = _figure(*confusion_matrix_inches(n))
    axes = figure.add_subplot()
    data = [[int(value) for value in row] for row in matrix]
    peak = max((value for row in data for value in row), default=0)
    image = axes.imshow(data, cmap="Blues", vmin=0, vmax=max(peak, 1))
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    ticks = list(range(n))
    short = [_short(label) for label in labels]
    axes.set_xticks(ticks, short, rotation=45, ha="right", fontsize=8)
    axes.set_yticks(ticks, short, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("Confusion matrix")
    if n <= 25:
        for i, row in enumerate(data):
            for j, value in enumerate(row):
                colour = "white" if value > peak / 2 and peak else "black"
                axes.text(j, i, str(value), ha="center", va="center", color=colour, fontsize=8)
    return _png(figure)


def plot_label_metrics(per_label: Sequence[LabelMetrics]) -> bytes:
    """Draw precision, recall and F1 per label as grouped horizontal bars.

    Args:
        per_label: One :class:`~redditvision.models.LabelMetrics` per label.

    Returns:
        PNG bytes, :func:`bar_chart_inches` times :data:`PLOT_DPI` pixels.

    Raises:
        ComparisonError: ``per_label`` is empty.
    """
    if not per_label:
        raise ComparisonError("no labels to plot precision and recall for")
    figure = _figure(*bar_chart_inches(len(per_label)))
    axes = figure.add_subplot()
    height = 0.27
    rows = list(range(len(per_label)))
    for offset, (name, values) in enumerate(
        (
            ("precision", [m.precision for m in per_label]),
            ("recall", [m.recall for m in per_label]),
            ("F1", [m.f1 for m in per_label]),
        )
    ):
        axes.barh([r + (offset - 1) * height for r in rows], values, height=height, label=name)
    axes.set_yticks(rows, [_short(m.label) for m in per_label], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("score")
    axes.set_title("Precision, recall and F1 per label")
    axes.legend(loc="lower right", fontsize=8)
    return _png(figure)


def plot_pr_curves(thresholds: Sequence[ThresholdMetrics]) -> bytes:
    """Draw a precision-recall curve per label from an evaluation's threshold table.

    Each label's points (``ThresholdMetrics`` with that ``label``) are joined in order of
    recall; the all-labels curve (``label`` None) is drawn thick and black. Points with
    precision and recall both 0 (nothing predicted at that threshold) are left out.

    Args:
        thresholds: ``Evaluation.thresholds``.

    Returns:
        PNG bytes, :data:`PR_CURVE_INCHES` times :data:`PLOT_DPI` pixels.

    Raises:
        ComparisonError: ``thresholds`` is empty.
    """
    if not thresholds:
        raise ComparisonError("the evaluation has no threshold table to draw curves from")
    curves: dict[str | None, list[ThresholdMetrics]] = {}
    for point in thresholds:
        # At thresholds where nothing is predicted, precision is undefined (reported 0):
        # such points would drag every curve to the origin, so they are left out.
        if point.recall > 0 or point.precision > 0:
            curves.setdefault(point.label, []).append(point)
    curves = {label: points for label, points in curves.items() if points}
    figure = _figure(*PR_CURVE_INCHES)
    axes = figure.add_subplot()
    named = sorted(label for label in curves if label is not None)
    from matplotlib import colormaps

    palette = colormaps["tab20"]
    for i, label in enumerate(named):
        points = sorted(curves[label], key=lambda p: (p.recall, -p.precision))
        axes.plot(
            [p.recall for p in points],
            [p.precision for p in points],
            label=_short(label),
            color=palette(i % 20),
            linewidth=1.2,
        )
    if None in curves:
        points = sorted(curves[None], key=lambda p: (p.recall, -p.precision))
        axes.plot(
            [p.recall for p in points],
            [p.precision for p in points],
            label="all labels",
            color="black",
            linewidth=2.5,
        )
    axes.set_xlim(0, 1.02)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_title("Precision-recall curve per label")
    axes.legend(loc="lower left", fontsize=7, ncol=2 if len(curves) > 8 else 1)
    return _png(figure)


def plot_generic_naming(report: ComparisonReport) -> bytes:
    """Draw, per class, what the generic labels name: the class, another, only "car", nothing.

    Args:
        report: A comparison with truth for at least one image.

    Returns:
        PNG bytes, :func:`bar_chart_inches` (for the classes with truth) times
        :data:`PLOT_DPI` pixels.

    Raises:
        ComparisonError: No image has both a truth and generic labels.
    """
    counts: dict[str, dict[str, int]] = {}
    for image in report.images:
        if image.truth is not None and image.generic_match is not None:
            row = counts.setdefault(image.truth, {})
            row[image.generic_match] = row.get(image.generic_match, 0) + 1
    if not counts:
        raise ComparisonError("no image has both a true class and generic labels")
    labels = sorted(counts)
    figure = _figure(*bar_chart_inches(len(labels)))
    axes = figure.add_subplot()
    left = [0.0] * len(labels)
    for kind, caption, colour in (
        (GenericMatch.CLASS, "names the class", "#2e7d32"),
        (GenericMatch.OTHER_CLASS, "names another class", "#f9a825"),
        (GenericMatch.GENERIC, "only make / vehicle", "#90a4ae"),
        (GenericMatch.NONE, "nothing relevant", "#d7ccc8"),
    ):
        shares = []
        for label in labels:
            total = sum(counts[label].values())
            shares.append(counts[label].get(kind, 0) / total)
        axes.barh(labels, shares, left=left, label=caption, color=colour)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    axes.set_yticks(range(len(labels)), [_short(label) for label in labels], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel(f"share of images ({_short(report.generic_name, 40)} labels)")
    axes.set_title("What the generic labels name, per true class")
    figure.legend(loc="outside lower center", ncol=4, fontsize=8)
    return _png(figure)


# -- records ----------------------------------------------------------------------------


def _image_record(image: ImageComparison) -> dict[str, Any]:
    return {
        "image": image.name,
        "truth": image.truth,
        "custom": [
            {"label": p.label, "score": p.score, "model_label": p.model_label} for p in image.custom
        ],
        "custom_error": image.custom_error,
        "custom_correct": image.custom_correct,
        "generic": {
            "labels": [
                {"label": g.label, "score": g.score, "source": g.source, "mid": g.mid}
                for g in image.generic.labels
            ],
            "best_guess": image.generic.best_guess,
            "error": image.generic.error,
        },
        "generic_classes": list(image.generic_classes),
        "generic_match": image.generic_match,
        "agreement": image.agreement,
    }


def comparison_records(report: ComparisonReport) -> list[dict[str, Any]]:
    """Return one JSON-compatible dict per image (the rows of ``comparison.jsonl``).

    Args:
        report: The comparison.

    Returns:
        Dicts with ``image``, ``truth``, ``custom`` (every prediction), ``custom_error``,
        ``custom_correct``, ``generic`` (labels, best guess, error), ``generic_classes``,
        ``generic_match`` and ``agreement``.
    """
    return [_image_record(image) for image in report.images]


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _generic_text(image: ImageComparison, limit: int = 5) -> str:
    parts = []
    for label in image.generic.labels[:limit]:
        parts.append(label.label if label.score is None else f"{label.label} ({label.score:.2f})")
    return "; ".join(parts)


_CSV_COLUMNS = (
    "image",
    "truth",
    "custom_label",
    "custom_score",
    "custom_correct",
    "generic_labels",
    "generic_best_guess",
    "generic_classes",
    "generic_match",
    "agreement",
    "generic_error",
    "custom_error",
)


def _comparison_csv(report: ComparisonReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for image in report.images:
        writer.writerow(
            [
                image.name,
                image.truth or "",
                image.custom_label or "",
                "" if image.custom_score is None else f"{image.custom_score:.6f}",
                "" if image.custom_correct is None else str(image.custom_correct).lower(),
                _generic_text(image, limit=len(image.generic.labels)),
                image.generic.best_guess or "",
                ";".join(image.generic_classes),
                image.generic_match or "",
                "" if image.agreement is None else str(image.agreement).lower(),
                image.generic.error or "",
                image.custom_error or "",
            ]
        )
    return buffer.getvalue()


def _evaluation_csv(evaluation: Evaluation) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["label", "precision", "recall", "f1", "support", "au_prc"])
    for m in evaluation.per_label:
        writer.writerow(
            [
                m.label,
                f"{m.precision:.6f}",
                f"{m.recall:.6f}",
                f"{m.f1:.6f}",
                m.support,
                "" if m.au_prc is None else f"{m.au_prc:.6f}",
            ]
        )
    return buffer.getvalue()


def _evaluation_dict(evaluation: Evaluation) -> dict[str, Any]:
    data = attrs.asdict(evaluation, recurse=True)
    data["labels"] = list(evaluation.labels)
    data["confusion_matrix"] = [list(row) for row in evaluation.confusion_matrix]
    return data


def evaluate_comparison(report: ComparisonReport) -> Evaluation | None:
    """Compute the custom model's :class:`~redditvision.models.Evaluation` on the compared images.

    This gives a comparison the same confusion matrix, per-label figures and
    precision-recall curves as a backend's evaluation, computed by
    :func:`redditvision.metrics.compute_evaluation` (scikit-learn) from the custom scores.
    Only images with a truth the model knows and a full score list (every model label, as
    ``Classifier.predict_many`` returns by default) count.

    Args:
        report: The comparison.

    Returns:
        The evaluation, or None when no image counts or scikit-learn is not installed
        (``redditvision[local]``).
    """
    from redditvision.errors import MissingDependencyError

    names: dict[str, str] = {}
    for image in report.images:
        for prediction in image.custom:
            names[prediction.model_label] = prediction.label
    model_labels = sorted(names)
    by_name = {name: label for label, name in names.items()}
    truths: list[str] = []
    rows: list[list[float]] = []
    items: list[str] = []
    for image in report.images:
        if image.truth not in by_name or len(image.custom) != len(model_labels):
            continue
        scores = {p.model_label: p.score for p in image.custom}
        row = [max(0.0, scores.get(label, 0.0)) for label in model_labels]
        total = sum(row)
        if total <= 0:
            continue
        truths.append(by_name[image.truth])
        rows.append([value / total for value in row])
        items.append(image.name)
    if not rows:
        return None
    try:
        import numpy as np

        from redditvision.metrics import compute_evaluation

        return compute_evaluation(
            truths,
            np.asarray(rows, dtype=np.float64),
            model_labels,
            items=items,
            label_map=names,
            source=f"comparison images ({len(rows)} with known truth)",
        )
    except MissingDependencyError:
        return None


# -- tables as (header, rows) -----------------------------------------------------------

_Cell = tuple[str, float | str | None]  # (text shown, sort key)


def _num(value: float | None, digits: int = 3) -> _Cell:
    return _fmt(value, digits), value


def _count(value: int) -> _Cell:
    return str(value), value


def _text(value: str | None) -> _Cell:
    return value or "", value or ""


def _overall_rows(report: ComparisonReport) -> list[list[_Cell]]:
    s = report.summary
    rows: list[tuple[str, _Cell]] = [
        ("images", _count(s.images)),
        ("images with truth", _count(s.with_truth)),
        ("custom top-1 accuracy", _num(s.custom_accuracy)),
        ("custom macro F1", _num(s.custom_macro_f1)),
        ("generic labels name the true class", _num(s.generic_names_truth)),
        ("generic labels name another class only", _num(s.generic_names_other_class)),
        ("generic labels name only the make or vehicle", _num(s.generic_only_generic)),
        ("generic labels name nothing relevant", _num(s.generic_none)),
        ("generic labels name the custom prediction (agreement)", _num(s.agreement)),
        ("generic labeler errors", _count(s.generic_errors)),
        ("custom model errors", _count(s.custom_errors)),
        ("true classes unknown to the model", _text(", ".join(s.unknown_truth_labels) or "none")),
    ]
    return [[_text(name), cell] for name, cell in rows]


_CLASS_HEADER = (
    "class",
    "images",
    "predicted",
    "custom precision",
    "custom recall",
    "custom F1",
    "generic names class",
    "generic only make/vehicle",
    "agreement",
)


def _class_rows(report: ComparisonReport) -> list[list[_Cell]]:
    rows = []
    for c in report.classes:
        name = c.label if c.known_to_model else f"{c.label} (unknown to model)"
        rows.append(
            [
                _text(name),
                _count(c.support),
                _count(c.predicted),
                _num(c.precision),
                _num(c.recall),
                _num(c.f1),
                _num(c.generic_names_class),
                _num(c.generic_only_generic),
                _num(c.agreement),
            ]
        )
    return rows


_EVAL_LABEL_HEADER = ("label", "precision", "recall", "F1", "support", "auPRC")


def _evaluation_overall_rows(evaluation: Evaluation) -> list[list[_Cell]]:
    rows: list[tuple[str, _Cell]] = [
        ("evaluated items", _count(evaluation.evaluated_items)),
        ("accuracy", _num(evaluation.accuracy)),
        ("macro precision", _num(evaluation.macro_precision)),
        ("macro recall", _num(evaluation.macro_recall)),
        ("macro F1", _num(evaluation.macro_f1)),
        ("micro precision", _num(evaluation.micro_precision)),
        ("micro recall", _num(evaluation.micro_recall)),
        ("micro F1", _num(evaluation.micro_f1)),
        ("auPRC", _num(evaluation.au_prc)),
        ("log loss", _num(evaluation.log_loss)),
        ("source", _text(evaluation.source or "n/a")),
    ]
    return [[_text(name), cell] for name, cell in rows]


def _evaluation_label_rows(evaluation: Evaluation) -> list[list[_Cell]]:
    return [
        [
            _text(m.label),
            _num(m.precision),
            _num(m.recall),
            _num(m.f1),
            _count(m.support),
            _num(m.au_prc),
        ]
        for m in evaluation.per_label
    ]


_MISCLASSIFIED_LIMIT = 200


def _misclassified_rows(evaluation: Evaluation) -> list[list[_Cell]]:
    return [
        [_text(m.item), _text(m.true_label), _text(m.predicted_label), _num(m.score)]
        for m in evaluation.misclassified[:_MISCLASSIFIED_LIMIT]
    ]


# -- Markdown ---------------------------------------------------------------------------


def _md(text: str) -> str:
    """Escape text for a Markdown table cell (pipes, backslashes, HTML, newlines)."""
    text = html.escape(text, quote=False)
    for char in ("\\", "|", "*", "_", "`", "[", "]"):
        text = text.replace(char, "\\" + char)
    return " ".join(text.split())


def _md_table(header: Sequence[str], rows: Iterable[Sequence[_Cell]]) -> list[str]:
    lines = ["| " + " | ".join(_md(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        lines.append("| " + " | ".join(_md(text) for text, _ in row) + " |")
    return lines


def _md_evaluation(evaluation: Evaluation, plots: Mapping[str, str], level: str) -> list[str]:
    lines = [f"{level} Evaluation of the custom model", ""]
    lines += _md_table(("metric", "value"), _evaluation_overall_rows(evaluation))
    lines += ["", f"{level}# Per label", ""]
    lines += _md_table(_EVAL_LABEL_HEADER, _evaluation_label_rows(evaluation))
    for key, caption in (
        ("confusion_matrix", "Confusion matrix"),
        ("label_metrics", "Precision, recall and F1 per label"),
        ("pr_curves", "Precision-recall curve per label"),
    ):
        if key in plots:
            lines += ["", f"![{caption}]({plots[key]})"]
    if evaluation.misclassified:
        lines += ["", f"{level}# Misclassified (first {_MISCLASSIFIED_LIMIT})", ""]
        lines += _md_table(("item", "true", "predicted", "score"), _misclassified_rows(evaluation))
    return lines


def render_markdown(
    report: ComparisonReport,
    *,
    evaluation: Evaluation | None = None,
    plots: Mapping[str, str] | None = None,
) -> str:
    """Render a comparison as Markdown.

    Args:
        report: The comparison.
        evaluation: The custom model's evaluation to add, or None.
        plots: Plot name -> relative file name to link (``write_report`` passes the PNGs
            it wrote), or None for no plots.

    Returns:
        The page; every text from data is escaped for Markdown tables and raw HTML.
    """
    plots = plots or {}
    title = f"Comparison: {report.generic_name} labels vs custom model {report.custom_name}"
    lines = [f"# {_md(title)}", "", "## Overall", ""]
    lines += _md_table(("metric", "value"), _overall_rows(report))
    lines += ["", "## Per class", ""]
    lines += _md_table(_CLASS_HEADER, _class_rows(report))
    for key, caption in (
        ("generic_naming", "What the generic labels name"),
        ("confusion_matrix", "Confusion matrix of the custom model"),
        ("label_metrics", "Precision, recall and F1 per class"),
    ):
        if key in plots:
            lines += ["", f"![{caption}]({plots[key]})"]
    lines += ["", "## Images", ""]
    lines += _md_table(
        ("image", "truth", "custom (score)", "generic labels", "best guess", "names", "error"),
        (
            [
                _text(image.name),
                _text(image.truth),
                _text(
                    f"{image.custom_label} ({image.custom_score:.2f})"
                    if image.custom_label is not None and image.custom_score is not None
                    else ""
                ),
                _text(_generic_text(image)),
                _text(image.generic.best_guess),
                _text(image.generic_match),
                _text("; ".join(e for e in (image.generic.error, image.custom_error) if e)),
            ]
            for image in report.images
        ),
    )
    if evaluation is not None:
        lines += ["", *_md_evaluation(evaluation, plots, "##")]
    return "\n".join(lines) + "\n"


def render_evaluation_markdown(
    evaluation: Evaluation, *, plots: Mapping[str, str] | None = None
) -> str:
    """Render an evaluation alone as Markdown.

    Args:
        evaluation: An evaluation from any backend.
        plots: Plot name -> relative file name to link, or None.

    Returns:
        The page.
    """
    lines = _md_evaluation(evaluation, plots or {}, "#")
    return "\n".join(lines) + "\n"


# -- HTML -------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3;cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.thumb img{max-width:160px;max-height:160px;display:block}
tr.wrong td{background:#fff4f4}tr.error td{background:#fff8e1}
figure{display:inline-block;margin:0 1rem 1rem 0}figure img{max-width:100%;border:1px solid #ddd}
.muted{color:#777}.labels{max-width:28rem}
"""

_SORT_SCRIPT = """
(function(){
  function key(cell){var v=cell.getAttribute('data-sort');return v===null?cell.textContent:v;}
  function cmp(a,b){var x=parseFloat(a),y=parseFloat(b);
    if(a!==''&&b!==''&&!isNaN(x)&&!isNaN(y)&&isFinite(a)&&isFinite(b)){return x-y;}
    if(a===''&&b!==''){return 1;}if(b===''&&a!==''){return -1;}
    return a.localeCompare(b);}
  document.querySelectorAll('table.sortable').forEach(function(table){
    var heads=table.tHead?table.tHead.rows[0].cells:[];
    Array.prototype.forEach.call(heads,function(th,index){
      th.setAttribute('aria-sort','none');th.tabIndex=0;
      function sort(){
        var dir=th.getAttribute('aria-sort')==='ascending'?'descending':'ascending';
        Array.prototype.forEach.call(heads,function(h){h.setAttribute('aria-sort','none');});
        th.setAttribute('aria-sort',dir);
        var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
        rows.sort(function(r1,r2){var c=cmp(key(r1.cells[index]),key(r2.cells[index]));
          return dir==='ascending'?c:-c;});
        rows.forEach(function(r){body.appendChild(r);});
      }
      th.addEventListener('click',sort);
      th.addEventListener('keydown',function(e){if(e.key==='Enter'){sort();}});
    });
  });
  document.body.setAttribute('data-sortable','ready');
})();
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _html_table(
    table_id: str,
    header: Sequence[str],
    rows: Iterable[Sequence[_Cell]],
    *,
    row_classes: Sequence[str] | None = None,
) -> str:
    out = [f'<table class="sortable" id="{_e(table_id)}"><thead><tr>']
    out += [f'<th scope="col">{_e(h)}</th>' for h in header]
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(rows):
        css = row_classes[i] if row_classes is not None and row_classes[i] else ""
        out.append(f'<tr class="{_e(css)}">' if css else "<tr>")
        for text, key in row:
            numeric = isinstance(key, int | float) and not isinstance(key, bool)
            sort_key = "" if key is None else (repr(float(key)) if numeric else str(key))
            css_cell = ' class="num"' if numeric or key is None else ""
            out.append(f'<td{css_cell} data-sort="{_e(sort_key)}">{_e(text)}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _data_uri(png: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(png).decode('ascii')}"


def _html_figure(png: bytes, caption: str, plot_id: str) -> str:
    return (
        f'<figure id="{_e(plot_id)}"><img alt="{_e(caption)}" src="{_data_uri(png)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _html_page(title: str, body: list[str]) -> str:
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
            *body,
            f"<script>{_SORT_SCRIPT}</script></body></html>\n",
        ]
    )


def _html_evaluation(evaluation: Evaluation, pngs: Mapping[str, bytes], level: int) -> list[str]:
    h, h2 = f"h{level}", f"h{level + 1}"
    body = [
        f'<section id="evaluation"><{h}>Evaluation of the custom model</{h}>',
        _html_table(
            "evaluation-overall", ("metric", "value"), _evaluation_overall_rows(evaluation)
        ),
        f"<{h2}>Per label</{h2}>",
        _html_table("evaluation-labels", _EVAL_LABEL_HEADER, _evaluation_label_rows(evaluation)),
    ]
    for key, caption in (
        ("confusion_matrix", "Confusion matrix"),
        ("label_metrics", "Precision, recall and F1 per label"),
        ("pr_curves", "Precision-recall curve per label"),
    ):
        if key in pngs:
            body.append(_html_figure(pngs[key], caption, f"plot-evaluation-{key}"))
    if evaluation.misclassified:
        body.append(f"<{h2}>Misclassified (first {_MISCLASSIFIED_LIMIT})</{h2}>")
        body.append(
            _html_table(
                "evaluation-misclassified",
                ("item", "true", "predicted", "score"),
                _misclassified_rows(evaluation),
            )
        )
    body.append("</section>")
    return body


def render_html(
    report: ComparisonReport,
    *,
    evaluation: Evaluation | None = None,
    plots: Mapping[str, bytes] | None = None,
    evaluation_plots: Mapping[str, bytes] | None = None,
) -> str:
    """Render a comparison as one self-contained HTML page.

    Thumbnails and plots are inlined as ``data:`` URIs, the sorting script and styles are
    inline, and a Content-Security-Policy forbids every outside request, so the page works
    offline and from an e-mail attachment. Every text from data is HTML-escaped.

    Args:
        report: The comparison.
        evaluation: The custom model's evaluation to add, or None.
        plots: Comparison plots, name -> PNG bytes (``"generic_naming"``,
            ``"confusion_matrix"``, ``"label_metrics"``), or None.
        evaluation_plots: The evaluation's plots, name -> PNG bytes (``"confusion_matrix"``,
            ``"label_metrics"``, ``"pr_curves"``), or None.

    Returns:
        The page.
    """
    plots = plots or {}
    title = f"Comparison: {report.generic_name} labels vs custom model {report.custom_name}"
    s = report.summary
    body = [
        f"<h1>{_e(title)}</h1>",
        '<p class="muted">Generic labels match a class when they contain the words of its '
        "name or alias (e.g. &quot;Z4&quot;, &quot;3 Series&quot;). Make words: "
        f"{_e(', '.join(report.make_terms) or 'none')}. Click a column header to sort.</p>",
        '<section id="overall"><h2>Overall</h2>',
        _html_table("overall-table", ("metric", "value"), _overall_rows(report)),
        "</section>",
        '<section id="classes"><h2>Per class</h2>',
        _html_table("class-table", _CLASS_HEADER, _class_rows(report)),
        "</section>",
    ]
    captions = (
        ("generic_naming", "What the generic labels name, per true class"),
        ("confusion_matrix", "Confusion matrix of the custom model"),
        ("label_metrics", "Precision, recall and F1 per class (custom model)"),
    )
    figures = [
        _html_figure(plots[key], caption, f"plot-{key}")
        for key, caption in captions
        if key in plots
    ]
    if figures:
        body += ['<section id="plots"><h2>Plots</h2>', *figures, "</section>"]
    body.append(f'<section id="images"><h2>Images ({s.images})</h2>')
    header = (
        "thumbnail",
        "image",
        "truth",
        "custom",
        "score",
        "generic labels",
        "best guess",
        "names",
        "error",
    )
    out = ['<table class="sortable" id="image-table"><thead><tr>']
    out += [f'<th scope="col">{_e(h)}</th>' for h in header]
    out.append("</tr></thead><tbody>")
    for image in report.images:
        errors = "; ".join(e for e in (image.generic.error, image.custom_error) if e)
        css = "error" if errors else ("wrong" if image.custom_correct is False else "")
        out.append(f'<tr class="{css}">' if css else "<tr>")
        if image.thumbnail is not None:
            out.append(
                f'<td class="thumb" data-sort="{_e(image.name)}"><img alt="{_e(image.name)}" '
                f'src="{_data_uri(image.thumbnail, "image/jpeg")}"></td>'
            )
        else:
            out.append(f'<td class="thumb muted" data-sort="{_e(image.name)}">no preview</td>')
        generic = "".join(
            f"<li>{_e(g.label)}"
            + (f' <span class="muted">{g.score:.2f}</span>' if g.score is not None else "")
            + "</li>"
            for g in image.generic.labels
        )
        score = image.custom_score
        out += [
            f'<td data-sort="{_e(image.name)}">{_e(image.name)}</td>',
            f'<td data-sort="{_e(image.truth or "")}">{_e(image.truth or "")}</td>',
            f'<td data-sort="{_e(image.custom_label or "")}">{_e(image.custom_label or "")}</td>',
            f'<td class="num" data-sort="{"" if score is None else repr(score)}">'
            f"{_e(_fmt(score, 2) if score is not None else '')}</td>",
            f'<td class="labels" data-sort="{_e(_generic_text(image, 1))}"><ul>{generic}</ul></td>',
            f'<td data-sort="{_e(image.generic.best_guess or "")}">'
            f"{_e(image.generic.best_guess or '')}</td>",
            f'<td data-sort="{_e(image.generic_match or "")}">{_e(image.generic_match or "")}</td>',
            f'<td data-sort="{_e(errors)}">{_e(errors)}</td>',
            "</tr>",
        ]
    out.append("</tbody></table></section>")
    body += out
    if evaluation is not None:
        body += _html_evaluation(evaluation, evaluation_plots or {}, 2)
    return _html_page(title, body)


def render_evaluation_html(
    evaluation: Evaluation, *, plots: Mapping[str, bytes] | None = None
) -> str:
    """Render an evaluation alone as one self-contained HTML page.

    Args:
        evaluation: An evaluation from any backend.
        plots: Name -> PNG bytes (``"confusion_matrix"``, ``"label_metrics"``,
            ``"pr_curves"``), or None.

    Returns:
        The page, every text escaped, plots inlined.
    """
    title = f"Evaluation: {evaluation.source or 'custom model'}"
    body = [f"<h1>{_e(title)}</h1>", *_html_evaluation(evaluation, plots or {}, 2)]
    return _html_page(title, body)


# -- writing ----------------------------------------------------------------------------


def _prepare(out_dir: str | os.PathLike[str], overwrite: bool) -> Path:
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"report folder {folder} exists and is not a folder; choose another")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise ConfigError(
            f"report folder {folder} exists and is not empty; pass overwrite=True "
            "(--overwrite) to replace the report in it, or choose a new folder"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ComparisonError(f"cannot create report folder {folder}: {exc}") from exc
    return folder


def _write(path: Path, data: bytes | str) -> Path:
    """Write atomically: a temporary file in the same folder, then ``os.replace``."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        try:
            with temporary.open("xb") as stream:  # honours the umask, unlike mkstemp
                stream.write(raw)
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ComparisonError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def _evaluation_pngs(evaluation: Evaluation) -> dict[str, bytes]:
    pngs: dict[str, bytes] = {}
    if evaluation.labels and evaluation.confusion_matrix:
        pngs["confusion_matrix"] = plot_confusion_matrix(
            evaluation.labels, evaluation.confusion_matrix
        )
    if evaluation.per_label:
        pngs["label_metrics"] = plot_label_metrics(evaluation.per_label)
    if evaluation.thresholds:
        pngs["pr_curves"] = plot_pr_curves(evaluation.thresholds)
    return pngs


def _comparison_label_metrics(report: ComparisonReport) -> list[LabelMetrics]:
    return [
        LabelMetrics(
            label=c.label, precision=c.precision, recall=c.recall, f1=c.f1, support=c.support
        )
        for c in report.classes
        if c.support or c.predicted
    ]


def write_report(
    report: ComparisonReport,
    out_dir: str | os.PathLike[str],
    *,
    evaluation: Evaluation | None = None,
    overwrite: bool = False,
) -> ReportFiles:
    """Write a comparison report folder: HTML, Markdown, CSV, JSON Lines, summary and plots.

    Plots without data are left out: the confusion matrix and per-class bars need images
    with truth and a custom prediction; the generic naming chart needs truth; the
    precision-recall curves need ``evaluation.thresholds``.

    Args:
        report: The comparison.
        out_dir: The folder; created when missing.
        evaluation: The custom model's evaluation (from any backend) to add, or None; its
            plots are written as ``evaluation_*.png``.
        overwrite: Replace the report files in a folder that is not empty (other files in
            it are left alone). Default False.

    Returns:
        The paths written.

    Raises:
        ConfigError: ``out_dir`` exists and is not empty while ``overwrite`` is False, or
            is a file.
        ComparisonError: A file cannot be written.
    """
    folder = _prepare(out_dir, overwrite)
    pngs: dict[str, bytes] = {}
    scored = any(image.truth is not None and image.custom for image in report.images)
    if scored:
        pngs["confusion_matrix"] = plot_confusion_matrix(report.labels, report.confusion_matrix)
        pngs["label_metrics"] = plot_label_metrics(_comparison_label_metrics(report))
    if any(image.generic_match is not None for image in report.images):
        pngs["generic_naming"] = plot_generic_naming(report)
    evaluation_pngs = _evaluation_pngs(evaluation) if evaluation is not None else {}
    plot_files: dict[str, Path] = {}
    for key, png in pngs.items():
        plot_files[key] = _write(folder / f"{key}.png", png)
    for key, png in evaluation_pngs.items():
        plot_files[f"evaluation_{key}"] = _write(folder / f"evaluation_{key}.png", png)
    markdown_plots = {key: path.name for key, path in plot_files.items() if key in pngs}
    markdown = render_markdown(report, evaluation=None, plots=markdown_plots)
    if evaluation is not None:
        markdown += (
            "\n"
            + "\n".join(
                _md_evaluation(
                    evaluation,
                    {key: f"evaluation_{key}.png" for key in evaluation_pngs},
                    "##",
                )
            )
            + "\n"
        )
    summary = report.summary_dict()
    summary["labels"] = list(report.labels)
    summary["confusion_matrix"] = [list(row) for row in report.confusion_matrix]
    if evaluation is not None:
        summary["evaluation"] = _evaluation_dict(evaluation)
    jsonl = "".join(
        json.dumps(record, ensure_ascii=False) + "\n" for record in comparison_records(report)
    )
    return ReportFiles(
        folder=folder,
        html=_write(
            folder / "report.html",
            render_html(
                report, evaluation=evaluation, plots=pngs, evaluation_plots=evaluation_pngs
            ),
        ),
        markdown=_write(folder / "report.md", markdown),
        csv=_write(folder / "comparison.csv", _comparison_csv(report)),
        jsonl=_write(folder / "comparison.jsonl", jsonl),
        summary=_write(
            folder / "summary.json", json.dumps(summary, ensure_ascii=False, indent=2) + "\n"
        ),
        plots=plot_files,
    )


def write_evaluation_report(
    evaluation: Evaluation,
    out_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> ReportFiles:
    """Write an evaluation report folder: HTML, Markdown, per-label CSV, JSON and plots.

    An evaluation from any backend renders the same way. Files: ``report.html``,
    ``report.md``, ``labels.csv``, ``evaluation.json``, ``confusion_matrix.png``,
    ``label_metrics.png`` and ``pr_curves.png`` (the last only with a threshold table).

    Args:
        evaluation: The evaluation.
        out_dir: The folder; created when missing.
        overwrite: Replace the report files in a folder that is not empty. Default False.

    Returns:
        The paths written (``jsonl`` is None).

    Raises:
        ConfigError: ``out_dir`` exists and is not empty while ``overwrite`` is False.
        ComparisonError: A file cannot be written.
    """
    folder = _prepare(out_dir, overwrite)
    pngs = _evaluation_pngs(evaluation)
    plot_files = {key: _write(folder / f"{key}.png", png) for key, png in pngs.items()}
    return ReportFiles(
        folder=folder,
        html=_write(folder / "report.html", render_evaluation_html(evaluation, plots=pngs)),
        markdown=_write(
            folder / "report.md",
            render_evaluation_markdown(
                evaluation, plots={k: p.name for k, p in plot_files.items()}
            ),
        ),
        csv=_write(folder / "labels.csv", _evaluation_csv(evaluation)),
        jsonl=None,
        summary=_write(
            folder / "evaluation.json",
            json.dumps(_evaluation_dict(evaluation), ensure_ascii=False, indent=2) + "\n",
        ),
        plots=plot_files,
    )
