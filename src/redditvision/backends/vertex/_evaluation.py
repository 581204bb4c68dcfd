"""Evaluation on Vertex AI: ``ListModelEvaluations`` and slices as an ``Evaluation``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from redditvision.backends.vertex._client import VertexClient
from redditvision.backends.vertex._limits import SERVICE
from redditvision.backends.vertex._training import to_python
from redditvision.errors import TrainingError
from redditvision.metrics import f1 as f1_score
from redditvision.models import (
    Evaluation,
    LabeledDataset,
    LabelMetrics,
    ThresholdMetrics,
    TrainedModel,
)

__all__ = ["EvaluationMixin", "evaluation_from_metrics"]

logger = logging.getLogger("redditvision.backends.vertex")


class EvaluationMixin(VertexClient):
    """Evaluation methods of :class:`~redditvision.backends.vertex.VertexAutoMLBackend`."""

    def evaluate(self, model: TrainedModel, data: LabeledDataset | None = None) -> Evaluation:
        """Read the evaluation Vertex AI computed on the test split.

        Figures: ``auPrc`` and ``logLoss`` of the model evaluation, micro precision and
        recall from its ``confidenceMetrics`` at threshold 0.5, the confusion matrix (with
        the annotation specs' display names), per-label precision, recall, F1 and auPRC from
        the evaluation slices (dimension ``annotationSpec``), support from the matrix rows.
        A label the model knows but the matrix lacks gets a zero row and column.

        Args:
            model: A ``"vertex"`` model (``resource`` is the model's name).
            data: Ignored (the service evaluates on the ``test`` split of the import).

        Returns:
            The evaluation, labels in the user's names (``model.label_map``).

        Raises:
            TrainingError: The model does not exist or has no evaluation yet.
        """
        evaluations = list(
            self._rpc(
                self.model_client.list_model_evaluations,
                f"listing evaluations of {model.resource}",
                retry=self.retry,
                request={"parent": model.resource},
            )
        )
        if not evaluations:
            raise TrainingError(
                f"model {model.resource} has no evaluation yet; AutoML writes it when "
                "training ends",
                service=SERVICE,
            )
        evaluation = evaluations[0]
        metrics = to_python(evaluation, "metrics") or {}
        slices = list(
            self._rpc(
                self.model_client.list_model_evaluation_slices,
                f"listing evaluation slices of {evaluation.name}",
                retry=self.retry,
                request={"parent": evaluation.name},
            )
        )
        slice_metrics: dict[str, dict[str, Any]] = {}
        for item in slices:
            if item.slice_.dimension == "annotationSpec":
                slice_metrics[item.slice_.value] = to_python(item, "metrics") or {}
        return evaluation_from_metrics(metrics, slice_metrics, model, source=str(evaluation.name))


def _pick_threshold(curve: Sequence[Mapping[str, Any]], at: float = 0.5) -> Mapping[str, Any]:
    if not curve:
        return {}
    return min(curve, key=lambda point: abs(float(point.get("confidenceThreshold", 0.0)) - at))


def evaluation_from_metrics(
    metrics: Mapping[str, Any],
    slice_metrics: Mapping[str, Mapping[str, Any]],
    model: TrainedModel,
    *,
    source: str,
) -> Evaluation:
    """Convert Vertex AI classification metrics (and slices) into an Evaluation.

    Args:
        metrics: The model evaluation's ``metrics`` as Python (``auPrc``, ``logLoss``,
            ``confidenceMetrics``, ``confusionMatrix``).
        slice_metrics: Annotation spec display name -> that slice's ``metrics``.
        model: The model (its labels and label map).
        source: The evaluation's resource name.

    Returns:
        The evaluation, labels in the user's names.
    """
    matrix = metrics.get("confusionMatrix") or {}
    spec_names = [str(spec.get("displayName", "")) for spec in matrix.get("annotationSpecs", [])]
    rows = [[round(float(v)) for v in row] for row in matrix.get("rows", [])]
    known = list(spec_names)
    extra = sorted((set(model.labels) | set(slice_metrics)) - set(known))
    if extra:
        logger.warning(
            "labels %s are missing from the confusion matrix of %s; they get zero rows",
            ", ".join(extra),
            source,
        )
    labels = known + extra
    size = len(labels)
    full = [[0] * size for _ in range(size)]
    for i, row in enumerate(rows[: len(known)]):
        for j, count in enumerate(row[: len(known)]):
            full[i][j] = count
    per_label: list[LabelMetrics] = []
    thresholds: list[ThresholdMetrics] = []
    user = {label: model.label_map.get(label, label) for label in labels}
    for i, label in enumerate(labels):
        support = sum(full[i])
        predicted = sum(full[r][i] for r in range(size))
        data = slice_metrics.get(label)
        point = _pick_threshold((data or {}).get("confidenceMetrics", []))
        if point:
            precision = float(point.get("precision", 0.0))
            recall = float(point.get("recall", 0.0))
            f1 = float(point.get("f1Score", f1_score(precision, recall)))
        else:
            precision = full[i][i] / predicted if predicted else 0.0
            recall = full[i][i] / support if support else 0.0
            f1 = f1_score(precision, recall)
        au_prc = data.get("auPrc") if data else None
        per_label.append(
            LabelMetrics(
                label=user[label],
                precision=precision,
                recall=recall,
                f1=f1,
                support=support,
                au_prc=None if au_prc is None else float(au_prc),
            )
        )
        for curve_point in (data or {}).get("confidenceMetrics", []):
            thresholds.append(_threshold(curve_point, user[label]))
    for curve_point in metrics.get("confidenceMetrics", []):
        thresholds.append(_threshold(curve_point, None))
    total = sum(sum(row) for row in full)
    accuracy = sum(full[i][i] for i in range(size)) / total if total else None
    overall = _pick_threshold(metrics.get("confidenceMetrics", []))
    micro_precision = float(overall.get("precision", accuracy or 0.0))
    micro_recall = float(overall.get("recall", accuracy or 0.0))
    n = len(per_label) or 1
    au_prc_value = metrics.get("auPrc")
    log_loss = metrics.get("logLoss")
    return Evaluation(
        labels=tuple(user[label] for label in labels),
        per_label=tuple(per_label),
        confusion_matrix=tuple(tuple(row) for row in full),
        accuracy=accuracy,
        macro_precision=sum(m.precision for m in per_label) / n,
        macro_recall=sum(m.recall for m in per_label) / n,
        macro_f1=sum(m.f1 for m in per_label) / n,
        micro_precision=micro_precision,
        micro_recall=micro_recall,
        micro_f1=float(overall.get("f1Score", f1_score(micro_precision, micro_recall))),
        au_prc=None if au_prc_value is None else float(au_prc_value),
        log_loss=None if log_loss is None else float(log_loss),
        thresholds=tuple(thresholds),
        evaluated_items=total,
        source=source,
    )


def _threshold(point: Mapping[str, Any], label: str | None) -> ThresholdMetrics:
    precision = float(point.get("precision", 0.0))
    recall = float(point.get("recall", 0.0))
    return ThresholdMetrics(
        confidence_threshold=float(point.get("confidenceThreshold", 0.0)),
        precision=precision,
        recall=recall,
        f1=float(point.get("f1Score", f1_score(precision, recall))),
        label=label,
    )
