"""Training on Vertex AI: dataset, import, training pipeline, resumed by name.

1. ``DatasetService.CreateDataset`` with the image metadata schema, then ``ImportData`` of
   the dataset location's import file (single-label classification schema);
2. ``PipelineService.CreateTrainingPipeline`` with the AutoML image classification task
   definition, a budget in milli node hours and a filter split on the
   ``aiplatform.googleapis.com/ml_use`` label, so the ``training|validation|test`` column
   of the import file is honoured. ``CreateTrainingPipeline`` is not a long-running
   operation, so ``GetTrainingPipeline`` is polled (:func:`redditvision.backends._lro.poll`)
   until a terminal state.

Every create records its name in the run's state file before waiting, and labels the
resource with ``redditvision-run=<run id>`` so that a create whose answer was lost is found
instead of being sent again.
"""

from __future__ import annotations

import time
from typing import Any

import attrs
from google.cloud import aiplatform_v1 as aip
from google.protobuf import json_format, struct_pb2
from google.rpc import code_pb2

from redditvision.backends._lro import check_budget, forget, is_operation, poll
from redditvision.backends._state import RunState
from redditvision.backends.vertex._client import VertexClient
from redditvision.backends.vertex._limits import (
    AUTOML_IMAGE_CLASSIFICATION_DEFINITION,
    IMAGE_DATASET_METADATA_SCHEMA,
    IMAGE_SINGLE_LABEL_IMPORT_SCHEMA,
    IMPORT_FORMATS,
    ML_USE_LABEL,
    MODEL_TYPE_BUDGETS,
    RUN_LABEL,
    SERVICE,
    normalize_model_type,
)
from redditvision.errors import ConfigError, TrainingError
from redditvision.models import DatasetLocation, LabeledDataset, TrainedModel, TrainingBudget

__all__ = ["TrainingMixin", "resource_id", "to_python", "value"]

_TERMINAL = frozenset(
    {"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"}
)


def to_python(message: Any, field: str) -> Any:
    """Return a ``google.protobuf.Value``/``Struct`` field of a proto-plus message as Python."""
    pb = type(message).pb(message)
    return json_format.MessageToDict(getattr(pb, field))


def value(obj: Any) -> struct_pb2.Value:
    """Return ``obj`` (JSON-compatible) as a ``google.protobuf.Value``."""
    return json_format.ParseDict(obj, struct_pb2.Value())


def resource_id(name: str) -> str:
    """Return the last part of a resource name (``.../datasets/123`` -> ``"123"``)."""
    return name.rstrip("/").rsplit("/", 1)[-1]


class TrainingMixin(VertexClient):
    """Training methods of :class:`~redditvision.backends.vertex.VertexAutoMLBackend`."""

    def _check_location(self, data: LabeledDataset | DatasetLocation) -> DatasetLocation:
        """Return the location with its Vertex AI import file as the main one."""
        if not isinstance(data, DatasetLocation):
            raise ConfigError(
                "Vertex AI trains from a dataset written to Cloud Storage: write it with "
                "GcsDatasetWriter (import format vertex_csv) and pass the DatasetLocation"
            )
        if data.import_format not in IMPORT_FORMATS:
            for kind in IMPORT_FORMATS:
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
        check_budget(
            budget.milli_node_hours,
            model_type=model_type,
            budgets=MODEL_TYPE_BUDGETS,
            service="Vertex AI",
            field="budgetMilliNodeHours",
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
            SERVICE,
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
        metadata_value = to_python(finished, "training_task_metadata") or {}
        cost = (
            metadata_value.get("costMilliNodeHours") if isinstance(metadata_value, dict) else None
        )
        return TrainedModel(
            backend=self.name,
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
        if is_operation(value):
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
                    dataset_id=resource_id(dataset),
                    filter_split=aip.FilterSplit(
                        training_filter=f"labels.{ML_USE_LABEL}=training",
                        validation_filter=f"labels.{ML_USE_LABEL}=validation",
                        test_filter=f"labels.{ML_USE_LABEL}=test",
                    ),
                ),
                training_task_definition=AUTOML_IMAGE_CLASSIFICATION_DEFINITION,
                model_to_upload=aip.Model(display_name=name, labels=labels),
            )
            pipeline.training_task_inputs = value(
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

        def check() -> aip.TrainingPipeline | None:
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
                return None
            return pipeline

        pipeline = poll(
            check,
            policy=self.poll,
            what=f"training pipeline {name}",
            error=TrainingError,
            service=SERVICE,
        )
        state_name = aip.PipelineState(pipeline.state).name
        self._report("pipeline", state_name)
        if pipeline.state != aip.PipelineState.PIPELINE_STATE_SUCCEEDED:
            # A finished failure is not a crash: the next run may start a new pipeline on the
            # same dataset, so forget this one.
            forget(state, ["pipeline", "pipeline_pending"])
            message = pipeline.error.message or "no error message"
            raise TrainingError(
                f"training pipeline {name} ended {state_name}: {message}",
                service=SERVICE,
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
