"""Self-contained HTML report pages, rendered from Jinja2 templates.

Every page extends one layout, ``templates/base.html`` (blocks ``headline`` and ``content``;
variables ``title``, ``csp`` and ``version``); the comparison page is ``comparison.html``, the
evaluation page ``evaluation.html``, and their shared pieces (a sortable table with its
column notes, a figure, the evaluation section) are the macros of ``_macros.html``. The
environment autoescapes every value, so text from data (labels, file names, errors) is
escaped where it is printed, never by hand.

Thumbnails and plots are inlined as ``data:`` URIs, the sorting script and styles are inline,
and a Content-Security-Policy (:data:`CSP`) forbids every outside request: a page works
offline and from an e-mail attachment.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from redditvision.models import Evaluation
from redditvision.report import tables

if TYPE_CHECKING:
    import jinja2

    from redditvision.compare import ComparisonReport

__all__ = ["CSP", "environment", "render_evaluation_html", "render_html", "render_page"]

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
"""The pages' Content-Security-Policy: images only from ``data:`` URIs, nothing from outside."""

_COMPARISON_PLOTS = ("generic_naming", "generic_labels", "confusion_matrix", "label_metrics")
_EVALUATION_PLOTS = ("confusion_matrix", "label_metrics", "pr_curves")


@functools.cache
def environment() -> jinja2.Environment:
    """Return the Jinja2 environment of the report templates (autoescaping on).

    Returns:
        An environment loading ``redditvision/report/templates`` from the package, with
        autoescaping for every template and undefined variables an error.
    """
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("redditvision.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _version() -> str:
    try:
        return metadata.version("redditvision")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "(source tree)"


def render_page(template: str, *, title: str, **context: Any) -> str:
    """Render one report page: a template that extends ``base.html``.

    Args:
        template: The template's name in ``redditvision/report/templates``.
        title: The page title (``<title>`` and ``<h1>``).
        **context: The template's other variables.

    Returns:
        The page.
    """
    page = (
        environment()
        .get_template(template)
        .render(title=title, csp=CSP, version=_version(), **context)
    )
    return page if page.endswith("\n") else page + "\n"


def data_uri(data: bytes, mime: str = "image/png") -> str:
    """Return ``data:<mime>;base64,...`` for inlining an image."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


@dataclass(frozen=True)
class _Plot:
    id: str
    title: str
    caption: str
    uri: str


@dataclass(frozen=True)
class _EvaluationView:
    heading: str
    intro: str
    overall: tables.Table
    labels: tables.Table
    misclassified: tables.Table | None
    plots: list[_Plot]
    limit: int


def _plots(
    pngs: Mapping[str, bytes],
    texts: Mapping[str, tuple[str, str]],
    order: tuple[str, ...],
    prefix: str,
) -> list[_Plot]:
    return [
        _Plot(
            id=f"{prefix}{key}", title=texts[key][0], caption=texts[key][1], uri=data_uri(pngs[key])
        )
        for key in order
        if key in pngs
    ]


def _evaluation_view(
    evaluation: Evaluation,
    pngs: Mapping[str, bytes],
    *,
    heading: str,
    intro: str = "",
    names: tables.ImageNames | None = None,
) -> _EvaluationView:
    return _EvaluationView(
        heading=heading,
        intro=intro,
        overall=tables.evaluation_overall_table(evaluation),
        labels=tables.evaluation_label_table(evaluation),
        misclassified=tables.misclassified_table(evaluation, names)
        if evaluation.misclassified
        else None,
        plots=_plots(
            pngs, tables.evaluation_plot_texts(evaluation), _EVALUATION_PLOTS, "plot-evaluation-"
        ),
        limit=tables.MISCLASSIFIED_LIMIT,
    )


@dataclass(frozen=True)
class _AuditView:
    href: str
    images: int
    flagged: int
    not_run: str
    table: tables.Table | None


def _audit_view(audit: Mapping[str, Any], href: str) -> _AuditView:
    """The run's audit as a link and a table: per issue, images flagged, removed, relabeled."""
    if "not_run" in audit:
        return _AuditView(href="", images=0, flagged=0, not_run=str(audit["not_run"]), table=None)
    changes = audit.get("changes") or {}
    rows: list[tuple[tables.Cell, ...]] = []
    for kind, count in audit.get("issues", {}).items():
        removed = int(changes.get(f"excluded:{kind}", 0))
        relabeled = int(changes.get("relabeled", 0)) if kind == "label_error" else 0
        rows.append(
            (
                (kind, kind),
                (str(count), count),
                (str(removed), removed),
                (str(relabeled), relabeled),
            )
        )
    table = tables.Table(
        id="audit-table",
        header=("issue", "flagged", "removed", "relabeled"),
        rows=tuple(rows),
        notes=(
            ("flagged", "findings of this kind (an image may have several kinds)"),
            ("removed", "images left out of training for this issue ([audit] exclude)"),
            ("relabeled", "label errors given the suggested label ([audit] relabel)"),
        ),
    )
    return _AuditView(
        href=href,
        images=int(audit.get("images", 0)),
        flagged=int(audit.get("flagged", 0)),
        not_run="",
        table=table,
    )


def _training_plot(png: bytes, training: Mapping[str, Any]) -> _Plot:
    epochs = training.get("epochs_run")
    best = training.get("best_epoch")
    stopped = training.get("stopped")
    caption = (
        f"Mean training loss and validation macro-F1 per epoch over {epochs} epoch(s); "
        f"the dashed line marks the epoch kept ({best})"
    )
    if stopped:
        caption += f"; training stopped: {stopped}"
    return _Plot(
        id="plot-training-curve", title="Training curve", caption=caption + ".", uri=data_uri(png)
    )


def _image_rows(report: ComparisonReport, names: tables.ImageNames) -> list[dict[str, Any]]:
    rows = []
    for image in report.images:
        errors = "; ".join(e for e in (image.generic.error, image.custom_error) if e)
        score = image.custom_score
        rows.append(
            {
                "css": "error" if errors else ("wrong" if image.custom_correct is False else ""),
                "name": names.show(image.name),
                "thumbnail": data_uri(image.thumbnail, "image/jpeg")
                if image.thumbnail is not None
                else None,
                "truth": image.truth or "",
                "custom": image.custom_label or "",
                "score": tables.fmt(score, 2) if score is not None else "",
                "score_key": "" if score is None else repr(score),
                "labels": [
                    (g.label, "" if g.score is None else f"{g.score:.2f}")
                    for g in image.generic.labels
                ],
                "first_label": tables.generic_text(image, 1),
                "best_guess": image.generic.best_guess or "",
                "match": tables.match_text(image.generic_match),
                "error": errors,
            }
        )
    return rows


def render_html(
    report: ComparisonReport,
    *,
    evaluation: Evaluation | None = None,
    plots: Mapping[str, bytes] | None = None,
    evaluation_plots: Mapping[str, bytes] | None = None,
    image_root: str | None = None,
    audit: Mapping[str, Any] | None = None,
    audit_href: str = "",
    training: Mapping[str, Any] | None = None,
    training_plot: bytes | None = None,
) -> str:
    """Render a comparison as one self-contained HTML page (``comparison.html``).

    The page opens with the headline (one sentence, and the ``headline`` plot when given),
    then the overall and per-class tables, the plots, the image table with a note on every
    column, and the custom model's evaluation when given.

    Args:
        report: The comparison.
        evaluation: The custom model's evaluation to add, or None.
        plots: Comparison plots, name -> PNG bytes (``"headline"``, ``"generic_naming"``,
            ``"generic_labels"``, ``"confusion_matrix"``, ``"label_metrics"``), or None.
        evaluation_plots: The evaluation's plots, name -> PNG bytes (``"confusion_matrix"``,
            ``"label_metrics"``, ``"pr_curves"``), or None.
        image_root: Show image paths relative to this folder; None (default) takes the
            deepest folder holding every image.
        audit: The run's audit step outputs (``images``, ``flagged``, ``issues``, and
            ``changes`` when it cleaned the dataset; or ``not_run``), or None.
        audit_href: Link to ``audit.html`` from the page's folder (relative).
        training: The model's ``training`` metadata (``epochs_run``, ``best_epoch``,
            ``stopped``), with ``training_plot``, or None.
        training_plot: The training curve PNG (:func:`~redditvision.report.plots.
            plot_training_curve`), or None.

    Returns:
        The page.
    """
    plots = plots or {}
    names = tables.ImageNames([image.name for image in report.images], image_root)
    texts = tables.comparison_plot_texts(report)
    headline_plot = _plots(plots, texts, ("headline",), "plot-")
    view = None
    if evaluation is not None:
        view = _evaluation_view(
            evaluation,
            evaluation_plots or {},
            heading="Evaluation of the custom model",
            intro=(
                f"From {evaluation.source or 'the compared images'}, "
                f"{evaluation.evaluated_items} items: the figures every backend reports, "
                "with the custom model's confusion matrix and precision-recall curves."
            ),
            names=names,
        )
    return render_page(
        "comparison.html",
        title=tables.report_title(report),
        headline=tables.headline(report),
        headline_plot=headline_plot[0] if headline_plot else None,
        make_terms=", ".join(report.make_terms),
        overall=tables.overall_table(report),
        classes=tables.class_table(report),
        plots=_plots(plots, texts, _COMPARISON_PLOTS, "plot-"),
        image_root=str(names.root) if names.root is not None else "",
        image_columns=tables.IMAGE_COLUMNS,
        images=_image_rows(report, names),
        evaluation=view,
        audit=None if audit is None else _audit_view(audit, audit_href),
        training_plot=None
        if training_plot is None
        else _training_plot(training_plot, training or {}),
    )


def render_evaluation_html(
    evaluation: Evaluation, *, plots: Mapping[str, bytes] | None = None
) -> str:
    """Render an evaluation alone as one self-contained HTML page (``evaluation.html``).

    Args:
        evaluation: An evaluation from any backend.
        plots: Name -> PNG bytes (``"confusion_matrix"``, ``"label_metrics"``,
            ``"pr_curves"``), or None.

    Returns:
        The page, every text escaped, plots inlined.
    """
    view = _evaluation_view(evaluation, plots or {}, heading="Figures")
    return render_page(
        "evaluation.html",
        title=f"Evaluation: {evaluation.source or 'custom model'}",
        evaluation=view,
    )
