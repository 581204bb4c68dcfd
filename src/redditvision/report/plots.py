"""The report's plots, drawn with matplotlib's object API as PNG bytes.

Plots are drawn on an Agg canvas (``matplotlib.figure.Figure`` with ``FigureCanvasAgg``): no
pyplot state, no GUI backend and no change to matplotlib's global configuration. Every size
is in inches at :data:`PLOT_DPI`; legends sit outside the axes, so they never cover data.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from redditvision.errors import ComparisonError
from redditvision.models import LabelMetrics, ThresholdMetrics

if TYPE_CHECKING:
    from redditvision.compare import ComparisonReport

__all__ = [
    "HEADLINE_INCHES",
    "PLOT_DPI",
    "PR_CURVE_INCHES",
    "bar_chart_inches",
    "confusion_matrix_inches",
    "generic_labels_table",
    "plot_confusion_matrix",
    "plot_generic_labels",
    "plot_generic_naming",
    "plot_headline",
    "plot_label_metrics",
    "plot_pr_curves",
    "plot_training_curve",
]

PLOT_DPI = 100
"""Dots per inch of every plot: a figure of W x H inches is a PNG of 100 W x 100 H pixels."""

PR_CURVE_INCHES = (8.0, 6.0)
"""Size of the precision-recall plot in inches (800 x 600 pixels)."""

HEADLINE_INCHES = (8.0, 2.0)
"""Size of the headline figure in inches (800 x 200 pixels)."""

CUSTOM_COLOUR = "#1565c0"
"""The custom model's colour in every plot (blue)."""

MATCH_COLOURS = {
    "class": "#2e7d32",
    "other_class": "#f9a825",
    "generic": "#78909c",
    "none": "#d7ccc8",
}
"""Colour per :class:`~redditvision.compare.GenericMatch` value (green, amber, grey, sand)."""

MATCH_CAPTIONS = {
    "class": "name the true class",
    "other_class": "name another class only",
    "generic": "name only generic words",
    "none": "name nothing relevant",
}
"""What each :class:`~redditvision.compare.GenericMatch` value means, as words."""


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
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="images")
    ticks = list(range(n))
    short = [_short(label) for label in labels]
    axes.set_xticks(ticks, short, rotation=45, ha="right", fontsize=8)
    axes.set_yticks(ticks, short, fontsize=8)
    axes.set_xlabel("predicted by the custom model")
    axes.set_ylabel("true class")
    axes.set_title("Confusion matrix (images)")
    if n <= 25:
        for i, row in enumerate(data):
            for j, value in enumerate(row):
                colour = "white" if value > peak / 2 and peak else "black"
                axes.text(j, i, str(value), ha="center", va="center", color=colour, fontsize=8)
    return _png(figure)


def plot_label_metrics(per_label: Sequence[LabelMetrics]) -> bytes:
    """Draw precision, recall and F1 per label as grouped horizontal bars.

    The legend sits above the axes, outside them, so it covers no bar.

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
    for offset, (name, values, colour) in enumerate(
        (
            ("precision", [m.precision for m in per_label], "#90caf9"),
            ("recall", [m.recall for m in per_label], "#1e88e5"),
            ("F1", [m.f1 for m in per_label], "#0d47a1"),
        )
    ):
        axes.barh(
            [r + (offset - 1) * height for r in rows],
            values,
            height=height,
            label=name,
            color=colour,
        )
    axes.set_yticks(rows, [_short(m.label) for m in per_label], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("score (0 to 1)")
    axes.grid(axis="x", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    figure.legend(loc="outside upper center", ncol=3, fontsize=8, frameon=False)
    return _png(figure)


def _interpolated(points: Sequence[ThresholdMetrics]) -> tuple[list[float], list[float]]:
    """Return (recall, precision) in order of recall, precision made non-increasing.

    The precision drawn at recall r is the best precision at recall r or higher, as the
    interpolated precision-recall curve of PASCAL VOC and COCO defines it; a threshold that
    adds recall never seems to lose the precision another threshold already reached. The
    curve ends at the first point of the highest recall (the best precision there).
    """
    ordered = sorted(points, key=lambda p: (p.recall, p.precision))
    # Once full recall is reached, lower thresholds only add false positives (at 0.0 every
    # label of every item is "predicted"): keep the best point at the highest recall and
    # stop there, as scikit-learn's precision_recall_curve does.
    top = max(p.recall for p in ordered)
    ordered = [p for p in ordered if p.recall < top] + [ordered[-1]]
    recall = [p.recall for p in ordered]
    precision = [p.precision for p in ordered]
    best = 0.0
    for i in range(len(precision) - 1, -1, -1):
        best = max(best, precision[i])
        precision[i] = best
    return [0.0, *recall], [precision[0], *precision]


def plot_pr_curves(
    thresholds: Sequence[ThresholdMetrics],
    *,
    au_prc: Mapping[str, float | None] | None = None,
) -> bytes:
    """Draw a precision-recall curve per label from an evaluation's threshold table.

    Each curve is a step plot through the label's threshold points (``ThresholdMetrics`` with
    that ``label``) in order of recall, with interpolated precision (the best precision at
    that recall or higher; each recall interval drawn at the precision of its right end, as
    average precision counts it), ending at the first point of full recall, with a marker at
    each threshold point; each label's line is thinner than the one before (4 to 1.5
    points), so curves that share a stretch all stay visible; the all-labels curve
    (``label`` None) is drawn dashed and black on top. Points with precision and recall both 0
    (nothing predicted at that threshold) are left out, and so are the points of threshold 0
    (every label predicted for every item). The legend sits below the axes.

    Args:
        thresholds: ``Evaluation.thresholds``.
        au_prc: Label -> its auPRC, shown in the legend; default none shown.

    Returns:
        PNG bytes, :data:`PR_CURVE_INCHES` times :data:`PLOT_DPI` pixels.

    Raises:
        ComparisonError: ``thresholds`` is empty or holds no point above threshold 0.
    """
    if not thresholds:
        raise ComparisonError("the evaluation has no threshold table to draw curves from")
    curves: dict[str | None, list[ThresholdMetrics]] = {}
    for point in thresholds:
        # At thresholds where nothing is predicted, precision is undefined (reported 0):
        # such points would drag every curve to the origin, so they are left out. At
        # threshold 0 every label of every item counts as predicted (precision 1 / labels,
        # whatever the model): that point says nothing of the model and is left out too.
        if (point.recall > 0 or point.precision > 0) and point.confidence_threshold > 0:
            curves.setdefault(point.label, []).append(point)
    if not curves:
        raise ComparisonError("the threshold table has no point above threshold 0 to draw")
    figure = _figure(*PR_CURVE_INCHES)
    axes = figure.add_subplot()
    named = sorted(label for label in curves if label is not None)
    from matplotlib import colormaps

    palette = colormaps["tab10" if len(named) <= 10 else "tab20"]
    scores = au_prc or {}
    for i, label in enumerate(named):
        recall, precision = _interpolated(curves[label])
        # Curves often share a stretch (precision 1.0 at low recall): each is drawn thinner
        # than the one before it, so the earlier ones still show around the later ones.
        width = 4.0 - 2.5 * i / max(1, len(named) - 1)
        area = scores.get(label)
        caption = _short(label) if area is None else f"{_short(label)} (auPRC {area:.3f})"
        axes.step(
            recall,
            precision,
            where="pre",
            label=caption,
            color=palette(i % palette.N),
            linewidth=width,
            marker="o",
            markersize=2.0 + width,
        )
    if None in curves:
        recall, precision = _interpolated(curves[None])
        axes.step(
            recall,
            precision,
            where="pre",
            label="all labels",
            color="black",
            linewidth=2.0,
            linestyle=(0, (4, 2)),
        )
    axes.set_xlim(0, 1.02)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision (interpolated)")
    axes.grid(color="#dddddd", linewidth=0.6)
    figure.legend(
        loc="outside lower center", fontsize=8, ncol=min(3, max(1, len(curves))), frameon=False
    )
    return _png(figure)


def plot_generic_naming(report: ComparisonReport) -> bytes:
    """Draw, per true class, what the generic labels name, as stacked shares with percents.

    Segments: the true class (green), another class only (amber), only generic words (grey),
    nothing relevant (sand); each segment of 8 % or more is labelled with its percent.

    Args:
        report: A comparison with truth for at least one image.

    Returns:
        PNG bytes, :func:`bar_chart_inches` (for the classes with truth) times
        :data:`PLOT_DPI` pixels.

    Raises:
        ComparisonError: No image has both a truth and generic labels.
    """
    counts: dict[str, Counter[str]] = {}
    for image in report.images:
        if image.truth is not None and image.generic_match is not None:
            counts.setdefault(image.truth, Counter())[image.generic_match] += 1
    if not counts:
        raise ComparisonError("no image has both a true class and generic labels")
    labels = sorted(counts)
    figure = _figure(*bar_chart_inches(len(labels)))
    axes = figure.add_subplot()
    left = [0.0] * len(labels)
    rows = list(range(len(labels)))
    for kind, caption in MATCH_CAPTIONS.items():
        shares = [counts[label][kind] / sum(counts[label].values()) for label in labels]
        bars = axes.barh(rows, shares, left=left, label=caption, color=MATCH_COLOURS[kind])
        texts = [f"{share:.0%}" if share >= 0.08 else "" for share in shares]
        axes.bar_label(bars, labels=texts, label_type="center", fontsize=8)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    axes.set_yticks(rows, [_short(label) for label in labels], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.xaxis.set_major_formatter("{x:.0%}")
    axes.set_xlabel("share of the class's images")
    figure.legend(loc="outside upper center", ncol=4, fontsize=8, frameon=False)
    return _png(figure)


def generic_labels_table(
    report: ComparisonReport, *, columns: int = 8
) -> tuple[list[str], list[str], list[list[float]]]:
    """Count each true class's top generic labels: the data of :func:`plot_generic_labels`.

    Args:
        report: The comparison.
        columns: The most frequent top-1 generic labels to keep (default 8); the rest are
            counted under ``"other"``.

    Returns:
        (classes, generic labels, shares): shares[i][j] is the fraction of class i's images
        (with generic labels) whose top generic label is label j; each row sums to 1.
    """
    tops: dict[str, Counter[str]] = {}
    for image in report.images:
        if image.truth is not None and image.generic.error is None and image.generic.labels:
            top = image.generic.labels[0].label.casefold()
            tops.setdefault(image.truth, Counter())[top] += 1
    overall: Counter[str] = Counter()
    for counter in tops.values():
        overall.update(counter)
    kept = [label for label, _ in overall.most_common(columns)]
    other = len(overall) > len(kept)
    names = kept + (["other"] if other else [])
    classes = sorted(tops)
    shares: list[list[float]] = []
    for label in classes:
        total = sum(tops[label].values())
        row = [tops[label][name] / total for name in kept]
        if other:
            row.append(1.0 - sum(row))
        shares.append(row)
    return classes, names, shares


def plot_generic_labels(report: ComparisonReport) -> bytes:
    """Draw which generic label comes first for each true class, as a heatmap of shares.

    Rows are the true classes, columns the most frequent top-1 generic labels (see
    :func:`generic_labels_table`); each cell shows the percent of the class's images whose
    first generic label it is. A class the generic labeler tells apart has one bright cell of
    its own; classes that share one bright column all look alike to it.

    Args:
        report: A comparison with truth and generic labels for at least one image.

    Returns:
        PNG bytes, ``min(16, 3 + 0.9 * columns)`` by :func:`bar_chart_inches` inches.

    Raises:
        ComparisonError: No image has both a truth and generic labels.
    """
    classes, names, shares = generic_labels_table(report)
    if not classes:
        raise ComparisonError("no image has both a true class and generic labels")
    width = min(16.0, 3.0 + 0.9 * len(names))
    figure = _figure(width, bar_chart_inches(len(classes))[1] + 0.8)
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Greens", vmin=0, vmax=1, aspect="auto")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, format="{x:.0%}")
    axes.set_xticks(range(len(names)), [_short(n, 22) for n in names], rotation=30, ha="right")
    axes.set_yticks(range(len(classes)), [_short(c) for c in classes], fontsize=8)
    axes.tick_params(axis="x", labelsize=8)
    axes.set_xlabel("first generic label")
    axes.set_ylabel("true class")
    for i, row in enumerate(shares):
        for j, value in enumerate(row):
            if value >= 0.005:
                colour = "white" if value > 0.5 else "black"
                axes.text(j, i, f"{value:.0%}", ha="center", va="center", color=colour, fontsize=8)
    return _png(figure)


def plot_headline(
    custom_share: float | None,
    generic_share: float | None,
    *,
    generic_caption: str = "generic labels",
) -> bytes:
    """Draw the headline: how often each side names the right class, as two bars.

    Args:
        custom_share: The custom model's top-1 accuracy, ``[0, 1]``, or None (not drawn).
        generic_share: How often the generic labels name the true class, or None.
        generic_caption: The generic side's name on its bar (default ``"generic labels"``).

    Returns:
        PNG bytes, :data:`HEADLINE_INCHES` times :data:`PLOT_DPI` pixels.
    """
    figure = _figure(*HEADLINE_INCHES)
    axes = figure.add_subplot()
    names = ["custom model", _short(generic_caption, 36)]
    values = [custom_share or 0.0, generic_share or 0.0]
    bars = axes.barh([0, 1], values, color=[CUSTOM_COLOUR, MATCH_COLOURS["class"]], height=0.6)
    texts = ["n/a" if share is None else f"{share:.0%}" for share in (custom_share, generic_share)]
    axes.bar_label(bars, labels=texts, padding=4, fontsize=11, fontweight="bold")
    axes.set_yticks([0, 1], names, fontsize=10)
    axes.invert_yaxis()
    axes.set_xlim(0, 1.12)
    axes.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    axes.xaxis.set_major_formatter("{x:.0%}")
    axes.set_xlabel("images whose true class is named")
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return _png(figure)


def plot_training_curve(
    curve: Sequence[Mapping[str, Any]],
    *,
    best_epoch: int | None = None,
    title: str = "Training curve",
) -> bytes:
    """Draw training loss and validation macro-F1 per epoch of a fine-tuned model.

    Args:
        curve: ``model.json["training"]["curve"]`` of the local backend: rows with
            ``epoch`` (0 = the linear probe), ``loss`` (mean training loss, null at epoch
            0) and ``val_macro_f1`` (null without a validation split).
        best_epoch: The epoch kept (``training["best_epoch"]``), marked with a dashed line.
        title: The figure's title.

    Returns:
        PNG bytes (640 x 400 px); a figure saying "no epochs" for an empty curve (the
        ``fast`` preset trains none).
    """
    figure = _figure(6.4, 4.0)
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_xlabel("epoch (0 = linear probe)")
    losses = [(row["epoch"], row["loss"]) for row in curve if row.get("loss") is not None]
    scores = [
        (row["epoch"], row["val_macro_f1"]) for row in curve if row.get("val_macro_f1") is not None
    ]
    if not losses and not scores:
        axes.text(0.5, 0.5, "no epochs (frozen features)", ha="center", va="center")
        axes.set_axis_off()
    handles = []
    if losses:
        handles += axes.plot(
            *zip(*losses, strict=True), marker="o", color="tab:blue", label="training loss"
        )
        axes.set_ylabel("training loss", color="tab:blue")
    if scores:
        right = axes.twinx()
        handles += right.plot(
            *zip(*scores, strict=True), marker="s", color="tab:orange", label="validation macro-F1"
        )
        right.set_ylabel("validation macro-F1", color="tab:orange")
        right.set_ylim(0, 1)
    if best_epoch is not None and (losses or scores):
        handles.append(
            axes.axvline(best_epoch, color="gray", linestyle="--", linewidth=1, label="epoch kept")
        )
    if handles:
        figure.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return _png(figure)
