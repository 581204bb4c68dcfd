"""LP-FT training of the fine-tuning presets: linear probe on frozen features, then fine-tune.

The linear probe is the frozen-feature head search restricted to logistic regression (its
cross-validated table is kept, as for ``fast``); the winner's standardization is folded
into a linear layer (``W' = W / scale``, ``b' = b - W' . mean``) that the network then
trains end to end (:func:`~redditvision.backends.local._finetune.fine_tune`). The trained
linear layer is stored back as a scikit-learn ``LogisticRegression`` (skops), so every
model folder's head has the same form and ``predict_proba`` is the network's softmax.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from redditvision.backends.local._deps import require
from redditvision.backends.local._search import Candidate

__all__ = ["LP_CANDIDATES", "fold_linear", "linear_head"]

LP_CANDIDATES: tuple[Candidate, ...] = (
    Candidate(name="logreg-C0.1+flip", head="logreg", c=0.1, train_flip=True),
    Candidate(name="logreg-C0.01+flip", head="logreg", c=0.01, train_flip=True),
    Candidate(name="logreg-C1+flip", head="logreg", c=1.0, train_flip=True),
)
"""The linear probes searched before fine-tuning (logistic regression only: foldable)."""


def fold_linear(pipeline: Any, n_labels: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Turn a fitted ``StandardScaler`` + ``LogisticRegression`` pipeline into (W, b).

    Args:
        pipeline: The fitted pipeline (steps ``scale`` and ``classifier``).
        n_labels: Number of labels (a binary model's single row becomes two).

    Returns:
        (weight (n_labels, dim), bias (n_labels,)) with ``softmax(W x + b)`` equal to the
        pipeline's ``predict_proba(x)``.
    """
    scaler = pipeline.named_steps["scale"]
    classifier = pipeline.named_steps["classifier"]
    coef = np.asarray(classifier.coef_, dtype=np.float64)
    intercept = np.asarray(classifier.intercept_, dtype=np.float64)
    if coef.shape[0] == 1:  # binary: P(1) = sigmoid(z) = softmax([-z/2, z/2])[1]
        coef = np.vstack([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    weight = np.zeros((n_labels, coef.shape[1]))
    bias = np.full(n_labels, -30.0)  # a label absent from the probe starts unlikely
    classes = np.asarray(classifier.classes_, dtype=np.int64)
    weight[classes] = coef / scaler.scale_
    bias[classes] = intercept - weight[classes] @ scaler.mean_
    return weight.astype(np.float32), bias.astype(np.float32)


def linear_head(weight: NDArray[np.float32], bias: NDArray[np.float32]) -> Any:
    """A fitted ``LogisticRegression`` whose ``predict_proba`` is ``softmax(W x + b)``.

    Args:
        weight: Shape (n_labels, dim), n_labels >= 2.
        bias: Shape (n_labels,).

    Returns:
        The classifier (classes ``0 .. n_labels - 1``), storable with skops.
    """
    linear_model = require("sklearn.linear_model")
    weight64 = np.asarray(weight, dtype=np.float64)
    bias64 = np.asarray(bias, dtype=np.float64)
    head = linear_model.LogisticRegression()
    if weight64.shape[0] == 2:
        head.coef_ = (weight64[1] - weight64[0])[None, :]
        head.intercept_ = np.array([bias64[1] - bias64[0]])
    else:
        head.coef_ = weight64
        head.intercept_ = bias64
    head.classes_ = np.arange(weight64.shape[0])
    head.n_features_in_ = weight64.shape[1]
    head.n_iter_ = np.array([0], dtype=np.int32)
    return head
