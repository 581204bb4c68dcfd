"""Legacy AutoML v1 ``ModelEvaluation`` messages as the shared ``Evaluation``."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from redditvision.backends.automl._limits import SERVICE
from redditvision.errors import TrainingError
from redditvision.metrics import f1
from redditvision.models import Evaluation, LabelMetrics, ThresholdMetrics

__all__ = ["evaluation_from_automl", "fraction"]

logger = logging.getLogger("redditvision.backends.automl")

_DEFAULT_SCORE_THRESHOLD = 0.5  # AutoML's own default for ``score_threshold``.


def fraction(value: float) -> float:
    """Clamp a service figure into ``[0, 1]``."""
    return max(0.0, min(1.0, float(value)))


def _entry_at(
    entries: Sequence[Any], threshold: float
) -> Any | None:  # ConfidenceMetricsEntry, untyped
    """Return the confidence metrics entry nearest to ``threshold`` (position unlimited)."""
    best = None
    best_gap = float("inf")
    for entry in entries:
        # Entries with a position_threshold are extra curves; the aggregate ones have
        # position_threshold unset (0) or INT32_MAX.
        if entry.position_threshold not in (0, 2**31 - 1):
            continue
        gap = abs(float(entry.confidence_threshold) - threshold)
        if gap < best_gap - 1e-9:
            best, best_gap = entry, gap
    return best


def evaluation_from_automl(
    evaluations: Iterable[Any],
    *,
    labels: Sequence[str] = (),
    label_map: Mapping[str, str] | None = None,
    threshold: float = _DEFAULT_SCORE_THRESHOLD,
) -> Evaluation:
    """Convert AutoML v1 ``ModelEvaluation`` messages into an :class:`Evaluation`.

    AutoML v1 returns one overall evaluation (empty ``annotation_spec_id``) with the
    micro-averaged curve, ``au_prc``, ``log_loss`` and the confusion matrix (only for
    MULTICLASS with at most 10 labels), plus one evaluation per label with that label's
    curve and ``evaluated_example_count`` (its true items).

    Args:
        evaluations: The ``automl_v1.ModelEvaluation`` messages of one model.
        labels: Service labels the model was trained on (``TrainedModel.labels``); labels
            seen only in the evaluations are added. The result orders them sorted.
        label_map: Service label -> the user's label name (default: identity).
        threshold: Confidence threshold for the per-label precision/recall/F1 and the
            micro figures (default 0.5, AutoML's default ``score_threshold``).

    Returns:
        The evaluation. A label missing from the confusion matrix gets a zero row and
        column (and a warning in the log); when the service sent no confusion matrix
        (more than 10 labels) ``confusion_matrix`` is ``()`` and ``accuracy`` comes from
        the top-1 figures at threshold 0, if present.

    Raises:
        TrainingError: There is no overall classification evaluation.
    """
    mapping = dict(label_map or {})
    overall = None
    per_label: dict[str, Any] = {}
    for evaluation in evaluations:
        if "classification_evaluation_metrics" not in evaluation:
            continue
        if not evaluation.annotation_spec_id and not evaluation.display_name:
            overall = evaluation
        else:
            per_label[evaluation.display_name or evaluation.annotation_spec_id] = evaluation
    if overall is None:
        raise TrainingError(
            "the model has no overall classification evaluation (was it trained on an "
            "image classification dataset, and has training finished?)",
            service=SERVICE,
        )
    metrics = overall.classification_evaluation_metrics
    matrix = metrics.confusion_matrix if "confusion_matrix" in metrics else None
    matrix_names = list(matrix.display_name) if matrix is not None else []
    service_labels = sorted({*labels, *per_label, *matrix_names})

    confusion: tuple[tuple[int, ...], ...] = ()
    if matrix is not None and matrix_names:
        index = {name: i for i, name in enumerate(matrix_names)}
        missing = [label for label in service_labels if label not in index]
        if missing:
            logger.warning(
                "labels %s are missing from the confusion matrix of %s; their rows and "
                "columns are zero",
                ", ".join(missing),
                overall.name,
            )
        rows = [list(row.example_count) for row in matrix.row]
        confusion = tuple(
            tuple(
                int(rows[index[true]][index[pred]])
                if true in index
                and pred in index
                and index[true] < len(rows)
                and index[pred] < len(rows[index[true]])
                else 0
                for pred in service_labels
            )
            for true in service_labels
        )

    label_metrics: list[LabelMetrics] = []
    thresholds: list[ThresholdMetrics] = []
    for i, label in enumerate(service_labels):
        user = mapping.get(label, label)
        evaluation = per_label.get(label)
        if evaluation is not None:
            label_m = evaluation.classification_evaluation_metrics
            entry = _entry_at(label_m.confidence_metrics_entry, threshold)
            precision = fraction(entry.precision) if entry is not None else 0.0
            recall = fraction(entry.recall) if entry is not None else 0.0
            support = int(evaluation.evaluated_example_count)
            au_prc: float | None = float(label_m.au_prc)
            for curve in label_m.confidence_metrics_entry:
                if curve.position_threshold in (0, 2**31 - 1):
                    thresholds.append(
                        ThresholdMetrics(
                            confidence_threshold=float(curve.confidence_threshold),
                            precision=fraction(curve.precision),
                            recall=fraction(curve.recall),
                            f1=fraction(curve.f1_score),
                            label=user,
                        )
                    )
        elif confusion:
            # No per-label evaluation: read the label's figures off the confusion matrix.
            true_positive = confusion[i][i]
            predicted = sum(row[i] for row in confusion)
            support = sum(confusion[i])
            precision = true_positive / predicted if predicted else 0.0
            recall = true_positive / support if support else 0.0
            au_prc = None
        else:
            precision = recall = 0.0
            support = 0
            au_prc = None
        label_metrics.append(
            LabelMetrics(
                label=user,
                precision=precision,
                recall=recall,
                f1=f1(precision, recall),
                support=support,
                au_prc=au_prc,
            )
        )

    for curve in metrics.confidence_metrics_entry:
        if curve.position_threshold in (0, 2**31 - 1):
            thresholds.insert(
                sum(1 for t in thresholds if t.label is None),
                ThresholdMetrics(
                    confidence_threshold=float(curve.confidence_threshold),
                    precision=fraction(curve.precision),
                    recall=fraction(curve.recall),
                    f1=fraction(curve.f1_score),
                ),
            )
    micro = _entry_at(metrics.confidence_metrics_entry, threshold)
    micro_precision = fraction(micro.precision) if micro is not None else 0.0
    micro_recall = fraction(micro.recall) if micro is not None else 0.0

    accuracy: float | None = None
    total = sum(sum(row) for row in confusion)
    if total:
        accuracy = sum(confusion[i][i] for i in range(len(confusion))) / total
    else:
        top1 = _entry_at(metrics.confidence_metrics_entry, 0.0)
        if top1 is not None and float(top1.confidence_threshold) == 0.0:
            accuracy = fraction(top1.recall_at1)

    count = len(label_metrics) or 1
    return Evaluation(
        labels=tuple(mapping.get(label, label) for label in service_labels),
        per_label=tuple(label_metrics),
        confusion_matrix=confusion,
        accuracy=accuracy,
        macro_precision=sum(m.precision for m in label_metrics) / count,
        macro_recall=sum(m.recall for m in label_metrics) / count,
        macro_f1=sum(m.f1 for m in label_metrics) / count,
        micro_precision=micro_precision,
        micro_recall=micro_recall,
        micro_f1=f1(micro_precision, micro_recall),
        au_prc=float(metrics.au_prc),
        log_loss=float(metrics.log_loss) if metrics.log_loss else None,
        thresholds=tuple(thresholds),
        evaluated_items=int(overall.evaluated_example_count),
        source=str(overall.name),
    )
