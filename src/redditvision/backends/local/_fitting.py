"""The two training paths of ``LocalBackend``: frozen features + head search, and LP-FT."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from redditvision.backends.local._backbones import (
    FineTunedExtractor,
    decode_batch,
    default_device,
)
from redditvision.backends.local._deps import require
from redditvision.backends.local._extractor import FeatureExtractor, default_num_threads
from redditvision.backends.local._finetune import (
    CheckpointStore,
    EventCallback,
    TrainingEvent,
    base_size,
    fine_tune,
)
from redditvision.backends.local._lpft import fold_linear, linear_head
from redditvision.backends.local._presets import Preset
from redditvision.backends.local._search import SearchResult, fit_candidate, probabilities
from redditvision.errors import TrainingError

__all__ = ["FitMixin", "Fitted"]

import logging

logger = logging.getLogger(__name__)


class Fitted:
    """What a training path hands to the common end of :meth:`LocalBackend.train`."""

    def __init__(
        self,
        *,
        extractor: FeatureExtractor,
        head: Any,
        tta: bool,
        metadata: dict[str, Any],
        manifest: dict[str, Any],
        weights: dict[str, Any] | None,
        use_cache: bool,
    ) -> None:
        self.extractor = extractor
        self.head = head
        self.tta = tta
        self.metadata = metadata
        self.manifest = manifest
        self.weights = weights
        self.use_cache = use_cache


class FitMixin:
    """Training paths shared by :class:`~redditvision.backends.local.LocalBackend`."""

    preset: Preset
    quality: str
    seed: int
    device: str | None
    extractor: FeatureExtractor
    checkpoint_dir: Path
    on_event: EventCallback | None
    progress: Any

    def _say(self, kind: str, message: str, **values: Any) -> None:
        logger.info("%s", message)
        if self.on_event is not None:
            epochs = self.preset.epochs
            self.on_event(
                TrainingEvent(
                    kind=kind,
                    epoch=values.pop("epoch", 0),
                    epochs=epochs,
                    message=message,
                    **values,
                )
            )

    def _search_metadata(self, result: SearchResult) -> dict[str, Any]:
        return {
            "candidate": result.candidate.as_json(),
            "tta": result.tta,
            "cv_macro_f1": result.cv_macro_f1,
            "cv_accuracy": result.cv_accuracy,
            "cv_folds": result.folds,
            "search": list(result.table),
            "search_stopped_early": result.stopped_early,
            "search_seconds": round(result.seconds, 3),
        }

    def _fit_frozen(
        self,
        result: SearchResult,
        features: dict[str, NDArray[np.float32]],
        y_all: NDArray[np.int64],
        n_train: int,
        n_labels: int,
        started: float,
        time_limit: float | None,
    ) -> Fitted:
        plain, mirrored = features["none"], features["hflip"]
        try:
            validation = None
            if n_train < len(y_all):
                head = fit_candidate(
                    result.candidate,
                    plain[:n_train],
                    mirrored[:n_train],
                    y_all[:n_train],
                    n_labels,
                )
                validation = self._score(
                    head,
                    result.tta,
                    plain[n_train:],
                    mirrored[n_train:],
                    y_all[n_train:],
                    n_labels,
                )
            head = fit_candidate(result.candidate, plain, mirrored, y_all, n_labels)
        except ValueError as exc:
            raise TrainingError(f"fitting the head failed: {exc}") from exc
        reached = bool(result.stopped_early)
        if reached:
            self._say(
                "stopped",
                "time limit reached: the head search stopped early, keeping the best head so far",
            )
        metadata = self._search_metadata(result)
        metadata |= {
            "validation": validation,
            "time_limit_reached": reached,
            "training": {
                "preset": self.preset.as_json(),
                "quality": self.quality,
                "backbone": self.extractor.id,
                "image_size": getattr(self.extractor, "image_size", None),
                "augmentation": self.preset.augmentation(),
                "epochs_planned": 0,
                "epochs_run": 0,
                "best_epoch": 0,
                "stopped": "time_limit" if reached else "completed",
                "time_limit_s": time_limit,
                "curve": [],
                "seconds": round(time.monotonic() - started, 3),
            },
        }
        manifest = {
            "extractor": {
                "id": self.extractor.id,
                "version": self.extractor.version,
                "dim": self.extractor.dim,
                "preprocessing": self.extractor.preprocessing,
            },
            "head": {"candidate": result.candidate.as_json(), "tta": result.tta},
        }
        return Fitted(
            extractor=self.extractor,
            head=head,
            tta=result.tta,
            metadata=metadata,
            manifest=manifest,
            weights=None,
            use_cache=True,
        )

    def _checkpoints(self, fingerprint: str, labels: Sequence[str]) -> CheckpointStore:
        preset = self.preset
        key = hashlib.sha256(
            json.dumps(
                [fingerprint, list(labels), preset.as_json(), self.seed], sort_keys=True
            ).encode()
        ).hexdigest()
        return CheckpointStore(self.checkpoint_dir / key[:24], key=key)

    def _fit_finetuned(
        self,
        extractor: FineTunedExtractor,
        result: SearchResult,
        features: dict[str, NDArray[np.float32]],
        blobs: Sequence[bytes],
        y_all: NDArray[np.int64],
        n_train: int,
        n_labels: int,
        *,
        started: float,
        time_limit: float | None,
        key: str,
        labels: Sequence[str],
    ) -> Fitted:
        torch = require("torch")
        preset = self.preset
        torch.set_num_threads(default_num_threads())
        device = self.device or default_device()
        lp = fit_candidate(
            result.candidate,
            features["none"][:n_train],
            features["hflip"][:n_train],
            y_all[:n_train],
            n_labels,
        )
        weight, bias = fold_linear(lp, n_labels)
        backbone = extractor.backbone
        size = backbone.image_size
        train_pixels = decode_batch(blobs[:n_train], base_size(size))
        val_pixels = decode_batch(blobs[n_train:], size) if n_train < len(blobs) else None
        deadline = None if time_limit is None else started + time_limit
        try:
            tuned = fine_tune(
                backbone,
                preset,
                train_pixels=train_pixels,
                y_train=y_all[:n_train],
                val_pixels=val_pixels,
                y_val=y_all[n_train:] if val_pixels is not None else None,
                head_init=(weight, bias),
                n_labels=n_labels,
                seed=self.seed,
                deadline=deadline,
                checkpoints=self._checkpoints(key, labels),
                device=device,
                on_event=self.on_event,
                progress=self.progress,
            )
        except (RuntimeError, ValueError) as exc:
            raise TrainingError(f"fine-tuning {preset.backbone} failed: {exc}") from exc
        backbone.module.load_state_dict(tuned.backbone_state)
        backbone.module.to(device).eval()
        head = linear_head(tuned.weight, tuned.bias)
        final = FineTunedExtractor(
            backbone,
            version=f"finetuned-{key[:16]}",
            device=device,
            num_threads=getattr(self.extractor, "num_threads", None),
        )
        validation = None
        if val_pixels is not None:
            views = final.extract_views(blobs[n_train:])
            plain, mirrored = views["none"], views["hflip"]
            validation = self._score(head, preset.tta, plain, mirrored, y_all[n_train:], n_labels)
        reached = tuned.stopped == "time_limit"
        metadata = self._search_metadata(result)
        metadata["candidate"] = {
            "name": f"fine-tuned {backbone.name} at {size} px (LP: {result.candidate.name})",
            "head": "linear",
        }
        metadata |= {
            "tta": preset.tta,
            "validation": validation,
            "time_limit_reached": reached,
            "training": {
                "preset": preset.as_json(),
                "quality": self.quality,
                "backbone": backbone.name,
                "image_size": size,
                "augmentation": preset.augmentation(),
                "epochs_planned": preset.epochs,
                "epochs_run": tuned.epochs_run,
                "best_epoch": tuned.best_epoch,
                "stopped": tuned.stopped,
                "resumed_from_epoch": tuned.resumed_from,
                "time_limit_s": time_limit,
                "fine_tune_seconds": round(tuned.seconds, 3),
                "device": device,
                "curve": list(tuned.curve),
            },
        }
        manifest = {
            "extractor": {
                "id": backbone.name,
                "version": "finetuned",
                "dim": backbone.dim,
                "preprocessing": final.preprocessing,
            },
            "network": {**backbone.describe(), "backbone": backbone.name},
            "head": {"candidate": metadata["candidate"], "tta": preset.tta},
        }
        return Fitted(
            extractor=final,
            head=head,
            tta=preset.tta,
            metadata=metadata,
            manifest=manifest,
            weights=dict(backbone.module.state_dict()),
            use_cache=False,
        )

    @staticmethod
    def _score(
        head: Any,
        tta: bool,
        plain: NDArray[np.float32],
        mirrored: NDArray[np.float32],
        y: NDArray[np.int64],
        n_labels: int,
    ) -> dict[str, float]:
        from sklearn.metrics import accuracy_score, f1_score

        proba = probabilities(head, plain, n_labels)
        if tta:
            proba = (proba + probabilities(head, mirrored, n_labels)) / 2
        predicted = proba.argmax(axis=1)
        return {
            "macro_f1": float(
                f1_score(
                    y, predicted, labels=list(range(n_labels)), average="macro", zero_division=0
                )
            ),
            "accuracy": float(accuracy_score(y, predicted)),
            "images": len(y),
        }
