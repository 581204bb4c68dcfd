"""Batch prediction on Vertex AI: ``JobService.CreateBatchPredictionJob``, resumed by name."""

from __future__ import annotations

from typing import Any

import attrs
from google.cloud import aiplatform_v1 as aip
from google.rpc import code_pb2

from redditvision.backends._lro import forget, poll
from redditvision.backends._state import RunState
from redditvision.backends.vertex._client import VertexClient
from redditvision.backends.vertex._limits import RUN_LABEL, SERVICE
from redditvision.backends.vertex._training import resource_id, value
from redditvision.errors import ConfigError, PredictionError
from redditvision.models import TrainedModel

__all__ = ["BatchMixin", "VertexBatchPrediction"]

_BATCH_TERMINAL = frozenset(
    {
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_PARTIALLY_SUCCEEDED",
        "JOB_STATE_FAILED",
        "JOB_STATE_CANCELLED",
        "JOB_STATE_EXPIRED",
    }
)


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


class BatchMixin(VertexClient):
    """Batch prediction of :class:`~redditvision.backends.vertex.VertexAutoMLBackend`."""

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
        job_client = self.job_client
        if job_client is None:
            raise ConfigError(
                "batch prediction needs job_client=aiplatform_v1.JobServiceClient(...) "
                "(from_env builds it)"
            )
        for uri in (instances_uri, output_uri_prefix):
            if not uri.startswith("gs://"):
                raise ConfigError(f"batch prediction reads and writes gs:// only, got {uri}")
        resource = model.resource if isinstance(model, TrainedModel) else model
        name = display_name or f"redditvision-batch-{resource_id(resource)}"
        state = RunState.for_run(
            self.state_dir,
            SERVICE,
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
            job.model_parameters = value(parameters)
            created = self._rpc(
                job_client.create_batch_prediction_job,
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
                job_client.list_batch_prediction_jobs,
                "batch prediction job",
                run_id,
                error=PredictionError,
            ),
            error=PredictionError,
        )

        def check() -> Any:
            job = self._rpc(
                job_client.get_batch_prediction_job,
                f"reading batch prediction job {job_name}",
                error=PredictionError,
                retry=self.retry,
                request={"name": job_name},
            )
            job_state = aip.JobState(job.state).name
            if job_state not in _BATCH_TERMINAL:
                self._report("batch", job_state)
                return None
            return job

        job = poll(
            check,
            policy=self.poll,
            what=f"batch prediction job {job_name}",
            error=PredictionError,
            service=SERVICE,
        )
        job_state = aip.JobState(job.state).name
        self._report("batch", job_state)
        if job_state not in {"JOB_STATE_SUCCEEDED", "JOB_STATE_PARTIALLY_SUCCEEDED"}:
            forget(state, ["batch", "batch_pending"])
            raise PredictionError(
                f"batch prediction job {job_name} ended {job_state}: "
                f"{job.error.message or 'no error message'}",
                service=SERVICE,
                status=code_pb2.Code.Name(job.error.code) if job.error.code else None,
            )
        return VertexBatchPrediction(
            job=job_name,
            state=job_state,
            output_directory=str(job.output_info.gcs_output_directory),
            successful_count=int(job.completion_stats.successful_count),
            failed_count=int(job.completion_stats.failed_count),
        )
