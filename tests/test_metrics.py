"""compute_evaluation gives scikit-learn figures in an Evaluation that round-trips via JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from redditvision.errors import DatasetError
from redditvision.metrics import (
    CONFIDENCE_THRESHOLDS,
    compute_evaluation,
    evaluation_from_json,
    evaluation_to_json,
)

LABELS = ["a", "b", "c"]
PROBA = np.array(
    [
        [0.7, 0.2, 0.1],  # a, right
        [0.1, 0.8, 0.1],  # b, right
        [0.3, 0.3, 0.4],  # c, right
        [0.5, 0.4, 0.1],  # b, predicted a
        [0.2, 0.2, 0.6],  # c, right
    ]
)
TRUTH = ["a", "b", "c", "b", "c"]


def test_thresholds_are_the_ones_vertex_reports() -> None:
    assert CONFIDENCE_THRESHOLDS[:3] == (0.0, 0.05, 0.1)
    assert CONFIDENCE_THRESHOLDS[19:] == (0.95, 0.96, 0.97, 0.98, 0.99)
    assert len(CONFIDENCE_THRESHOLDS) == 24


def test_per_label_and_averages_match_hand_counts() -> None:
    evaluation = compute_evaluation(TRUTH, PROBA, LABELS, label_map={"a": "Alpha"})
    assert evaluation.labels == ("Alpha", "b", "c")
    a, b, c = evaluation.per_label
    assert (a.precision, a.recall, a.support) == (0.5, 1.0, 1)
    assert (b.precision, b.recall, b.support) == (1.0, 0.5, 2)
    assert (c.precision, c.recall, c.f1) == (1.0, 1.0, 1.0)
    assert evaluation.accuracy == pytest.approx(0.8)
    assert evaluation.micro_f1 == pytest.approx(0.8)
    assert evaluation.macro_f1 == pytest.approx((2 / 3 + 2 / 3 + 1.0) / 3)
    assert evaluation.confusion_matrix == ((1, 0, 0), (1, 1, 0), (0, 0, 2))
    assert evaluation.evaluated_items == 5
    assert evaluation.log_loss is not None and evaluation.log_loss > 0


def test_misclassified_items_name_truth_prediction_and_score() -> None:
    items = [f"img{i}.jpg" for i in range(5)]
    evaluation = compute_evaluation(TRUTH, PROBA, LABELS, items=items)
    assert len(evaluation.misclassified) == 1
    wrong = evaluation.misclassified[0]
    assert (wrong.item, wrong.true_label, wrong.predicted_label) == ("img3.jpg", "b", "a")
    assert wrong.score == pytest.approx(0.5)


def test_threshold_table_has_overall_and_per_label_rows() -> None:
    evaluation = compute_evaluation(TRUTH, PROBA, LABELS)
    overall = [row for row in evaluation.thresholds if row.label is None]
    assert [row.confidence_threshold for row in overall] == list(CONFIDENCE_THRESHOLDS)
    # At 0.0 every (item, label) pair counts: precision is 1/3, recall 1.
    assert overall[0].precision == pytest.approx(1 / 3)
    assert overall[0].recall == 1.0
    # At 0.99 nothing is predicted.
    assert overall[-1].recall == 0.0
    assert len(evaluation.thresholds) == 24 * 4


def test_auprc_is_none_for_a_label_without_true_items() -> None:
    evaluation = compute_evaluation(["a", "a"], PROBA[:2], LABELS)
    assert evaluation.per_label[0].au_prc == 1.0
    assert evaluation.per_label[2].au_prc is None


def test_unknown_true_label_is_a_dataset_error_naming_it() -> None:
    with pytest.raises(DatasetError, match=r"not labels of the model: zebra;"):
        compute_evaluation(["zebra"], PROBA[:1], LABELS)


def test_empty_evaluation_set_is_a_dataset_error() -> None:
    with pytest.raises(DatasetError, match="no images"):
        compute_evaluation([], np.zeros((0, 3)), LABELS)


def test_json_round_trip_keeps_every_field() -> None:
    evaluation = compute_evaluation(TRUTH, PROBA, LABELS, items=list("vwxyz"), source="unit")
    text = json.dumps(evaluation_to_json(evaluation))
    assert evaluation_from_json(json.loads(text)) == evaluation


def test_a_label_the_model_does_not_know_is_refused_in_the_users_names() -> None:
    probabilities = np.array([[0.9, 0.1]])
    with pytest.raises(DatasetError) as caught:
        compute_evaluation(
            ["BMW_1_Series_Convertible_2012"],
            probabilities,
            ["L_1_2series", "x_suv"],
            label_map={"L_1_2series": "1-2series", "x_suv": "x-suv"},
        )
    message = str(caught.value)
    assert "the model predicts 1-2series, x-suv" in message
    assert "L_1_2series" not in message
    assert "--label-map" in message
