"""Vertex AI AutoML image classification behind ``AutoMLTrainer`` and ``Classifier``.

:class:`VertexAutoMLBackend` drives the GAPIC clients of ``google.cloud.aiplatform_v1``:

1. ``DatasetService.CreateDataset`` with the image metadata schema, then ``ImportData`` of
   the dataset location's import file (single-label classification schema);
2. ``PipelineService.CreateTrainingPipeline`` with the AutoML image classification task
   definition, a budget in milli node hours and a filter split on the
   ``aiplatform.googleapis.com/ml_use`` label, so the ``training|validation|test`` column of
   the import file is honoured; ``CreateTrainingPipeline`` is not a long-running operation,
   so ``GetTrainingPipeline`` is polled with backoff until a terminal state;
3. ``ModelService.ListModelEvaluations`` and ``ListModelEvaluationSlices`` converted into
   the shared :class:`~redditvision.models.Evaluation`;
4. ``EndpointService.CreateEndpoint`` + ``DeployModel`` with automatic resources, and
   ``PredictionService.Predict`` with base64 ``content`` (re-encoded under the 1.5 MB online
   limit), ``confidenceThreshold`` and ``maxPredictions``; ``UndeployModel`` and
   ``DeleteEndpoint`` when done.

Resume instead of repeat: every create records the resource or operation name in a
:class:`~redditvision.backends._state.RunState` file before waiting, and labels the resource
with ``redditvision-run=<run id>``. A re-run after a crash or a timeout resumes polling the
recorded name; a create whose answer was lost (``DEADLINE_EXCEEDED``, ``UNAVAILABLE``) is
looked up by that label instead of being sent again. Creates are never retried blindly;
idempotent reads are retried with :class:`~redditvision.retry.RetryPolicy`; polling uses its
own policy (:data:`DEFAULT_POLL`).

Sources: Vertex AI docs "Prepare image training data" (import file, ML_USE, limits), the
``AutoMlImageClassificationInputs`` reference (model types and budget ranges), "Get online
predictions from an AutoML image model" (1.5 MB limit, parameters).
"""

from __future__ import annotations

import base64
import csv
import importlib
import io
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
from google.api_core import exceptions as core_exceptions
from google.auth import exceptions as auth_exceptions
from google.longrunning import operations_pb2
from google.protobuf import json_format, struct_pb2
from google.rpc import code_pb2
from PIL import Image, UnidentifiedImageError

from redditvision._closing import Closeable
from redditvision._google import translate_google
from redditvision.backends._state import RunState
from redditvision.errors import (
    ConfigError,
    PredictionError,
    RedditVisionError,
    TrainingError,
)
from redditvision.models import (
    DatasetLocation,
    Evaluation,
    LabeledDataset,
    LabelMetrics,
    Prediction,
    ThresholdMetrics,
    TrainedModel,
    TrainingBudget,
)
from redditvision.retry import (
    DEFAULT,
    RetryArg,
    RetryPolicy,
    call_with_retry,
    is_transient,
    resolve_retry,
)

if TYPE_CHECKING:
    from google.cloud import aiplatform_v1 as aip
else:

    class _LazyModule:
        """Import ``google.cloud.aiplatform_v1`` on first use: it takes seconds to import."""

        def __getattr__(self, name: str) -> Any:
            return getattr(importlib.import_module("google.cloud.aiplatform_v1"), name)

    aip = _LazyModule()

__all__ = [
    "AUTOML_IMAGE_CLASSIFICATION_DEFINITION",
    "DEFAULT_POLL",
    "DEFAULT_RETRY",
    "IMAGE_DATASET_METADATA_SCHEMA",
    "IMAGE_SINGLE_LABEL_IMPORT_SCHEMA",
    "ML_USE_LABEL",
    "MODEL_TYPE_BUDGETS",
    "ONLINE_PREDICTION_LIMIT_BYTES",
    "RUN_LABEL",
    "VertexAutoMLBackend",
    "VertexBatchPrediction",
    "VertexDeployment",
    "VertexPredictor",
    "batch_instances",
    "fit_online_limit",
    "image_uris_from_import_csv",
    "normalize_model_type",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

IMAGE_DATASET_METADATA_SCHEMA = (
    "gs://google-cloud-aiplatform/schema/dataset/metadata/image_1.0.0.yaml"
)
"""``Dataset.metadata_schema_uri`` of an image dataset (Vertex AI dataset schemas)."""

IMAGE_SINGLE_LABEL_IMPORT_SCHEMA = (
    "gs://google-cloud-aiplatform/schema/dataset/ioformat/"
    "image_classification_single_label_io_format_1.0.0.yaml"
)
"""``ImportDataConfig.import_schema_uri`` for single-label image classification (CSV or JSONL)."""

AUTOML_IMAGE_CLASSIFICATION_DEFINITION = (
    "gs://google-cloud-aiplatform/schema/trainingjob/definition/"
    "automl_image_classification_1.0.0.yaml"
)
"""``TrainingPipeline.training_task_definition`` of AutoML image classification."""

ML_USE_LABEL = "aiplatform.googleapis.com/ml_use"
"""The data item label that the import file's ``ML_USE`` column sets (training|validation|test);
it is honoured only by a filter split on it."""

MODEL_TYPE_BUDGETS: Mapping[str, tuple[int, int]] = {
    "CLOUD": (8_000, 800_000),
    "MOBILE_TF_LOW_LATENCY_1": (1_000, 100_000),
    "MOBILE_TF_VERSATILE_1": (1_000, 100_000),
    "MOBILE_TF_HIGH_ACCURACY_1": (1_000, 100_000),
}
"""Model type -> inclusive budget range in milli node hours
(``AutoMlImageClassificationInputs.budgetMilliNodeHours``)."""

ONLINE_PREDICTION_LIMIT_BYTES = 1_500_000
"""Largest base64 ``content`` of one online prediction instance (Vertex AI: 1.5 MB)."""

_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

RUN_LABEL = "redditvision-run"
"""Resource label holding the run id, used to find a create whose answer was lost."""

_AMBIGUOUS = frozenset({"DEADLINE_EXCEEDED", "UNAVAILABLE", "INTERNAL", "UNKNOWN", "CANCELLED"})
"""Statuses after which a create may or may not have happened on the server."""

_BATCH_TERMINAL = frozenset(
    {
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_PARTIALLY_SUCCEEDED",
        "JOB_STATE_FAILED",
        "JOB_STATE_CANCELLED",
        "JOB_STATE_EXPIRED",
    }
)

_MIME_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
    ".ico": "image/vnd.microsoft.icon",
    ".webp": "image/webp",
}

_TERMINAL = frozenset(
    {"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"}
)


class _StillRunning(TrainingError):  # noqa: N818 - a signal to keep polling, not a failure
    """Internal: the polled pipeline or operation has not finished yet."""

    def __init__(self, name: str, state: str) -> None:
        super().__init__(f"{name} is {state}", service="vertex", transient=True)
        self.name = name
        self.state = state


def _still_running(exc: BaseException) -> bool:
    return isinstance(exc, _StillRunning)


DEFAULT_RETRY = RetryPolicy(on=is_transient, attempts=5, timeout=120.0)
"""RPC retry of idempotent calls (reads, predict): 5 attempts within 120 s, exponential
backoff from 0.5 s, honouring gRPC ``RetryInfo``."""

DEFAULT_POLL = RetryPolicy(
    on=_still_running,
    attempts=1_000_000,
    timeout=7 * 24 * 3600.0,
    initial=5.0,
    maximum=120.0,
    multiplier=1.5,
    jitter=1.0,
)
"""Polling of pipelines and long-running operations: from 5 s up to every 2 minutes, for at
most 7 days; separate from the RPC retry (each poll is itself a retried read)."""


@attrs.frozen(kw_only=True)
class VertexDeployment:
    """A model deployed to a Vertex AI endpoint.

    Attributes:
        endpoint: ``projects/P/locations/L/endpoints/E``.
        deployed_model_id: The deployed model's id on the endpoint.
        model: ``projects/P/locations/L/models/M``.
        created_endpoint: True when the endpoint was created for this deployment (undeploy
            then deletes it too).
    """

    endpoint: str
    deployed_model_id: str
    model: str
    created_endpoint: bool = False


@attrs.frozen(kw_only=True)
class VertexBatchPrediction:
    """A finished Vertex AI batch prediction job.

    Attributes:
        job: ``projects/P/locations/L/batchPredictionJobs/J``.
        state: ``"JOB_STATE_SUCCEEDED"`` or ``"JOB_STATE_PARTIALLY_SUCCEEDED"``.
        output_directory: The ``gs://`` folder holding the ``predictions_*.jsonl`` files.
        successful_count: Instances predicted.
        failed_count: Instances that failed (listed in the ``errors_*.jsonl`` files).
    """

    job: str
    state: str
    output_directory: str
    successful_count: int = 0
    failed_count: int = 0


def image_uris_from_import_csv(text: str, *, ml_use: str | None = None) -> list[str]:
    """Read the image URIs of a Vertex AI import CSV (``[ML_USE,]GCS_FILE_PATH[,LABEL]``).

    Args:
        text: The CSV text.
        ml_use: Keep only rows of this split (``"training"``, ``"validation"``,
            ``"test"``); rows without an ML_USE column are kept only when None.

    Returns:
        The ``gs://`` URIs, in file order.
    """
    uris: list[str] = []
    for row in csv.reader(io.StringIO(text)):
        cells = [cell.strip() for cell in row]
        if not cells or not any(cells):
            continue
        if cells[0].startswith("gs://"):
            if ml_use is None:
                uris.append(cells[0])
        elif (
            len(cells) > 1
            and cells[1].startswith("gs://")
            and (ml_use is None or cells[0].lower() == ml_use)
        ):
            uris.append(cells[1])
    return uris


def batch_instances(image_uris: Sequence[str]) -> str:
    """Build the JSONL instances file of an AutoML image batch prediction.

    Each line is ``{"content": "gs://...", "mimeType": "image/jpeg"}`` (Vertex AI "Get batch
    predictions from an AutoML image model"); the MIME type comes from the file suffix.

    Args:
        image_uris: ``gs://`` URIs of the images.

    Returns:
        The JSONL text, one line per image, ending in a newline.

    Raises:
        ConfigError: A URI is not on Cloud Storage or its suffix is not an image type.
    """
    lines = []
    for uri in image_uris:
        suffix = os.path.splitext(uri)[1].lower()
        if not uri.startswith("gs://") or suffix not in _MIME_TYPES:
            raise ConfigError(
                f"batch prediction reads gs:// images ({', '.join(sorted(_MIME_TYPES))}); got {uri}"
            )
        lines.append(json.dumps({"content": uri, "mimeType": _MIME_TYPES[suffix]}))
    return "\n".join(lines) + "\n" if lines else ""


def _to_python(message: Any, field: str) -> Any:
    """Return a ``google.protobuf.Value``/``Struct`` field of a proto-plus message as Python."""
    pb = type(message).pb(message)
    return json_format.MessageToDict(getattr(pb, field))


def _value(obj: Any) -> struct_pb2.Value:
    return json_format.ParseDict(obj, struct_pb2.Value())


def _is_operation(name: str) -> bool:
    return "/operations/" in name


def _resource_id(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]


def normalize_model_type(model_type: str) -> str:
    """Return the Vertex AI spelling of a model type.

    Accepts the Vertex AI names (``CLOUD``, ``MOBILE_TF_VERSATILE_1``, ...) in any case, with
    ``-`` or ``_``, and the legacy AutoML v1 names (``cloud``, ``mobile-versatile-1``,
    ``mobile-low-latency-1``, ``mobile-high-accuracy-1``), so one ``--model-type`` serves
    both cloud backends.

    Args:
        model_type: The name given.

    Returns:
        A key of :data:`MODEL_TYPE_BUDGETS`.

    Raises:
        ConfigError: The name is not a known model type.
    """
    name = model_type.strip().upper().replace("-", "_")
    if name.startswith("MOBILE_") and not name.startswith("MOBILE_TF_"):
        name = "MOBILE_TF_" + name[len("MOBILE_") :]
    if name not in MODEL_TYPE_BUDGETS:
        raise ConfigError(
            f"unknown model_type {model_type!r}; use one of {', '.join(MODEL_TYPE_BUDGETS)}"
        )
    return name


def fit_online_limit(image: bytes, *, limit: int = ONLINE_PREDICTION_LIMIT_BYTES) -> bytes:
    """Return ``image`` or a JPEG re-encoding whose base64 form fits the online limit.

    Images already under the limit are sent unchanged. Larger ones are converted to RGB and
    re-encoded as JPEG at quality 85, first at full size (a JPEG: already scaled by
    ``0.9 * sqrt(limit / its base64 size)``), then scaled by that factor of the last try
    (JPEG size grows about with the pixel count), so it fits after one to three encodes.

    Args:
        image: Encoded image bytes.
        limit: Largest base64 length in bytes (default 1,500,000, Vertex AI's 1.5 MB).

    Returns:
        Encoded bytes whose base64 length is at most ``limit``.

    Raises:
        PredictionError: The bytes are not an image Pillow can read, or it cannot be made
            small enough (after 8 tries).
    """
    if len(base64.b64encode(image)) <= limit:
        return image
    first_scale = 1.0
    try:
        with Image.open(io.BytesIO(image)) as opened:
            original = opened.size
            if opened.format == "JPEG":
                # A JPEG's own size predicts the re-encoding's: aim under the limit at once,
                # and let libjpeg decode at a reduced scale (much faster for big photos).
                first_scale = min(1.0, 0.9 * (limit / ((len(image) + 2) // 3 * 4)) ** 0.5)
                target = (int(opened.width * first_scale), int(opened.height * first_scale))
                opened.draft("RGB", target)
            picture = opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise PredictionError(
            f"an image of {len(image)} bytes is over the 1.5 MB online prediction limit and "
            "is not an image that can be re-encoded; send JPEG, PNG, GIF, BMP or ICO"
        ) from exc
    wanted = (max(1, int(original[0] * first_scale)), max(1, int(original[1] * first_scale)))
    resized = (
        picture if picture.size == wanted else picture.resize(wanted, Image.Resampling.LANCZOS)
    )
    for _ in range(8):
        buffer = io.BytesIO()
        resized.save(buffer, format="JPEG", quality=85)
        data = buffer.getvalue()
        encoded = (len(data) + 2) // 3 * 4
        if encoded <= limit:
            logger.info(
                "re-encoded a %d-byte image as a %dx%d JPEG of %d bytes for online prediction",
                len(image),
                resized.width,
                resized.height,
                len(data),
            )
            return data
        scale = min(0.9, 0.9 * (limit / encoded) ** 0.5)
        size = (max(1, int(resized.width * scale)), max(1, int(resized.height * scale)))
        resized = picture.resize(size, Image.Resampling.LANCZOS)
    raise PredictionError(  # pragma: no cover - a few tries fit any real image
        f"cannot re-encode an image of {len(image)} bytes under the 1.5 MB online limit"
    )


class VertexAutoMLBackend(Closeable):
    """Train, evaluate, deploy and query AutoML image classification models on Vertex AI.

    Implements :class:`~redditvision.training.TrainingBackend` and
    :class:`~redditvision.classify.PredictionBackend`.

    Args:
        dataset_client: ``aiplatform_v1.DatasetServiceClient`` (keyword-only, like all).
        pipeline_client: ``aiplatform_v1.PipelineServiceClient``.
        model_client: ``aiplatform_v1.ModelServiceClient``.
        endpoint_client: ``aiplatform_v1.EndpointServiceClient``.
        prediction_client: ``aiplatform_v1.PredictionServiceClient``.
        job_client: ``aiplatform_v1.JobServiceClient`` for :meth:`batch_predict`, or None
            when batch prediction is not used.
        project: Google Cloud project id.
        location: Region, e.g. ``"us-central1"``; the clients must use its regional
            endpoint ``{location}-aiplatform.googleapis.com``.
        state_dir: Folder of the run state files (default ``$REDDITVISION_STATE_DIR`` or
            ``./.redditvision/state``).
        retry: RPC retry policy of idempotent calls (default :data:`DEFAULT_RETRY`);
            ``None`` for single attempts.
        poll: Polling policy of pipelines and operations (default :data:`DEFAULT_POLL`).
        model_type: ``"CLOUD"`` (default) or a ``MOBILE_TF_*`` type (see
            :data:`MODEL_TYPE_BUDGETS`; legacy AutoML spellings are accepted too, see
            :func:`normalize_model_type`).
        timeout: Seconds per RPC (default 60.0).
        predict_timeout: Seconds per ``Predict`` call (default 30.0; the client sets none).
        progress: Called as ``progress(step, message)`` while waiting, e.g.
            ``("pipeline", "PIPELINE_STATE_RUNNING")``; the same is logged at INFO.
        owns_clients: Close the clients' transports on :meth:`close` (default False;
            :meth:`from_env` sets True).

    Raises:
        ConfigError: ``project`` or ``location`` is empty, or ``model_type`` is unknown.

    Example:
        >>> backend = VertexAutoMLBackend.from_env("my-project", "us-central1")  # doctest: +SKIP
        >>> model = AutoMLTrainer(backend=backend).train(location)  # doctest: +SKIP
    """

    name = "vertex"

    def __init__(
        self,
        *,
        dataset_client: Any,
        pipeline_client: Any,
        model_client: Any,
        endpoint_client: Any,
        prediction_client: Any,
        job_client: Any = None,
        project: str,
        location: str,
        state_dir: str | os.PathLike[str] | None = None,
        retry: RetryArg = DEFAULT,
        poll: RetryPolicy = DEFAULT_POLL,
        model_type: str = "CLOUD",
        timeout: float = 60.0,
        predict_timeout: float = 30.0,
        progress: Callable[[str, str], None] | None = None,
        owns_clients: bool = False,
    ) -> None:
        if not project or not location:
            raise ConfigError(
                "Vertex AI needs a project and a location (e.g. project='my-project', "
                "location='us-central1')"
            )
        model_type = normalize_model_type(model_type)
        self.dataset_client = dataset_client
        self.pipeline_client = pipeline_client
        self.model_client = model_client
        self.endpoint_client = endpoint_client
        self.prediction_client = prediction_client
        self.job_client = job_client
        self.project = project
        self.location = location
        self.state_dir = state_dir
        self.retry = resolve_retry(retry, DEFAULT_RETRY)
        self.poll = poll
        self.model_type = model_type
        self.timeout = timeout
        self.predict_timeout = predict_timeout
        self.progress = progress
        self._owns_clients = owns_clients
        self._closed = False

    @property
    def parent(self) -> str:
        """``projects/{project}/locations/{location}``."""
        return f"projects/{self.project}/locations/{self.location}"

    def __repr__(self) -> str:
        return (
            f"VertexAutoMLBackend(project={self.project!r}, location={self.location!r}, "
            f"model_type={self.model_type!r})"
        )

    @classmethod
    def from_env(
        cls,
        project: str,
        location: str = "us-central1",
        *,
        api_endpoint: str | None = None,
        insecure: bool = False,
        state_dir: str | os.PathLike[str] | None = None,
        credentials: Any = None,
        **kwargs: Any,
    ) -> VertexAutoMLBackend:
        """Build the six GAPIC clients with Application Default Credentials.

        Args:
            project: Google Cloud project id.
            location: Region (default ``"us-central1"``).
            api_endpoint: ``host:port`` to talk to (default the regional endpoint
                ``{location}-aiplatform.googleapis.com``, which Vertex AI requires).
            insecure: Use plaintext gRPC channels to ``api_endpoint`` without credentials
                (for local fakes and emulators only).
            state_dir: Folder of the run state files (see the class).
            credentials: ``google.auth`` credentials to use instead of Application Default
                Credentials (looked up once and shared by the clients).
            **kwargs: Other constructor arguments (``retry``, ``poll``, ``model_type``,
                ``progress``, ...).

        Returns:
            The backend; it closes the clients' channels on :meth:`close`.

        Raises:
            ConfigError: No project, ``insecure`` without ``api_endpoint``, or no Application
                Default Credentials (run ``gcloud auth application-default login``).
        """
        if not project:
            raise ConfigError("Vertex AI needs a Google Cloud project id (project='my-project')")
        endpoint = api_endpoint or f"{location}-aiplatform.googleapis.com"
        classes: dict[str, Any] = {
            "dataset_client": aip.DatasetServiceClient,
            "pipeline_client": aip.PipelineServiceClient,
            "model_client": aip.ModelServiceClient,
            "endpoint_client": aip.EndpointServiceClient,
            "prediction_client": aip.PredictionServiceClient,
            "job_client": aip.JobServiceClient,
        }
        clients: dict[str, Any] = {}
        try:
            if not insecure and credentials is None:
                import google.auth

                credentials, _ = google.auth.default(scopes=_SCOPES)
            for key, client_class in classes.items():
                if insecure:
                    if api_endpoint is None:
                        raise ConfigError("insecure=True needs api_endpoint='host:port'")
                    import grpc

                    transport_class = client_class.get_transport_class("grpc")
                    transport = transport_class(channel=grpc.insecure_channel(endpoint))
                    clients[key] = client_class(transport=transport)
                else:
                    clients[key] = client_class(
                        credentials=credentials, client_options={"api_endpoint": endpoint}
                    )
        except auth_exceptions.GoogleAuthError as exc:
            raise ConfigError(
                "no Google Cloud credentials found: run `gcloud auth application-default "
                "login` or set GOOGLE_APPLICATION_CREDENTIALS"
            ) from exc
        kwargs.setdefault("owns_clients", True)
        return cls(**clients, project=project, location=location, state_dir=state_dir, **kwargs)

    # -- plumbing --------------------------------------------------------------------------

    def _report(self, step: str, message: str) -> None:
        logger.info("vertex %s: %s", step, message)
        if self.progress is not None:
            self.progress(step, message)

    def _rpc(
        self,
        fn: Callable[..., T],
        action: str,
        *,
        error: type[RedditVisionError] = TrainingError,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> T:
        """Call a GAPIC method with ``retry=None``, our policy around it, errors translated."""
        attempts = 0

        def once() -> T:
            nonlocal attempts
            attempts += 1
            try:
                return fn(**kwargs, retry=None, timeout=timeout or self.timeout)
            except (core_exceptions.GoogleAPIError, auth_exceptions.TransportError) as exc:
                raise translate_google(exc, error, service="vertex", action=action) from exc
            except auth_exceptions.GoogleAuthError as exc:
                raise ConfigError(
                    f"{action} failed: Google credentials were refused ({type(exc).__name__}); "
                    "run `gcloud auth application-default login`",
                    service="vertex",
                ) from exc

        try:
            return call_with_retry(retry, once)
        except RedditVisionError as exc:
            if exc.transient and attempts > 1:
                raise type(exc)(
                    f"{exc.message} (gave up after {attempts} attempts)",
                    service=exc.service,
                    status=exc.status,
                    retry_after=exc.retry_after,
                    transient=True,
                ) from exc.__cause__
            raise

    def _create_once(
        self,
        state: RunState,
        step: str,
        send: Callable[[], str],
        find: Callable[[], str | None] | None,
        *,
        error: type[RedditVisionError] = TrainingError,
    ) -> str:
        """Return the recorded name of ``step``, or send its create exactly once and record it.

        ``send`` performs the create (one attempt) and returns the operation or resource
        name; ``find`` looks the resource up by its run label after an answer was lost.
        """
        recorded = state.get(step)
        if isinstance(recorded, str):
            self._report(step, f"resuming {recorded}")
            return recorded
        pending = f"{step}_pending"
        if state.get(pending) and find is not None:
            found = find()
            if found is not None:
                self._report(step, f"found {found} from an earlier run")
                state.update({step: found, pending: False})
                return found
        state.set(pending, True)
        try:
            name = send()
        except RedditVisionError as exc:
            if exc.status in _AMBIGUOUS:
                found = find() if find is not None else None
                if found is not None:
                    self._report(step, f"create answered {exc.status} but {found} exists")
                    state.update({step: found, pending: False})
                    return found
                raise error(
                    f"creating the {step} answered {exc.status}; it may still happen on the "
                    f"server, so it was not sent again. Re-run the same command to resume: it "
                    f"looks the {step} up before creating it (state file {state.path})",
                    service="vertex",
                    status=exc.status,
                    transient=True,
                ) from exc
            state.set(pending, False)
            raise
        state.update({step: name, pending: False})
        self._report(step, f"created {name}")
        return name

    def _wait_operation(
        self,
        client: Any,
        name: str,
        step: str,
        *,
        error: type[RedditVisionError] = TrainingError,
        state: RunState | None = None,
    ) -> operations_pb2.Operation:
        """Poll a long-running operation by name until done; raise its error if it failed.

        An operation that ended with an error is final: its record ``step`` is dropped from
        ``state`` so that a re-run, after the cause is fixed, sends the create again.
        """

        def check() -> operations_pb2.Operation:
            operation: operations_pb2.Operation = self._rpc(
                client.get_operation,
                f"polling operation {name}",
                error=error,
                retry=self.retry,
                request={"name": name},
            )
            if not operation.done:
                self._report(step, f"waiting for {name}")
                raise _StillRunning(name, "running")
            return operation

        try:
            operation = self.poll.call(check)
        except _StillRunning as exc:
            raise error(
                f"operation {name} ({step}) is still running after the polling limit; re-run "
                "to resume polling it",
                service="vertex",
                transient=True,
            ) from exc
        if operation.HasField("error"):
            status = code_pb2.Code.Name(operation.error.code)
            if state is not None:
                state.discard([step, f"{step}_pending"])
            raise error(
                f"{step} operation {name} failed: {operation.error.message}",
                service="vertex",
                status=status,
            )
        return operation

    def _find_labelled(
        self,
        list_fn: Callable[..., Any],
        kind: str,
        label: str,
        *,
        error: type[RedditVisionError] = TrainingError,
    ) -> str | None:
        pager = self._rpc(
            list_fn,
            f"looking up the {kind} labelled {RUN_LABEL}={label}",
            error=error,
            retry=self.retry,
            request={"parent": self.parent, "filter": f"labels.{RUN_LABEL}={label}"},
        )
        for item in pager:
            return str(item.name)
        return None

    # -- training --------------------------------------------------------------------------

    def _check_location(self, data: LabeledDataset | DatasetLocation) -> DatasetLocation:
        """Return the location with its Vertex AI import file as the main one."""
        if not isinstance(data, DatasetLocation):
            raise ConfigError(
                "Vertex AI trains from a dataset written to Cloud Storage: write it with "
                "GcsDatasetWriter (import format vertex_csv) and pass the DatasetLocation"
            )
        if data.import_format not in {"vertex_csv", "vertex_jsonl"}:
            for kind in ("vertex_csv", "vertex_jsonl"):
                if kind in data.extra_import_files:
                    data = attrs.evolve(
                        data, import_file_uri=data.extra_import_files[kind], import_format=kind
                    )
                    break
            else:
                raise ConfigError(
                    f"the import file {data.import_file_uri} is {data.import_format!r}; "
                    "Vertex AI reads vertex_csv or vertex_jsonl (write the dataset with that "
                    "format)"
                )
        if not data.import_file_uri.startswith("gs://"):
            raise ConfigError(
                f"Vertex AI imports only from Cloud Storage, got {data.import_file_uri}; "
                "upload the dataset with GcsDatasetWriter"
            )
        return data

    def _check_budget(self, budget: TrainingBudget, model_type: str) -> None:
        low, high = MODEL_TYPE_BUDGETS[model_type]
        if not low <= budget.milli_node_hours <= high:
            raise ConfigError(
                f"budget of {budget.milli_node_hours} milli node hours is outside "
                f"{low:,}-{high:,} for model type {model_type} (1,000 = one node hour)"
            )

    def run_state(self, location: DatasetLocation, display_name: str) -> RunState:
        """Open the state file of the training run for ``location`` and ``display_name``.

        A run is identified by project, location, import file URI and display name.

        Args:
            location: The dataset location.
            display_name: The display name of the created resources.

        Returns:
            The state; delete its file (``state.clear()``) to train anew.

        Raises:
            ConfigError: The location has no Vertex AI import file on Cloud Storage.
        """
        return RunState.for_run(
            self.state_dir,
            "vertex",
            self.project,
            self.location,
            self._check_location(location).import_file_uri,
            display_name,
        )

    def train(
        self,
        data: LabeledDataset | DatasetLocation,
        *,
        budget: TrainingBudget,
        display_name: str | None = None,
        model_type: str | None = None,
    ) -> TrainedModel:
        """Create the dataset, import, train, wait, and return the model (resuming a run).

        Args:
            data: A :class:`~redditvision.models.DatasetLocation` whose import file
                (``vertex_csv`` or ``vertex_jsonl``, as the main import file or in
                ``extra_import_files``) is on Cloud Storage.
            budget: Milli node hours (range per model type in :data:`MODEL_TYPE_BUDGETS`)
                and early stopping.
            display_name: Name of the dataset, pipeline and model (default
                ``"redditvision-<last folder of the dataset URI>"``; at most 128
                characters).
            model_type: Overrides the backend's model type for this call.

        Returns:
            The model handle: ``resource`` is ``projects/P/locations/L/models/M``;
            ``metadata`` holds the dataset, pipeline, model type, budget and the cost the
            service reported.

        Raises:
            ConfigError: Data is not a Cloud Storage dataset location, or the budget is out of
                range.
            TrainingError: Import or training failed (with the server's message), a create's
                answer was lost (re-run to resume), or polling hit its limit (re-run to
                resume).
        """
        location = self._check_location(data)
        model_type = normalize_model_type(model_type) if model_type else self.model_type
        self._check_budget(budget, model_type)
        name = display_name or "redditvision-" + location.uri.rstrip("/").rsplit("/", 1)[-1]
        name = name[:128]
        state = self.run_state(location, name)
        run_id = state.path.stem.rsplit("-", 1)[-1]
        labels = {RUN_LABEL: run_id}

        dataset = self._ensure_dataset(state, name, labels)
        self._ensure_import(state, dataset, location)
        pipeline = self._ensure_pipeline(state, dataset, name, labels, budget, model_type)
        finished = self._wait_pipeline(state, pipeline)
        model_name = finished.model_to_upload.name
        state.set("model", model_name)
        metadata_value = _to_python(finished, "training_task_metadata") or {}
        cost = (
            metadata_value.get("costMilliNodeHours") if isinstance(metadata_value, dict) else None
        )
        return TrainedModel(
            backend="vertex",
            resource=model_name,
            labels=tuple(location.labels),
            label_map=dict(location.label_map),
            display_name=name,
            metadata={
                "project": self.project,
                "location": self.location,
                "dataset": dataset,
                "training_pipeline": pipeline,
                "model_type": model_type,
                "budget_milli_node_hours": budget.milli_node_hours,
                "cost_milli_node_hours": None if cost is None else int(cost),
                "state_file": str(state.path),
            },
        )

    def _ensure_dataset(self, state: RunState, name: str, labels: dict[str, str]) -> str:
        def send() -> str:
            request = aip.CreateDatasetRequest(
                parent=self.parent,
                dataset=aip.Dataset(
                    display_name=name,
                    metadata_schema_uri=IMAGE_DATASET_METADATA_SCHEMA,
                    labels=labels,
                ),
            )
            future = self._rpc(
                self.dataset_client.create_dataset,
                f"creating dataset {name!r}",
                request=request,
            )
            return str(future.operation.name)

        value = self._create_once(
            state,
            "dataset",
            send,
            lambda: self._find_labelled(
                self.dataset_client.list_datasets, "dataset", labels[RUN_LABEL]
            ),
        )
        if _is_operation(value):
            operation = self._wait_operation(self.dataset_client, value, "dataset", state=state)
            value = str(aip.Dataset.deserialize(operation.response.value).name)
            state.set("dataset", value)
        return value

    def _ensure_import(self, state: RunState, dataset: str, location: DatasetLocation) -> None:
        if state.get("imported"):
            return

        def send() -> str:
            request = aip.ImportDataRequest(
                name=dataset,
                import_configs=[
                    aip.ImportDataConfig(
                        gcs_source=aip.GcsSource(uris=[location.import_file_uri]),
                        import_schema_uri=IMAGE_SINGLE_LABEL_IMPORT_SCHEMA,
                    )
                ],
            )
            future = self._rpc(
                self.dataset_client.import_data,
                f"importing {location.import_file_uri} into {dataset}",
                request=request,
            )
            return str(future.operation.name)

        # ImportData has no label to look up; a re-run re-sends it, which Vertex AI treats
        # as idempotent for the same import file (data items are deduplicated).
        operation = self._create_once(state, "import", send, None)
        self._wait_operation(self.dataset_client, operation, "import", state=state)
        state.set("imported", True)

    def _ensure_pipeline(
        self,
        state: RunState,
        dataset: str,
        name: str,
        labels: dict[str, str],
        budget: TrainingBudget,
        model_type: str,
    ) -> str:
        def send() -> str:
            pipeline = aip.TrainingPipeline(
                display_name=name,
                labels=labels,
                input_data_config=aip.InputDataConfig(
                    dataset_id=_resource_id(dataset),
                    filter_split=aip.FilterSplit(
                        training_filter=f"labels.{ML_USE_LABEL}=training",
                        validation_filter=f"labels.{ML_USE_LABEL}=validation",
                        test_filter=f"labels.{ML_USE_LABEL}=test",
                    ),
                ),
                training_task_definition=AUTOML_IMAGE_CLASSIFICATION_DEFINITION,
                model_to_upload=aip.Model(display_name=name, labels=labels),
            )
            pipeline.training_task_inputs = _value(
                {
                    "multiLabel": False,
                    "modelType": model_type,
                    "budgetMilliNodeHours": budget.milli_node_hours,
                    "disableEarlyStopping": not budget.early_stopping,
                }
            )
            created = self._rpc(
                self.pipeline_client.create_training_pipeline,
                f"creating training pipeline {name!r}",
                request=aip.CreateTrainingPipelineRequest(
                    parent=self.parent, training_pipeline=pipeline
                ),
            )
            return str(created.name)

        return self._create_once(
            state,
            "pipeline",
            send,
            lambda: self._find_labelled(
                self.pipeline_client.list_training_pipelines, "training pipeline", labels[RUN_LABEL]
            ),
        )

    def _wait_pipeline(self, state: RunState, name: str) -> aip.TrainingPipeline:
        started = time.monotonic()

        def check() -> aip.TrainingPipeline:
            pipeline: aip.TrainingPipeline = self._rpc(
                self.pipeline_client.get_training_pipeline,
                f"reading training pipeline {name}",
                retry=self.retry,
                request={"name": name},
            )
            state_name = aip.PipelineState(pipeline.state).name
            if state_name not in _TERMINAL:
                elapsed = time.monotonic() - started
                self._report("pipeline", f"{state_name} ({elapsed:.0f} s)")
                raise _StillRunning(name, state_name)
            return pipeline

        try:
            pipeline = self.poll.call(check)
        except _StillRunning as exc:
            raise TrainingError(
                f"training pipeline {name} is still {exc.state} after the polling limit; it "
                "keeps running on Vertex AI: re-run the same command to resume polling it",
                service="vertex",
                transient=True,
            ) from exc
        state_name = aip.PipelineState(pipeline.state).name
        self._report("pipeline", state_name)
        if pipeline.state != aip.PipelineState.PIPELINE_STATE_SUCCEEDED:
            # A finished failure is not a crash: the next run may start a new pipeline on the
            # same dataset, so forget this one.
            state.discard(["pipeline", "pipeline_pending"])
            message = pipeline.error.message or "no error message"
            raise TrainingError(
                f"training pipeline {name} ended {state_name}: {message}",
                service="vertex",
                status=code_pb2.Code.Name(pipeline.error.code) if pipeline.error.code else None,
            )
        return pipeline

    def cancel(self, pipeline: str) -> None:
        """Ask Vertex AI to cancel a training pipeline (it ends CANCELLED).

        Args:
            pipeline: ``projects/P/locations/L/trainingPipelines/T``.

        Raises:
            TrainingError: The service refused.
        """
        self._rpc(
            self.pipeline_client.cancel_training_pipeline,
            f"cancelling training pipeline {pipeline}",
            retry=self.retry,
            request={"name": pipeline},
        )

    # -- evaluation ------------------------------------------------------------------------

    def evaluate(self, model: TrainedModel, data: LabeledDataset | None = None) -> Evaluation:
        """Read the evaluation Vertex AI computed on the test split.

        Figures: ``auPrc`` and ``logLoss`` of the model evaluation, micro precision and
        recall from its ``confidenceMetrics`` at threshold 0.5, the confusion matrix (with
        the annotation specs' display names), per-label precision, recall, F1 and auPRC from
        the evaluation slices (dimension ``annotationSpec``), support from the matrix rows.
        A label the model knows but the matrix lacks gets a zero row and column.

        Args:
            model: A ``"vertex"`` model (``resource`` is the model's name).
            data: Ignored (the service evaluates on the ``test`` split of the import).

        Returns:
            The evaluation, labels in the user's names (``model.label_map``).

        Raises:
            TrainingError: The model does not exist or has no evaluation yet.
        """
        evaluations = list(
            self._rpc(
                self.model_client.list_model_evaluations,
                f"listing evaluations of {model.resource}",
                retry=self.retry,
                request={"parent": model.resource},
            )
        )
        if not evaluations:
            raise TrainingError(
                f"model {model.resource} has no evaluation yet; AutoML writes it when "
                "training ends",
                service="vertex",
            )
        evaluation = evaluations[0]
        metrics = _to_python(evaluation, "metrics") or {}
        slices = list(
            self._rpc(
                self.model_client.list_model_evaluation_slices,
                f"listing evaluation slices of {evaluation.name}",
                retry=self.retry,
                request={"parent": evaluation.name},
            )
        )
        slice_metrics: dict[str, dict[str, Any]] = {}
        for item in slices:
            if item.slice_.dimension == "annotationSpec":
                slice_metrics[item.slice_.value] = _to_python(item, "metrics") or {}
        return _evaluation_from_metrics(metrics, slice_metrics, model, source=str(evaluation.name))

    # -- deployment and prediction ---------------------------------------------------------

    def _deploy_state(self, model: str) -> RunState:
        return RunState.for_run(
            self.state_dir, "vertex", self.project, self.location, "deploy", model
        )

    def deploy(
        self,
        model: TrainedModel | str,
        *,
        min_replica_count: int = 1,
        max_replica_count: int = 1,
    ) -> VertexDeployment:
        """Create an endpoint and deploy ``model`` to it with automatic resources.

        Resumable like training: the endpoint and deploy operation names are recorded, so
        running it again returns the same deployment instead of a second endpoint.

        Args:
            model: The model or its resource name.
            min_replica_count: Replicas always up (default 1; each is billed per node
                hour).
            max_replica_count: Upper bound of autoscaling (default 1).

        Returns:
            The deployment (``created_endpoint`` is True).

        Raises:
            PredictionError: The model does not exist, or the deploy failed (server's
                message).
        """
        resource = model.resource if isinstance(model, TrainedModel) else model
        self._rpc(
            self.model_client.get_model,
            f"deploying model {resource}",
            error=PredictionError,
            retry=self.retry,
            request={"name": resource},
        )
        state = self._deploy_state(resource)
        run_id = state.path.stem.rsplit("-", 1)[-1]
        display = f"redditvision-{_resource_id(resource)}"

        def send_endpoint() -> str:
            future = self._rpc(
                self.endpoint_client.create_endpoint,
                f"creating an endpoint for {resource}",
                error=PredictionError,
                request=aip.CreateEndpointRequest(
                    parent=self.parent,
                    endpoint=aip.Endpoint(display_name=display, labels={RUN_LABEL: run_id}),
                ),
            )
            return str(future.operation.name)

        endpoint = self._create_once(
            state,
            "endpoint",
            send_endpoint,
            lambda: self._find_labelled(
                self.endpoint_client.list_endpoints, "endpoint", run_id, error=PredictionError
            ),
            error=PredictionError,
        )
        if _is_operation(endpoint):
            operation = self._wait_operation(
                self.endpoint_client, endpoint, "endpoint", error=PredictionError, state=state
            )
            endpoint = str(aip.Endpoint.deserialize(operation.response.value).name)
            state.set("endpoint", endpoint)

        def send_deploy() -> str:
            deployed = aip.DeployedModel(
                model=resource,
                display_name=display,
                automatic_resources=aip.AutomaticResources(
                    min_replica_count=min_replica_count, max_replica_count=max_replica_count
                ),
            )
            future = self._rpc(
                self.endpoint_client.deploy_model,
                f"deploying {resource} to {endpoint}",
                error=PredictionError,
                request=aip.DeployModelRequest(
                    endpoint=endpoint, deployed_model=deployed, traffic_split={"0": 100}
                ),
            )
            return str(future.operation.name)

        def find_deployed() -> str | None:
            current = self._rpc(
                self.endpoint_client.get_endpoint,
                f"reading endpoint {endpoint}",
                error=PredictionError,
                retry=self.retry,
                request={"name": endpoint},
            )
            for deployed in current.deployed_models:
                if deployed.model == resource:
                    return str(deployed.id)
            return None

        deployed_id = self._create_once(
            state, "deploy", send_deploy, find_deployed, error=PredictionError
        )
        if _is_operation(deployed_id):
            operation = self._wait_operation(
                self.endpoint_client, deployed_id, "deploy", error=PredictionError, state=state
            )
            response = aip.DeployModelResponse.deserialize(operation.response.value)
            deployed_id = str(response.deployed_model.id)
            state.set("deploy", deployed_id)
        return VertexDeployment(
            endpoint=endpoint, deployed_model_id=deployed_id, model=resource, created_endpoint=True
        )

    def undeploy(
        self, deployment: VertexDeployment, *, delete_endpoint: bool | None = None
    ) -> None:
        """Undeploy a deployed model and, when this backend created it, delete the endpoint.

        Args:
            deployment: What :meth:`deploy` returned (or one built from an endpoint name and
                deployed model id).
            delete_endpoint: Delete the endpoint afterwards (default
                ``deployment.created_endpoint``).

        Raises:
            PredictionError: The service refused (the message names the endpoint, which
                may still be billed). An endpoint that no longer exists is not an error:
                there is nothing left to undeploy.
        """
        try:
            endpoint = self._rpc(
                self.endpoint_client.get_endpoint,
                f"reading endpoint {deployment.endpoint}",
                error=PredictionError,
                retry=self.retry,
                request={"name": deployment.endpoint},
            )
        except PredictionError as exc:
            if exc.status != "NOT_FOUND":
                raise
            self._report("undeploy", f"{deployment.endpoint} no longer exists")
            if deployment.model:
                self._deploy_state(deployment.model).clear()
            return
        if any(d.id == deployment.deployed_model_id for d in endpoint.deployed_models):
            future = self._rpc(
                self.endpoint_client.undeploy_model,
                f"undeploying {deployment.deployed_model_id} from {deployment.endpoint}",
                error=PredictionError,
                request=aip.UndeployModelRequest(
                    endpoint=deployment.endpoint,
                    deployed_model_id=deployment.deployed_model_id,
                ),
            )
            self._wait_operation(
                self.endpoint_client, future.operation.name, "undeploy", error=PredictionError
            )
            self._report("undeploy", f"undeployed {deployment.deployed_model_id}")
        delete = deployment.created_endpoint if delete_endpoint is None else delete_endpoint
        if delete:
            future = self._rpc(
                self.endpoint_client.delete_endpoint,
                f"deleting endpoint {deployment.endpoint}",
                error=PredictionError,
                request={"name": deployment.endpoint},
            )
            self._wait_operation(
                self.endpoint_client, future.operation.name, "delete", error=PredictionError
            )
            self._report("undeploy", f"deleted {deployment.endpoint}")
        if deployment.model:
            self._deploy_state(deployment.model).clear()

    def undeploy_endpoint(
        self,
        endpoint: str,
        *,
        deployed_model_id: str | None = None,
        delete_endpoint: bool | None = None,
    ) -> tuple[list[VertexDeployment], bool]:
        """Undeploy one or every model of an endpoint, and delete it when asked.

        Args:
            endpoint: ``projects/P/locations/L/endpoints/E``.
            deployed_model_id: The deployed model to take down, or None for all of them.
            delete_endpoint: Delete the endpoint once empty; default: when it carries the
                ``redditvision-run`` label (:meth:`deploy` created it).

        Returns:
            The deployments taken down, and whether the endpoint was deleted.

        Raises:
            PredictionError: The endpoint or deployed model does not exist, or the service
                refused.
        """
        current = self._rpc(
            self.endpoint_client.get_endpoint,
            f"reading endpoint {endpoint}",
            error=PredictionError,
            retry=self.retry,
            request={"name": endpoint},
        )
        targets = [
            d
            for d in current.deployed_models
            if deployed_model_id is None or d.id == deployed_model_id
        ]
        if deployed_model_id is not None and not targets:
            raise PredictionError(
                f"endpoint {endpoint} has no deployed model {deployed_model_id}; deployed: "
                f"{', '.join(d.id for d in current.deployed_models) or 'none'}",
                service="vertex",
                status="NOT_FOUND",
            )
        done = []
        for deployed in targets:
            deployment = VertexDeployment(
                endpoint=endpoint, deployed_model_id=str(deployed.id), model=str(deployed.model)
            )
            self.undeploy(deployment, delete_endpoint=False)
            done.append(deployment)
        left = len(current.deployed_models) - len(targets)
        delete = RUN_LABEL in current.labels if delete_endpoint is None else delete_endpoint
        deleted = False
        if delete and left == 0:
            future = self._rpc(
                self.endpoint_client.delete_endpoint,
                f"deleting endpoint {endpoint}",
                error=PredictionError,
                request={"name": endpoint},
            )
            self._wait_operation(
                self.endpoint_client, future.operation.name, "delete", error=PredictionError
            )
            deleted = True
        return done, deleted

    def open_predictor(self, model: TrainedModel, *, deploy: bool = True) -> VertexPredictor:
        """Open a predictor for a model or an endpoint.

        ``model.resource`` may be an endpoint name (``.../endpoints/E``): predictions go
        there and nothing is deployed. For a model name, an existing deployment of the model
        is used when there is one; otherwise, with ``deploy=True``, the model is deployed to
        a new endpoint that the predictor undeploys and deletes on close.

        Args:
            model: A ``"vertex"`` model handle.
            deploy: Deploy when the model is not deployed yet (default True).

        Returns:
            The predictor.

        Raises:
            PredictionError: The model does not exist, or is not deployed and
                ``deploy=False`` (run ``redditvision deploy``).
        """
        if "/endpoints/" in model.resource:
            return VertexPredictor(self, endpoint=model.resource, model=model, deployment=None)
        found = self._rpc(
            self.model_client.get_model,
            f"opening model {model.resource}",
            error=PredictionError,
            retry=self.retry,
            request={"name": model.resource},
        )
        if found.deployed_models:
            ref = found.deployed_models[0]
            return VertexPredictor(self, endpoint=ref.endpoint, model=model, deployment=None)
        if not deploy:
            raise PredictionError(
                f"model {model.resource} is not deployed; pass deploy=True or run "
                "`redditvision deploy --model ...` first",
                service="vertex",
            )
        deployment = self.deploy(model)
        return VertexPredictor(
            self, endpoint=deployment.endpoint, model=model, deployment=deployment
        )

    def predict_endpoint(
        self,
        endpoint: str,
        image: bytes,
        *,
        confidence_threshold: float = 0.0,
        max_predictions: int | None = None,
        retry: RetryArg = DEFAULT,
        timeout: float | None = None,
    ) -> list[tuple[str, float]]:
        """Ask an endpoint about one image (one instance per request, as AutoML image allows).

        Args:
            endpoint: ``projects/P/locations/L/endpoints/E``.
            image: Encoded bytes; re-encoded when over the 1.5 MB online limit.
            confidence_threshold: ``confidenceThreshold`` parameter, in ``[0, 1]``.
            max_predictions: ``maxPredictions`` parameter, or None for the service default
                (10).
            retry: RPC retry (default the backend's; RESOURCE_EXHAUSTED and UNAVAILABLE
                are retried with backoff, then raised).
            timeout: Seconds (default ``predict_timeout``).

        Returns:
            ``(service label, confidence)`` pairs as the service ranked them.

        Raises:
            PredictionError: The image is unreadable, or the service refused (message,
                gRPC status and retry-after kept).
        """
        content = base64.b64encode(fit_online_limit(image)).decode("ascii")
        request = aip.PredictRequest(endpoint=endpoint)
        # proto-plus quirk: repeated Value fields must be filled with extend.
        request.instances.extend([{"content": content}])
        parameters: dict[str, Any] = {"confidenceThreshold": confidence_threshold}
        if max_predictions is not None:
            parameters["maxPredictions"] = max_predictions
        request.parameters = _value(parameters)
        response = self._rpc(
            self.prediction_client.predict,
            f"predicting with {endpoint}",
            error=PredictionError,
            retry=resolve_retry(retry, self.retry),
            timeout=timeout or self.predict_timeout,
            request=request,
        )
        pb = aip.PredictResponse.pb(response)
        results: list[tuple[str, float]] = []
        for prediction in pb.predictions:
            body = json_format.MessageToDict(prediction)
            names = body.get("displayNames", [])
            scores = body.get("confidences", [])
            results.extend((str(n), float(s)) for n, s in zip(names, scores, strict=False))
        return results

    # -- batch prediction ------------------------------------------------------------------

    def batch_predict(
        self,
        model: TrainedModel | str,
        *,
        instances_uri: str,
        output_uri_prefix: str,
        confidence_threshold: float = 0.0,
        max_predictions: int | None = None,
        display_name: str | None = None,
    ) -> VertexBatchPrediction:
        """Run a batch prediction job over a JSONL instances file and wait for it.

        The model need not be deployed; the job is billed per node hour while it runs.
        Resumable like training: the job name is recorded before waiting and a lost answer
        is looked up by its ``redditvision-run`` label.

        Args:
            model: The model or its resource name.
            instances_uri: ``gs://.../instances.jsonl`` as :func:`batch_instances` writes
                it (upload it first).
            output_uri_prefix: ``gs://`` folder under which Vertex AI writes its results.
            confidence_threshold: ``confidenceThreshold`` parameter.
            max_predictions: ``maxPredictions`` parameter (service default 10).
            display_name: The job's name (default ``"redditvision-batch-<model id>"``).

        Returns:
            The finished job.

        Raises:
            ConfigError: No ``job_client`` was given, or a URI is not ``gs://``.
            PredictionError: The job failed, was cancelled or expired (server's message).
        """
        if self.job_client is None:
            raise ConfigError(
                "batch prediction needs job_client=aiplatform_v1.JobServiceClient(...) "
                "(from_env builds it)"
            )
        for uri in (instances_uri, output_uri_prefix):
            if not uri.startswith("gs://"):
                raise ConfigError(f"batch prediction reads and writes gs:// only, got {uri}")
        resource = model.resource if isinstance(model, TrainedModel) else model
        name = display_name or f"redditvision-batch-{_resource_id(resource)}"
        state = RunState.for_run(
            self.state_dir,
            "vertex",
            self.project,
            self.location,
            "batch",
            resource,
            instances_uri,
            output_uri_prefix,
        )
        run_id = state.path.stem.rsplit("-", 1)[-1]
        parameters: dict[str, Any] = {"confidenceThreshold": confidence_threshold}
        if max_predictions is not None:
            parameters["maxPredictions"] = max_predictions

        def send() -> str:
            job = aip.BatchPredictionJob(
                display_name=name,
                model=resource,
                labels={RUN_LABEL: run_id},
                input_config=aip.BatchPredictionJob.InputConfig(
                    instances_format="jsonl",
                    gcs_source=aip.GcsSource(uris=[instances_uri]),
                ),
                output_config=aip.BatchPredictionJob.OutputConfig(
                    predictions_format="jsonl",
                    gcs_destination=aip.GcsDestination(output_uri_prefix=output_uri_prefix),
                ),
            )
            job.model_parameters = _value(parameters)
            created = self._rpc(
                self.job_client.create_batch_prediction_job,
                f"creating batch prediction job {name!r}",
                error=PredictionError,
                request=aip.CreateBatchPredictionJobRequest(
                    parent=self.parent, batch_prediction_job=job
                ),
            )
            return str(created.name)

        job_name = self._create_once(
            state,
            "batch",
            send,
            lambda: self._find_labelled(
                self.job_client.list_batch_prediction_jobs,
                "batch prediction job",
                run_id,
                error=PredictionError,
            ),
            error=PredictionError,
        )

        def check() -> Any:
            job = self._rpc(
                self.job_client.get_batch_prediction_job,
                f"reading batch prediction job {job_name}",
                error=PredictionError,
                retry=self.retry,
                request={"name": job_name},
            )
            job_state = aip.JobState(job.state).name
            if job_state not in _BATCH_TERMINAL:
                self._report("batch", job_state)
                raise _StillRunning(job_name, job_state)
            return job

        try:
            job = self.poll.call(check)
        except _StillRunning as exc:
            raise PredictionError(
                f"batch prediction job {job_name} is still {exc.state} after the polling "
                "limit; re-run the same call to resume polling it",
                service="vertex",
                transient=True,
            ) from exc
        job_state = aip.JobState(job.state).name
        self._report("batch", job_state)
        if job_state not in {"JOB_STATE_SUCCEEDED", "JOB_STATE_PARTIALLY_SUCCEEDED"}:
            state.discard(["batch", "batch_pending"])
            raise PredictionError(
                f"batch prediction job {job_name} ended {job_state}: "
                f"{job.error.message or 'no error message'}",
                service="vertex",
                status=code_pb2.Code.Name(job.error.code) if job.error.code else None,
            )
        return VertexBatchPrediction(
            job=job_name,
            state=job_state,
            output_directory=str(job.output_info.gcs_output_directory),
            successful_count=int(job.completion_stats.successful_count),
            failed_count=int(job.completion_stats.failed_count),
        )

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the clients' channels when this backend built them; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._owns_clients:
            for client in (
                self.dataset_client,
                self.pipeline_client,
                self.model_client,
                self.endpoint_client,
                self.prediction_client,
                self.job_client,
            ):
                if client is not None:
                    client.transport.close()


class VertexPredictor:
    """Online predictions from a Vertex AI endpoint; undeploys on close what it deployed.

    Built by :meth:`VertexAutoMLBackend.open_predictor`.

    Args:
        backend: The backend whose prediction client to use.
        endpoint: The endpoint name.
        model: The model handle (its ``label_map`` names the labels).
        deployment: The deployment this predictor made, undone on :meth:`close`; None when
            it uses an existing one.
    """

    def __init__(
        self,
        backend: VertexAutoMLBackend,
        *,
        endpoint: str,
        model: TrainedModel,
        deployment: VertexDeployment | None,
    ) -> None:
        self.backend = backend
        self.endpoint = endpoint
        self.model = model
        self.deployment = deployment
        self._closed = False

    def __repr__(self) -> str:
        return f"VertexPredictor(endpoint={self.endpoint!r}, owns={self.deployment is not None})"

    def predict(
        self,
        images: Sequence[bytes],
        *,
        confidence_threshold: float = 0.0,
        max_predictions: int | None = None,
    ) -> list[list[Prediction]]:
        """Predict labels for encoded images, one request per image.

        Args:
            images: Encoded image bytes.
            confidence_threshold: Drop predictions below this (sent as
                ``confidenceThreshold``).
            max_predictions: Keep at most this many (``maxPredictions``; default: every
                label the model knows, or the service's 10).

        Returns:
            One list per image, best first, labels in the user's names.

        Raises:
            PredictionError: The predictor is closed, an image is unreadable, or the
                endpoint failed.
        """
        if self._closed:
            raise PredictionError("this Vertex AI predictor is closed")
        limit = max_predictions or (len(self.model.labels) or None)
        results: list[list[Prediction]] = []
        for image in images:
            pairs = self.backend.predict_endpoint(
                self.endpoint,
                image,
                confidence_threshold=confidence_threshold,
                max_predictions=limit,
            )
            predictions = [
                Prediction(
                    label=self.model.label_map.get(name, name), score=score, model_label=name
                )
                for name, score in pairs
                if score >= confidence_threshold
            ]
            predictions.sort(key=lambda p: p.score, reverse=True)
            results.append(predictions[:limit] if limit else predictions)
        return results

    def close(self) -> None:
        """Undeploy and delete what this predictor deployed; safe to call twice.

        Raises:
            PredictionError: Undeploying failed: the endpoint named in the message may
                still be billed; run ``redditvision undeploy``.
        """
        if self._closed:
            return
        self._closed = True
        if self.deployment is not None:
            self.backend.undeploy(self.deployment)


def _pick_threshold(curve: Sequence[Mapping[str, Any]], at: float = 0.5) -> Mapping[str, Any]:
    if not curve:
        return {}
    return min(curve, key=lambda point: abs(float(point.get("confidenceThreshold", 0.0)) - at))


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _evaluation_from_metrics(
    metrics: Mapping[str, Any],
    slice_metrics: Mapping[str, Mapping[str, Any]],
    model: TrainedModel,
    *,
    source: str,
) -> Evaluation:
    """Convert Vertex AI classification metrics (and slices) into an Evaluation."""
    matrix = metrics.get("confusionMatrix") or {}
    spec_names = [str(spec.get("displayName", "")) for spec in matrix.get("annotationSpecs", [])]
    rows = [[round(float(v)) for v in row] for row in matrix.get("rows", [])]
    known = list(spec_names)
    extra = sorted((set(model.labels) | set(slice_metrics)) - set(known))
    if extra:
        logger.warning(
            "labels %s are missing from the confusion matrix of %s; they get zero rows",
            ", ".join(extra),
            source,
        )
    labels = known + extra
    size = len(labels)
    full = [[0] * size for _ in range(size)]
    for i, row in enumerate(rows[: len(known)]):
        for j, count in enumerate(row[: len(known)]):
            full[i][j] = count
    per_label: list[LabelMetrics] = []
    thresholds: list[ThresholdMetrics] = []
    user = {label: model.label_map.get(label, label) for label in labels}
    for i, label in enumerate(labels):
        support = sum(full[i])
        predicted = sum(full[r][i] for r in range(size))
        data = slice_metrics.get(label)
        point = _pick_threshold((data or {}).get("confidenceMetrics", []))
        if point:
            precision = float(point.get("precision", 0.0))
            recall = float(point.get("recall", 0.0))
            f1 = float(point.get("f1Score", _f1(precision, recall)))
        else:
            precision = full[i][i] / predicted if predicted else 0.0
            recall = full[i][i] / support if support else 0.0
            f1 = _f1(precision, recall)
        au_prc = data.get("auPrc") if data else None
        per_label.append(
            LabelMetrics(
                label=user[label],
                precision=precision,
                recall=recall,
                f1=f1,
                support=support,
                au_prc=None if au_prc is None else float(au_prc),
            )
        )
        for curve_point in (data or {}).get("confidenceMetrics", []):
            thresholds.append(_threshold(curve_point, user[label]))
    for curve_point in metrics.get("confidenceMetrics", []):
        thresholds.append(_threshold(curve_point, None))
    total = sum(sum(row) for row in full)
    accuracy = sum(full[i][i] for i in range(size)) / total if total else None
    overall = _pick_threshold(metrics.get("confidenceMetrics", []))
    micro_precision = float(overall.get("precision", accuracy or 0.0))
    micro_recall = float(overall.get("recall", accuracy or 0.0))
    n = len(per_label) or 1
    au_prc_value = metrics.get("auPrc")
    log_loss = metrics.get("logLoss")
    return Evaluation(
        labels=tuple(user[label] for label in labels),
        per_label=tuple(per_label),
        confusion_matrix=tuple(tuple(row) for row in full),
        accuracy=accuracy,
        macro_precision=sum(m.precision for m in per_label) / n,
        macro_recall=sum(m.recall for m in per_label) / n,
        macro_f1=sum(m.f1 for m in per_label) / n,
        micro_precision=micro_precision,
        micro_recall=micro_recall,
        micro_f1=float(overall.get("f1Score", _f1(micro_precision, micro_recall))),
        au_prc=None if au_prc_value is None else float(au_prc_value),
        log_loss=None if log_loss is None else float(log_loss),
        thresholds=tuple(thresholds),
        evaluated_items=total,
        source=source,
    )


def _threshold(point: Mapping[str, Any], label: str | None) -> ThresholdMetrics:
    precision = float(point.get("precision", 0.0))
    recall = float(point.get("recall", 0.0))
    return ThresholdMetrics(
        confidence_threshold=float(point.get("confidenceThreshold", 0.0)),
        precision=precision,
        recall=recall,
        f1=float(point.get("f1Score", _f1(precision, recall))),
        label=label,
    )
