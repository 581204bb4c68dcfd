"""LegacyAutoMLBackend against a fake AutoML v1 over real GAPIC clients on 127.0.0.1."""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.cloud import automl_v1
from PIL import Image

from fakes.automl import ConfusionMatrix, FakeAutoML
from redditvision import (
    AutoMLTrainer,
    Classifier,
    ConfigError,
    DatasetLocation,
    PredictionError,
    TrainedModel,
    TrainingBudget,
    TrainingError,
    retry,
)
from redditvision.backends.automl import (
    DEFAULT_AUTOML_POLL,
    AutoMLShutdownWarning,
    LegacyAutoMLBackend,
)

CSV = "gs://bucket/bmw/automl.csv"
LOCATION = DatasetLocation(
    uri="gs://bucket/bmw",
    import_file_uri=CSV,
    import_format="automl_csv",
    images=30,
    labels=("M3", "X5", "Z4"),
    label_map={"M3": "BMW M3", "X5": "BMW X5", "Z4": "BMW Z4"},
)
BUDGET = TrainingBudget(milli_node_hours=8_000)


class CrashError(Exception):
    """Stands for the process dying while it waits."""


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def fake() -> Iterator[FakeAutoML]:
    with FakeAutoML() as server:
        yield server


def make_backend(fake: FakeAutoML, state_dir: Path, **kwargs: Any) -> LegacyAutoMLBackend:
    client, prediction_client = fake.clients()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutoMLShutdownWarning)
        return LegacyAutoMLBackend(
            client=client,
            prediction_client=prediction_client,
            project=fake.project,
            location=fake.location,
            state_dir=state_dir,
            owns_clients=True,
            **kwargs,
        )


@pytest.fixture
def backend(fake: FakeAutoML, tmp_path: Path) -> Iterator[LegacyAutoMLBackend]:
    with make_backend(fake, tmp_path / "state") as made:
        yield made


def _state(tmp_path: Path) -> dict[str, Any]:
    (path,) = (tmp_path / "state").glob("automl-*.json")
    values: dict[str, Any] = json.loads(path.read_text())["values"]
    return values


def test_construction_warns_that_vision_was_shut_down(fake: FakeAutoML) -> None:
    client, prediction_client = fake.clients()
    with pytest.warns(AutoMLShutdownWarning, match=r"2024-03-31.*Vertex"):
        backend = LegacyAutoMLBackend(
            client=client, prediction_client=prediction_client, project="demo", owns_clients=True
        )
    backend.close()
    backend.close()  # idempotent


def test_train_creates_multiclass_dataset_imports_csv_and_trains_with_budget(
    fake: FakeAutoML, backend: LegacyAutoMLBackend, tmp_path: Path
) -> None:
    model = AutoMLTrainer(backend=backend).train(LOCATION, budget=BUDGET, display_name="bmw")

    (create_dataset,) = fake.server.calls_to("CreateDataset")
    dataset = create_dataset.request.dataset
    assert dataset.image_classification_dataset_metadata.classification_type == (
        automl_v1.ClassificationType.MULTICLASS
    )
    assert dataset.display_name.startswith("bmw_")
    (import_data,) = fake.server.calls_to("ImportData")
    assert list(import_data.request.input_config.gcs_source.input_uris) == [CSV]
    (create_model,) = fake.server.calls_to("CreateModel")
    metadata = create_model.request.model.image_classification_model_metadata
    assert metadata.train_budget_milli_node_hours == 8_000
    assert metadata.model_type == "cloud"
    assert model.backend == "automl"
    assert model.resource in fake.models
    assert model.label_map["Z4"] == "BMW Z4"
    assert model.metadata["train_cost_milli_node_hours"] == 4_000
    assert model.metadata["stop_reason"] == "MODEL_CONVERGED"
    state = _state(tmp_path)
    assert state["model"] == model.resource
    assert state["dataset"] == import_data.request.name


def test_second_run_reuses_the_recorded_model_without_creating_anything(
    fake: FakeAutoML, backend: LegacyAutoMLBackend
) -> None:
    first = backend.train(LOCATION, budget=BUDGET, display_name="bmw")
    second = backend.train(LOCATION, budget=BUDGET, display_name="bmw")

    assert second.resource == first.resource
    for method in ("CreateDataset", "ImportData", "CreateModel"):
        assert len(fake.server.calls_to(method)) == 1, method


def test_evaluation_converts_metrics_and_sends_the_required_filter(
    fake: FakeAutoML, backend: LegacyAutoMLBackend
) -> None:
    name = fake.add_model()
    model = TrainedModel(
        backend="automl", resource=name, labels=LOCATION.labels, label_map=LOCATION.label_map
    )

    evaluation = AutoMLTrainer(backend=backend).evaluate(model)

    (call,) = fake.server.calls_to("ListModelEvaluations")
    assert call.request.filter == ""
    assert evaluation.labels == ("BMW M3", "BMW X5", "BMW Z4")
    assert evaluation.confusion_matrix == ((8, 2, 0), (0, 8, 2), (2, 0, 8))
    assert evaluation.accuracy == pytest.approx(0.8)
    assert [m.support for m in evaluation.per_label] == [10, 10, 10]
    assert evaluation.per_label[2].precision == pytest.approx(0.8)
    assert evaluation.per_label[2].au_prc == pytest.approx(0.8)
    assert evaluation.au_prc == pytest.approx(0.85)
    assert evaluation.micro_f1 == pytest.approx(0.8)
    assert evaluation.evaluated_items == 30
    overall = [t for t in evaluation.thresholds if t.label is None]
    assert len(overall) == 24
    assert {t.label for t in evaluation.thresholds} == {None, "BMW M3", "BMW X5", "BMW Z4"}
    assert evaluation.source == f"{name}/modelEvaluations/1"


def test_label_missing_from_the_confusion_matrix_gets_a_zero_row_and_column(
    fake: FakeAutoML, backend: LegacyAutoMLBackend
) -> None:
    name = fake.add_model()
    overall = fake.evaluations[name][0]
    overall.classification_evaluation_metrics.confusion_matrix = ConfusionMatrix(
        annotation_spec_id=["100", "101"],
        display_name=["M3", "X5"],
        row=[ConfusionMatrix.Row(example_count=[9, 1]), ConfusionMatrix.Row(example_count=[1, 9])],
    )
    model = TrainedModel(backend="automl", resource=name, labels=LOCATION.labels)

    evaluation = backend.evaluate(model)

    assert evaluation.labels == ("M3", "X5", "Z4")
    assert evaluation.confusion_matrix == ((9, 1, 0), (1, 9, 0), (0, 0, 0))
    # Z4's own figures still come from its per-label evaluation.
    assert evaluation.per_label[2].label == "Z4"
    assert evaluation.per_label[2].recall == pytest.approx(0.8)
    assert evaluation.per_label[2].support == 10


def test_read_is_retried_after_unavailable_twice_then_succeeds(
    fake: FakeAutoML, backend: LegacyAutoMLBackend
) -> None:
    name = fake.add_model()
    fake.server.fail("ListModelEvaluations", grpc.StatusCode.UNAVAILABLE, times=2)

    evaluation = backend.evaluate(TrainedModel(backend="automl", resource=name))

    assert evaluation.evaluated_items == 30
    assert [c.status for c in fake.server.calls_to("ListModelEvaluations")] == [
        "UNAVAILABLE",
        "UNAVAILABLE",
        "OK",
    ]
    assert len(retry.recorded_sleeps()) == 2


def test_permanent_error_on_a_read_is_raised_at_once_with_the_server_message(
    fake: FakeAutoML, backend: LegacyAutoMLBackend
) -> None:
    name = fake.add_model()
    fake.server.fail(
        "ListModelEvaluations", grpc.StatusCode.PERMISSION_DENIED, message="caller lacks automl_x"
    )

    with pytest.raises(TrainingError, match="caller lacks automl_x") as info:
        backend.evaluate(TrainedModel(backend="automl", resource=name))

    assert info.value.status == "PERMISSION_DENIED"
    assert info.value.service == "automl"
    assert len(fake.server.calls_to("ListModelEvaluations")) == 1
    assert retry.recorded_sleeps() == []


def test_predict_backs_off_on_resource_exhausted_honouring_retry_info(
    fake: FakeAutoML, backend: LegacyAutoMLBackend
) -> None:
    name = fake.add_model(deployed=True)
    fake.server.fail("Predict", grpc.StatusCode.RESOURCE_EXHAUSTED, times=1, retry_after=3)
    model = TrainedModel(backend="automl", resource=name, label_map=LOCATION.label_map)

    with Classifier(model, backend=backend) as classifier:
        predictions = classifier.predict(_png())

    assert predictions[0].label == "BMW Z4"
    assert retry.recorded_sleeps()[0] >= 3


def test_predict_resource_exhausted_ends_in_a_clear_error_after_the_cap(
    fake: FakeAutoML, backend: LegacyAutoMLBackend
) -> None:
    name = fake.add_model(deployed=True)
    fake.server.fail("Predict", grpc.StatusCode.RESOURCE_EXHAUSTED, times=None, message="quota")

    with pytest.raises(PredictionError, match="quota") as info:
        Classifier(TrainedModel(backend="automl", resource=name), backend=backend).predict(_png())

    assert info.value.status == "RESOURCE_EXHAUSTED"
    assert info.value.transient
    assert len(fake.server.calls_to("Predict")) == 5  # DEFAULT_AUTOML_RETRY.attempts
    assert len(retry.recorded_sleeps()) == 4


def test_predict_gives_up_at_once_when_the_server_asks_to_wait_beyond_the_cap(
    fake: FakeAutoML, backend: LegacyAutoMLBackend
) -> None:
    name = fake.add_model(deployed=True)
    fake.server.fail("Predict", grpc.StatusCode.RESOURCE_EXHAUSTED, times=None, retry_after=600)

    with pytest.raises(PredictionError) as info:
        Classifier(TrainedModel(backend="automl", resource=name), backend=backend).predict(_png())

    assert info.value.retry_after == 600
    assert len(fake.server.calls_to("Predict")) == 1


def test_deadline_exceeded_on_create_model_resumes_the_operation_without_a_second_create(
    fake: FakeAutoML, backend: LegacyAutoMLBackend
) -> None:
    fake.server.fail("CreateModel", grpc.StatusCode.DEADLINE_EXCEEDED, after_handler=True)

    model = backend.train(LOCATION, budget=BUDGET, display_name="bmw")

    assert [c.status for c in fake.server.calls_to("CreateModel")] == ["DEADLINE_EXCEEDED"]
    assert list(fake.models) == [model.resource]


def test_rerun_after_a_lost_create_answer_finds_the_operation_instead_of_creating(
    fake: FakeAutoML, backend: LegacyAutoMLBackend
) -> None:
    fake.server.fail("CreateModel", grpc.StatusCode.DEADLINE_EXCEEDED, after_handler=True)
    fake.server.fail("ListOperations", grpc.StatusCode.PERMISSION_DENIED)
    with pytest.raises(TrainingError, match="PERMISSION_DENIED"):
        backend.train(LOCATION, budget=BUDGET, display_name="bmw")

    model = backend.train(LOCATION, budget=BUDGET, display_name="bmw")

    assert len(fake.server.calls_to("CreateModel")) == 1
    assert list(fake.models) == [model.resource]


def test_deadline_exceeded_on_create_dataset_finds_the_dataset_by_display_name(
    fake: FakeAutoML, backend: LegacyAutoMLBackend
) -> None:
    fake.server.fail("CreateDataset", grpc.StatusCode.DEADLINE_EXCEEDED, after_handler=True)

    model = backend.train(LOCATION, budget=BUDGET, display_name="bmw")

    assert len(fake.server.calls_to("CreateDataset")) == 1
    assert len(fake.datasets) == 1
    assert model.metadata["dataset"] in fake.datasets


def test_import_operation_ending_with_an_error_raises_it_and_trains_nothing(
    fake: FakeAutoML, backend: LegacyAutoMLBackend
) -> None:
    fake.import_error = (grpc.StatusCode.INVALID_ARGUMENT, f"Invalid row 3 in {CSV}: bad label")

    with pytest.raises(TrainingError, match="Invalid row 3") as info:
        backend.train(LOCATION, budget=BUDGET, display_name="bmw")

    assert info.value.status == "INVALID_ARGUMENT"
    assert not info.value.transient
    assert fake.server.calls_to("CreateModel") == []


def test_rerun_after_a_failed_import_imports_again_into_the_same_dataset(
    fake: FakeAutoML, backend: LegacyAutoMLBackend
) -> None:
    fake.import_error = (grpc.StatusCode.INVALID_ARGUMENT, "Invalid row 3")
    with pytest.raises(TrainingError):
        backend.train(LOCATION, budget=BUDGET, display_name="bmw")
    fake.import_error = None  # the user fixed the import file

    backend.train(LOCATION, budget=BUDGET, display_name="bmw")

    assert len(fake.server.calls_to("CreateDataset")) == 1
    assert len(fake.server.calls_to("ImportData")) == 2
    assert len(fake.server.calls_to("CreateModel")) == 1


def test_training_that_fails_raises_the_server_message(
    fake: FakeAutoML, backend: LegacyAutoMLBackend
) -> None:
    fake.training_error = (grpc.StatusCode.INTERNAL, "Training failed: too few images for Z4")

    with pytest.raises(TrainingError, match="too few images for Z4") as info:
        backend.train(LOCATION, budget=BUDGET, display_name="bmw")

    assert info.value.status == "INTERNAL"
    assert fake.models == {}


def test_restart_mid_training_resumes_polling_the_recorded_operation(
    fake: FakeAutoML, tmp_path: Path
) -> None:
    fake.training_polls = 4

    def die_while_training(step: str, _message: str) -> None:
        if step == "training":
            raise CrashError

    with (
        pytest.raises(CrashError),
        make_backend(fake, tmp_path / "state", progress=die_while_training) as first,
    ):
        first.train(LOCATION, budget=BUDGET, display_name="bmw")
    recorded = _state(tmp_path)["model_operation"]
    assert fake.models == {}

    with make_backend(fake, tmp_path / "state") as second:  # a new process: new clients
        model = second.train(LOCATION, budget=BUDGET, display_name="bmw")

    assert len(fake.server.calls_to("CreateModel")) == 1
    assert len(fake.server.calls_to("CreateDataset")) == 1
    assert len(fake.server.calls_to("ImportData")) == 1
    assert fake.server.operations.polls[recorded] == 4
    assert list(fake.models) == [model.resource]


def test_an_unreadable_operation_keeps_its_record_so_a_rerun_resumes_it(
    fake: FakeAutoML, tmp_path: Path
) -> None:
    denied: list[Any] = []

    def deny_the_first_training_poll(step: str, message: str) -> None:
        if step == "training" and message.startswith("waiting") and not denied:
            denied.append(
                fake.server.fail(
                    "GetOperation", grpc.StatusCode.PERMISSION_DENIED, message="no ops_get"
                )
            )

    with make_backend(fake, tmp_path / "state", progress=deny_the_first_training_poll) as first:
        with pytest.raises(TrainingError, match="no ops_get"):
            first.train(LOCATION, budget=BUDGET, display_name="bmw")
    assert "model_operation" in _state(tmp_path)

    with make_backend(fake, tmp_path / "state") as second:
        model = second.train(LOCATION, budget=BUDGET, display_name="bmw")

    assert len(fake.server.calls_to("CreateModel")) == 1
    assert list(fake.models) == [model.resource]


def test_polling_that_gives_up_is_transient_and_a_rerun_resumes(
    fake: FakeAutoML, tmp_path: Path
) -> None:
    fake.training_polls = 3

    with make_backend(fake, tmp_path / "state", poll=DEFAULT_AUTOML_POLL.evolve(attempts=2)) as b:
        with pytest.raises(TrainingError, match="still running") as info:
            b.train(LOCATION, budget=BUDGET, display_name="bmw")
        assert info.value.transient
        model = b.train(LOCATION, budget=BUDGET, display_name="bmw")

    assert len(fake.server.calls_to("CreateModel")) == 1
    assert model.resource in fake.models


def test_deploy_of_a_model_that_does_not_exist_raises_not_found(
    fake: FakeAutoML, backend: LegacyAutoMLBackend
) -> None:
    missing = TrainedModel(backend="automl", resource=f"{fake.parent}/models/ICN404")

    with pytest.raises(PredictionError, match="ICN404 does not exist") as info:
        Classifier(missing, backend=backend).predict(_png())

    assert info.value.status == "NOT_FOUND"
    assert fake.server.calls_to("DeployModel") == []


def test_classifier_deploys_predicts_with_score_threshold_and_undeploys_on_exit(
    fake: FakeAutoML, backend: LegacyAutoMLBackend
) -> None:
    name = fake.add_model()
    model = TrainedModel(backend="automl", resource=name, label_map=LOCATION.label_map)

    with Classifier(model, backend=backend) as classifier:
        predictions = classifier.predict(_png(), confidence_threshold=0.15)
        assert fake.models[name].deployment_state == automl_v1.Model.DeploymentState.DEPLOYED

    (deploy,) = fake.server.calls_to("DeployModel")
    assert deploy.request.image_classification_model_deployment_metadata.node_count == 1
    (predict,) = fake.server.calls_to("Predict")
    assert predict.request.params["score_threshold"] == "0.15"
    assert [(p.label, p.model_label) for p in predictions] == [
        ("BMW Z4", "Z4"),
        ("BMW M3", "M3"),
    ]
    assert predictions[0].score == pytest.approx(0.7)
    assert fake.models[name].deployment_state == automl_v1.Model.DeploymentState.UNDEPLOYED


def test_classifier_leaves_a_model_it_did_not_deploy_deployed(
    fake: FakeAutoML, backend: LegacyAutoMLBackend
) -> None:
    name = fake.add_model(deployed=True)

    with Classifier(TrainedModel(backend="automl", resource=name), backend=backend) as classifier:
        classifier.predict_many([_png(), _png()], max_predictions=1)

    assert fake.server.calls_to("DeployModel") == []
    assert fake.server.calls_to("UndeployModel") == []
    assert len(fake.server.calls_to("Predict")) == 2


def test_from_env_insecure_talks_plaintext_to_the_given_endpoint(
    fake: FakeAutoML, tmp_path: Path
) -> None:
    name = fake.add_model()
    with (
        pytest.warns(AutoMLShutdownWarning),
        LegacyAutoMLBackend.from_env(
            project="demo", api_endpoint=fake.address, insecure=True, state_dir=tmp_path
        ) as made,
    ):
        evaluation = made.evaluate(TrainedModel(backend="automl", resource=name))

    assert evaluation.evaluated_items == 30


@pytest.mark.parametrize(
    ("location", "budget", "message"),
    [
        (LOCATION, TrainingBudget(milli_node_hours=5_000), "8,000-800,000"),
        (
            DatasetLocation(
                uri="file:///tmp/bmw",
                import_file_uri="file:///tmp/bmw/automl.csv",
                import_format="automl_csv",
                images=30,
                labels=("M3",),
            ),
            BUDGET,
            "Cloud Storage only",
        ),
        (
            DatasetLocation(
                uri="gs://bucket/bmw",
                import_file_uri="gs://bucket/bmw/import.csv",
                import_format="vertex_csv",
                images=30,
                labels=("M3",),
            ),
            BUDGET,
            "no AutoML v1 import file",
        ),
    ],
)
def test_bad_input_is_a_config_error_before_any_call(
    fake: FakeAutoML,
    backend: LegacyAutoMLBackend,
    location: DatasetLocation,
    budget: TrainingBudget,
    message: str,
) -> None:
    with pytest.raises(ConfigError, match=message):
        backend.train(location, budget=budget)

    assert fake.server.calls == []


def test_vertex_spelling_of_the_model_type_is_accepted(fake: FakeAutoML, tmp_path: Path) -> None:
    with make_backend(fake, tmp_path, model_type="MOBILE_TF_VERSATILE_1") as mobile:
        assert mobile.model_type == "mobile-versatile-1"
        with pytest.raises(ConfigError, match="1,000-100,000"):
            mobile.train(LOCATION, budget=TrainingBudget(milli_node_hours=200_000))
    with pytest.raises(ConfigError, match="unknown AutoML v1 model_type"):
        make_backend(fake, tmp_path, model_type="EDGE")


def test_delete_removes_the_model_and_its_dataset_and_tolerates_missing_ones(
    fake: FakeAutoML, backend: LegacyAutoMLBackend
) -> None:
    model = backend.train(LOCATION, budget=BUDGET, display_name="bmw")

    backend.delete(model, dataset=True)
    backend.delete(model, dataset=True)  # already gone: nothing to do

    assert fake.models == {}
    assert fake.datasets == {}
