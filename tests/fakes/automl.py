"""A stateful fake of legacy AutoML v1 (``google.cloud.automl.v1.AutoMl`` + ``PredictionService``).

Built on :mod:`tests.fakes.grpcbase`: the real request/response messages of
``google.cloud.automl_v1`` over an in-process gRPC server on 127.0.0.1, the long-running
operations in :class:`~tests.fakes.grpcbase.OperationStore`, and scripted faults with
:meth:`~tests.fakes.grpcbase.FakeGrpcServer.fail`.

State: datasets, imports (the URIs each dataset imported), models that appear when their
training operation finishes (after ``training_polls`` polls), their evaluations (overall
plus one per label, built from :attr:`FakeAutoML.labels` or set with
:attr:`FakeAutoML.evaluations`), and the deployment state of each model. Behaviour knobs:
``import_error`` / ``training_error`` end those operations with an error status;
``scores`` are what ``Predict`` answers.
"""

from __future__ import annotations

import datetime
import itertools
import threading
from collections.abc import Callable
from typing import Any

import grpc
from google.cloud import automl_v1
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2

from fakes.grpcbase import FakeGrpcServer, RpcFault, insecure_client

AUTOML = "google.cloud.automl.v1.AutoMl"
PREDICTION = "google.cloud.automl.v1.PredictionService"

ConfidenceEntry = automl_v1.ClassificationEvaluationMetrics.ConfidenceMetricsEntry
ConfusionMatrix = automl_v1.ClassificationEvaluationMetrics.ConfusionMatrix
THRESHOLDS = [round(0.05 * i, 2) for i in range(20)] + [0.96, 0.97, 0.98, 0.99]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def default_evaluations(model: str, labels: list[str]) -> list[automl_v1.ModelEvaluation]:
    """Build an overall evaluation plus one per label, as AutoML v1 returns them.

    Every label has 10 test images; 8 are right and 2 go to the next label, so precision
    and recall are 0.8 for every label at threshold 0.5.
    """
    n = len(labels)
    rows = []
    for i in range(n):
        counts = [0] * n
        counts[i] += 8
        counts[(i + 1) % n] += 2
        rows.append(ConfusionMatrix.Row(example_count=counts))
    matrix = ConfusionMatrix(
        annotation_spec_id=[str(100 + i) for i in range(n)], display_name=labels, row=rows
    )

    def curve() -> list[Any]:
        return [
            ConfidenceEntry(
                confidence_threshold=t,
                precision=0.8 if t <= 0.5 else 0.9,
                recall=0.8 if t <= 0.5 else 0.6,
                f1_score=0.8 if t <= 0.5 else 0.72,
                recall_at1=0.8,
                precision_at1=0.8,
            )
            for t in THRESHOLDS
        ]

    overall = automl_v1.ModelEvaluation(
        name=f"{model}/modelEvaluations/1",
        evaluated_example_count=10 * n,
        classification_evaluation_metrics=automl_v1.ClassificationEvaluationMetrics(
            au_prc=0.85,
            log_loss=0.4,
            confidence_metrics_entry=curve(),
            confusion_matrix=matrix,
            annotation_spec_id=[str(100 + i) for i in range(n)],
        ),
    )
    per_label = [
        automl_v1.ModelEvaluation(
            name=f"{model}/modelEvaluations/{2 + i}",
            annotation_spec_id=str(100 + i),
            display_name=label,
            evaluated_example_count=10,
            classification_evaluation_metrics=automl_v1.ClassificationEvaluationMetrics(
                au_prc=0.8, confidence_metrics_entry=curve()
            ),
        )
        for i, label in enumerate(labels)
    ]
    return [overall, *per_label]


class FakeAutoML:
    """The fake services and their state; use as a context manager.

    Args:
        project: The project the fake serves (default ``"demo"``).
        location: Its location (default ``"us-central1"``).

    Attributes:
        server: The :class:`FakeGrpcServer` (``fail``, ``calls_to``, ``operations``).
        labels: Labels the training "learns" (default three BMW series).
        training_polls: GetOperation polls before a training operation is done (default 2).
        import_error: ``(code, message)`` to end the next import operations with, or None.
        training_error: ``(code, message)`` to end training operations with, or None.
        scores: Label -> score that ``Predict`` answers for every image.
        evaluations: Model name -> evaluations, filled when training ends (replaceable).
    """

    def __init__(self, *, project: str = "demo", location: str = "us-central1") -> None:
        self.project = project
        self.location = location
        self.parent = f"projects/{project}/locations/{location}"
        self.server = FakeGrpcServer()
        self.labels = ["M3", "X5", "Z4"]
        self.training_polls = 2
        self.import_error: tuple[grpc.StatusCode, str] | None = None
        self.training_error: tuple[grpc.StatusCode, str] | None = None
        self.scores: dict[str, float] = {"Z4": 0.7, "M3": 0.2, "X5": 0.1}
        self.datasets: dict[str, automl_v1.Dataset] = {}
        self.imports: dict[str, list[str]] = {}
        self.models: dict[str, automl_v1.Model] = {}
        self.evaluations: dict[str, list[automl_v1.ModelEvaluation]] = {}
        self._ids = itertools.count(1000)
        self._lock = threading.RLock()
        self._register()

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> FakeAutoML:
        self.server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.stop()

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT`` of the running server."""
        return self.server.address

    def clients(
        self,
    ) -> tuple[automl_v1.AutoMlClient, automl_v1.PredictionServiceClient]:
        """Real GAPIC clients over fresh insecure channels to this fake."""
        return (
            insecure_client(automl_v1.AutoMlClient, self.address),
            insecure_client(automl_v1.PredictionServiceClient, self.address),
        )

    def add_model(self, *, deployed: bool = False) -> str:
        """Add a trained model (with evaluations) directly; return its name."""
        with self._lock:
            name = f"{self.parent}/models/ICN{next(self._ids)}"
            self.models[name] = automl_v1.Model(
                name=name,
                display_name=f"model_{name.rsplit('/', 1)[-1]}",
                dataset_id="ICN1",
                deployment_state=(
                    automl_v1.Model.DeploymentState.DEPLOYED
                    if deployed
                    else automl_v1.Model.DeploymentState.UNDEPLOYED
                ),
                image_classification_model_metadata=automl_v1.ImageClassificationModelMetadata(
                    model_type="cloud", train_budget_milli_node_hours=8000
                ),
            )
            self.evaluations[name] = default_evaluations(name, list(self.labels))
            return name

    # -- helpers -------------------------------------------------------------------------

    def _operation(
        self,
        detail: str,
        *,
        done_after: int | None = 0,
        result: Callable[[], Any] | None = None,
    ) -> operations_pb2.Operation:
        metadata = automl_v1.OperationMetadata(
            **{detail: {}}, create_time=_now(), update_time=_now()
        )
        return self.server.operations.create(
            self.parent, metadata=metadata, done_after=done_after, result=result
        )

    def _model(self, name: str) -> automl_v1.Model:
        model = self.models.get(name)
        if model is None:
            raise RpcFault(grpc.StatusCode.NOT_FOUND, f"The model {name} does not exist.")
        return model

    def _check_parent(self, parent: str) -> None:
        if parent != self.parent:
            raise RpcFault(grpc.StatusCode.PERMISSION_DENIED, f"no access to {parent}")

    # -- AutoMl --------------------------------------------------------------------------

    def _create_dataset(
        self, request: automl_v1.CreateDatasetRequest, _context: Any
    ) -> operations_pb2.Operation:
        self._check_parent(request.parent)
        metadata = request.dataset.image_classification_dataset_metadata
        if metadata.classification_type != automl_v1.ClassificationType.MULTICLASS:
            raise RpcFault(grpc.StatusCode.INVALID_ARGUMENT, "classification_type is required")
        with self._lock:
            name = f"{self.parent}/datasets/ICN{next(self._ids)}"
            dataset = automl_v1.Dataset(request.dataset)
            dataset.name = name
            dataset.create_time = _now()
            self.datasets[name] = dataset
        return self._operation("create_dataset_details", result=lambda: dataset)

    def _list_datasets(
        self, request: automl_v1.ListDatasetsRequest, _context: Any
    ) -> automl_v1.ListDatasetsResponse:
        self._check_parent(request.parent)
        with self._lock:
            return automl_v1.ListDatasetsResponse(datasets=list(self.datasets.values()))

    def _get_dataset(
        self, request: automl_v1.GetDatasetRequest, _context: Any
    ) -> automl_v1.Dataset:
        dataset = self.datasets.get(request.name)
        if dataset is None:
            raise RpcFault(grpc.StatusCode.NOT_FOUND, f"The dataset {request.name} does not exist.")
        return dataset

    def _import_data(
        self, request: automl_v1.ImportDataRequest, _context: Any
    ) -> operations_pb2.Operation:
        if request.name not in self.datasets:
            raise RpcFault(grpc.StatusCode.NOT_FOUND, f"The dataset {request.name} does not exist.")
        uris = list(request.input_config.gcs_source.input_uris)
        error = self.import_error

        def finish() -> Any:
            if error is not None:
                raise RpcFault(error[0], error[1])
            with self._lock:
                self.imports.setdefault(request.name, []).extend(uris)
            return empty_pb2.Empty()

        return self._operation("import_data_details", done_after=1, result=finish)

    def _create_model(
        self, request: automl_v1.CreateModelRequest, _context: Any
    ) -> operations_pb2.Operation:
        self._check_parent(request.parent)
        dataset = f"{self.parent}/datasets/{request.model.dataset_id}"
        if dataset not in self.datasets:
            raise RpcFault(grpc.StatusCode.NOT_FOUND, f"The dataset {dataset} does not exist.")
        budget = request.model.image_classification_model_metadata.train_budget_milli_node_hours
        if not 8000 <= budget <= 800000:
            raise RpcFault(grpc.StatusCode.INVALID_ARGUMENT, f"budget {budget} out of range")
        error = self.training_error

        def finish() -> Any:
            if error is not None:
                raise RpcFault(error[0], error[1])
            with self._lock:
                name = f"{self.parent}/models/ICN{next(self._ids)}"
                model = automl_v1.Model(request.model)
                model.name = name
                model.deployment_state = automl_v1.Model.DeploymentState.UNDEPLOYED
                metadata = model.image_classification_model_metadata
                metadata.train_cost_milli_node_hours = budget // 2
                metadata.stop_reason = "MODEL_CONVERGED"
                self.models[name] = model
                self.evaluations[name] = default_evaluations(name, list(self.labels))
                return model

        return self._operation(
            "create_model_details", done_after=self.training_polls, result=finish
        )

    def _get_model(self, request: automl_v1.GetModelRequest, _context: Any) -> automl_v1.Model:
        with self._lock:
            return self._model(request.name)

    def _list_models(
        self, request: automl_v1.ListModelsRequest, _context: Any
    ) -> automl_v1.ListModelsResponse:
        self._check_parent(request.parent)
        with self._lock:
            return automl_v1.ListModelsResponse(model=list(self.models.values()))

    def _delete_model(
        self, request: automl_v1.DeleteModelRequest, _context: Any
    ) -> operations_pb2.Operation:
        with self._lock:
            self._model(request.name)
            del self.models[request.name]
        return self._operation("delete_details", result=empty_pb2.Empty)

    def _delete_dataset(
        self, request: automl_v1.DeleteDatasetRequest, _context: Any
    ) -> operations_pb2.Operation:
        with self._lock:
            if self.datasets.pop(request.name, None) is None:
                raise RpcFault(
                    grpc.StatusCode.NOT_FOUND, f"The dataset {request.name} does not exist."
                )
        return self._operation("delete_details", result=empty_pb2.Empty)

    def _deploy_model(
        self, request: automl_v1.DeployModelRequest, _context: Any
    ) -> operations_pb2.Operation:
        with self._lock:
            model = self._model(request.name)
        nodes = request.image_classification_model_deployment_metadata.node_count
        if not 1 <= nodes <= 100:
            raise RpcFault(grpc.StatusCode.INVALID_ARGUMENT, f"node_count {nodes} out of range")

        def finish() -> Any:
            with self._lock:
                model.deployment_state = automl_v1.Model.DeploymentState.DEPLOYED
                model.image_classification_model_metadata.node_count = nodes
            return empty_pb2.Empty()

        return self._operation("deploy_model_details", done_after=1, result=finish)

    def _undeploy_model(
        self, request: automl_v1.UndeployModelRequest, _context: Any
    ) -> operations_pb2.Operation:
        with self._lock:
            model = self._model(request.name)

        def finish() -> Any:
            with self._lock:
                model.deployment_state = automl_v1.Model.DeploymentState.UNDEPLOYED
            return empty_pb2.Empty()

        return self._operation("undeploy_model_details", done_after=1, result=finish)

    def _list_model_evaluations(
        self, request: automl_v1.ListModelEvaluationsRequest, _context: Any
    ) -> automl_v1.ListModelEvaluationsResponse:
        with self._lock:
            self._model(request.parent)
            evaluations = list(self.evaluations.get(request.parent, []))
        if request.filter == "NOT annotation_spec_id:*":
            evaluations = [e for e in evaluations if not e.annotation_spec_id]
        elif request.filter == "annotation_spec_id:*":
            evaluations = [e for e in evaluations if e.annotation_spec_id]
        elif request.filter:
            raise RpcFault(grpc.StatusCode.INVALID_ARGUMENT, f"bad filter {request.filter!r}")
        return automl_v1.ListModelEvaluationsResponse(model_evaluation=evaluations)

    # -- PredictionService ---------------------------------------------------------------

    def _predict(
        self, request: automl_v1.PredictRequest, _context: Any
    ) -> automl_v1.PredictResponse:
        with self._lock:
            model = self._model(request.name)
            if model.deployment_state != automl_v1.Model.DeploymentState.DEPLOYED:
                raise RpcFault(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"The model {request.name} is not deployed.",
                )
        if not request.payload.image.image_bytes:
            raise RpcFault(grpc.StatusCode.INVALID_ARGUMENT, "payload.image.image_bytes is empty")
        threshold = float(request.params.get("score_threshold", "0.5"))
        response = automl_v1.PredictResponse()
        response.payload.extend(
            automl_v1.AnnotationPayload(
                display_name=label,
                classification=automl_v1.ClassificationAnnotation(score=score),
            )
            for label, score in self.scores.items()
            if score >= threshold
        )
        return response

    def _register(self) -> None:
        add = self.server.add_method
        op = operations_pb2.Operation
        a = automl_v1
        add(AUTOML, "CreateDataset", a.CreateDatasetRequest, op, self._create_dataset)
        add(AUTOML, "GetDataset", a.GetDatasetRequest, a.Dataset, self._get_dataset)
        add(
            AUTOML,
            "ListDatasets",
            a.ListDatasetsRequest,
            a.ListDatasetsResponse,
            self._list_datasets,
        )
        add(AUTOML, "DeleteDataset", a.DeleteDatasetRequest, op, self._delete_dataset)
        add(AUTOML, "ImportData", a.ImportDataRequest, op, self._import_data)
        add(AUTOML, "CreateModel", a.CreateModelRequest, op, self._create_model)
        add(AUTOML, "GetModel", a.GetModelRequest, a.Model, self._get_model)
        add(AUTOML, "ListModels", a.ListModelsRequest, a.ListModelsResponse, self._list_models)
        add(AUTOML, "DeleteModel", a.DeleteModelRequest, op, self._delete_model)
        add(AUTOML, "DeployModel", a.DeployModelRequest, op, self._deploy_model)
        add(AUTOML, "UndeployModel", a.UndeployModelRequest, op, self._undeploy_model)
        add(
            AUTOML,
            "ListModelEvaluations",
            a.ListModelEvaluationsRequest,
            a.ListModelEvaluationsResponse,
            self._list_model_evaluations,
        )
        add(PREDICTION, "Predict", a.PredictRequest, a.PredictResponse, self._predict)
