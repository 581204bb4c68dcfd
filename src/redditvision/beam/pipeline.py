# mypy: disable-error-code="no-untyped-call"
# (Apache Beam ships py.typed, but most of its transforms are untyped functions.)
"""The whole job as one Beam pipeline: read, download, dedup, classify, label, write.

:func:`build_pipeline` adds the transforms of :mod:`redditvision.beam.transforms` to a
pipeline according to a :class:`PipelineConfig`; ``python -m redditvision.beam`` builds the
config from its command line and runs it with standard Beam pipeline options.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from redditvision.beam._compat import require_beam
from redditvision.beam.transforms import (
    ClassifyImages,
    DedupImages,
    DownloadImages,
    GenericLabels,
    ReadSubmissions,
    WriteDeadLetters,
    WriteResults,
    imagenet_labeler,
    local_backend,
    vertex_backend,
)
from redditvision.models import TrainedModel

if TYPE_CHECKING:
    import requests

    from redditvision.classify import PredictionBackend
    from redditvision.labelers import GenericLabeler
    from redditvision.reddit import PostFilters

require_beam()

import apache_beam as beam  # noqa: E402  (after the guard, which names the extra)

__all__ = ["PipelineConfig", "build_pipeline"]


@attrs.frozen(kw_only=True)
class PipelineConfig:
    """What the Beam job reads, which model it runs and where it writes.

    The output folder (local path or ``gs://bucket/prefix``) receives ``images/`` (the
    verified files, content-addressed names), ``results-SSSSS-of-NNNNN.jsonl`` (one line
    per distinct picture, :func:`~redditvision.beam.result_to_row`) and
    ``dead_letter-SSSSS-of-NNNNN.jsonl`` (one line per failed element).

    Attributes:
        output: Output folder or ``gs://`` prefix.
        listings: Saved listing file patterns.
        dumps: NDJSON dump file patterns.
        subreddits: Subreddits read through praw on the workers.
        sort: Subreddit listing sort (default ``top``).
        time_filter: Time filter for ``top``/``controversial`` (default ``all``).
        limit: Submissions per subreddit (default 1000, Reddit's listing cap).
        filters: Post and media filters (default ``PostFilters()``).
        model: Model folder (local path or ``gs://`` prefix), a Vertex AI model resource
            name with ``backend="vertex"``, or None to skip classification.
        backend: ``"local"`` (default) or ``"vertex"``.
        vertex_project: Google Cloud project, required for ``backend="vertex"``.
        vertex_location: Vertex AI region for ``backend="vertex"`` (None: the backend's).
        generic_labels: ``"imagenet"``, ``"cloud_vision"`` or None (default) for none.
        bigquery_table: ``PROJECT:DATASET.TABLE`` to also write rows to, or None.
        allow_private_networks: Let the downloader fetch loopback/private addresses (tests
            and intranets only).
        download_concurrency: Downloader threads per worker (default 16).
        download_batch: Distinct URLs per downloader call (default 64).
        classify_batch: Most pictures per prediction call (default 32).
        torch_threads: Local model and ImageNet labeler: torch threads per worker process
            (None: one per core). Use 1 when several worker processes share a machine.
        confidence_threshold: Drop predictions below this (default 0.0).
        max_predictions: Keep at most this many predictions per picture (default all).
        session_factory: Picklable callable building the downloader's
            ``requests.Session`` on each worker (tests route real URLs to loopback with it);
            None for the downloader's own.
        backend_factory: Picklable callable building the prediction backend on each worker,
            overriding ``backend``; None to use ``backend``.
    """

    output: str
    listings: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    dumps: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    subreddits: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    sort: str = "top"
    time_filter: str = "all"
    limit: int | None = 1000
    filters: PostFilters | None = None
    model: str | None = None
    backend: str = "local"
    vertex_project: str | None = None
    vertex_location: str | None = None
    generic_labels: str | None = None
    bigquery_table: str | None = None
    allow_private_networks: bool = False
    download_concurrency: int = 16
    download_batch: int = 64
    classify_batch: int = 32
    torch_threads: int | None = None
    confidence_threshold: float = 0.0
    max_predictions: int | None = None
    session_factory: Callable[[], requests.Session] | None = None
    backend_factory: Callable[[], PredictionBackend] | None = None

    def join(self, name: str) -> str:
        """Return ``name`` under :attr:`output` (``/`` for both local paths and ``gs://``).

        Args:
            name: A file or folder name.

        Returns:
            The joined path.
        """
        return self.output.rstrip("/") + "/" + name

    def prediction_backend(self) -> Callable[[], PredictionBackend] | None:
        """Return the factory that builds the prediction backend on a worker.

        Returns:
            :attr:`backend_factory` when set; for ``backend="vertex"`` a partial of
            :func:`~redditvision.beam.vertex_backend`; for the local backend a partial of
            :func:`~redditvision.beam.local_backend` when ``torch_threads`` is set, else
            None (the Classifier's default local backend).

        Raises:
            ValueError: ``backend`` is neither ``"local"`` nor ``"vertex"``, or
                ``vertex_project`` is missing for ``"vertex"``.
        """
        if self.backend_factory is not None:
            return self.backend_factory
        if self.backend == "local":
            if self.torch_threads is None:
                return None
            return functools.partial(local_backend, num_threads=self.torch_threads)
        if self.backend == "vertex":
            if self.vertex_project is None:
                raise ValueError("backend 'vertex' needs vertex_project (--vertex-project)")
            kwargs: dict[str, Any] = {"project": self.vertex_project}
            if self.vertex_location is not None:
                kwargs["location"] = self.vertex_location
            return functools.partial(vertex_backend, **kwargs)
        raise ValueError(f"unknown backend {self.backend!r}; use 'local' or 'vertex'")


def build_pipeline(pipeline: Any, config: PipelineConfig) -> dict[str, Any]:
    """Add the whole job to ``pipeline``.

    Args:
        pipeline: A ``beam.Pipeline`` (or ``TestPipeline``), not yet run.
        config: What to read, run and write.

    Returns:
        The PCollections by name: ``posts`` (:class:`~redditvision.models.ImagePost`),
        ``images`` (:class:`~redditvision.beam.StoredImage`, one per post and media
        index), ``results`` (:class:`~redditvision.beam.ImageResult`, one per distinct
        sha256, with predictions and generic labels as configured) and ``dead_letter``
        (:class:`~redditvision.beam.DeadLetter` of every step).

    Raises:
        ValueError: Nothing to read, or an unknown backend or labeler.
    """
    posts, read_dead = pipeline | "ReadSubmissions" >> ReadSubmissions(
        listings=config.listings,
        dumps=config.dumps,
        subreddits=config.subreddits,
        sort=config.sort,
        time_filter=config.time_filter,
        limit=config.limit,
        filters=config.filters,
    )
    images, download_dead = posts | "DownloadImages" >> DownloadImages(
        config.join("images"),
        concurrency=config.download_concurrency,
        batch_size=config.download_batch,
        allow_private_networks=config.allow_private_networks,
        session_factory=config.session_factory,
    )
    results = images | "DedupImages" >> DedupImages()
    letters = [read_dead, download_dead]
    if config.model is not None:
        model: TrainedModel | str = config.model
        if config.backend != "local":
            model = TrainedModel(backend=config.backend, resource=config.model)
        results, classify_dead = results | "ClassifyImages" >> ClassifyImages(
            model,
            backend_factory=config.prediction_backend(),
            batch_size=config.classify_batch,
            confidence_threshold=config.confidence_threshold,
            max_predictions=config.max_predictions,
        )
        letters.append(classify_dead)
    if config.generic_labels is not None:
        labeler: str | Callable[[], GenericLabeler] = config.generic_labels
        if labeler == "imagenet" and config.torch_threads is not None:
            labeler = functools.partial(imagenet_labeler, num_threads=config.torch_threads)
        results, label_dead = results | "GenericLabels" >> GenericLabels(labeler)
        letters.append(label_dead)
    dead_letter = tuple(letters) | "AllDeadLetters" >> beam.Flatten()
    _ = results | "WriteResults" >> WriteResults(
        config.join("results"), bigquery_table=config.bigquery_table
    )
    _ = dead_letter | "WriteDeadLetters" >> WriteDeadLetters(config.join("dead_letter"))
    return {"posts": posts, "images": images, "results": results, "dead_letter": dead_letter}
