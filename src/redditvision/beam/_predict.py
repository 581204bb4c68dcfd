# mypy: disable-error-code="no-untyped-call"
# (Apache Beam ships py.typed, but most of its transforms are untyped functions.)
"""Beam transforms that predict: :class:`ClassifyImages` and :class:`GenericLabels`.

Re-exported by :mod:`redditvision.beam.transforms`; backends are built on the workers
through the backend registry (:func:`redditvision.backends.build_backend`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from redditvision.beam._common import DEAD_LETTER, MAIN, METRICS_NAMESPACE, count, letter
from redditvision.beam._compat import require_beam
from redditvision.beam.elements import DeadLetter, ImageResult
from redditvision.labelers import ImageLabels
from redditvision.models import TrainedModel

if TYPE_CHECKING:
    from redditvision.classify import Classifier, PredictionBackend
    from redditvision.labelers import GenericLabeler

require_beam()

import apache_beam as beam  # noqa: E402  (after the guard, which names the extra)
from apache_beam import pvalue  # noqa: E402
from apache_beam.io.filesystems import FileSystems  # noqa: E402
from apache_beam.metrics.metric import Metrics  # noqa: E402

__all__ = [
    "CLOUD_VISION_BATCH",
    "LABELERS",
    "ClassifyImages",
    "GenericLabels",
    "cloud_vision_labeler",
    "imagenet_labeler",
    "local_backend",
    "vertex_backend",
]


# --------------------------------------------------------------------------- classify


def _read_uri(uri: str) -> bytes:
    with contextlib.closing(FileSystems.open(uri)) as handle:
        data: bytes = handle.read()
    return data


def _local_model_dir(model: str, tmp: str) -> str:
    """Return a local folder for a model folder given as a local path or ``gs://`` prefix."""
    if "://" not in model:
        return model
    prefix = model.rstrip("/") + "/"
    target = Path(tmp) / "model"
    (match,) = FileSystems.match([prefix + "**"])
    for meta in match.metadata_list:
        relative = meta.path[len(prefix) :]
        dest = target / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(FileSystems.open(meta.path)) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out, length=1 << 20)
    return str(target)


class _ClassifyFn(beam.DoFn):
    """Predict batches of pictures with one :class:`Classifier` per worker."""

    def __init__(
        self,
        model: TrainedModel | str,
        *,
        backend_factory: Callable[[], PredictionBackend] | None,
        confidence_threshold: float,
        max_predictions: int | None,
    ) -> None:
        super().__init__()
        self._model = model
        self._backend_factory = backend_factory
        self._threshold = confidence_threshold
        self._max = max_predictions
        self._classifier: Classifier | None = None
        self._tmp: str | None = None

    def setup(self) -> None:
        from redditvision.backends import folder_backend, get_backend
        from redditvision.classify import Classifier

        model = self._model
        if isinstance(model, str):
            model = TrainedModel(backend=folder_backend(), resource=model)
        if get_backend(model.backend).model_kind == "folder" and "://" in model.resource:
            self._tmp = tempfile.mkdtemp(prefix="redditvision-model-")
            model = attrs.evolve(model, resource=_local_model_dir(model.resource, self._tmp))
        backend = self._backend_factory() if self._backend_factory is not None else None
        # Workers never deploy: N workers would each deploy (and undeploy on teardown).
        self._classifier = Classifier(model, backend=backend, deploy=False)
        self._classifier.predictor  # noqa: B018 - load the model once, here, per worker

    def process(self, batch: Sequence[ImageResult]) -> Iterator[Any]:
        assert self._classifier is not None  # set in setup
        Metrics.distribution(METRICS_NAMESPACE, "classify_batch_size").update(len(batch))
        readable: list[tuple[ImageResult, bytes]] = []
        for result in batch:
            try:
                readable.append((result, _read_uri(result.uri)))
            except Exception as exc:  # noqa: BLE001 - one unreadable file is its own failure
                yield letter("classify", result.sha256, exc)
        if not readable:
            return
        try:
            answers = self._classifier.predict_many(
                [data for _, data in readable],
                confidence_threshold=self._threshold,
                max_predictions=self._max,
            )
        except Exception:  # noqa: BLE001 - find the culprit one image at a time
            yield from self._one_by_one(readable)
            return
        count("images_classified", len(readable))
        for (result, _), predictions in zip(readable, answers, strict=True):
            yield attrs.evolve(result, predictions=tuple(predictions))

    def _one_by_one(self, readable: list[tuple[ImageResult, bytes]]) -> Iterator[Any]:
        assert self._classifier is not None
        for result, data in readable:
            try:
                predictions = self._classifier.predict(
                    data, confidence_threshold=self._threshold, max_predictions=self._max
                )
            except Exception as exc:  # noqa: BLE001 - one bad image never sinks the bundle
                yield letter("classify", result.sha256, exc)
            else:
                count("images_classified")
                yield attrs.evolve(result, predictions=tuple(predictions))

    def teardown(self) -> None:
        if self._classifier is not None:
            self._classifier.close()
            self._classifier = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


class ClassifyImages(beam.PTransform[Any, Any]):
    """Predict each distinct picture's labels with a trained model, in batches.

    Wraps :meth:`redditvision.classify.Classifier.predict_many`. The model is loaded once
    per worker in ``DoFn.setup``: a local model folder (a path, or a ``gs://`` prefix that
    is copied to a worker-local folder first), or any backend's
    :class:`~redditvision.models.TrainedModel` with ``backend_factory`` building that
    backend on the worker (e.g. ``functools.partial(vertex_backend, project=...)`` for a
    Vertex AI endpoint; the model must already be deployed, e.g. with ``redditvision
    deploy``, as workers never deploy). Pictures are batched with ``BatchElements`` (1 to
    ``batch_size``). When a batch fails, its pictures are retried one by one so only the
    culprit lands in the dead-letter output.

    Args:
        model: Local model folder (path or ``gs://`` prefix) or a model handle.
        backend_factory: Picklable callable building the prediction backend on a worker;
            None for the local backend.
        batch_size: Most pictures per prediction call (default 32, the Classifier's own).
        min_batch_size: Fewest pictures per call unless a bundle ends first (default 8,
            the local extractor's batch). ``BatchElements`` starts at this size and grows
            by timing; from 1, the DirectRunner's small bundles gave batches of 1.8
            pictures on average.
        confidence_threshold: Drop predictions below this (default 0.0, as Vertex AI).
        max_predictions: Keep at most this many per picture (default all).

    Returns:
        From ``expand``: ``(results, dead_letter)``; results have ``predictions`` set.
    """

    def __init__(
        self,
        model: TrainedModel | str | os.PathLike[str],
        *,
        backend_factory: Callable[[], PredictionBackend] | None = None,
        batch_size: int = 32,
        min_batch_size: int = 8,
        confidence_threshold: float = 0.0,
        max_predictions: int | None = None,
    ) -> None:
        super().__init__()
        self.min_batch_size = min_batch_size
        self.model: TrainedModel | str = (
            model if isinstance(model, TrainedModel) else os.fspath(model)
        )
        self.backend_factory = backend_factory
        self.batch_size = batch_size
        self.confidence_threshold = confidence_threshold
        self.max_predictions = max_predictions

    def expand(self, results: Any) -> tuple[Any, Any]:
        """Return ``(results, dead_letter)`` for a PCollection of pictures."""
        out = (
            results
            | "BatchForModel"
            >> beam.BatchElements(
                min_batch_size=min(self.min_batch_size, self.batch_size),
                max_batch_size=self.batch_size,
            )
            | "Predict"
            >> beam.ParDo(
                _ClassifyFn(
                    self.model,
                    backend_factory=self.backend_factory,
                    confidence_threshold=self.confidence_threshold,
                    max_predictions=self.max_predictions,
                )
            ).with_outputs(DEAD_LETTER, main=MAIN)
        )
        return out[MAIN], out[DEAD_LETTER]


# --------------------------------------------------------------------------- generic labels

CLOUD_VISION_BATCH = 16
"""Images per Cloud Vision ``batch_annotate_images`` request (the API's limit)."""


def imagenet_labeler(*, num_threads: int | None = None) -> GenericLabeler:
    """Build the offline ImageNet labeler of the local backend (needs ``[local]``).

    Args:
        num_threads: Torch threads per worker process (see :func:`local_backend`); None
            for one per core.

    Returns:
        A :class:`~redditvision.backends.local.ImageNetLabeler`.
    """
    from redditvision.backends.local import EfficientNetLite0Extractor, ImageNetLabeler

    labeler: GenericLabeler = ImageNetLabeler(
        extractor=EfficientNetLite0Extractor(num_threads=num_threads)
    )
    return labeler


def cloud_vision_labeler() -> GenericLabeler:
    """Build a Cloud Vision labeler from Application Default Credentials.

    Returns:
        A :class:`~redditvision.labelers.CloudVisionLabeler` built with ``from_env()``.
    """
    from redditvision.labelers import CloudVisionLabeler

    labeler: GenericLabeler = CloudVisionLabeler.from_env()
    return labeler


LABELERS: dict[str, Callable[[], GenericLabeler]] = {
    "imagenet": imagenet_labeler,
    "cloud_vision": cloud_vision_labeler,
}
"""Labeler names the entry point accepts, and the factories that build them on workers."""


class _LabelFn(beam.DoFn):
    def __init__(self, factory: Callable[[], GenericLabeler], max_results: int) -> None:
        super().__init__()
        self._factory = factory
        self._max_results = max_results
        self._labeler: GenericLabeler | None = None

    def setup(self) -> None:
        self._labeler = self._factory()

    def process(self, batch: Sequence[ImageResult]) -> Iterator[Any]:
        assert self._labeler is not None  # set in setup
        readable: list[tuple[ImageResult, bytes]] = []
        for result in batch:
            try:
                readable.append((result, _read_uri(result.uri)))
            except Exception as exc:  # noqa: BLE001 - one unreadable file is its own failure
                yield letter("label", result.sha256, exc)
        if not readable:
            return
        try:
            answers = self._labeler.label(
                [data for _, data in readable], max_results=self._max_results
            )
        except Exception as exc:  # noqa: BLE001 - the whole request failed: each is a letter
            for result, _ in readable:
                yield letter("label", result.sha256, exc)
                yield attrs.evolve(result, generic=ImageLabels(error=str(exc)))
            return
        count("images_labeled", len(readable))
        for (result, _), labels in zip(readable, answers, strict=True):
            if labels.error is not None:
                yield pvalue.TaggedOutput(
                    DEAD_LETTER,
                    DeadLetter(
                        step="label", key=result.sha256, reason="labeler", detail=labels.error
                    ),
                )
            yield attrs.evolve(result, generic=labels)

    def teardown(self) -> None:
        if self._labeler is not None:
            self._labeler.close()
            self._labeler = None


class GenericLabels(beam.PTransform[Any, Any]):
    """Add generic labels (ImageNet offline, or Cloud Vision) to each distinct picture.

    Wraps :meth:`redditvision.labelers.GenericLabeler.label`, one labeler per worker, in
    batches of up to 16 pictures (Cloud Vision's ``batch_annotate_images`` limit). A picture
    the labeler could not label keeps flowing (``generic.error`` set) and also lands in the
    dead-letter output with step ``"label"``.

    Args:
        labeler: ``"imagenet"`` (default, offline, needs ``[local]``), ``"cloud_vision"``
            (Application Default Credentials on the workers), or a picklable factory
            returning a :class:`~redditvision.labelers.GenericLabeler`.
        max_results: Labels per picture (default 10).

    Returns:
        From ``expand``: ``(results, dead_letter)``; results have ``generic`` set.

    Raises:
        ValueError: ``labeler`` is an unknown name.
    """

    def __init__(
        self,
        labeler: str | Callable[[], GenericLabeler] = "imagenet",
        *,
        max_results: int = 10,
    ) -> None:
        super().__init__()
        if isinstance(labeler, str):
            if labeler not in LABELERS:
                raise ValueError(
                    f"unknown labeler {labeler!r}; use one of {sorted(LABELERS)} or a factory"
                )
            labeler = LABELERS[labeler]
        self.factory = labeler
        self.max_results = max_results

    def expand(self, results: Any) -> tuple[Any, Any]:
        """Return ``(results, dead_letter)`` for a PCollection of pictures."""
        out = (
            results
            | "BatchForLabeler"
            >> beam.BatchElements(
                min_batch_size=CLOUD_VISION_BATCH, max_batch_size=CLOUD_VISION_BATCH
            )
            | "Label"
            >> beam.ParDo(_LabelFn(self.factory, self.max_results)).with_outputs(
                DEAD_LETTER, main=MAIN
            )
        )
        return out[MAIN], out[DEAD_LETTER]


def local_backend(*, num_threads: int | None = None) -> PredictionBackend:
    """Build the local prediction backend on a worker, with a bound on torch's threads.

    Use ``functools.partial(local_backend, num_threads=1)`` as :class:`ClassifyImages`'s
    ``backend_factory`` when several worker processes share a machine (the DirectRunner's
    ``multi_processing`` mode, Dataflow's one SDK process per vCPU): each process would
    otherwise start one torch thread per core, and the oversubscribed cores slow prediction
    down several times (see :doc:`/beam`).

    Args:
        num_threads: Threads for torch's CPU kernels per worker process; None for one per
            core the process may use.

    Returns:
        A :class:`~redditvision.backends.local.LocalBackend` (needs ``[local]``).
    """
    from redditvision.backends import build_backend, folder_backend

    backend: PredictionBackend = build_backend(folder_backend(), num_threads=num_threads)
    return backend


def vertex_backend(**kwargs: Any) -> PredictionBackend:
    """Build a Vertex AI prediction backend on a worker, through the backend registry.

    Use ``functools.partial(vertex_backend, project=..., location=...)`` as
    :class:`ClassifyImages`'s ``backend_factory`` (or, for any registered backend,
    ``functools.partial(redditvision.backends.build_backend, NAME, project=...)``).

    Args:
        **kwargs: :class:`~redditvision.backends.BackendOptions` fields (``project``,
            ``location``, ...).

    Returns:
        The backend.
    """
    from redditvision.backends import build_backend
    from redditvision.backends.vertex import LIMITS

    backend: PredictionBackend = build_backend(LIMITS.name, **kwargs)
    return backend
