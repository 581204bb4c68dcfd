"""The Vertex AI AutoML backend: one class over the concerns of this package."""

from __future__ import annotations

from redditvision.backends.vertex._batch import BatchMixin
from redditvision.backends.vertex._evaluation import EvaluationMixin
from redditvision.backends.vertex._prediction import PredictionMixin
from redditvision.backends.vertex._training import TrainingMixin

__all__ = ["VertexAutoMLBackend"]


class VertexAutoMLBackend(TrainingMixin, EvaluationMixin, PredictionMixin, BatchMixin):
    """Train, evaluate, deploy and query AutoML image classification models on Vertex AI.

    Implements :class:`~redditvision.backends.Backend` and
    :class:`~redditvision.backends.Deployer`; registered as ``"vertex"``.

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
