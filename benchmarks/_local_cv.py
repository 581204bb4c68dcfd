"""Cross-validated macro-F1 of a local-backend preset on the 383 BMW photos.

``python -m benchmarks._local_cv PRESET GROUPING FOLDS [OUT.jsonl]`` (GROUPING ``series`` or
``models``): stratified k-fold over near-duplicate groups (``group_near_duplicates``, so
near-identical photos never sit on both sides); in each fold the held-out part is the test
split, never seen in training, and 10 % of the rest (stratified, grouped) is the validation
split the fine-tuning presets use for early stopping. Prints one JSON line per fold and one
for the pooled out-of-fold predictions, with the chance levels and the load average.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cars" / "stanford-bmw"
SERIES_TOML = Path(__file__).resolve().parent.parent / "examples" / "bmw-series.toml"


def dataset(grouping: str) -> Any:
    """The 383 photos labeled by series or by model, near-duplicates grouped."""
    from redditvision.labels import LabelMap, label_folders
    from redditvision.split import group_near_duplicates

    label_map = LabelMap.from_toml(SERIES_TOML) if grouping == "series" else None
    return group_near_duplicates(label_folders(DATA, label_map=label_map))


def chance(labels: list[str]) -> tuple[float, float]:
    """Expected macro-F1 of a guess at the label frequencies (1/k) and the majority share."""
    counts = {label: labels.count(label) for label in set(labels)}
    return 1 / len(counts), max(counts.values()) / len(labels)


def cross_validate(
    quality: str, grouping: str, folds: int, *, only: int | None = None
) -> list[dict[str, Any]]:
    """Run the cross-validation; return one row per fold and a pooled row."""
    import attrs
    import numpy as np
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedGroupKFold

    from redditvision.backends.local import LocalBackend
    from redditvision.models import MLUse

    data = dataset(grouping)
    images = list(data.images)
    y = np.array([image.label for image in images])
    groups = [image.group or str(image.path) for image in images]
    outer = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=0)
    rows: list[dict[str, Any]] = []
    truth: list[str] = []
    guess: list[str] = []
    guess_plain: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for fold, (rest, test) in enumerate(outer.split(np.zeros(len(y)), y, groups)):
            if only is not None and fold != only:
                continue
            inner = StratifiedGroupKFold(n_splits=10, shuffle=True, random_state=fold)
            rest_groups = [groups[i] for i in rest]
            train_part, val_part = next(inner.split(np.zeros(len(rest)), y[rest], rest_groups))
            uses = {int(rest[i]): MLUse.TRAINING for i in train_part}
            uses |= {int(rest[i]): MLUse.VALIDATION for i in val_part}
            uses |= {int(i): MLUse.TEST for i in test}
            split = attrs.evolve(
                data,
                images=tuple(attrs.evolve(im, ml_use=uses[i]) for i, im in enumerate(images)),
            )
            load = os.getloadavg()[0]
            started = time.perf_counter()
            backend = LocalBackend(
                quality=quality, cache_dir=Path(tmp) / "cache", model_dir=Path(tmp) / "models"
            )
            model = backend.train(split, out=Path(tmp) / f"fold{fold}")
            seconds = time.perf_counter() - started
            evaluation = backend.evaluate(model)
            predictor = backend.open_predictor(model)
            test_images = [images[i] for i in test]
            blobs = [im.path.read_bytes() for im in test_images]
            proba = predictor.probabilities(blobs)
            predicted = [predictor.labels[j] for j in proba.argmax(axis=1)]
            if predictor.tta:  # the same network without flip TTA, to weigh what TTA buys
                predictor.tta = False
                plain = predictor.probabilities(blobs)
                guess_plain += [predictor.labels[j] for j in plain.argmax(axis=1)]
            else:
                guess_plain += predicted
            predictor.close()
            truth += [im.label for im in test_images]
            guess += predicted
            meta = model.metadata
            row = {
                "quality": quality,
                "grouping": grouping,
                "fold": fold,
                "folds": folds,
                "train": meta["training_images"],
                "validation": meta["validation_images"],
                "test": len(test),
                "macro_f1": round(float(evaluation.macro_f1 or 0.0), 4),
                "accuracy": round(float(evaluation.accuracy or 0.0), 4),
                "seconds": round(seconds, 1),
                "epochs_run": meta["training"]["epochs_run"],
                "best_epoch": meta["training"]["best_epoch"],
                "stopped": meta["training"]["stopped"],
                "curve": meta["training"]["curve"],
                "load_before": round(load, 1),
                "load_after": round(os.getloadavg()[0], 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    f1_chance, majority = chance([str(v) for v in y])
    pooled = {
        "quality": quality,
        "grouping": grouping,
        "fold": "pooled",
        "folds": folds,
        "folds_run": len(rows),
        "macro_f1": round(float(f1_score(truth, guess, average="macro")), 4),
        "macro_f1_without_tta": round(float(f1_score(truth, guess_plain, average="macro")), 4),
        "accuracy": round(float(np.mean(np.array(truth) == np.array(guess))), 4),
        "mean_fold_macro_f1": round(float(np.mean([r["macro_f1"] for r in rows])), 4),
        "chance_macro_f1": round(f1_chance, 4),
        "chance_accuracy": round(majority, 4),
        "mean_seconds": round(float(np.mean([r["seconds"] for r in rows])), 1),
    }
    rows.append(pooled)
    print(json.dumps(pooled), flush=True)
    return rows


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("redditvision.backends.local").setLevel(logging.INFO)
    quality, grouping, folds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    only = int(sys.argv[4]) if len(sys.argv) > 4 else None
    cross_validate(quality, grouping, folds, only=only)
