"""Report pages as Markdown: the same tables, notes and headline as the HTML pages."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from redditvision.models import Evaluation
from redditvision.report import tables

if TYPE_CHECKING:
    from redditvision.compare import ComparisonReport

__all__ = ["render_evaluation_markdown", "render_markdown"]

_COMPARISON_PLOTS = ("generic_naming", "generic_labels", "confusion_matrix", "label_metrics")
_EVALUATION_PLOTS = ("confusion_matrix", "label_metrics", "pr_curves")


def _md(text: str) -> str:
    """Escape text for a Markdown table cell (pipes, backslashes, HTML, newlines)."""
    text = html.escape(text, quote=False)
    for char in ("\\", "|", "*", "_", "`", "[", "]"):
        text = text.replace(char, "\\" + char)
    return " ".join(text.split())


def _md_table(header: Sequence[str], rows: Iterable[Sequence[tables.Cell]]) -> list[str]:
    lines = ["| " + " | ".join(_md(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        lines.append("| " + " | ".join(_md(text) for text, _ in row) + " |")
    return lines


def _notes(notes: Iterable[tuple[str, str]]) -> list[str]:
    return [f"- **{_md(column)}**: {_md(meaning)}" for column, meaning in notes]


def _table(table: tables.Table) -> list[str]:
    lines = _md_table(table.header, table.rows)
    if table.notes:
        lines += ["", *_notes(table.notes)]
    return lines


def _figures(
    plots: Mapping[str, str], texts: Mapping[str, tuple[str, str]], order: Sequence[str]
) -> list[str]:
    lines: list[str] = []
    for key in order:
        if key in plots:
            title, caption = texts[key]
            lines += ["", f"![{_md(title)}]({plots[key]})", "", f"*{_md(title)}.* {_md(caption)}"]
    return lines


def _md_evaluation(
    evaluation: Evaluation,
    plots: Mapping[str, str],
    level: str,
    heading: str,
    names: tables.ImageNames | None = None,
) -> list[str]:
    lines = [f"{level} {heading}", ""]
    lines += _table(tables.evaluation_overall_table(evaluation))
    lines += ["", f"{level}# Per label", ""]
    lines += _table(tables.evaluation_label_table(evaluation))
    lines += _figures(plots, tables.evaluation_plot_texts(evaluation), _EVALUATION_PLOTS)
    if evaluation.misclassified:
        lines += ["", f"{level}# Misclassified (first {tables.MISCLASSIFIED_LIMIT})", ""]
        lines += _table(tables.misclassified_table(evaluation, names))
    return lines


def render_markdown(
    report: ComparisonReport,
    *,
    evaluation: Evaluation | None = None,
    plots: Mapping[str, str] | None = None,
    evaluation_plots: Mapping[str, str] | None = None,
    image_root: str | None = None,
) -> str:
    """Render a comparison as Markdown.

    Args:
        report: The comparison.
        evaluation: The custom model's evaluation to add, or None.
        plots: Plot name -> relative file name to link (``write_report`` passes the PNGs
            it wrote), or None for no plots.
        evaluation_plots: The evaluation's plot name -> relative file name, or None.
        image_root: Show image paths relative to this folder; None (default) takes the
            deepest folder holding every image.

    Returns:
        The page; every text from data is escaped for Markdown tables and raw HTML.
    """
    plots = plots or {}
    names = tables.ImageNames([image.name for image in report.images], image_root)
    texts = tables.comparison_plot_texts(report)
    lines = [f"# {_md(tables.report_title(report))}", "", f"**{_md(tables.headline(report))}**"]
    lines += _figures(plots, texts, ("headline",))
    lines += ["", "## Overall", ""]
    lines += _table(tables.overall_table(report))
    lines += ["", "## Per class", ""]
    lines += _table(tables.class_table(report))
    lines += _figures(plots, texts, _COMPARISON_PLOTS)
    lines += ["", f"## Images ({len(report.images)})", ""]
    if names.root is not None:
        lines += [f"Image paths are relative to `{names.root}`.", ""]
    header = [name for name, _ in tables.IMAGE_COLUMNS]
    header[header.index("score")] = "custom score"
    lines += _md_table(
        header,
        (
            [
                tables.text(names.show(image.name)),
                tables.text(image.truth),
                tables.text(image.custom_label),
                tables.text(
                    tables.fmt(image.custom_score, 2) if image.custom_score is not None else ""
                ),
                tables.text(tables.generic_text(image)),
                tables.text(image.generic.best_guess),
                tables.text(tables.match_text(image.generic_match)),
                tables.text("; ".join(e for e in (image.generic.error, image.custom_error) if e)),
            ]
            for image in report.images
        ),
    )
    lines += ["", *_notes(tables.IMAGE_COLUMNS)]
    if evaluation is not None:
        lines += [
            "",
            *_md_evaluation(
                evaluation, evaluation_plots or {}, "##", "Evaluation of the custom model", names
            ),
        ]
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
    title = f"Evaluation: {evaluation.source or 'custom model'}"
    lines = [f"# {_md(title)}", "", *_md_evaluation(evaluation, plots or {}, "##", "Figures")]
    return "\n".join(lines) + "\n"
