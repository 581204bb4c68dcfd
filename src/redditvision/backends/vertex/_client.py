"""The Vertex AI client plumbing shared by every concern of the backend.

:class:`VertexClient` holds the six GAPIC clients of ``google.cloud.aiplatform_v1``, the
project and region, the retry and polling policies, and the three helpers every concern
uses: :meth:`~VertexClient._rpc` (one call with ``retry=None`` handed to the client, our
:class:`~redditvision.retry.RetryPolicy` around it, errors translated by
:func:`~redditvision._google.map_google_errors`), :meth:`~VertexClient._create_once` and
:meth:`~VertexClient._wait_operation` (the shared create-once and poll loop of
:mod:`redditvision.backends._lro`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, Self, TypeVar

from google.auth import exceptions as auth_exceptions
from google.cloud import aiplatform_v1 as aip
from google.longrunning import operations_pb2
from google.rpc import code_pb2

from redditvision._closing import Closeable
from redditvision._google import map_google_errors
from redditvision.backends._lro import DEFAULT_POLL, create_once, forget, poll
from redditvision.backends._protocol import BackendOptions
from redditvision.backends._state import RunState
from redditvision.backends.vertex._limits import RUN_LABEL, SERVICE, normalize_model_type
from redditvision.errors import ConfigError, RedditVisionError, TrainingError
from redditvision.models import TrainedModel
from redditvision.retry import (
    DEFAULT,
    RetryArg,
    RetryPolicy,
    call_with_retry,
    is_transient,
    resolve_retry,
)

__all__ = ["DEFAULT_POLL", "DEFAULT_RETRY", "VertexClient"]

logger = logging.getLogger("redditvision.backends.vertex")

T = TypeVar("T")

_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

DEFAULT_RETRY = RetryPolicy(on=is_transient, attempts=5, timeout=120.0)
"""RPC retry of idempotent calls (reads, predict): 5 attempts within 120 s, exponential
backoff from 0.5 s, honouring gRPC ``RetryInfo``."""


class VertexClient(Closeable):
    """The GAPIC clients and settings of :class:`~redditvision.backends.vertex.VertexAutoMLBackend`.

    See that class for the arguments.
    """

    name = SERVICE

    def __init__(
        self,
        *,
        dataset_client: aip.DatasetServiceClient,
        pipeline_client: aip.PipelineServiceClient,
        model_client: aip.ModelServiceClient,
        endpoint_client: aip.EndpointServiceClient,
        prediction_client: aip.PredictionServiceClient,
        job_client: aip.JobServiceClient | None = None,
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
    ) -> Self:
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

    @classmethod
    def from_options(cls, options: BackendOptions) -> Self:
        """Build the backend from the shared backend options (the registry's factory).

        Reads ``project`` (required), ``location``, ``state_dir``, ``api_endpoint``,
        ``insecure``, ``credentials``, ``model_type`` and ``on_step``; ``extra`` is passed
        to the constructor (``retry``, ``poll``, ``timeout``...).

        Args:
            options: The shared options.

        Returns:
            The backend, built with :meth:`from_env`.

        Raises:
            ConfigError: No project, or no Application Default Credentials.
        """
        if not options.project:
            raise ConfigError(
                "Vertex AI needs a Google Cloud project: --project or GOOGLE_CLOUD_PROJECT"
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
            credentials=options.credentials,
            progress=options.on_step,
            **kwargs,
        )

    def load(self, reference: str) -> TrainedModel:
        """Return the handle of a model or endpoint by its resource name (no request).

        Args:
            reference: ``projects/P/locations/L/models/M`` or ``.../endpoints/E``.

        Returns:
            ``TrainedModel(backend="vertex", resource=reference)``.
        """
        return TrainedModel(backend=self.name, resource=reference)

    # -- plumbing --------------------------------------------------------------------------

    def _report(self, step: str, message: str) -> None:
        logger.info("%s %s: %s", SERVICE, step, message)
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
            with map_google_errors(error, service=SERVICE, action=action):
                result = fn(**kwargs, retry=None, timeout=timeout or self.timeout)
            return result

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
        name; ``find`` looks the resource up by its run label after an answer was lost
        (see :func:`redditvision.backends._lro.create_once`).
        """
        return create_once(
            state,
            step,
            send,
            None if find is None else (lambda _sent_at: find()),
            error=error,
            service=SERVICE,
            report=self.progress,
        )

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

        def check() -> operations_pb2.Operation | None:
            operation: operations_pb2.Operation = self._rpc(
                client.get_operation,
                f"polling operation {name}",
                error=error,
                retry=self.retry,
                request={"name": name},
            )
            if not operation.done:
                self._report(step, f"waiting for {name}")
                return None
            return operation

        operation = poll(
            check, policy=self.poll, what=f"operation {name} ({step})", error=error, service=SERVICE
        )
        if operation.HasField("error"):
            status = code_pb2.Code.Name(operation.error.code)
            if state is not None:
                forget(state, [step, f"{step}_pending"])
            raise error(
                f"{step} operation {name} failed: {operation.error.message}",
                service=SERVICE,
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
                    client.transport.close()  # type: ignore[no-untyped-call]  # GAPIC transport
