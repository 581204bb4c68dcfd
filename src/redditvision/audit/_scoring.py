"""Label-error and outlier scores from image embeddings, with cleanlab.

Two stages, as a careful data scientist would run them:

1. **Outliers** (off-domain images): cleanlab's ``OutOfDistribution`` scores every image by
   its average cosine distance to its k nearest neighbours in embedding space (Kuan and
   Mueller, "Back to the Basics: Revisiting Out-of-Distribution Detection Baselines", 2022).
   An image is flagged when its score lies more than :data:`OUTLIER_MADS` median absolute
   deviations below the median: a robust threshold that needs no labeled outliers.
2. **Label errors**: out-of-fold predicted probabilities from a logistic regression on the
   embeddings of the images that are not outliers (outliers would teach the model noise),
   ranked by cleanlab's ``get_label_quality_scores`` (self-confidence: the out-of-fold
   probability of the given label; Northcutt, Jiang and Chuang, "Confident Learning", JAIR
   2021). ``find_label_issues`` decides which are flagged.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
from numpy.typing import NDArray

from redditvision.errors import DatasetError

__all__ = ["OUTLIER_MADS", "Scores", "score_embeddings"]

OUTLIER_MADS = 4.0
"""Median absolute deviations below the median outlier score at which an image is flagged."""

FOLDS = 5
"""Cross-validation folds for the out-of-fold probabilities (fewer when a label has fewer)."""

REGULARIZATION_C = 4.0
"""Inverse L2 strength of the logistic regression on L2-normalized embeddings."""


@attrs.frozen(kw_only=True)
class Scores:
    """Per-image scores, in the order of the embeddings given.

    Attributes:
        outlier: cleanlab outlier score in ``(0, 1]``; lower is more unusual.
        outlier_flag: Whether each image is flagged as an outlier.
        outlier_severity: Severity in ``[0, 1]``; 0.5 at the flagging threshold.
        label_quality: Out-of-fold probability of the given label (1.0 for outliers,
            which are not scored).
        label_flag: Whether cleanlab flags the label as an issue.
        suggested: Index of the most probable label out of fold (the given one for
            outliers).
        suggested_probability: Its out-of-fold probability (1.0 for outliers).
        folds: Folds used.
    """

    outlier: NDArray[np.float64]
    outlier_flag: NDArray[np.bool_]
    outlier_severity: NDArray[np.float64]
    label_quality: NDArray[np.float64]
    label_flag: NDArray[np.bool_]
    suggested: NDArray[np.int64]
    suggested_probability: NDArray[np.float64]
    folds: int


def _outliers(
    features: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.float64]]:
    from cleanlab.outlier import OutOfDistribution

    n = features.shape[0]
    k = max(1, min(10, n - 1))
    scores = np.asarray(
        OutOfDistribution(params={"k": k}).fit_score(features=features, verbose=False),
        dtype=np.float64,
    )
    median = float(np.median(scores))
    mad = float(np.median(np.abs(scores - median))) or 1e-9
    threshold = median - OUTLIER_MADS * mad
    flag = scores < threshold
    # 0 at the median, 0.5 at the threshold, 1 at twice the distance.
    severity = np.clip((median - scores) / (2 * OUTLIER_MADS * mad), 0.0, 1.0)
    return scores, flag, severity


def score_embeddings(
    features: NDArray[np.float32], labels: Sequence[int], *, n_labels: int, seed: int = 0
) -> Scores:
    """Score every image for being an outlier and for carrying a wrong label.

    Args:
        features: Embeddings, shape ``(n, d)``; rows are L2-normalized here.
        labels: The given label index of each image, ``0 <= label < n_labels``.
        n_labels: Number of labels.
        seed: Seed of the cross-validation shuffle (the same seed gives the same scores).

    Returns:
        The scores.

    Raises:
        DatasetError: Fewer than two labels with at least 2 images each once outliers are
            set aside (cross-validation needs 2 per label). Images of smaller labels are
            left unscored for label errors (quality 1.0).
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms == 0, 1.0, norms)
    y = np.asarray(labels, dtype=np.int64)
    n = x.shape[0]
    if n_labels < 2:
        raise DatasetError("the audit needs at least two labels to look for label errors")
    outlier, flag, severity = _outliers(x)
    # Labels with fewer than 2 images (besides outliers) cannot be cross-validated: their
    # images are left unscored for label errors rather than sinking the whole audit.
    counts = np.bincount(y[~flag], minlength=n_labels)
    scorable = counts >= 2
    keep = np.flatnonzero(~flag & scorable[y])
    used = np.flatnonzero(scorable)
    if used.size < 2:
        raise DatasetError(
            "the audit needs two labels with at least 2 images each (besides outliers) to "
            f"look for label errors; it found {used.size}"
        )
    folds = max(2, min(FOLDS, int(counts[used].min())))
    # Fit on the scorable labels, then spread the probabilities back to all n_labels.
    remap = {int(label): i for i, label in enumerate(used)}
    y_keep = np.array([remap[int(label)] for label in y[keep]], dtype=np.int64)
    model = LogisticRegression(C=REGULARIZATION_C, max_iter=3000)
    probs_used = cross_val_predict(
        model,
        x[keep],
        y_keep,
        cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
        method="predict_proba",
    )
    quality = np.ones(n, dtype=np.float64)
    label_flag = np.zeros(n, dtype=bool)
    suggested = y.copy()
    quality[keep] = get_label_quality_scores(y_keep, probs_used)
    label_flag[keep] = find_label_issues(y_keep, probs_used)
    suggested[keep] = used[np.argmax(probs_used, axis=1)]
    suggested_probability = np.ones(n, dtype=np.float64)
    suggested_probability[keep] = probs_used.max(axis=1)
    return Scores(
        outlier=outlier,
        outlier_flag=flag,
        outlier_severity=severity,
        label_quality=quality,
        label_flag=label_flag,
        suggested=suggested,
        suggested_probability=suggested_probability,
        folds=folds,
    )
