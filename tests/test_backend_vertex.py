"""VertexAutoMLBackend against an in-process Vertex AI fake, via the real aiplatform_v1 clients."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np
import pytest
from google.cloud import aiplatform_v1 as aip
from PIL import Image

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
from redditvision.backends._state import RunState
from redditvision.backends.vertex import (
    AUTOML_IMAGE_CLASSIFICATION_DEFINITION,
    DEFAULT_POLL,
    IMAGE_DATASET_METADATA_SCHEMA,
    IMAGE_SINGLE_LABEL_IMPORT_SCHEMA,
    ONLINE_PREDICTION_LIMIT_BYTES,
    VertexAutoMLBackend,
    batch_instances,
    fit_online_limit,
    image_uris_from_import_csv,
    normalize_model_type,
)

if TYPE_CHECKING:
    from fakes.vertex import FakeVertex

pytest_plugins = ["fakes.vertex"]

LABELS = ("bmw_m3", "bmw_x5", "bmw_z4")


@pytest.fixture
def location() -> DatasetLocation:
    return DatasetLocation(
        uri="gs://bucket/cars",
        import_file_uri="gs://bucket/cars/import.csv",
        import_format="vertex_csv",
        images=120,
        labels=LABELS,
        label_map={"bmw_m3": "BMW M3", "bmw_x5": "BMW X5", "bmw_z4": "BMW Z4"},
    )


def make_backend(fake: FakeVertex, state_dir: Path, **kwargs: Any) -> VertexAutoMLBackend:
    return VertexAutoMLBackend(
        **fake.clients(),
        project=fake.project,
        location=fake.location,
        state_dir=state_dir,
        owns_clients=True,
        **kwargs,
    )


def png_bytes(size: int = 32, color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_train_sends_the_documented_schemas_budget_and_ml_use_filter_split(
    vertex_fake: FakeVertex, location: DatasetLocation, tmp_path: Path
) -> None:
    steps: list[tuple[str, str]] = []
    with make_backend(vertex_fake, tmp_path, progress=lambda s, m: steps.append((s, m))) as b:
        model = b.train(location, budget=TrainingBudget(milli_node_hours=20_000))

    assert model.backend == "vertex"
    assert model.resource in vertex_fake.models
    assert model.labels == LABELS
    assert model.metadata["cost_milli_node_hours"] == 3_500
    dataset_request = vertex_fake.server.calls_to("CreateDataset")[0].request
    assert dataset_request.dataset.metadata_schema_uri == IMAGE_DATASET_METADATA_SCHEMA
    import_config = vertex_fake.server.calls_to("ImportData")[0].request.import_configs[0]
    assert import_config.import_schema_uri == IMAGE_SINGLE_LABEL_IMPORT_SCHEMA
    assert list(import_config.gcs_source.uris) == ["gs://bucket/cars/import.csv"]
    pipeline = vertex_fake.server.calls_to("CreateTrainingPipeline")[0].request.training_pipeline
    assert pipeline.training_task_definition == AUTOML_IMAGE_CLASSIFICATION_DEFINITION
    inputs = dict(pipeline.training_task_inputs)
    assert inputs["modelType"] == "CLOUD"
    assert inputs["budgetMilliNodeHours"] == 20_000
    assert inputs["disableEarlyStopping"] is False
    split = pipeline.input_data_config.filter_split
    assert split.training_filter == "labels.aiplatform.googleapis.com/ml_use=training"
    assert split.validation_filter == "labels.aiplatform.googleapis.com/ml_use=validation"
    assert split.test_filter == "labels.aiplatform.googleapis.com/ml_use=test"
    assert any(s == "pipeline" and m.startswith("PIPELINE_STATE_RUNNING") for s, m in steps)
    assert steps[-1] == ("pipeline", "PIPELINE_STATE_SUCCEEDED")


def test_unavailable_twice_on_a_read_is_retried_then_succeeds(
    vertex_fake: FakeVertex, location: DatasetLocation, tmp_path: Path
) -> None:
    fault = vertex_fake.server.fail("GetTrainingPipeline", grpc.StatusCode.UNAVAILABLE, times=2)
    with make_backend(vertex_fake, tmp_path, poll=DEFAULT_POLL.evolve(jitter=0.0)) as backend:
        model = backend.train(location, budget=TrainingBudget())
    assert fault.fired == 2
    assert model.resource in vertex_fake.models
    assert vertex_fake.calls("CreateTrainingPipeline") == 1
    # The first two waits are the RPC retry's backoff (0.5 s, 1 s plus jitter), below polling's 5 s.
    waits = retry.recorded_sleeps()
    assert 0.5 <= waits[0] <= 1.5
    assert 1.0 <= waits[1] <= 2.0


def test_resource_exhausted_on_predict_backs_off_honouring_retry_info(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    model = TrainedModel(backend="vertex", resource=vertex_fake.add_model(), labels=LABELS)
    vertex_fake.server.fail("Predict", grpc.StatusCode.RESOURCE_EXHAUSTED, times=2, retry_after=7)
    with make_backend(vertex_fake, tmp_path) as backend, Classifier(model, backend=backend) as c:
        predictions = c.predict(png_bytes())
    assert predictions[0].score >= predictions[-1].score
    waits = retry.recorded_sleeps()
    assert len(waits) == 2
    assert all(7 <= w <= 8.5 for w in waits)  # RetryInfo 7 s, plus at most the jitter
    assert vertex_fake.calls("Predict") == 3


def test_resource_exhausted_on_predict_ends_in_a_clear_error_after_the_cap(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    model = TrainedModel(backend="vertex", resource=vertex_fake.add_model(), labels=LABELS)
    vertex_fake.server.fail("Predict", grpc.StatusCode.RESOURCE_EXHAUSTED, times=None)
    with make_backend(vertex_fake, tmp_path) as backend, Classifier(model, backend=backend) as c:
        with pytest.raises(PredictionError) as caught:
            c.predict(png_bytes())
    assert caught.value.status == "RESOURCE_EXHAUSTED"
    assert caught.value.service == "vertex"
    assert "gave up after 5 attempts" in str(caught.value)
    assert vertex_fake.calls("Predict") == 5
    assert len(retry.recorded_sleeps()) == 4


def test_resource_exhausted_asking_for_more_than_the_cap_is_raised_at_once(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    model = TrainedModel(backend="vertex", resource=vertex_fake.add_model(), labels=LABELS)
    vertex_fake.server.fail("Predict", grpc.StatusCode.RESOURCE_EXHAUSTED, retry_after=3600)
    with make_backend(vertex_fake, tmp_path) as backend, Classifier(model, backend=backend) as c:
        with pytest.raises(PredictionError) as caught:
            c.predict(png_bytes())
    assert caught.value.retry_after == 3600
    assert caught.value.transient
    assert vertex_fake.calls("Predict") == 1
    assert retry.recorded_sleeps() == []


def test_deadline_exceeded_on_create_resumes_by_name_without_a_second_create(
    vertex_fake: FakeVertex, location: DatasetLocation, tmp_path: Path
) -> None:
    # The server creates the pipeline but the answer is lost on the way back.
    vertex_fake.server.fail(
        "CreateTrainingPipeline", grpc.StatusCode.DEADLINE_EXCEEDED, after_handler=True
    )
    with make_backend(vertex_fake, tmp_path) as backend:
        model = backend.train(location, budget=TrainingBudget())
    assert vertex_fake.calls("CreateTrainingPipeline") == 1
    assert len(vertex_fake.pipelines) == 1
    assert model.metadata["training_pipeline"] in vertex_fake.pipelines
    assert vertex_fake.calls("ListTrainingPipelines") == 1


def test_deadline_exceeded_on_a_create_that_did_not_happen_asks_for_a_rerun_then_resumes(
    vertex_fake: FakeVertex, location: DatasetLocation, tmp_path: Path
) -> None:
    vertex_fake.server.fail("CreateTrainingPipeline", grpc.StatusCode.DEADLINE_EXCEEDED)
    with make_backend(vertex_fake, tmp_path) as backend:
        with pytest.raises(TrainingError, match="not sent again") as caught:
            backend.train(location, budget=TrainingBudget())
        assert caught.value.transient
        assert vertex_fake.calls("CreateTrainingPipeline") == 1
        model = backend.train(location, budget=TrainingBudget())
    assert len(vertex_fake.pipelines) == 1
    assert vertex_fake.calls("CreateDataset") == 1
    assert vertex_fake.calls("ImportData") == 1
    assert model.resource in vertex_fake.models


def test_an_import_operation_that_finishes_with_an_error_raises_its_message(
    vertex_fake: FakeVertex, location: DatasetLocation, tmp_path: Path
) -> None:
    vertex_fake.import_error = "gs://bucket/cars/import.csv: line 3: label is empty"
    with make_backend(vertex_fake, tmp_path) as backend:
        with pytest.raises(TrainingError, match="line 3: label is empty") as caught:
            backend.train(location, budget=TrainingBudget())
    assert caught.value.status == "INVALID_ARGUMENT"
    assert vertex_fake.calls("CreateTrainingPipeline") == 0
    # The failure is final: once the import file is fixed, a re-run imports again.
    vertex_fake.import_error = None
    with make_backend(vertex_fake, tmp_path) as backend:
        backend.train(location, budget=TrainingBudget())
    assert vertex_fake.calls("ImportData") == 2
    assert vertex_fake.calls("CreateDataset") == 1


def test_a_pipeline_ending_failed_raises_with_its_error_message(
    vertex_fake: FakeVertex, location: DatasetLocation, tmp_path: Path
) -> None:
    vertex_fake.pipeline_error = "Not enough images of label bmw_z4 in the test split"
    with make_backend(vertex_fake, tmp_path) as backend:
        with pytest.raises(TrainingError, match="ended PIPELINE_STATE_FAILED: Not enough") as e:
            backend.train(location, budget=TrainingBudget())
    assert e.value.status == "INVALID_ARGUMENT"
    state = backend.run_state(location, "redditvision-cars")
    assert state.get("pipeline") is None
    assert state.get("imported") is True


class Crash(BaseException):
    """The process dies (kill -9, OOM) while the pipeline runs."""


def test_a_restart_mid_training_resumes_polling_from_the_state_file(
    vertex_fake: FakeVertex, location: DatasetLocation, tmp_path: Path
) -> None:
    def die_when_running(step: str, message: str) -> None:
        if message.startswith("PIPELINE_STATE_RUNNING"):
            raise Crash

    first = make_backend(vertex_fake, tmp_path, progress=die_when_running)
    with pytest.raises(Crash):
        first.train(location, budget=TrainingBudget())
    first.close()
    [pipeline] = vertex_fake.pipelines
    assert RunState(next(tmp_path.glob("vertex-*.json"))).get("pipeline") == pipeline

    with make_backend(vertex_fake, tmp_path) as second:
        model = second.train(location, budget=TrainingBudget())
    assert model.metadata["training_pipeline"] == pipeline
    assert vertex_fake.calls("CreateTrainingPipeline") == 1
    assert vertex_fake.calls("CreateDataset") == 1
    assert vertex_fake.calls("ImportData") == 1


def test_polling_has_its_own_limit_and_a_rerun_resumes(
    vertex_fake: FakeVertex, location: DatasetLocation, tmp_path: Path
) -> None:
    vertex_fake.pipeline_running_polls = 5
    with make_backend(vertex_fake, tmp_path, poll=DEFAULT_POLL.evolve(attempts=3)) as backend:
        with pytest.raises(TrainingError, match="re-run the same command") as caught:
            backend.train(location, budget=TrainingBudget())
        assert caught.value.transient
    with make_backend(vertex_fake, tmp_path) as backend:
        backend.train(location, budget=TrainingBudget())
    assert vertex_fake.calls("CreateTrainingPipeline") == 1


def test_a_finished_run_is_returned_again_without_creating_anything(
    vertex_fake: FakeVertex, location: DatasetLocation, tmp_path: Path
) -> None:
    with make_backend(vertex_fake, tmp_path) as backend:
        first = backend.train(location, budget=TrainingBudget())
        again = backend.train(location, budget=TrainingBudget())
    assert first.resource == again.resource
    assert vertex_fake.calls("CreateTrainingPipeline") == 1


def test_a_permanent_error_is_raised_at_once_with_the_servers_message(
    vertex_fake: FakeVertex, location: DatasetLocation, tmp_path: Path
) -> None:
    vertex_fake.server.fail(
        "GetTrainingPipeline", grpc.StatusCode.PERMISSION_DENIED, message="caller lacks access"
    )
    with make_backend(vertex_fake, tmp_path) as backend:
        with pytest.raises(TrainingError, match="caller lacks access") as caught:
            backend.train(location, budget=TrainingBudget())
    assert caught.value.status == "PERMISSION_DENIED"
    assert not caught.value.transient
    assert vertex_fake.calls("GetTrainingPipeline") == 1


def test_bad_input_is_refused_before_any_call(
    vertex_fake: FakeVertex, location: DatasetLocation, tmp_path: Path
) -> None:
    with make_backend(vertex_fake, tmp_path) as backend:
        with pytest.raises(ConfigError, match="8,000-800,000"):
            backend.train(location, budget=TrainingBudget(milli_node_hours=500))
        with pytest.raises(ConfigError, match="vertex_csv or vertex_jsonl"):
            backend.train(
                DatasetLocation(
                    uri="gs://b/x",
                    import_file_uri="gs://b/x/automl.csv",
                    import_format="automl_csv",
                    images=1,
                    labels=("a",),
                ),
                budget=TrainingBudget(),
            )
        # Mobile models have their own range (1,000-100,000).
        backend.train(
            location,
            budget=TrainingBudget(milli_node_hours=1_000),
            model_type="MOBILE_TF_VERSATILE_1",
        )
    assert vertex_fake.calls("CreateTrainingPipeline") == 1


def test_deploy_of_a_model_that_does_not_exist_fails_without_creating_an_endpoint(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    missing = f"{vertex_fake.parent}/models/424242"
    with make_backend(vertex_fake, tmp_path) as backend:
        with pytest.raises(PredictionError, match=r"Model .* not found") as caught:
            backend.deploy(missing)
    assert caught.value.status == "NOT_FOUND"
    assert vertex_fake.calls("CreateEndpoint") == 0
    assert vertex_fake.endpoints == {}


def test_an_image_over_the_online_limit_is_re_encoded_under_it(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (900, 900, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    big = buffer.getvalue()
    assert len(big) > ONLINE_PREDICTION_LIMIT_BYTES
    model = TrainedModel(backend="vertex", resource=vertex_fake.add_model(), labels=LABELS)
    with make_backend(vertex_fake, tmp_path) as backend, Classifier(model, backend=backend) as c:
        assert len(c.predict(big)) == 3
    assert 0 < max(vertex_fake.predict_sizes) <= ONLINE_PREDICTION_LIMIT_BYTES


def test_bytes_over_the_limit_that_are_no_image_give_a_clear_error() -> None:
    with pytest.raises(PredictionError, match="over the 1,500,000-byte limit and is not an image"):
        fit_online_limit(b"\0" * (ONLINE_PREDICTION_LIMIT_BYTES + 1))


def test_an_evaluation_with_a_label_missing_from_the_confusion_matrix_gets_a_zero_row(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    vertex_fake.drop_from_confusion_matrix = "bmw_x5"
    model = TrainedModel(
        backend="vertex",
        resource=vertex_fake.add_model(),
        labels=LABELS,
        label_map={"bmw_x5": "BMW X5"},
    )
    with make_backend(vertex_fake, tmp_path) as backend:
        evaluation = backend.evaluate(model)
    assert evaluation.labels == ("bmw_m3", "bmw_z4", "BMW X5")
    assert evaluation.confusion_matrix == ((8, 1, 0), (0, 8, 0), (0, 0, 0))
    x5 = evaluation.per_label[2]
    assert x5.label == "BMW X5"
    assert x5.support == 0
    assert x5.au_prc == pytest.approx(0.9)
    assert evaluation.au_prc == pytest.approx(0.93)
    assert evaluation.micro_precision == pytest.approx(0.9)


def test_evaluate_converts_metrics_and_slices_into_the_shared_type(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    model = TrainedModel(backend="vertex", resource=vertex_fake.add_model(), labels=LABELS)
    with make_backend(vertex_fake, tmp_path) as backend:
        evaluation = AutoMLTrainer(backend=backend).evaluate(model)
    assert evaluation.labels == LABELS
    assert evaluation.confusion_matrix == ((8, 1, 1), (0, 8, 0), (0, 0, 8))
    assert evaluation.accuracy == pytest.approx(24 / 26)
    assert evaluation.per_label[0].recall == pytest.approx(0.8)
    assert evaluation.log_loss == pytest.approx(0.21)
    assert {t.label for t in evaluation.thresholds} == {None, *LABELS}
    assert evaluation.source.startswith(model.resource + "/evaluations/")


def test_classifier_undeploys_and_deletes_what_it_deployed(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    model = TrainedModel(
        backend="vertex",
        resource=vertex_fake.add_model(),
        labels=LABELS,
        label_map={"bmw_m3": "BMW M3", "bmw_x5": "BMW X5", "bmw_z4": "BMW Z4"},
    )
    with make_backend(vertex_fake, tmp_path) as backend:
        with Classifier(model, backend=backend) as classifier:
            predictions = classifier.predict(png_bytes(), max_predictions=2)
            assert len(vertex_fake.endpoints) == 1
        assert vertex_fake.endpoints == {}
    assert predictions[0].label.startswith("BMW ")
    assert len(predictions) == 2
    deployed = vertex_fake.server.calls_to("DeployModel")[0].request.deployed_model
    assert deployed.automatic_resources.min_replica_count == 1
    predict = vertex_fake.server.calls_to("Predict")[0].request
    assert dict(predict.parameters) == {"confidenceThreshold": 0.0, "maxPredictions": 2.0}
    assert len(predict.instances) == 1


def test_a_model_deployed_by_someone_else_stays_deployed(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    model = TrainedModel(backend="vertex", resource=vertex_fake.add_model(), labels=LABELS)
    with make_backend(vertex_fake, tmp_path) as backend:
        deployment = backend.deploy(model)
        assert backend.deploy(model) == deployment  # resumed from the state file
        with Classifier(model, backend=backend) as classifier:
            classifier.predict(png_bytes())
        assert list(vertex_fake.endpoints) == [deployment.endpoint]
        with Classifier(
            TrainedModel(backend="vertex", resource=deployment.endpoint), backend=backend
        ) as by_endpoint:
            by_endpoint.predict(png_bytes())
        backend.undeploy(deployment)
    assert vertex_fake.endpoints == {}
    assert vertex_fake.calls("CreateEndpoint") == 1


def test_an_undeployed_model_with_deploy_false_is_refused(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    model = TrainedModel(backend="vertex", resource=vertex_fake.add_model(), labels=LABELS)
    with make_backend(vertex_fake, tmp_path) as backend:
        classifier = Classifier(model, backend=backend, deploy=False)
        with pytest.raises(PredictionError, match="not deployed"):
            classifier.predict(png_bytes())


def test_from_env_insecure_talks_to_the_given_endpoint(
    vertex_fake: FakeVertex, location: DatasetLocation, tmp_path: Path
) -> None:
    backend = VertexAutoMLBackend.from_env(
        vertex_fake.project,
        vertex_fake.location,
        api_endpoint=vertex_fake.address,
        insecure=True,
        state_dir=tmp_path,
    )
    with AutoMLTrainer(backend=backend) as trainer:
        model = trainer.train(location)
        assert trainer.evaluate(model).labels == ("BMW M3", "BMW X5", "BMW Z4")
    backend.close()
    assert isinstance(backend.dataset_client, aip.DatasetServiceClient)


def test_batch_prediction_over_the_import_lists_test_split_is_resumable(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    csv_text = (
        "training,gs://b/cars/a.jpg,bmw_m3\n"
        "test,gs://b/cars/b.png,bmw_x5\n"
        "TEST,gs://b/cars/c.jpeg,bmw_z4\n"
    )
    uris = image_uris_from_import_csv(csv_text, ml_use="test")
    assert uris == ["gs://b/cars/b.png", "gs://b/cars/c.jpeg"]
    assert batch_instances(uris).splitlines()[0] == (
        '{"content": "gs://b/cars/b.png", "mimeType": "image/png"}'
    )
    model = vertex_fake.add_model()
    vertex_fake.server.fail(
        "CreateBatchPredictionJob", grpc.StatusCode.DEADLINE_EXCEEDED, after_handler=True
    )
    with make_backend(vertex_fake, tmp_path) as backend:
        result = backend.batch_predict(
            model,
            instances_uri="gs://b/cars/instances.jsonl",
            output_uri_prefix="gs://b/out",
            confidence_threshold=0.2,
        )
    assert result.state == "JOB_STATE_SUCCEEDED"
    assert result.output_directory.startswith("gs://b/out/prediction-")
    assert (result.successful_count, result.failed_count) == (12, 1)
    assert len(vertex_fake.batch_jobs) == 1
    job = vertex_fake.server.calls_to("CreateBatchPredictionJob")[0].request.batch_prediction_job
    assert job.input_config.instances_format == "jsonl"
    assert dict(job.model_parameters) == {"confidenceThreshold": 0.2}


def test_a_failed_batch_prediction_raises_its_message(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    vertex_fake.batch_error = "instances.jsonl: line 2 is not JSON"
    with make_backend(vertex_fake, tmp_path) as backend:
        with pytest.raises(PredictionError, match="line 2 is not JSON"):
            backend.batch_predict(
                vertex_fake.add_model(),
                instances_uri="gs://b/instances.jsonl",
                output_uri_prefix="gs://b/out",
            )


def test_the_trained_model_knows_the_labels_of_the_import_file(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    files = {
        "gs://b/x/import.jsonl": "\n".join(
            json.dumps(
                {
                    "imageGcsUri": f"gs://b/x/{i}.jpg",
                    "classificationAnnotation": {"displayName": label},
                }
            )
            for i, label in enumerate(["e30", "e36", "e46", "e36"])
        )
    }
    vertex_fake.import_reader = files.__getitem__
    location = DatasetLocation(
        uri="gs://b/x",
        import_file_uri="gs://b/x/import.jsonl",
        import_format="vertex_jsonl",
        images=4,
        labels=("e30", "e36", "e46"),
    )
    with make_backend(vertex_fake, tmp_path) as backend:
        model = backend.train(location, budget=TrainingBudget())
        assert backend.evaluate(model).labels == ("e30", "e36", "e46")


def test_a_large_real_photo_is_shrunk_only_as_much_as_the_limit_needs(bmw_photos: Path) -> None:
    largest = max(bmw_photos.rglob("*.jpg"), key=lambda p: p.stat().st_size)
    buffer = io.BytesIO()
    with Image.open(largest) as photo:
        photo.convert("RGB").resize((4000, 3000)).save(buffer, format="JPEG", quality=98)
    assert len(buffer.getvalue()) > ONLINE_PREDICTION_LIMIT_BYTES
    fitted = fit_online_limit(buffer.getvalue())
    assert len(base64.b64encode(fitted)) <= ONLINE_PREDICTION_LIMIT_BYTES
    with Image.open(io.BytesIO(fitted)) as result:
        assert result.format == "JPEG"
        assert result.width >= 1500  # about 0.9 * sqrt(1.5 / 5.2) of 4000, not shrunk twice


def test_from_env_without_credentials_is_a_config_error_without_the_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret_path = str(tmp_path / "nowhere" / "key.json")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", secret_path)
    with pytest.raises(ConfigError, match="application-default login") as caught:
        VertexAutoMLBackend.from_env("my-project", "europe-west4")
    assert secret_path not in str(caught.value)


def test_the_vertex_import_file_is_found_among_the_extra_import_files(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    location = DatasetLocation(
        uri="gs://b/x",
        import_file_uri="gs://b/x/automl.csv",
        import_format="automl_csv",
        images=30,
        labels=LABELS,
        extra_import_files={"vertex_csv": "gs://b/x/import.csv"},
    )
    with make_backend(vertex_fake, tmp_path) as backend:
        backend.train(location, budget=TrainingBudget())
    config = vertex_fake.server.calls_to("ImportData")[0].request.import_configs[0]
    assert list(config.gcs_source.uris) == ["gs://b/x/import.csv"]


def test_from_env_uses_the_regional_endpoint() -> None:
    from google.auth.credentials import AnonymousCredentials

    with VertexAutoMLBackend.from_env(
        "my-project", "europe-west4", credentials=AnonymousCredentials()
    ) as backend:
        hosts = {
            client.transport._host
            for client in (backend.dataset_client, backend.pipeline_client, backend.job_client)
        }
    assert hosts == {"europe-west4-aiplatform.googleapis.com:443"}
    assert backend.parent == "projects/my-project/locations/europe-west4"


def test_undeploy_after_a_lost_delete_answer_finishes_without_error(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    model = TrainedModel(backend="vertex", resource=vertex_fake.add_model(), labels=LABELS)
    vertex_fake.server.fail("DeleteEndpoint", grpc.StatusCode.DEADLINE_EXCEEDED, after_handler=True)
    with make_backend(vertex_fake, tmp_path) as backend:
        deployment = backend.deploy(model)
        with pytest.raises(PredictionError, match="deleting endpoint"):
            backend.undeploy(deployment)
        assert vertex_fake.endpoints == {}  # the server did delete it
        backend.undeploy(deployment)  # the re-run finds nothing left to do
    assert vertex_fake.calls("DeleteEndpoint") == 1


def test_from_env_without_a_project_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="project id"):
        VertexAutoMLBackend.from_env("", "us-central1")


def test_model_types_are_accepted_in_vertex_and_legacy_automl_spellings() -> None:
    assert normalize_model_type("cloud") == "CLOUD"
    assert normalize_model_type("mobile-versatile-1") == "MOBILE_TF_VERSATILE_1"
    assert normalize_model_type("MOBILE_TF_LOW_LATENCY_1") == "MOBILE_TF_LOW_LATENCY_1"
    with pytest.raises(ConfigError, match="unknown model_type 'tiny'"):
        normalize_model_type("tiny")
