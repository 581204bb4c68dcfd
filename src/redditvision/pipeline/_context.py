"""What the steps share: the run's collaborators, callbacks, the step context and results."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from redditvision.metrics import evaluation_from_json
from redditvision.models import DatasetLocation, Evaluation, LabeledDataset, TrainedModel
from redditvision.pipeline.config import RunConfig

__all__ = [
    "ProgressCallback",
    "RunClients",
    "RunResult",
    "StepCallback",
    "StepContext",
    "StepResult",
]

StepCallback = Callable[[str, str], None]
"""``on_step(step, message)``: called when a step starts and ends (for progress output)."""

ProgressCallback = Callable[[str, int, int | None], None]
"""``on_progress(step, done, total)``: items done in a long step (downloads, uploads,
feature extraction, comparison); ``total`` is None when unknown."""


@attrs.frozen(kw_only=True)
class StepResult:
    """What one step did.

    Attributes:
        name: The step's name (see :data:`redditvision.pipeline.STEPS`).
        status: ``"ran"``, ``"reused"`` (finished by an earlier run with the same inputs;
            nothing was executed, its ``seconds`` is 0.0) or ``"skipped"`` (not part of
            this run, e.g. collect for an image folder).
        seconds: Wall time of the step in seconds (0.0 unless it ran).
        detail: The step's outputs: counts and paths, JSON-compatible.
    """

    name: str
    status: str
    seconds: float
    detail: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen(kw_only=True)
class RunResult:
    """The outcome of :func:`redditvision.pipeline.run`.

    Attributes:
        output: The run's folder.
        steps: One :class:`StepResult` per step, in order.
        dataset: Where the dataset was written (None when the run classified with an
            existing model).
        model: The trained model (None when classifying).
        evaluation: The model's evaluation (None when classifying).
        report_html: The comparison report page, or None when comparison is disabled.
        classified: With ``[model] path``: the classify step's output (``predicted``,
            ``reused``, ``items``, ``folder``, ``summary``), else None.
        comparison: The comparison's aggregate figures, or None.
        audit: The audit step's outputs (``images``, ``flagged``, ``issues`` per kind,
            ``html``, and ``changes`` when it cleaned; ``not_run`` when it could not run),
            or None when ``[audit] enabled = false``.
        sources: Per source name, in config order: ``kind``, ``images`` kept, ``labels``
            (kept images per label), ``duplicates`` and ``near_duplicates`` (images
            dropped because an earlier source holds them), ``unmatched`` (records no
            rule matched), and for Reddit sources ``posts`` and ``records`` (download
            statuses).
    """

    output: Path
    steps: tuple[StepResult, ...]
    dataset: DatasetLocation | None = None
    model: TrainedModel | None = None
    evaluation: Evaluation | None = None
    report_html: Path | None = None
    classified: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    comparison: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    audit: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    sources: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, hash=False)


@attrs.define(kw_only=True)
class RunClients:
    """Collaborators for :func:`redditvision.pipeline.run`, built from the environment when None.

    Attributes:
        reddit: A ``praw.Reddit`` for a subreddit source.
        session: A ``requests.Session`` for downloads.
        storage_client: A ``google.cloud.storage.Client`` for the GCS writer.
        backend: A training backend that is also a prediction backend.
        generic: The generic labeler for the comparison.
    """

    reddit: Any = None
    session: Any = None
    storage_client: Any = None
    backend: Any = None
    generic: Any = None


def model_to_json(model: TrainedModel) -> dict[str, Any]:
    """Return the JSON form of ``model`` stored in the run state."""
    return {
        "backend": model.backend,
        "resource": model.resource,
        "labels": list(model.labels),
        "label_map": dict(model.label_map),
        "display_name": model.display_name,
        "metadata": dict(model.metadata),
    }


def model_from_json(data: Mapping[str, Any]) -> TrainedModel:
    """Rebuild a model from :func:`model_to_json`'s form."""
    return TrainedModel(
        backend=data["backend"],
        resource=data["resource"],
        labels=tuple(data["labels"]),
        label_map=dict(data["label_map"]),
        display_name=data.get("display_name"),
        metadata=dict(data.get("metadata") or {}),
    )


@attrs.define(kw_only=True)
class StepContext:
    """What a step function gets: the config, collaborators, callbacks and earlier outputs.

    Attributes:
        config: The run's config.
        clients: Pre-built collaborators (None fields are built from the environment).
        say: ``say(step, message)`` for progress lines.
        progress: ``progress(step, done, total)`` for counts in long steps.
        outputs: Step name -> that step's outputs (from this run or reused from an
            earlier one), for every step before the current one that was not skipped.
    """

    config: RunConfig
    clients: RunClients
    say: StepCallback
    progress: ProgressCallback
    outputs: dict[str, Mapping[str, Any]] = attrs.field(factory=dict)
    _backend: Any = attrs.field(default=None, init=False, repr=False)

    @property
    def output(self) -> Path:
        """The run's folder."""
        return self.config.output

    @property
    def downloads(self) -> Path:
        """``OUTPUT/downloads``: the downloaded images and their manifest."""
        return self.output / "downloads"

    @property
    def labeled_file(self) -> Path:
        """``OUTPUT/labeled.jsonl``: the labeled and split dataset."""
        return self.output / "labeled.jsonl"

    @property
    def dataset_file(self) -> Path:
        """The dataset file the steps after the audit read.

        The audit's cleaned ``OUTPUT/audit/dataset.jsonl`` when ``[audit]`` excludes or
        relabels, else :attr:`labeled_file`.
        """
        cleaned = self.outputs.get("audit", {}).get("dataset_file")
        return Path(cleaned) if cleaned else self.labeled_file

    def labeled(self) -> LabeledDataset:
        """Load the labeled dataset (the audit's cleaned one once the audit made one)."""
        from redditvision.storage import load_local_dataset

        return load_local_dataset(self.dataset_file)

    def backend(self) -> Any:
        """The training and prediction backend, built once on first use."""
        if self._backend is None:
            from redditvision.pipeline._backend import build_run_backend

            self._backend = build_run_backend(self)
        return self._backend

    def location(self) -> DatasetLocation:
        """Where the write step put the dataset."""
        written = self.outputs["write"]
        return DatasetLocation(
            uri=written["uri"],
            import_file_uri=written["import_file_uri"],
            import_format=written["import_format"],
            images=written["images"],
            labels=tuple(written["labels"]),
            label_map=dict(written["label_map"]),
        )

    def model(self) -> TrainedModel:
        """The model the train step made."""
        return model_from_json(self.outputs["train"]["model"])

    def evaluation(self) -> Evaluation:
        """The evaluate step's evaluation."""
        return evaluation_from_json(self.outputs["evaluate"]["evaluation"])
