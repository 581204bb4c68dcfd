"""The legacy AutoML v1 backend: :class:`LegacyAutoMLBackend` and its predictor.

Legacy AutoML v1 (``google.cloud.automl_v1``) behind :class:`~redditvision.AutoMLTrainer`.

.. warning::

   Google shut the legacy AutoML API down for Vision (AutoML Vision image classification)
   on 2024-03-31. Its successor is AutoML image classification in Vertex AI:
   use :class:`~redditvision.backends.vertex.VertexAutoMLBackend` for new work. This
   backend is kept for projects that still hold AutoML v1 resources, for other AutoML v1
   deployments that speak the same API, and because the design names it; every
   construction warns with :class:`AutoMLShutdownWarning`.

What it does, in the API's own terms:

* **dataset**: ``CreateDataset`` with ``ImageClassificationDatasetMetadata`` of
  ``classification_type=MULTICLASS`` (one label per image);
* **import**: ``ImportData`` from the dataset location's AutoML import file, a ``gs://`` CSV
  with rows ``TRAIN|VALIDATION|TEST|UNASSIGNED,gs://bucket/image.jpg,label``;
* **training**: ``CreateModel`` with ``ImageClassificationModelMetadata``
  (``train_budget_milli_node_hours``: 8,000-800,000 for model type ``cloud``, 1,000-100,000
  for the ``mobile-*`` types, per the field's API documentation);
* **evaluation**: ``ListModelEvaluations`` (its ``filter`` argument is required; ``""``
  lists the overall evaluation and one per label), converted to
  :class:`~redditvision.models.Evaluation`;
* **deploy**: ``DeployModel`` with ``ImageClassificationModelDeploymentMetadata.node_count``
  (1-100), and ``UndeployModel``;
* **predict**: ``PredictionService.Predict`` with one image per request and the
  ``score_threshold`` parameter, converted to :class:`~redditvision.models.Prediction`.

Every create (dataset, import, model, deploy) records the display name it uses and then
the operation name in a state file (:mod:`redditvision.backends._state`) before waiting; a
re-run after a crash or a timeout resumes polling that operation instead of creating
again. A create whose answer was lost (``DEADLINE_EXCEEDED``, ``UNAVAILABLE``) is looked
up by display name and among the location's operations, never re-sent blindly. Reads are
retried with the RPC :class:`~redditvision.retry.RetryPolicy`; long-running operations
are polled with a separate polling policy.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Self, TypeVar

from google.cloud import automl_v1
from google.rpc import code_pb2

from redditvision._closing import Closeable
from redditvision._google import map_google_errors
from redditvision.backends._lro import (
    DEFAULT_POLL,
    forget,
    poll,
)
from redditvision.backends._protocol import BackendOptions
from redditvision.backends._state import RunState
from redditvision.backends.automl._limits import (
    AUTOML_SHUTDOWN_NOTICE,
    MODEL_TYPE_BUDGETS,
    SERVICE,
    AutoMLShutdownWarning,
    normalize_model_type,
)
from redditvision.errors import (
    ConfigError,
    RedditVisionError,
    TrainingError,
)
from redditvision.models import (
    TrainedModel,
)
from redditvision.retry import (
    DEFAULT,
    RetryArg,
    RetryPolicy,
    call_with_retry,
    is_transient,
    resolve_retry,
)

__all__ = ["DEFAULT_AUTOML_POLL", "DEFAULT_AUTOML_RETRY", "AutoMLClient"]

logger = logging.getLogger("redditvision.backends.automl")

T = TypeVar("T")

_LOOKUP_SLACK_S = 300.0  # Clock skew allowed when matching a lost create's operation.

DEFAULT_AUTOML_RETRY = RetryPolicy(on=is_transient, attempts=5, timeout=120.0)
"""RPC retry of idempotent AutoML v1 calls (reads, predict): 5 attempts within 120 s, on
the transient statuses of :data:`~redditvision.retry.RETRY_GRPC_STATUSES`, honouring
``RetryInfo`` up to 120 s."""

DEFAULT_AUTOML_POLL = DEFAULT_POLL
"""Polling of long-running operations: the shared
:data:`~redditvision.backends._lro.DEFAULT_POLL` (5 s up to 120 s between polls, at most
6,000 polls and 7 days)."""


def _status_name(code: int) -> str:
    try:
        return str(code_pb2.Code.Name(code))
    except ValueError:
        return str(code)


class AutoMLClient(Closeable):
    """Clients, settings and plumbing of :class:`~redditvision.backends.automl.LegacyAutoMLBackend`.

    See that class for the arguments.
    """

    name = SERVICE

    def __init__(
        self,
        *,
        client: automl_v1.AutoMlClient,
        prediction_client: automl_v1.PredictionServiceClient,
        project: str,
        location: str = "us-central1",
        state_dir: str | os.PathLike[str] | None = None,
        retry: RetryArg = DEFAULT,
        poll: RetryPolicy | None = None,
        model_type: str = "cloud",
        node_count: int = 1,
        timeout: float | None = 60.0,
        progress: Callable[[str, str], None] | None = None,
        owns_clients: bool = False,
    ) -> None:
        warnings.warn(AUTOML_SHUTDOWN_NOTICE, AutoMLShutdownWarning, stacklevel=2)
        model_type = normalize_model_type(model_type)
        if model_type not in MODEL_TYPE_BUDGETS:
            raise ConfigError(
                f"unknown AutoML v1 model_type {model_type!r}; use one of "
                f"{', '.join(MODEL_TYPE_BUDGETS)}"
            )
        if not 1 <= node_count <= 100:
            raise ConfigError(f"node_count must be between 1 and 100, got {node_count}")
        self.client = client
        self.prediction_client = prediction_client
        self.project = project
        self.location = location
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.retry = resolve_retry(retry, DEFAULT_AUTOML_RETRY)
        self.poll = poll or DEFAULT_POLL
        self.model_type = model_type
        self.node_count = node_count
        self.timeout = timeout
        self.progress = progress
        self._owns_clients = owns_clients
        self._closed = False

    @classmethod
    def from_env(
        cls,
        project: str,
        location: str = "us-central1",
        *,
        api_endpoint: str | None = None,
        insecure: bool = False,
        state_dir: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """Build the backend with clients made the ecosystem's way.

        Credentials are Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS``
        or ``gcloud auth application-default login``).

        Args:
            project: Google Cloud project id.
            location: ``"us-central1"`` (default) or ``"eu"``.
            api_endpoint: ``host:port`` to talk to instead of ``automl.googleapis.com``
                (``eu-automl.googleapis.com`` for location ``"eu"``).
            insecure: Plaintext gRPC without credentials to ``api_endpoint`` (a local fake
                or emulator only; ``client_options`` with anonymous credentials would still
                open TLS).
            state_dir: See the class.
            **kwargs: Other arguments of the class (``retry``, ``poll``, ``node_count``,
                ``progress``...).

        Returns:
            The backend; it closes the clients' channels on :meth:`close`.

        Raises:
            ConfigError: ``insecure`` without ``api_endpoint``, or no credentials found.
        """
        endpoint = api_endpoint or (
            "eu-automl.googleapis.com" if location == "eu" else "automl.googleapis.com"
        )
        if insecure:
            if api_endpoint is None:
                raise ConfigError("insecure=True needs api_endpoint (a local fake or emulator)")
            import grpc

            def _transport(client_class: Any) -> Any:
                transport_class = client_class.get_transport_class("grpc")
                return transport_class(channel=grpc.insecure_channel(endpoint))

            client = automl_v1.AutoMlClient(transport=_transport(automl_v1.AutoMlClient))
            prediction_client = automl_v1.PredictionServiceClient(
                transport=_transport(automl_v1.PredictionServiceClient)
            )
        else:
            from google.auth import exceptions as auth_exceptions

            options = {"api_endpoint": endpoint}
            try:
                client = automl_v1.AutoMlClient(client_options=options)
                prediction_client = automl_v1.PredictionServiceClient(client_options=options)
            except auth_exceptions.DefaultCredentialsError as exc:
                raise ConfigError(
                    "no Google Cloud credentials found: run `gcloud auth "
                    "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
                ) from exc
        kwargs.setdefault("owns_clients", True)
        return cls(
            client=client,
            prediction_client=prediction_client,
            project=project,
            location=location,
            state_dir=state_dir,
            **kwargs,
        )

    @classmethod
    def from_options(cls, options: BackendOptions) -> Self:
        """Build the backend from the shared backend options (the registry's factory).

        Reads ``project`` (required), ``location``, ``state_dir``, ``api_endpoint``,
        ``insecure``, ``model_type`` and ``on_step``; ``extra`` is passed to the
        constructor (``node_count``, ``retry``, ``poll``...).

        Args:
            options: The shared options.

        Returns:
            The backend, built with :meth:`from_env` (it warns with
            :class:`AutoMLShutdownWarning`).

        Raises:
            ConfigError: No project, or no credentials.
        """
        if not options.project:
            raise ConfigError(
                "legacy AutoML needs a Google Cloud project: --project or GOOGLE_CLOUD_PROJECT"
            )
        kwargs: dict[str, Any] = dict(options.extra)
        if options.model_type is not None:
            kwargs["model_type"] = options.model_type
        return cls.from_env(
            options.project,
            options.location,
            api_endpoint=options.api_endpoint,
            insecure=options.insecure,
            state_dir=options.state_dir,
            progress=options.on_step,
            **kwargs,
        )

    def load(self, reference: str) -> TrainedModel:
        """Return the handle of a model by its resource name (no request).

        Args:
            reference: ``projects/P/locations/L/models/M``.

        Returns:
            ``TrainedModel(backend="automl", resource=reference)``.
        """
        return TrainedModel(backend=self.name, resource=reference)

    def __repr__(self) -> str:
        return (
            f"LegacyAutoMLBackend(project={self.project!r}, location={self.location!r}, "
            f"model_type={self.model_type!r})"
        )

    @property
    def parent(self) -> str:
        """``projects/{project}/locations/{location}``."""
        return f"projects/{self.project}/locations/{self.location}"

    # -- plumbing ------------------------------------------------------------------------

    def _call(
        self,
        fn: Callable[[], T],
        error_type: type[RedditVisionError],
        action: str,
        *,
        retry: RetryArg = DEFAULT,
    ) -> T:
        """Call an idempotent RPC with the RPC retry, translating Google errors."""

        def attempt() -> T:
            with map_google_errors(error_type, service=SERVICE, action=action):
                result = fn()
            return result

        return call_with_retry(resolve_retry(retry, self.retry), attempt)

    def _create(self, fn: Callable[[], T], error_type: type[RedditVisionError], action: str) -> T:
        """Send a create once (never retried), translating Google errors."""
        with map_google_errors(error_type, service=SERVICE, action=action):
            result = fn()
        return result

    def _report(self, step: str, message: str) -> None:
        logger.info("%s %s: %s", SERVICE, step, message)
        if self.progress is not None:
            self.progress(step, message)

    def _get_operation(self, name: str, error_type: type[RedditVisionError]) -> Any:
        operations = self.client.transport.operations_client
        return self._call(
            lambda: operations.get_operation(name, retry=None, timeout=self.timeout),
            error_type,
            f"reading operation {name}",
        )

    def _poll(self, name: str, stage: str, error_type: type[RedditVisionError]) -> Any:
        """Poll operation ``name`` with the polling policy until it is done.

        Returns:
            The finished ``operations_pb2.Operation`` (with a response or an error).

        Raises:
            error_type: The operation cannot be read, or it is still running after the
                polling policy gave up (transient: a re-run resumes it).
        """

        def poll_once() -> Any:
            operation = self._get_operation(name, error_type)
            progress: int | None = None
            if operation.metadata.value:
                metadata = automl_v1.OperationMetadata.deserialize(operation.metadata.value)
                progress = int(metadata.progress_percent) if metadata.progress_percent else None
            if not operation.done:
                percent = f", {progress}%" if progress is not None else ""
                self._report(stage, f"running{percent} ({name})")
                return None
            self._report(stage, f"done ({name})")
            return operation

        self._report(stage, f"waiting for {name}")
        return poll(
            poll_once,
            policy=self.poll,
            what=f"{stage} operation {name}",
            error=error_type,
            service=SERVICE,
        )

    def _wait(self, name: str, stage: str, error_type: type[RedditVisionError]) -> Any:
        """Poll operation ``name`` until done and raise its error when it ended with one.

        Returns:
            The finished ``operations_pb2.Operation`` with a response.

        Raises:
            error_type: As :meth:`_poll`, or the operation ended with an error (its status
                and message).
        """
        operation = self._poll(name, stage, error_type)
        self._raise_if_failed(operation, stage, error_type)
        return operation

    @staticmethod
    def _raise_if_failed(operation: Any, stage: str, error_type: type[RedditVisionError]) -> None:
        if operation.HasField("error"):
            status = _status_name(operation.error.code)
            raise error_type(
                f"{stage} operation {operation.name} failed: {operation.error.message or status}",
                service=SERVICE,
                status=status,
            )

    def _wait_step(self, state: RunState, operation: str, stage: str, key: str) -> Any:
        """Wait for a training step's operation; forget it when it ended with an error.

        A failed operation is final, so its record is dropped: the next run creates the
        step afresh (after the user fixed the cause) instead of polling the failure again.
        Any other error (still running, operation unreadable) keeps the record.
        """
        done = self._poll(operation, stage, TrainingError)
        if done.HasField("error"):
            forget(state, [f"{key}_operation", f"{key}_attempted_at"])
            self._raise_if_failed(done, stage, TrainingError)
        return done

    def _find_lost_operation(
        self, detail: str, since: float, known: Iterable[str], error_type: type[RedditVisionError]
    ) -> str | None:
        """Find the operation of a create whose answer was lost, among the location's."""
        operations = self.client.transport.operations_client
        found = self._call(
            lambda: list(
                operations.list_operations(self.parent, "", retry=None, timeout=self.timeout)
            ),
            error_type,
            f"listing operations of {self.parent}",
        )
        skip = set(known)
        candidates = []
        for operation in found:
            if operation.name in skip or not operation.metadata.value:
                continue
            metadata = automl_v1.OperationMetadata.deserialize(operation.metadata.value)
            if detail not in metadata:
                continue
            created = metadata.create_time
            created_s = created.timestamp() if created is not None else 0.0
            if created_s >= since - _LOOKUP_SLACK_S:
                candidates.append(operation.name)
        if len(candidates) > 1:
            raise error_type(
                f"the answer to a create was lost and {len(candidates)} matching operations "
                f"exist ({', '.join(candidates)}); check them in the console and remove the "
                "state file entry to start over",
                service=SERVICE,
            )
        return candidates[0] if candidates else None

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the clients' transports when this backend owns them; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if not self._owns_clients:
            return
        for client in (self.client, self.prediction_client):
            client.transport.close()  # type: ignore[no-untyped-call]  # GAPIC transport
