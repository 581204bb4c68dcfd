"""Classification metrics as an :class:`~redditvision.models.Evaluation`, with scikit-learn.

The local backend evaluates its models with :func:`compute_evaluation`; cloud backends build
:class:`~redditvision.models.Evaluation` from the metrics the service computed. Evaluations
round-trip through JSON with :func:`evaluation_to_json` and :func:`evaluation_from_json`
(the model folder's ``evaluation.json``, ``redditvision evaluate --json``).
:func:`evaluate_comparison` measures a custom model on the images of a comparison the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from redditvision.errors import DatasetError, MissingDependencyError
from redditvision.models import Evaluation, LabelMetrics, Misclassified, ThresholdMetrics

if TYPE_CHECKING:
    from redditvision.compare import ComparisonReport

__all__ = [
    "CONFIDENCE_THRESHOLDS",
    "comparison_label_metrics",
    "compute_evaluation",
    "evaluate_comparison",
    "evaluation_from_json",
    "evaluation_to_json",
    "f1",
]

CONFIDENCE_THRESHOLDS: tuple[float, ...] = (
    *(round(0.05 * step, 2) for step in range(20)),
    0.96,
    0.97,
    0.98,
    0.99,
)
"""0.0, 0.05, ..., 0.95, 0.96, 0.97, 0.98, 0.99: the thresholds of Vertex AI's
``confidenceMetrics`` for image classification evaluations."""


def _sklearn_metrics() -> Any:
    try:
        from sklearn import metrics
    except ImportError as exc:
        raise MissingDependencyError(
            "computing metrics needs scikit-learn: run pip install 'redditvision[local]'"
        ) from exc
    return metrics


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def compute_evaluation(
    true_labels: Sequence[str],
    probabilities: NDArray[np.floating[Any]],
    labels: Sequence[str],
    *,
    items: Sequence[str] | None = None,
    label_map: Mapping[str, str] | None = None,
    source: str = "",
) -> Evaluation:
    """Compute every figure of an :class:`~redditvision.models.Evaluation`.

    The top-scoring label is the prediction. Per-label precision, recall, F1 and support,
    their macro and micro averages and accuracy come from
    ``sklearn.metrics.precision_recall_fscore_support`` and ``accuracy_score``; auPRC is
    ``average_precision_score`` one-vs-rest per label and micro-averaged overall; log loss
    is ``log_loss``; the confusion matrix is ``confusion_matrix`` in ``labels`` order. The
    threshold table counts, at each of :data:`CONFIDENCE_THRESHOLDS`, every (item, label)
    pair scored at or above the threshold as a positive prediction, as Vertex AI's
    ``confidenceMetrics`` do: micro-averaged over labels, then per label.

    Args:
        true_labels: The true model label of each item, length n.
        probabilities: Scores of shape (n, len(labels)), rows summing to 1.
        labels: The model labels, in the column order of ``probabilities``.
        items: Path or URI of each item (for the misclassified list), default ``"#i"``.
        label_map: Model label -> the user's name; the evaluation speaks the user's names.
        source: Where the figures come from, e.g. ``"local:test split"``.

    Returns:
        The evaluation; labels with no true item get auPRC None.

    Raises:
        DatasetError: No items, a shape mismatch, or a true label the model does not know.
        MissingDependencyError: scikit-learn is not installed.
    """
    metrics = _sklearn_metrics()
    label_list = list(labels)
    names = dict(label_map or {})
    display = [names.get(label, label) for label in label_list]
    n = len(true_labels)
    proba = np.asarray(probabilities, dtype=np.float64)
    if n == 0:
        raise DatasetError("nothing to evaluate: the evaluation set has no images")
    if proba.shape != (n, len(label_list)):
        raise DatasetError(
            f"probabilities have shape {proba.shape}, expected ({n}, {len(label_list)})"
        )
    unknown = sorted(set(true_labels) - set(label_list))
    if unknown:
        shown = ", ".join(names.get(label, label) for label in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise DatasetError(
            f"{len(unknown)} label(s) of the evaluation images are not labels of the model: "
            f"{shown}{more}; the model predicts {', '.join(display)}. Pass the label map the "
            "model was trained with (--label-map FILE), so the images' folders map to its labels"
        )
    index = {label: i for i, label in enumerate(label_list)}
    y_true = np.array([index[label] for label in true_labels])
    y_pred = proba.argmax(axis=1)
    columns = list(range(len(label_list)))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=columns, zero_division=0
    )
    truth = np.zeros_like(proba, dtype=np.int64)
    truth[np.arange(n), y_true] = 1
    per_label = []
    for j, name in enumerate(display):
        au_prc = (
            _finite(float(metrics.average_precision_score(truth[:, j], proba[:, j])))
            if support[j] > 0
            else None
        )
        per_label.append(
            LabelMetrics(
                label=name,
                precision=float(precision[j]),
                recall=float(recall[j]),
                f1=float(f1[j]),
                support=int(support[j]),
                au_prc=au_prc,
            )
        )
    macro = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=columns, average="macro", zero_division=0
    )
    micro = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=columns, average="micro", zero_division=0
    )
    thresholds: list[ThresholdMetrics] = []
    for threshold in CONFIDENCE_THRESHOLDS:
        predicted = (proba >= threshold).astype(np.int64)
        p, r, f, _ = metrics.precision_recall_fscore_support(
            truth, predicted, average="micro", zero_division=0
        )
        thresholds.append(
            ThresholdMetrics(
                confidence_threshold=threshold, precision=float(p), recall=float(r), f1=float(f)
            )
        )
    for j, name in enumerate(display):
        for threshold in CONFIDENCE_THRESHOLDS:
            predicted = (proba[:, j] >= threshold).astype(np.int64)
            p, r, f, _ = metrics.precision_recall_fscore_support(
                truth[:, j], predicted, average="binary", zero_division=0
            )
            thresholds.append(
                ThresholdMetrics(
                    confidence_threshold=threshold,
                    precision=float(p),
                    recall=float(r),
                    f1=float(f),
                    label=name,
                )
            )
    item_names = list(items) if items is not None else [f"#{i}" for i in range(n)]
    misclassified = tuple(
        Misclassified(
            item=item_names[i],
            true_label=display[y_true[i]],
            predicted_label=display[y_pred[i]],
            score=float(proba[i, y_pred[i]]),
        )
        for i in range(n)
        if y_pred[i] != y_true[i]
    )
    matrix = metrics.confusion_matrix(y_true, y_pred, labels=columns)
    clipped = np.clip(proba, 1e-15, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return Evaluation(
        labels=tuple(display),
        per_label=tuple(per_label),
        confusion_matrix=tuple(tuple(int(v) for v in row) for row in matrix),
        accuracy=float(metrics.accuracy_score(y_true, y_pred)),
        macro_precision=float(macro[0]),
        macro_recall=float(macro[1]),
        macro_f1=float(macro[2]),
        micro_precision=float(micro[0]),
        micro_recall=float(micro[1]),
        micro_f1=float(micro[2]),
        au_prc=_finite(float(metrics.average_precision_score(truth, proba, average="micro"))),
        log_loss=_finite(float(metrics.log_loss(y_true, clipped, labels=columns))),
        thresholds=tuple(thresholds),
        misclassified=misclassified,
        evaluated_items=n,
        source=source,
    )


def evaluation_to_json(evaluation: Evaluation) -> dict[str, Any]:
    """Return a JSON-compatible dict with every field of an evaluation.

    Args:
        evaluation: The evaluation.

    Returns:
        A dict whose keys are the attribute names; nested types become dicts, tuples lists.
    """
    import json

    import attrs

    # A JSON round trip: lists where the evaluation holds tuples (attrs keeps tuples), so
    # the dict equals what a reader of the written file gets back.
    data: dict[str, Any] = json.loads(json.dumps(attrs.asdict(evaluation)))
    return data


def evaluation_from_json(data: Mapping[str, Any]) -> Evaluation:
    """Build an evaluation from :func:`evaluation_to_json`'s dict.

    Args:
        data: The decoded JSON object.

    Returns:
        The evaluation.

    Raises:
        DatasetError: A field is missing or has the wrong type.
    """
    try:
        return Evaluation(
            labels=tuple(data["labels"]),
            per_label=tuple(LabelMetrics(**item) for item in data["per_label"]),
            confusion_matrix=tuple(tuple(int(v) for v in row) for row in data["confusion_matrix"]),
            accuracy=data.get("accuracy"),
            macro_precision=float(data["macro_precision"]),
            macro_recall=float(data["macro_recall"]),
            macro_f1=float(data["macro_f1"]),
            micro_precision=float(data["micro_precision"]),
            micro_recall=float(data["micro_recall"]),
            micro_f1=float(data["micro_f1"]),
            au_prc=data.get("au_prc"),
            log_loss=data.get("log_loss"),
            thresholds=tuple(ThresholdMetrics(**item) for item in data.get("thresholds", ())),
            misclassified=tuple(Misclassified(**item) for item in data.get("misclassified", ())),
            evaluated_items=int(data.get("evaluated_items", 0)),
            source=str(data.get("source", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"not an evaluation object: {exc}") from exc


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


def comparison_label_metrics(report: ComparisonReport) -> list[LabelMetrics]:
    """Return the custom model's precision, recall and F1 per class of a comparison.

    Args:
        report: The comparison.

    Returns:
        One :class:`~redditvision.models.LabelMetrics` per class that has images or
        predictions, in the report's class order (no auPRC: a comparison has no thresholds).
    """
    return [
        LabelMetrics(
            label=c.label, precision=c.precision, recall=c.recall, f1=c.f1, support=c.support
        )
        for c in report.classes
        if c.support or c.predicted
    ]


def f1(precision: float, recall: float) -> float:
    """Return the F1 score, the harmonic mean of precision and recall.

    The one F1 helper of the package: the cloud backends use it where the service reports
    precision and recall without an F1 (Vertex AI confidence metrics may omit ``f1Score``;
    AutoML v1 reports none for the micro average).

    Args:
        precision: In ``[0, 1]``.
        recall: In ``[0, 1]``.

    Returns:
        ``2 * precision * recall / (precision + recall)``, or 0.0 when both are 0.
    """
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0
