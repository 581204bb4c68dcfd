"""Reports of comparisons and evaluations: HTML, Markdown, CSV/JSON Lines and plots.

:func:`write_report` writes a :class:`~redditvision.compare.ComparisonReport` (and, when
given, the custom model's :class:`~redditvision.models.Evaluation`) into a folder::

    report.html          one self-contained page: a headline, tables (click a header to
                         sort) with a note on every column, thumbnails and plots inlined as
                         data: URIs, no outside requests
    report.md            the same headline, tables and notes in Markdown, plots linked
    comparison.csv       one row per image (injection-safe: see redditvision._csv)
    comparison.jsonl     one JSON object per image, every label and score
    summary.json         the aggregates (what ``redditvision compare --json-summary`` prints)
    headline.png, generic_naming.png, generic_labels.png, and the custom model's
    confusion matrix, per-class bars and precision-recall curves (evaluation_*.png with
    an evaluation, else confusion_matrix.png and label_metrics.png)

:func:`write_evaluation_report` writes an evaluation alone; an evaluation from any backend
(local, Vertex AI, AutoML) renders the same way, since they share one type.

The package: :mod:`~redditvision.report.plots` (matplotlib), :mod:`~redditvision.report.tables`
(what the pages say), :mod:`~redditvision.report.html` (Jinja2 templates extending one
``base.html`` layout), :mod:`~redditvision.report.markdown` and
:mod:`~redditvision.report.files` (the folders). The figures themselves come from
:mod:`redditvision.metrics`.
"""

from __future__ import annotations

from redditvision.metrics import evaluate_comparison
from redditvision.report.files import (
    ReportFiles,
    comparison_records,
    prepare_folder,
    write_evaluation_report,
    write_report,
)
from redditvision.report.html import render_evaluation_html, render_html, render_page
from redditvision.report.markdown import render_evaluation_markdown, render_markdown
from redditvision.report.plots import (
    HEADLINE_INCHES,
    PLOT_DPI,
    PR_CURVE_INCHES,
    bar_chart_inches,
    confusion_matrix_inches,
    plot_confusion_matrix,
    plot_generic_labels,
    plot_generic_naming,
    plot_headline,
    plot_label_metrics,
    plot_pr_curves,
)

__all__ = [
    "HEADLINE_INCHES",
    "PLOT_DPI",
    "PR_CURVE_INCHES",
    "ReportFiles",
    "bar_chart_inches",
    "comparison_records",
    "confusion_matrix_inches",
    "evaluate_comparison",
    "plot_confusion_matrix",
    "plot_generic_labels",
    "plot_generic_naming",
    "plot_headline",
    "plot_label_metrics",
    "plot_pr_curves",
    "prepare_folder",
    "render_evaluation_html",
    "render_evaluation_markdown",
    "render_html",
    "render_markdown",
    "render_page",
    "write_evaluation_report",
    "write_report",
]
