"""The small AutoML of the local backend: scikit-learn heads chosen by cross-validation.

Every candidate is a scikit-learn pipeline over the extractor's features (standardized, then
a linear classifier), optionally trained on mirrored copies of the training images too, and
scored with or without test-time augmentation (the mean of the probabilities of an image and
its mirror). Each (candidate, TTA) pair is scored by macro-F1 over stratified k-fold
cross-validation on the training split, the images of one near-duplicate group always in
one fold; the best score wins, ties going to the simpler choice (earlier in the list). TTA
is chosen only when it beats the best plain head by :data:`TTA_MIN_GAIN` (it halves the
prediction throughput).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from redditvision.backends.local._deps import require

__all__ = [
    "TTA_MIN_GAIN",
    "Candidate",
    "SearchResult",
    "default_candidates",
    "fit_candidate",
    "search",
]

logger = logging.getLogger(__name__)

MAX_FOLDS = 5
"""Folds of the cross-validation (fewer when a label has fewer training images)."""

TTA_MIN_GAIN = 0.02
"""Cross-validated macro-F1 by which flip TTA must beat the best plain head to be chosen.

TTA runs the network twice per image (half the prediction throughput); a smaller gain on a
few hundred images is within the noise of the cross-validation (on the 383 BMW photos one
recipe's pooled figure moved by 0.01 to 0.02 between runs). With 0.01, ``fast`` kept TTA on
the benchmark's split for a gain of 0.0115 and predicted 34.5 images/s batched instead of
54 (measured 2026-12-03)."""


@attrs.frozen(kw_only=True)
class Candidate:
    """One head configuration of the search.

    Attributes:
        name: Short unique name, e.g. ``"logreg-C0.1+flip"``.
        head: ``"logreg"`` (multinomial logistic regression, lbfgs) or ``"svm"`` (linear
            SVM with sigmoid calibration, ``CalibratedClassifierCV``).
        c: Inverse regularization strength (scikit-learn's ``C``).
        train_flip: Also train on the mirrored view of every training image.
    """

    name: str
    head: str
    c: float
    train_flip: bool = False

    def as_json(self) -> dict[str, Any]:
        """Return the candidate as a JSON-compatible dict."""
        return {"name": self.name, "head": self.head, "C": self.c, "train_flip": self.train_flip}


def default_candidates() -> tuple[Candidate, ...]:
    """Return the default search space, in search order (most robust first).

    Logistic regression over C in {0.1, 0.01, 1} (features standardized, so C is on a
    common scale) and a sigmoid-calibrated linear SVM at C 0.001, all trained on the images
    and their mirrors, then logistic regression at C 0.1 on the images alone as a control:
    5 candidates, 10 scored rows (with and without TTA).

    Returns:
        The candidates, in search order.
    """
    return (
        Candidate(name="logreg-C0.1+flip", head="logreg", c=0.1, train_flip=True),
        Candidate(name="logreg-C0.01+flip", head="logreg", c=0.01, train_flip=True),
        Candidate(name="logreg-C1+flip", head="logreg", c=1.0, train_flip=True),
        Candidate(name="svm-C0.001+flip", head="svm", c=0.001, train_flip=True),
        Candidate(name="logreg-C0.1", head="logreg", c=0.1, train_flip=False),
    )


@attrs.frozen(kw_only=True)
class SearchResult:
    """What the search chose, and the table it chose from.

    Attributes:
        candidate: The winning head configuration.
        tta: Whether test-time augmentation (mirror) is used at prediction.
        cv_macro_f1: The winner's cross-validated macro-F1.
        cv_accuracy: The winner's cross-validated accuracy.
        folds: Number of cross-validation folds.
        table: One row per (candidate, TTA) scored: name, head, C, train_flip, tta,
            cv_macro_f1, cv_accuracy, seconds.
        stopped_early: True when the time limit cut the search short.
        seconds: Wall-clock time of the search.
    """

    candidate: Candidate
    tta: bool
    cv_macro_f1: float
    cv_accuracy: float
    folds: int
    table: tuple[dict[str, Any], ...]
    stopped_early: bool
    seconds: float


def build_head(candidate: Candidate, *, min_per_label: int) -> Any:
    """Build the unfitted scikit-learn pipeline of a candidate.

    Args:
        candidate: The configuration.
        min_per_label: Fewest training images of any label in the data it will be fit on
            (the SVM's calibration uses ``min(3, min_per_label)`` internal folds).

    Returns:
        A ``sklearn.pipeline.Pipeline`` (``StandardScaler`` then the classifier).

    Raises:
        ValueError: Unknown head.
    """
    pipeline = require("sklearn.pipeline")
    preprocessing = require("sklearn.preprocessing")
    linear = require("sklearn.linear_model")
    if candidate.head == "logreg":
        classifier = linear.LogisticRegression(C=candidate.c, max_iter=2000)
    elif candidate.head == "svm":
        svm = require("sklearn.svm")
        calibration = require("sklearn.calibration")
        classifier = calibration.CalibratedClassifierCV(
            svm.LinearSVC(C=candidate.c, max_iter=5000),
            method="sigmoid",
            cv=max(2, min(3, min_per_label)),
        )
    else:
        raise ValueError(f"unknown head {candidate.head!r}")
    return pipeline.Pipeline(
        [("scale", preprocessing.StandardScaler()), ("classifier", classifier)]
    )


def _usable(candidate: Candidate, min_per_label: int) -> bool:
    # A calibrated SVM needs 2 images of every label in each calibration fold's training part.
    return candidate.head != "svm" or min_per_label >= 2


def _min_count(y: NDArray[np.int64], n_labels: int) -> int:
    counts = np.bincount(y, minlength=n_labels)
    return int(counts.min())


def fit_candidate(
    candidate: Candidate,
    features: NDArray[np.float32],
    mirrored: NDArray[np.float32] | None,
    y: NDArray[np.int64],
    n_labels: int,
) -> Any:
    """Fit a candidate's pipeline on training features.

    Args:
        candidate: The configuration.
        features: Shape (n, d), the plain view.
        mirrored: Shape (n, d), the mirrored view, required when ``candidate.train_flip``.
        y: Label indices, shape (n,).
        n_labels: Number of labels (columns of ``predict_proba``).

    Returns:
        The fitted pipeline.
    """
    x_train, y_train = features, y
    if candidate.train_flip and mirrored is not None:
        x_train = np.concatenate([features, mirrored])
        y_train = np.concatenate([y, y])
    model = build_head(candidate, min_per_label=_min_count(y_train, n_labels))
    exceptions = require("sklearn.exceptions")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", exceptions.ConvergenceWarning)
        model.fit(x_train, y_train)
    return model


def probabilities(model: Any, features: NDArray[np.float32], n_labels: int) -> NDArray[np.float64]:
    """Return ``predict_proba`` with one column per label, even for labels unseen in a fold.

    Args:
        model: A fitted pipeline.
        features: Shape (n, d).
        n_labels: Number of labels.

    Returns:
        Shape (n, n_labels), rows summing to 1.
    """
    out = np.zeros((features.shape[0], n_labels), dtype=np.float64)
    if features.shape[0] == 0:
        return out
    out[:, np.asarray(model.classes_, dtype=np.int64)] = model.predict_proba(features)
    return out


def _folds(y: NDArray[np.int64], groups: Sequence[str] | None, n_labels: int) -> list[Any]:
    model_selection = require("sklearn.model_selection")
    k = max(2, min(MAX_FOLDS, _min_count(y, n_labels)))
    dummy = np.zeros((len(y), 1))
    if groups is not None and len(set(groups)) < len(groups):
        splitter = model_selection.StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=0)
        return list(splitter.split(dummy, y, groups))
    splitter = model_selection.StratifiedKFold(n_splits=k, shuffle=True, random_state=0)
    return list(splitter.split(dummy, y))


def search(
    features: NDArray[np.float32],
    mirrored: NDArray[np.float32],
    y: NDArray[np.int64],
    n_labels: int,
    *,
    groups: Sequence[str] | None = None,
    candidates: Sequence[Candidate] | None = None,
    time_limit_s: float | None = None,
) -> SearchResult:
    """Score every candidate by cross-validated macro-F1 and pick the best.

    Args:
        features: Plain-view training features, shape (n, d).
        mirrored: Mirrored-view features of the same images, shape (n, d).
        y: Label indices in ``[0, n_labels)``, shape (n,); every label needs 2 images.
        n_labels: Number of labels.
        groups: Near-duplicate group of each image (kept within one fold), or None.
        candidates: The search space (default :func:`default_candidates`).
        time_limit_s: Stop starting new candidates after this many seconds (the first
            candidate always runs), or None for no limit.

    Returns:
        The winner and the table.
    """
    metrics = require("sklearn.metrics")
    started = time.monotonic()
    space = tuple(candidates or default_candidates())
    folds = _folds(y, groups, n_labels)
    table: list[dict[str, Any]] = []
    best: dict[bool, tuple[float, float, Candidate]] = {}
    stopped = False
    for candidate in space:
        out_of_time = time_limit_s is not None and time.monotonic() - started > time_limit_s
        if best and out_of_time:
            stopped = True
            break
        if not _usable(candidate, _min_count(y, n_labels)):
            continue
        began = time.monotonic()
        plain = np.zeros((len(y), n_labels))
        tta = np.zeros((len(y), n_labels))
        for train, test in folds:
            model = fit_candidate(candidate, features[train], mirrored[train], y[train], n_labels)
            plain[test] = probabilities(model, features[test], n_labels)
            tta[test] = (plain[test] + probabilities(model, mirrored[test], n_labels)) / 2
        seconds = time.monotonic() - began
        for use_tta, proba in ((False, plain), (True, tta)):
            predicted = proba.argmax(axis=1)
            f1 = float(
                metrics.f1_score(
                    y, predicted, labels=list(range(n_labels)), average="macro", zero_division=0
                )
            )
            accuracy = float(metrics.accuracy_score(y, predicted))
            table.append(
                {
                    **candidate.as_json(),
                    "tta": use_tta,
                    "cv_macro_f1": round(f1, 6),
                    "cv_accuracy": round(accuracy, 6),
                    "seconds": round(seconds, 3),
                }
            )
            if use_tta not in best or f1 > best[use_tta][0]:
                best[use_tta] = (f1, accuracy, candidate)
        logger.info(
            "candidate %s: cv macro-F1 %.4f (TTA %.4f) in %.1f s",
            candidate.name,
            table[-2]["cv_macro_f1"],
            table[-1]["cv_macro_f1"],
            seconds,
        )
    assert best
    # Flip TTA doubles the cost of every prediction: it is kept only when it earns that.
    use_tta = best[True][0] >= best[False][0] + TTA_MIN_GAIN
    f1, accuracy, winner = best[use_tta]
    return SearchResult(
        candidate=winner,
        tta=use_tta,
        cv_macro_f1=f1,
        cv_accuracy=accuracy,
        folds=len(folds),
        table=tuple(table),
        stopped_early=stopped,
        seconds=time.monotonic() - started,
    )
