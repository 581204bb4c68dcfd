"""Report folders: every page, table and plot of a comparison or an evaluation, on disk.

Files are written atomically (a temporary file in the same folder, then ``os.replace``), and
every CSV goes through the injection-safe writer :func:`redditvision._csv.write_csv`, since
image names and labels may be strangers' text.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from redditvision._csv import Cell, write_csv
from redditvision.errors import ComparisonError, ConfigError
from redditvision.metrics import comparison_label_metrics, evaluation_to_json
from redditvision.models import Evaluation
from redditvision.report import plots as charts
from redditvision.report import tables
from redditvision.report.html import render_evaluation_html, render_html
from redditvision.report.markdown import render_evaluation_markdown, render_markdown

if TYPE_CHECKING:
    from redditvision.compare import ComparisonReport, ImageComparison

__all__ = [
    "COMPARISON_CSV_COLUMNS",
    "ReportFiles",
    "comparison_records",
    "prepare_folder",
    "write_evaluation_report",
    "write_report",
]


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
        plots: Plot name (``"headline"``, ``"generic_naming"``, ``"generic_labels"``,
            ``"confusion_matrix"``, ``"label_metrics"``, ``"evaluation_confusion_matrix"``,
            ``"evaluation_label_metrics"``, ``"evaluation_pr_curves"``; an evaluation alone
            without the prefix) -> PNG file; a plot without data is left out.
    """

    folder: Path
    html: Path
    markdown: Path
    csv: Path
    jsonl: Path | None
    summary: Path
    plots: Mapping[str, Path] = attrs.field(factory=dict, hash=False)


def prepare_folder(out_dir: str | os.PathLike[str], overwrite: bool) -> Path:
    """Create the report folder, refusing one that holds files unless ``overwrite``.

    Args:
        out_dir: The folder.
        overwrite: Accept a folder that is not empty.

    Returns:
        The folder.

    Raises:
        ConfigError: ``out_dir`` is a file, or not empty while ``overwrite`` is False.
        ComparisonError: The folder cannot be created.
    """
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


def _csv_text(header: tuple[str, ...], rows: list[list[Cell]]) -> str:
    buffer = io.StringIO()
    write_csv(buffer, header, rows)
    return buffer.getvalue()


COMPARISON_CSV_COLUMNS = (
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
"""The columns of ``comparison.csv``; ``image`` is the path as given, not shortened."""


def _comparison_csv(report: ComparisonReport) -> str:
    rows: list[list[Cell]] = [
        [
            image.name,
            image.truth,
            image.custom_label,
            None if image.custom_score is None else round(image.custom_score, 6),
            image.custom_correct,
            tables.generic_text(image, limit=len(image.generic.labels)),
            image.generic.best_guess,
            ";".join(image.generic_classes),
            image.generic_match,
            image.agreement,
            image.generic.error,
            image.custom_error,
        ]
        for image in report.images
    ]
    return _csv_text(COMPARISON_CSV_COLUMNS, rows)


def _evaluation_csv(evaluation: Evaluation) -> str:
    rows: list[list[Cell]] = [
        [
            m.label,
            round(m.precision, 6),
            round(m.recall, 6),
            round(m.f1, 6),
            m.support,
            None if m.au_prc is None else round(m.au_prc, 6),
        ]
        for m in evaluation.per_label
    ]
    return _csv_text(("label", "precision", "recall", "f1", "support", "au_prc"), rows)


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


def _evaluation_pngs(evaluation: Evaluation) -> dict[str, bytes]:
    pngs: dict[str, bytes] = {}
    if evaluation.labels and evaluation.confusion_matrix:
        pngs["confusion_matrix"] = charts.plot_confusion_matrix(
            evaluation.labels, evaluation.confusion_matrix
        )
    if evaluation.per_label:
        pngs["label_metrics"] = charts.plot_label_metrics(evaluation.per_label)
    if evaluation.thresholds:
        pngs["pr_curves"] = charts.plot_pr_curves(
            evaluation.thresholds, au_prc={m.label: m.au_prc for m in evaluation.per_label}
        )
    return pngs


def _comparison_pngs(report: ComparisonReport, *, with_evaluation: bool) -> dict[str, bytes]:
    pngs: dict[str, bytes] = {}
    s = report.summary
    if s.custom_accuracy is not None or s.generic_names_truth is not None:
        pngs["headline"] = charts.plot_headline(
            s.custom_accuracy,
            s.generic_names_truth,
            generic_caption=tables.generic_display_name(report.generic_name),
        )
    matches = {image.generic_match for image in report.images} - {None}
    if len(matches) > 1:
        # One kind for every image would be one colour per bar: the caption says it instead.
        pngs["generic_naming"] = charts.plot_generic_naming(report)
    if any(
        image.truth is not None and image.generic.error is None and image.generic.labels
        for image in report.images
    ):
        pngs["generic_labels"] = charts.plot_generic_labels(report)
    scored = any(image.truth is not None and image.custom for image in report.images)
    if scored and not with_evaluation:
        # With an evaluation its section draws these from the same images, once.
        pngs["confusion_matrix"] = charts.plot_confusion_matrix(
            report.labels, report.confusion_matrix
        )
        per_class = comparison_label_metrics(report)
        if per_class:
            pngs["label_metrics"] = charts.plot_label_metrics(per_class)
    return pngs


def write_report(
    report: ComparisonReport,
    out_dir: str | os.PathLike[str],
    *,
    evaluation: Evaluation | None = None,
    overwrite: bool = False,
    image_root: str | os.PathLike[str] | None = None,
    audit: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
) -> ReportFiles:
    """Write a comparison report folder: HTML, Markdown, CSV, JSON Lines, summary and plots.

    Files: ``report.html``, ``report.md``, ``comparison.csv``, ``comparison.jsonl``,
    ``summary.json`` and the plots as PNG files. Plots without data are left out: the
    headline needs truth; the generic naming chart needs at least two kinds of answer; the
    generic labels heatmap needs truth and generic labels. The custom model's confusion
    matrix and per-class bars are drawn once: from ``evaluation`` (``evaluation_*.png``,
    with the precision-recall curves) when given, else from the comparison.

    Args:
        report: The comparison.
        out_dir: The folder; created when missing.
        evaluation: The custom model's evaluation (from any backend, or
            :func:`~redditvision.metrics.evaluate_comparison`) to add, or None.
        overwrite: Replace the report files in a folder that is not empty (other files in
            it are left alone). Default False.
        image_root: Show image paths on the pages relative to this folder; None (default)
            takes the deepest folder holding every image. The CSV and JSON Lines keep the
            paths as given.
        audit: A run's audit step outputs (``images``, ``flagged``, ``issues`` per kind,
            ``html``, and ``changes`` when it cleaned the dataset): the page links
            ``audit.html`` and shows per issue how many images were flagged, removed and
            relabeled; ``summary.json`` gets them as ``audit``. None leaves it out.
        training: The model's ``training`` metadata (the local backend's
            ``model.json["training"]``: ``curve``, ``best_epoch``, ``epochs_run``,
            ``stopped``): a fine-tuned model's curve is drawn as
            ``training_curve.png`` and shown. None, or a curve without epochs, leaves it
            out.

    Returns:
        The paths written.

    Raises:
        ConfigError: ``out_dir`` exists and is not empty while ``overwrite`` is False, or
            is a file.
        ComparisonError: A file cannot be written.
    """
    folder = prepare_folder(out_dir, overwrite)
    curve = list((training or {}).get("curve") or [])
    training_png = (
        charts.plot_training_curve(curve, best_epoch=(training or {}).get("best_epoch"))
        if len(curve) > 1
        else None
    )
    audit_href = ""
    if audit is not None and audit.get("html"):
        audit_href = Path(os.path.relpath(Path(audit["html"]), folder)).as_posix()
    root = None if image_root is None else str(image_root)
    pngs = _comparison_pngs(report, with_evaluation=evaluation is not None)
    evaluation_pngs = _evaluation_pngs(evaluation) if evaluation is not None else {}
    plot_files: dict[str, Path] = {}
    for key, png in pngs.items():
        plot_files[key] = _write(folder / f"{key}.png", png)
    for key, png in evaluation_pngs.items():
        plot_files[f"evaluation_{key}"] = _write(folder / f"evaluation_{key}.png", png)
    if training_png is not None:
        plot_files["training_curve"] = _write(folder / "training_curve.png", training_png)
    markdown = render_markdown(
        report,
        evaluation=evaluation,
        plots={key: f"{key}.png" for key in pngs},
        evaluation_plots={key: f"evaluation_{key}.png" for key in evaluation_pngs},
        image_root=root,
    )
    summary = report.summary_dict()
    summary["labels"] = list(report.labels)
    summary["confusion_matrix"] = [list(row) for row in report.confusion_matrix]
    if evaluation is not None:
        summary["evaluation"] = evaluation_to_json(evaluation)
    if audit is not None:
        summary["audit"] = dict(audit)
    jsonl = "".join(
        json.dumps(record, ensure_ascii=False) + "\n" for record in comparison_records(report)
    )
    page = render_html(
        report,
        evaluation=evaluation,
        plots=pngs,
        evaluation_plots=evaluation_pngs,
        image_root=root,
        audit=audit,
        audit_href=audit_href,
        training=training,
        training_plot=training_png,
    )
    return ReportFiles(
        folder=folder,
        html=_write(folder / "report.html", page),
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
    folder = prepare_folder(out_dir, overwrite)
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
            json.dumps(evaluation_to_json(evaluation), ensure_ascii=False, indent=2) + "\n",
        ),
        plots=plot_files,
    )
