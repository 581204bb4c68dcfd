"""What a backend is: the :class:`Backend` protocol, its declared limits and its options.

A backend trains, evaluates and opens predictors for image classifiers somewhere (this
machine, Vertex AI, legacy AutoML v1, ...). Everything the rest of the package needs to
know about one is here, so that no module outside :mod:`redditvision.backends` switches on
a backend's name:

* :class:`Backend` - train, evaluate, open a :class:`Predictor`, close;
* :class:`TargetLimits` - what its training accepts (images per label, formats, sizes),
  read by :func:`~redditvision.check_dataset`;
* :class:`BackendOptions` - the settings the command line, the pipeline and Beam give
  every factory (each backend reads the ones it uses);
* :class:`Deployer` - the optional protocol of backends whose models must be deployed
  before online prediction, with one result type, :class:`Deployment` (and
  :class:`Undeployment`).

This module is a leaf: it imports the value types of :mod:`redditvision.models` only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from redditvision.models import (
    DatasetLocation,
    Evaluation,
    LabeledDataset,
    LabeledImage,
    Prediction,
    TrainedModel,
    TrainingBudget,
)

__all__ = [
    "Backend",
    "BackendOptions",
    "CountCallback",
    "Deployer",
    "Deployment",
    "ImportFileFormat",
    "PredictionBackend",
    "Predictor",
    "StepCallback",
    "TargetLimits",
    "TrainingBackend",
    "Undeployment",
]

CountCallback = Callable[[int, int], None]
"""``progress(done, total)``: items done so far (e.g. images whose features are extracted)."""

StepCallback = Callable[[str, str], None]
"""``progress(step, message)``: what a long-running step is waiting for, e.g.
``("pipeline", "PIPELINE_STATE_RUNNING (120 s)")``."""


@attrs.frozen(kw_only=True)
class TargetLimits:
    """What one training target accepts; each backend declares its own.

    Attributes:
        name: The backend's registry name, e.g. ``"vertex"``.
        min_images_per_label: Fewer is an error (Vertex AI and AutoML: 10).
        recommended_images_per_label: Fewer is a warning (100; Vertex AI suggests ~1000).
        max_imbalance: Largest/smallest label count above this is a warning (100).
        formats: Pillow format names accepted for training; None accepts any format
            Pillow reads.
        max_bytes: Largest image file in bytes, or None.
    """

    name: str
    min_images_per_label: int
    recommended_images_per_label: int
    max_imbalance: float
    formats: frozenset[str] | None
    max_bytes: int | None


@attrs.frozen(kw_only=True)
class ImportFileFormat:
    """One import file format a backend trains from: its name, file name and renderer.

    Attributes:
        name: The format name, e.g. ``"vertex_csv"`` (``import_format=`` of the writers).
        file_name: The file's name inside the written dataset, e.g. ``"import.csv"``.
        render: ``render(dataset, uri_for) -> text``: the file's text, one line per image;
            ``uri_for(image)`` is the image's URI (or path) in the written dataset.
    """

    name: str
    file_name: str
    render: Callable[[LabeledDataset, Callable[[LabeledImage], str]], str] = attrs.field(repr=False)

    @property
    def suffix(self) -> str:
        """The file name's suffix, e.g. ``".csv"``."""
        return os.path.splitext(self.file_name)[1]


@runtime_checkable
class Predictor(Protocol):
    """A model ready to answer: a loaded folder or a deployed endpoint."""

    def predict(
        self,
        images: Sequence[bytes],
        *,
        confidence_threshold: float = 0.0,
        max_predictions: int | None = None,
    ) -> list[list[Prediction]]:
        """Predict labels for encoded images.

        Args:
            images: Encoded image bytes, any format Pillow reads.
            confidence_threshold: Drop predictions scored below this, in ``[0, 1]``.
            max_predictions: Keep at most this many per image, or None for all.

        Returns:
            One list per image, in input order, each sorted by score descending.

        Raises:
            PredictionError: The model could not answer.
        """
        ...

    def close(self) -> None:
        """Release the model; undeploy what this predictor deployed. Safe to call twice."""
        ...


@runtime_checkable
class TrainingBackend(Protocol):
    """The training half of a :class:`Backend` (what :class:`~redditvision.AutoMLTrainer` uses).

    Attributes:
        name: The backend's registry name (``"local"``, ``"vertex"``, ``"automl"``, ...);
            stored in ``TrainedModel.backend``.
    """

    name: str

    def train(
        self,
        data: LabeledDataset | DatasetLocation,
        *,
        budget: TrainingBudget,
        display_name: str | None = None,
    ) -> TrainedModel:
        """Train a model and return its handle.

        Args:
            data: A labeled dataset (local backend) or a written dataset location whose
                import file the service reads (cloud backends).
            budget: How much training to pay for.
            display_name: Name for the created resources, or None for the dataset's name.

        Returns:
            The trained model.

        Raises:
            TrainingError: Training failed; ConfigError when ``data`` is of a kind this
                backend cannot read.
        """
        ...

    def evaluate(self, model: TrainedModel, data: LabeledDataset | None = None) -> Evaluation:
        """Evaluate a model on ``data``'s test split, or return the service's evaluation.

        Args:
            model: The model.
            data: Labeled data to evaluate on; cloud backends read the evaluation the
                service computed on its test split and may ignore it.

        Returns:
            The evaluation.
        """
        ...

    def close(self) -> None:
        """Release clients; safe to call twice."""
        ...


@runtime_checkable
class PredictionBackend(Protocol):
    """The prediction half of a :class:`Backend` (what :class:`~redditvision.Classifier` uses).

    Attributes:
        name: The backend's registry name.
    """

    name: str

    def open_predictor(self, model: TrainedModel, *, deploy: bool = True) -> Predictor:
        """Open a predictor for ``model``.

        Args:
            model: The model handle.
            deploy: Cloud backends: deploy the model to an endpoint when it is not deployed
                yet (the predictor then undeploys it on close).

        Returns:
            The predictor.
        """
        ...


@runtime_checkable
class Backend(TrainingBackend, PredictionBackend, Protocol):
    """A backend: trains, evaluates and opens predictors; a context manager.

    Implement this (structurally; no base class is needed) and register a factory with
    :func:`~redditvision.backends.register_backend` to add a backend (see the docs' page
    "Writing a backend").

    Attributes:
        name: The backend's registry name; stored in ``TrainedModel.backend``.
    """

    def load(self, reference: str) -> TrainedModel:
        """Return the model handle for a reference given on the command line.

        Args:
            reference: ``--model``: a model folder (local), or a resource name (cloud).

        Returns:
            The handle; cloud backends build it without a request.

        Raises:
            ModelFormatError: A local model folder that cannot be trusted.
        """
        ...


@attrs.frozen(kw_only=True)
class Deployment:
    """A model deployed for online prediction; the one result of :meth:`Deployer.deploy`.

    Attributes:
        backend: The backend's registry name.
        model: The model's resource name.
        endpoint: Where predictions go: the endpoint's resource name on Vertex AI
            (``projects/P/locations/L/endpoints/E``), None where the model itself serves
            (legacy AutoML v1).
        deployed_model_id: The deployed model's id on the endpoint, or None.
        deployed: True when this call deployed it, False when it was deployed already.
        created_endpoint: True when the endpoint was created for this deployment (undeploy
            then deletes it too).
    """

    backend: str
    model: str
    endpoint: str | None = None
    deployed_model_id: str | None = None
    deployed: bool = True
    created_endpoint: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object ``redditvision deploy`` prints.

        Returns:
            ``{"backend", "model", "endpoint", "deployed_model_id", "deployed"}``.
        """
        return {
            "backend": self.backend,
            "model": self.model,
            "endpoint": self.endpoint,
            "deployed_model_id": self.deployed_model_id,
            "deployed": self.deployed,
        }


@attrs.frozen(kw_only=True)
class Undeployment:
    """What :meth:`Deployer.undeploy_target` took down; the one result of undeploying.

    Attributes:
        backend: The backend's registry name.
        target: The endpoint (Vertex AI) or model (AutoML v1) named by the caller.
        undeployed: Ids of the deployed models taken down (the model's resource name on
            AutoML v1); empty when nothing was deployed.
        endpoint_deleted: Whether the endpoint was deleted.
    """

    backend: str
    target: str
    undeployed: tuple[str, ...] = ()
    endpoint_deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object ``redditvision undeploy`` prints.

        Returns:
            ``{"backend", "target", "undeployed": [...], "endpoint_deleted"}``.
        """
        return {
            "backend": self.backend,
            "target": self.target,
            "undeployed": list(self.undeployed),
            "endpoint_deleted": self.endpoint_deleted,
        }


@runtime_checkable
class Deployer(Protocol):
    """The optional protocol of backends whose models are deployed before online prediction.

    Vertex AI deploys a model to an endpoint; legacy AutoML v1 deploys it in place. The
    local backend is no deployer (its models are folders). Test with
    ``isinstance(backend, Deployer)``.
    """

    def deploy(
        self,
        model: TrainedModel | str,
        *,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
    ) -> Deployment:
        """Deploy ``model`` (resuming an interrupted deploy) and return where it serves.

        Args:
            model: The model or its resource name.
            min_replicas: Replicas (AutoML v1: nodes) always up, each billed per node hour
                (default: the backend's, 1).
            max_replicas: Autoscaling upper bound (default ``min_replicas``; ignored where
                the service has none).

        Returns:
            The deployment.

        Raises:
            PredictionError: The model does not exist or deploying failed.
        """
        ...

    def undeploy_target(
        self,
        target: str,
        *,
        deployed_model_id: str | None = None,
        delete_endpoint: bool | None = None,
    ) -> Undeployment:
        """Take a deployment down so that it stops being billed.

        Args:
            target: An endpoint (Vertex AI) or model (AutoML v1) resource name.
            deployed_model_id: The deployed model to take down, or None for every one.
            delete_endpoint: Delete the emptied endpoint (default: when the backend
                created it); ignored where there is no endpoint.

        Returns:
            What was taken down.

        Raises:
            ConfigError: ``target`` is not a resource this backend undeploys.
            PredictionError: The service refused (the message names what may still be
                billed).
        """
        ...


@attrs.frozen(kw_only=True)
class BackendOptions:
    """The settings every backend factory receives; each backend reads what it uses.

    The command line, :mod:`redditvision.pipeline` and :mod:`redditvision.beam` fill it
    from their own options and call :func:`~redditvision.backends.build_backend`.

    Attributes:
        project: Google Cloud project id (cloud backends; required there).
        location: Region (default ``"us-central1"``).
        state_dir: Folder of the run state files that let a re-run resume (default
            ``$REDDITVISION_STATE_DIR`` or ``./.redditvision/state``).
        api_endpoint: ``host:port`` instead of the service's endpoint (fakes, emulators).
        insecure: Plaintext gRPC to ``api_endpoint`` without credentials (fakes only).
        model_type: Cloud model type (Vertex AI or AutoML v1 spelling), or None for the
            backend's default.
        credentials: ``google.auth`` credentials instead of Application Default
            Credentials, or None.
        model_dir: Local: folder for model folders.
        cache_dir: Local: embedding cache folder (None: the user cache).
        use_cache: Local: read and write the embedding cache (default True).
        num_threads: Local: torch threads (None: one per core).
        on_count: ``progress(done, total)`` while extracting features (local).
        on_step: ``progress(step, message)`` while waiting on a cloud step.
        extra: Backend-specific arguments passed on to its constructor (e.g.
            ``{"node_count": 2}``); a key the backend does not know is a ``ConfigError``.
    """

    project: str | None = None
    location: str = "us-central1"
    state_dir: str | os.PathLike[str] | None = None
    api_endpoint: str | None = None
    insecure: bool = False
    model_type: str | None = None
    credentials: Any = None
    model_dir: str | os.PathLike[str] | None = None
    cache_dir: str | os.PathLike[str] | None = None
    use_cache: bool = True
    num_threads: int | None = None
    on_count: CountCallback | None = None
    on_step: StepCallback | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)
