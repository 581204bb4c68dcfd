"""A stateful in-process fake of the Vertex AI services the Vertex backend uses.

It implements ``google.cloud.aiplatform.v1`` DatasetService, PipelineService, ModelService,
EndpointService, PredictionService and JobService (batch prediction) plus
``google.longrunning.Operations`` with the real proto messages of
``google-cloud-aiplatform``, on 127.0.0.1 (see :mod:`fakes.grpcbase`).

State: datasets (with imported items), training pipelines advancing QUEUED -> PENDING ->
RUNNING -> SUCCEEDED (or FAILED, scripted) one step per ``GetTrainingPipeline``, models with
an evaluation and one slice per label, endpoints with deployed models, and predictions
computed from the image bytes. Faults are scripted on :attr:`FakeVertex.server`
(``server.fail("GetTrainingPipeline", grpc.StatusCode.UNAVAILABLE, times=2)``) or with the
knobs below.

Use the :func:`vertex_fake` fixture (``pytest_plugins = ["fakes.vertex"]``) or
``with FakeVertex() as fake:``; build clients with :meth:`FakeVertex.clients` or point
``VertexAutoMLBackend.from_env(api_endpoint=fake.address, insecure=True)`` at it.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.cloud import aiplatform_v1 as aip
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2, json_format, struct_pb2

from fakes.grpcbase import FakeGrpcServer, RpcFault, insecure_client

__all__ = ["PREFIX", "FakeVertex", "vertex_fake"]

PREFIX = "google.cloud.aiplatform.v1"
IMAGE_METADATA_SCHEMA = "gs://google-cloud-aiplatform/schema/dataset/metadata/image_1.0.0.yaml"
CLASSIFICATION_METRICS_SCHEMA = (
    "gs://google-cloud-aiplatform/schema/modelevaluation/classification_metrics_1.0.0.yaml"
)
_ADVANCE = (
    aip.PipelineState.PIPELINE_STATE_QUEUED,
    aip.PipelineState.PIPELINE_STATE_PENDING,
    aip.PipelineState.PIPELINE_STATE_RUNNING,
)


def _value(obj: Any) -> struct_pb2.Value:
    return json_format.ParseDict(obj, struct_pb2.Value())


def _to_python(message: Any, field: str) -> Any:
    pb = type(message).pb(message)
    return json_format.MessageToDict(getattr(pb, field))


def _has_labels(labels: Any, filter_text: str) -> bool:
    """Evaluate a filter of ``labels.KEY=VALUE`` terms joined by AND (what the backend sends)."""
    if not filter_text:
        return True
    for term in filter_text.split(" AND "):
        key, _, value = term.strip().partition("=")
        if not key.startswith("labels."):
            raise RpcFault(grpc.StatusCode.INVALID_ARGUMENT, f"unsupported filter {term!r}")
        if labels.get(key[len("labels.") :]) != value.strip().strip('"'):
            return False
    return True


def _import_file_labels(uri: str, text: str) -> set[str]:
    """Check an import file as Vertex AI does and return its labels (RpcFault when bad)."""
    labels: set[str] = set()
    uses = {"training", "validation", "test"}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if uri.endswith(".jsonl"):
            row = json.loads(line)
            image = row.get("imageGcsUri", "")
            label = row.get("classificationAnnotation", {}).get("displayName", "")
        else:
            cells = [cell.strip() for cell in line.split(",")]
            if cells[0].lower() in uses:
                cells = cells[1:]
            image, label = [*cells, "", ""][:2]
        if not image.startswith("gs://") or not label:
            raise RpcFault(
                grpc.StatusCode.INVALID_ARGUMENT, f"{uri}: line {number} is not a valid row"
            )
        labels.add(label)
    return labels


class FakeVertex:
    """The fake Vertex AI: a started server, its state and the knobs that script it.

    Attributes:
        server: The :class:`~fakes.grpcbase.FakeGrpcServer` (calls, faults, operations).
        labels: The labels a trained model knows (its evaluation's annotation specs).
        pipeline_running_polls: ``GetTrainingPipeline`` calls spent RUNNING before the end.
        pipeline_error: When set, pipelines end FAILED with this message.
        import_error: When set, import operations finish with INVALID_ARGUMENT and it.
        lro_polls: ``GetOperation`` calls before an operation is done (0: done at once).
        drop_from_confusion_matrix: A label left out of the evaluation's confusion matrix.
        datasets, pipelines, models, endpoints: The stored resources by name.
        evaluations: Model name -> (evaluation, slices).
        predict_sizes: Base64 ``content`` lengths of every instance predicted.
        import_reader: When set, ``import_reader(gs_uri) -> text`` reads an import file
            (e.g. from a Cloud Storage emulator): the import then checks each row the way
            Vertex AI does (``[ML_USE,]gs://...,LABEL`` or JSONL) and the trained model
            knows the labels found, instead of :attr:`labels`.
        dataset_labels: Dataset name -> labels read from its import files.
    """

    def __init__(self, *, project: str = "test-project", location: str = "us-central1") -> None:
        self.project = project
        self.location = location
        self.parent = f"projects/{project}/locations/{location}"
        self.server = FakeGrpcServer()
        self._lock = threading.RLock()
        self._ids = itertools.count(1000)
        self.labels: list[str] = ["bmw_m3", "bmw_x5", "bmw_z4"]
        self.pipeline_running_polls = 2
        self.pipeline_error: str | None = None
        self.import_error: str | None = None
        self.lro_polls = 1
        self.drop_from_confusion_matrix: str | None = None
        self.datasets: dict[str, aip.Dataset] = {}
        self.imports: dict[str, list[str]] = {}
        self.pipelines: dict[str, aip.TrainingPipeline] = {}
        self._pipeline_polls: dict[str, int] = {}
        self.models: dict[str, aip.Model] = {}
        self.evaluations: dict[str, tuple[aip.ModelEvaluation, list[aip.ModelEvaluationSlice]]] = {}
        self.endpoints: dict[str, aip.Endpoint] = {}
        self.predict_sizes: list[int] = []
        self.batch_jobs: dict[str, aip.BatchPredictionJob] = {}
        self.batch_error: str | None = None
        self.import_reader: Callable[[str], str] | None = None
        self.dataset_labels: dict[str, list[str]] = {}
        self._register()

    # -- lifecycle and clients -----------------------------------------------------------

    @property
    def address(self) -> str:
        """``"127.0.0.1:PORT"``."""
        return self.server.address

    def start(self) -> FakeVertex:
        """Start serving."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.server.stop()

    def __enter__(self) -> FakeVertex:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def clients(self) -> dict[str, Any]:
        """Real aiplatform_v1 GAPIC clients over insecure channels to this fake.

        Returns:
            Keyword arguments for ``VertexAutoMLBackend``: ``dataset_client``,
            ``pipeline_client``, ``model_client``, ``endpoint_client``, ``prediction_client``.
        """
        return {
            "dataset_client": insecure_client(aip.DatasetServiceClient, self.address),
            "pipeline_client": insecure_client(aip.PipelineServiceClient, self.address),
            "model_client": insecure_client(aip.ModelServiceClient, self.address),
            "endpoint_client": insecure_client(aip.EndpointServiceClient, self.address),
            "prediction_client": insecure_client(aip.PredictionServiceClient, self.address),
            "job_client": insecure_client(aip.JobServiceClient, self.address),
        }

    def calls(self, method: str) -> int:
        """Number of calls received for a short method name, e.g. ``"CreateTrainingPipeline"``."""
        return len(self.server.calls_to(method))

    def _new_id(self) -> int:
        return next(self._ids)

    def add_model(self, labels: list[str] | None = None, display_name: str = "model") -> str:
        """Store a trained model with its evaluation (as a finished pipeline would).

        Args:
            labels: Its labels (default :attr:`labels`).
            display_name: Its display name.

        Returns:
            The model's resource name.
        """
        with self._lock:
            name = f"{self.parent}/models/{self._new_id()}"
            self.models[name] = aip.Model(name=name, display_name=display_name)
            self.evaluations[name] = self._evaluation(name, labels or list(self.labels))
            return name

    # -- registration --------------------------------------------------------------------

    def _register(self) -> None:
        add = self.server.add_method
        ds, ps, ms, es = (
            f"{PREFIX}.DatasetService",
            f"{PREFIX}.PipelineService",
            f"{PREFIX}.ModelService",
            f"{PREFIX}.EndpointService",
        )
        op = operations_pb2.Operation
        add(ds, "CreateDataset", aip.CreateDatasetRequest, op, self._create_dataset)
        add(ds, "GetDataset", aip.GetDatasetRequest, aip.Dataset, self._get_dataset)
        add(ds, "ListDatasets", aip.ListDatasetsRequest, aip.ListDatasetsResponse, self._list_ds)
        add(ds, "ImportData", aip.ImportDataRequest, op, self._import_data)
        add(ds, "DeleteDataset", aip.DeleteDatasetRequest, op, self._delete_dataset)
        add(
            ps,
            "CreateTrainingPipeline",
            aip.CreateTrainingPipelineRequest,
            aip.TrainingPipeline,
            self._create_pipeline,
        )
        add(
            ps,
            "GetTrainingPipeline",
            aip.GetTrainingPipelineRequest,
            aip.TrainingPipeline,
            self._get_pipeline,
        )
        add(
            ps,
            "ListTrainingPipelines",
            aip.ListTrainingPipelinesRequest,
            aip.ListTrainingPipelinesResponse,
            self._list_pipelines,
        )
        add(
            ps,
            "CancelTrainingPipeline",
            aip.CancelTrainingPipelineRequest,
            empty_pb2.Empty,
            self._cancel_pipeline,
        )
        add(ms, "GetModel", aip.GetModelRequest, aip.Model, self._get_model)
        add(
            ms,
            "ListModelEvaluations",
            aip.ListModelEvaluationsRequest,
            aip.ListModelEvaluationsResponse,
            self._list_evaluations,
        )
        add(
            ms,
            "ListModelEvaluationSlices",
            aip.ListModelEvaluationSlicesRequest,
            aip.ListModelEvaluationSlicesResponse,
            self._list_slices,
        )
        add(es, "CreateEndpoint", aip.CreateEndpointRequest, op, self._create_endpoint)
        add(es, "GetEndpoint", aip.GetEndpointRequest, aip.Endpoint, self._get_endpoint)
        add(
            es,
            "ListEndpoints",
            aip.ListEndpointsRequest,
            aip.ListEndpointsResponse,
            self._list_endpoints,
        )
        add(es, "DeployModel", aip.DeployModelRequest, op, self._deploy)
        add(es, "UndeployModel", aip.UndeployModelRequest, op, self._undeploy)
        add(es, "DeleteEndpoint", aip.DeleteEndpointRequest, op, self._delete_endpoint)
        js = f"{PREFIX}.JobService"
        add(
            js,
            "CreateBatchPredictionJob",
            aip.CreateBatchPredictionJobRequest,
            aip.BatchPredictionJob,
            self._create_batch,
        )
        add(
            js,
            "GetBatchPredictionJob",
            aip.GetBatchPredictionJobRequest,
            aip.BatchPredictionJob,
            self._get_batch,
        )
        add(
            js,
            "ListBatchPredictionJobs",
            aip.ListBatchPredictionJobsRequest,
            aip.ListBatchPredictionJobsResponse,
            self._list_batch,
        )
        add(
            f"{PREFIX}.PredictionService",
            "Predict",
            aip.PredictRequest,
            aip.PredictResponse,
            self._predict,
        )

    def _check_parent(self, parent: str) -> None:
        if parent != self.parent:
            raise RpcFault(grpc.StatusCode.PERMISSION_DENIED, f"no access to {parent}")

    # -- DatasetService ------------------------------------------------------------------

    def _create_dataset(self, request: aip.CreateDatasetRequest, _ctx: object) -> Any:
        self._check_parent(request.parent)
        if request.dataset.metadata_schema_uri != IMAGE_METADATA_SCHEMA:
            raise RpcFault(grpc.StatusCode.INVALID_ARGUMENT, "unsupported metadata schema")
        with self._lock:
            dataset = aip.Dataset(request.dataset)
            dataset.name = f"{self.parent}/datasets/{self._new_id()}"
            self.datasets[dataset.name] = dataset
            self.imports[dataset.name] = []
        return self.server.operations.create(
            dataset.name,
            metadata=aip.CreateDatasetOperationMetadata(),
            response=dataset,
            done_after=self.lro_polls,
        )

    def _dataset(self, name: str) -> aip.Dataset:
        with self._lock:
            if name not in self.datasets:
                raise RpcFault(grpc.StatusCode.NOT_FOUND, f"Dataset {name} not found.")
            return self.datasets[name]

    def _get_dataset(self, request: aip.GetDatasetRequest, _ctx: object) -> aip.Dataset:
        return self._dataset(request.name)

    def _list_ds(self, request: aip.ListDatasetsRequest, _ctx: object) -> Any:
        self._check_parent(request.parent)
        with self._lock:
            found = [d for d in self.datasets.values() if _has_labels(d.labels, request.filter)]
        return aip.ListDatasetsResponse(datasets=found)

    def _import_data(self, request: aip.ImportDataRequest, _ctx: object) -> Any:
        dataset = self._dataset(request.name)
        config = request.import_configs[0]
        uris = list(config.gcs_source.uris)

        def finish() -> aip.ImportDataResponse:
            if self.import_error is not None:
                raise RpcFault(grpc.StatusCode.INVALID_ARGUMENT, self.import_error)
            if self.import_reader is not None:
                found: set[str] = set()
                for uri in uris:
                    found.update(_import_file_labels(uri, self.import_reader(uri)))
                with self._lock:
                    known = self.dataset_labels.setdefault(dataset.name, [])
                    known[:] = sorted(found | set(known))
            with self._lock:
                self.imports[dataset.name].extend(uris)
                dataset.data_item_count = 40 * len(self.imports[dataset.name])
            return aip.ImportDataResponse()

        return self.server.operations.create(
            dataset.name,
            metadata=aip.ImportDataOperationMetadata(),
            result=finish,
            done_after=self.lro_polls,
        )

    def _delete_dataset(self, request: aip.DeleteDatasetRequest, _ctx: object) -> Any:
        with self._lock:
            self._dataset(request.name)
            del self.datasets[request.name]
        return self.server.operations.create(request.name, response=empty_pb2.Empty())

    # -- PipelineService -----------------------------------------------------------------

    def _create_pipeline(self, request: aip.CreateTrainingPipelineRequest, _ctx: object) -> Any:
        self._check_parent(request.parent)
        pipeline = aip.TrainingPipeline(request.training_pipeline)
        dataset_name = f"{self.parent}/datasets/{pipeline.input_data_config.dataset_id}"
        self._dataset(dataset_name)
        inputs = _to_python(pipeline, "training_task_inputs")
        budget = int(inputs.get("budgetMilliNodeHours", 0))
        low, high = (8_000, 800_000) if inputs.get("modelType") == "CLOUD" else (1_000, 100_000)
        if not low <= budget <= high:
            raise RpcFault(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"budgetMilliNodeHours must be between {low} and {high}",
            )
        with self._lock:
            pipeline.name = f"{self.parent}/trainingPipelines/{self._new_id()}"
            pipeline.state = aip.PipelineState.PIPELINE_STATE_QUEUED
            self.pipelines[pipeline.name] = pipeline
            self._pipeline_polls[pipeline.name] = 0
            return aip.TrainingPipeline(pipeline)

    def _get_pipeline(self, request: aip.GetTrainingPipelineRequest, _ctx: object) -> Any:
        with self._lock:
            pipeline = self.pipelines.get(request.name)
            if pipeline is None:
                raise RpcFault(grpc.StatusCode.NOT_FOUND, f"TrainingPipeline {request.name}")
            self._advance(pipeline)
            return aip.TrainingPipeline(pipeline)

    def _advance(self, pipeline: aip.TrainingPipeline) -> None:
        polls = self._pipeline_polls[pipeline.name] = self._pipeline_polls[pipeline.name] + 1
        terminal = {
            aip.PipelineState.PIPELINE_STATE_SUCCEEDED,
            aip.PipelineState.PIPELINE_STATE_FAILED,
            aip.PipelineState.PIPELINE_STATE_CANCELLED,
        }
        if pipeline.state in terminal:
            return
        if pipeline.state == aip.PipelineState.PIPELINE_STATE_CANCELLING:
            pipeline.state = aip.PipelineState.PIPELINE_STATE_CANCELLED
            pipeline.error = {"code": 1, "message": "cancelled by the user"}
            return
        step = min(polls, len(_ADVANCE) - 1)
        if polls < len(_ADVANCE) - 1 + self.pipeline_running_polls:
            pipeline.state = _ADVANCE[step]
            return
        if self.pipeline_error is not None:
            pipeline.state = aip.PipelineState.PIPELINE_STATE_FAILED
            pipeline.error = {"code": 3, "message": self.pipeline_error}
            return
        dataset_name = f"{self.parent}/datasets/{pipeline.input_data_config.dataset_id}"
        model_name = self.add_model(
            labels=self.dataset_labels.get(dataset_name),
            display_name=pipeline.model_to_upload.display_name,
        )
        self.models[model_name].training_pipeline = pipeline.name
        pipeline.model_to_upload.name = model_name
        pipeline.state = aip.PipelineState.PIPELINE_STATE_SUCCEEDED
        pipeline.training_task_metadata = _value({"costMilliNodeHours": 3_500})

    def _list_pipelines(self, request: aip.ListTrainingPipelinesRequest, _ctx: object) -> Any:
        self._check_parent(request.parent)
        with self._lock:
            found = [p for p in self.pipelines.values() if _has_labels(p.labels, request.filter)]
        return aip.ListTrainingPipelinesResponse(training_pipelines=found)

    def _cancel_pipeline(self, request: aip.CancelTrainingPipelineRequest, _ctx: object) -> Any:
        with self._lock:
            pipeline = self.pipelines[request.name]
            pipeline.state = aip.PipelineState.PIPELINE_STATE_CANCELLING
        return empty_pb2.Empty()

    # -- ModelService --------------------------------------------------------------------

    def _model(self, name: str) -> aip.Model:
        with self._lock:
            if name not in self.models:
                raise RpcFault(grpc.StatusCode.NOT_FOUND, f"Model {name} not found.")
            return self.models[name]

    def _get_model(self, request: aip.GetModelRequest, _ctx: object) -> aip.Model:
        return self._model(request.name)

    def _evaluation(
        self, model: str, labels: list[str]
    ) -> tuple[aip.ModelEvaluation, list[aip.ModelEvaluationSlice]]:
        n = len(labels)
        # 8 right per label; the first label is confused once with each other label.
        rows = [[8 if i == j else (1 if i == 0 else 0) for j in range(n)] for i in range(n)]
        specs = [{"id": str(100 + i), "displayName": label} for i, label in enumerate(labels)]
        matrix_labels = list(range(n))
        if self.drop_from_confusion_matrix in labels:
            dropped = labels.index(self.drop_from_confusion_matrix)
            matrix_labels.remove(dropped)
        matrix = {
            "annotationSpecs": [specs[i] for i in matrix_labels],
            "rows": [[rows[i][j] for j in matrix_labels] for i in matrix_labels],
        }
        metrics = {
            "auPrc": 0.93,
            "auRoc": 0.95,
            "logLoss": 0.21,
            "confidenceMetrics": [
                {"confidenceThreshold": 0.0, "precision": 0.3, "recall": 1.0, "f1Score": 0.46},
                {"confidenceThreshold": 0.5, "precision": 0.9, "recall": 0.85, "f1Score": 0.874},
                {"confidenceThreshold": 0.9, "precision": 0.97, "recall": 0.6, "f1Score": 0.741},
            ],
            "confusionMatrix": matrix,
        }
        eval_name = f"{model}/evaluations/{self._new_id()}"
        evaluation = aip.ModelEvaluation(
            name=eval_name, metrics_schema_uri=CLASSIFICATION_METRICS_SCHEMA
        )
        evaluation.metrics = _value(metrics)
        slices = []
        for i, label in enumerate(labels):
            precision = rows[i][i] / max(1, sum(rows[r][i] for r in range(n)))
            recall = rows[i][i] / max(1, sum(rows[i]))
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            item = aip.ModelEvaluationSlice(
                name=f"{eval_name}/slices/{200 + i}",
                slice_=aip.ModelEvaluationSlice.Slice(dimension="annotationSpec", value=label),
                metrics_schema_uri=CLASSIFICATION_METRICS_SCHEMA,
            )
            item.metrics = _value(
                {
                    "auPrc": 0.9,
                    "confidenceMetrics": [
                        {
                            "confidenceThreshold": 0.5,
                            "precision": precision,
                            "recall": recall,
                            "f1Score": f1,
                        }
                    ],
                }
            )
            slices.append(item)
        return evaluation, slices

    def _list_evaluations(self, request: aip.ListModelEvaluationsRequest, _ctx: object) -> Any:
        self._model(request.parent)
        evaluation, _ = self.evaluations[request.parent]
        return aip.ListModelEvaluationsResponse(model_evaluations=[evaluation])

    def _list_slices(self, request: aip.ListModelEvaluationSlicesRequest, _ctx: object) -> Any:
        model = request.parent.split("/evaluations/")[0]
        _, slices = self.evaluations[model]
        return aip.ListModelEvaluationSlicesResponse(model_evaluation_slices=slices)

    # -- EndpointService -----------------------------------------------------------------

    def _endpoint(self, name: str) -> aip.Endpoint:
        with self._lock:
            if name not in self.endpoints:
                raise RpcFault(grpc.StatusCode.NOT_FOUND, f"Endpoint {name} not found.")
            return self.endpoints[name]

    def _create_endpoint(self, request: aip.CreateEndpointRequest, _ctx: object) -> Any:
        self._check_parent(request.parent)
        with self._lock:
            endpoint = aip.Endpoint(request.endpoint)
            endpoint.name = f"{self.parent}/endpoints/{self._new_id()}"
            self.endpoints[endpoint.name] = endpoint
        return self.server.operations.create(
            endpoint.name,
            metadata=aip.CreateEndpointOperationMetadata(),
            response=endpoint,
            done_after=self.lro_polls,
        )

    def _get_endpoint(self, request: aip.GetEndpointRequest, _ctx: object) -> aip.Endpoint:
        return self._endpoint(request.name)

    def _list_endpoints(self, request: aip.ListEndpointsRequest, _ctx: object) -> Any:
        self._check_parent(request.parent)
        with self._lock:
            found = [e for e in self.endpoints.values() if _has_labels(e.labels, request.filter)]
        return aip.ListEndpointsResponse(endpoints=found)

    def _deploy(self, request: aip.DeployModelRequest, _ctx: object) -> Any:
        endpoint = self._endpoint(request.endpoint)
        model = self._model(request.deployed_model.model)
        resources = request.deployed_model.automatic_resources
        if resources.min_replica_count < 1:
            raise RpcFault(grpc.StatusCode.INVALID_ARGUMENT, "min_replica_count must be >= 1")
        with self._lock:
            deployed = aip.DeployedModel(request.deployed_model)
            deployed.id = str(self._new_id())
            endpoint.deployed_models.append(deployed)
            endpoint.traffic_split = {deployed.id: 100}
            model.deployed_models.append(
                aip.DeployedModelRef(endpoint=endpoint.name, deployed_model_id=deployed.id)
            )
        return self.server.operations.create(
            endpoint.name,
            metadata=aip.DeployModelOperationMetadata(),
            response=aip.DeployModelResponse(deployed_model=deployed),
            done_after=self.lro_polls,
        )

    def _undeploy(self, request: aip.UndeployModelRequest, _ctx: object) -> Any:
        endpoint = self._endpoint(request.endpoint)
        with self._lock:
            kept = [d for d in endpoint.deployed_models if d.id != request.deployed_model_id]
            if len(kept) == len(endpoint.deployed_models):
                raise RpcFault(
                    grpc.StatusCode.NOT_FOUND,
                    f"DeployedModel {request.deployed_model_id} not found on {endpoint.name}",
                )
            gone = next(d for d in endpoint.deployed_models if d.id == request.deployed_model_id)
            del endpoint.deployed_models[:]
            endpoint.deployed_models.extend(kept)
            endpoint.traffic_split = {d.id: 100 // max(1, len(kept)) for d in kept}
            model = self.models.get(gone.model)
            if model is not None:
                refs = [r for r in model.deployed_models if r.deployed_model_id != gone.id]
                del model.deployed_models[:]
                model.deployed_models.extend(refs)
        return self.server.operations.create(
            endpoint.name,
            metadata=aip.UndeployModelOperationMetadata(),
            response=aip.UndeployModelResponse(),
            done_after=self.lro_polls,
        )

    def _delete_endpoint(self, request: aip.DeleteEndpointRequest, _ctx: object) -> Any:
        endpoint = self._endpoint(request.name)
        if endpoint.deployed_models:
            raise RpcFault(
                grpc.StatusCode.FAILED_PRECONDITION, "endpoint still has deployed models"
            )
        with self._lock:
            del self.endpoints[request.name]
        return self.server.operations.create(request.name, response=empty_pb2.Empty())

    # -- JobService ----------------------------------------------------------------------

    def _create_batch(self, request: aip.CreateBatchPredictionJobRequest, _ctx: object) -> Any:
        self._check_parent(request.parent)
        self._model(request.batch_prediction_job.model)
        with self._lock:
            job = aip.BatchPredictionJob(request.batch_prediction_job)
            job.name = f"{self.parent}/batchPredictionJobs/{self._new_id()}"
            job.state = aip.JobState.JOB_STATE_QUEUED
            self.batch_jobs[job.name] = job
            return aip.BatchPredictionJob(job)

    def _get_batch(self, request: aip.GetBatchPredictionJobRequest, _ctx: object) -> Any:
        with self._lock:
            job = self.batch_jobs.get(request.name)
            if job is None:
                raise RpcFault(grpc.StatusCode.NOT_FOUND, f"BatchPredictionJob {request.name}")
            if job.state == aip.JobState.JOB_STATE_QUEUED:
                job.state = aip.JobState.JOB_STATE_RUNNING
            elif job.state == aip.JobState.JOB_STATE_RUNNING:
                if self.batch_error is not None:
                    job.state = aip.JobState.JOB_STATE_FAILED
                    job.error = {"code": 3, "message": self.batch_error}
                else:
                    job.state = aip.JobState.JOB_STATE_SUCCEEDED
                    prefix = job.output_config.gcs_destination.output_uri_prefix
                    job.output_info.gcs_output_directory = f"{prefix}/prediction-{job.name[-4:]}"
                    job.completion_stats.successful_count = 12
                    job.completion_stats.failed_count = 1
            return aip.BatchPredictionJob(job)

    def _list_batch(self, request: aip.ListBatchPredictionJobsRequest, _ctx: object) -> Any:
        self._check_parent(request.parent)
        with self._lock:
            found = [j for j in self.batch_jobs.values() if _has_labels(j.labels, request.filter)]
        return aip.ListBatchPredictionJobsResponse(batch_prediction_jobs=found)

    # -- PredictionService ---------------------------------------------------------------

    def _predict(self, request: aip.PredictRequest, _ctx: object) -> aip.PredictResponse:
        endpoint = self._endpoint(request.endpoint)
        if not endpoint.deployed_models:
            raise RpcFault(grpc.StatusCode.FAILED_PRECONDITION, "no model deployed")
        model = endpoint.deployed_models[0]
        evaluation, _ = self.evaluations[model.model]
        labels = [
            spec["displayName"]
            for spec in _to_python(evaluation, "metrics")["confusionMatrix"]["annotationSpecs"]
        ]
        params = _to_python(request, "parameters") if "parameters" in request else {}
        threshold = float(params.get("confidenceThreshold", 0.5))
        top = int(params.get("maxPredictions", 10))
        response = aip.PredictResponse(deployed_model_id=model.id, model=model.model)
        predictions = []
        pb = aip.PredictRequest.pb(request)
        for instance in pb.instances:
            content = instance.struct_value.fields["content"].string_value
            if len(content) > 1_500_000:
                raise RpcFault(grpc.StatusCode.INVALID_ARGUMENT, "Request payload size exceeds")
            self.predict_sizes.append(len(content))
            raw = base64.b64decode(content)
            digest = hashlib.sha256(raw).digest()
            weights = [digest[i] + 1 for i in range(len(labels))]
            scores = [w / sum(weights) for w in weights]
            ranked = sorted(zip(scores, labels, strict=True), reverse=True)
            kept = [(s, label) for s, label in ranked if s >= threshold][:top]
            predictions.append(
                _value(
                    {
                        "ids": [str(100 + labels.index(label)) for _, label in kept],
                        "displayNames": [label for _, label in kept],
                        "confidences": [s for s, _ in kept],
                    }
                )
            )
        # proto-plus quirk: repeated Value fields are filled with extend, not the constructor.
        response.predictions.extend(predictions)
        return response


@pytest.fixture
def vertex_fake() -> Iterator[FakeVertex]:
    """A started :class:`FakeVertex`, stopped after the test."""
    with FakeVertex() as fake:
        yield fake
