"""The cloud commands with ``--backend automl`` against the in-process AutoML v1 fake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from google.cloud import automl_v1
from PIL import Image

from fakes.automl import FakeAutoML
from redditvision.cli import main

# Every command builds the backend, which warns that Google shut AutoML Vision down.
pytestmark = pytest.mark.filterwarnings(
    "ignore::redditvision.backends.automl.AutoMLShutdownWarning"
)

DEPLOYED = automl_v1.Model.DeploymentState.DEPLOYED
UNDEPLOYED = automl_v1.Model.DeploymentState.UNDEPLOYED


@pytest.fixture
def fake() -> Iterator[FakeAutoML]:
    with FakeAutoML() as server:
        yield server


def automl_args(fake: FakeAutoML, state_dir: Path) -> list[str]:
    return [
        "--backend",
        "automl",
        "--project",
        fake.project,
        "--location",
        fake.location,
        "--api-endpoint",
        fake.address,
        "--insecure",
        "--state-dir",
        str(state_dir),
    ]


def last_json(output: str) -> Any:
    return json.loads(output.strip().splitlines()[-1])


def test_deploy_and_undeploy_a_legacy_automl_model(fake: FakeAutoML, tmp_path: Path) -> None:
    model = fake.add_model()
    runner = CliRunner()

    deployed = runner.invoke(
        main, ["deploy", "--model", model, "--node-count", "2", *automl_args(fake, tmp_path)]
    )

    assert deployed.exit_code == 0, deployed.output
    assert last_json(deployed.stdout) == {
        "backend": "automl",
        "model": model,
        "endpoint": None,  # AutoML v1 serves from the model itself
        "deployed_model_id": None,
        "deployed": True,
    }
    assert fake.models[model].deployment_state == DEPLOYED
    (call,) = fake.server.calls_to("DeployModel")
    assert call.request.image_classification_model_deployment_metadata.node_count == 2

    undeployed = runner.invoke(main, ["undeploy", "--model", model, *automl_args(fake, tmp_path)])

    assert undeployed.exit_code == 0, undeployed.output
    assert last_json(undeployed.stdout) == {
        "backend": "automl",
        "target": model,
        "undeployed": [model],
        "endpoint_deleted": False,
    }
    assert fake.models[model].deployment_state == UNDEPLOYED

    again = runner.invoke(main, ["deploy", "--model", model, *automl_args(fake, tmp_path)])
    assert again.exit_code == 0, again.output
    assert last_json(again.stdout)["deployed"] is True
    already = runner.invoke(main, ["deploy", "--model", model, *automl_args(fake, tmp_path)])
    assert last_json(already.stdout)["deployed"] is False  # deployed already: nothing sent
    assert len(fake.server.calls_to("DeployModel")) == 2


def test_deploy_of_a_missing_automl_model_exits_with_the_servers_message(
    fake: FakeAutoML, tmp_path: Path
) -> None:
    missing = f"{fake.parent}/models/ICN404"

    run = CliRunner().invoke(main, ["deploy", "--model", missing, *automl_args(fake, tmp_path)])

    assert run.exit_code == 1
    assert "ICN404 does not exist" in run.stderr
    assert "status=NOT_FOUND" in run.stderr
    assert fake.server.calls_to("DeployModel") == []


def test_train_evaluate_and_predict_with_backend_automl(fake: FakeAutoML, tmp_path: Path) -> None:
    runner = CliRunner()
    csv = "gs://bucket/bmw/automl.csv"

    trained = runner.invoke(
        main,
        ["train", "--dataset", csv, "--budget", "8000", "--json", *automl_args(fake, tmp_path)],
    )

    assert trained.exit_code == 0, trained.output
    result = last_json(trained.stdout)
    model = result["model"]
    assert model in fake.models
    (create,) = fake.server.calls_to("CreateModel")
    assert create.request.model.image_classification_model_metadata.model_type == "cloud"
    (imported,) = fake.server.calls_to("ImportData")
    assert list(imported.request.input_config.gcs_source.input_uris) == [csv]

    again = runner.invoke(
        main, ["train", "--dataset", csv, "--budget", "8000", *automl_args(fake, tmp_path)]
    )
    assert again.exit_code == 0, again.output
    assert again.stdout.strip().splitlines()[-1] == model  # resumed, not trained twice
    assert len(fake.server.calls_to("CreateModel")) == 1

    evaluated = runner.invoke(
        main, ["evaluate", "--model", model, "--json", *automl_args(fake, tmp_path)]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert last_json(evaluated.stdout)["labels"] == ["M3", "X5", "Z4"]

    image = tmp_path / "z4.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(image)
    predicted = runner.invoke(
        main,
        ["predict", "--model", model, "--json", *automl_args(fake, tmp_path), str(image)],
    )
    assert predicted.exit_code == 0, predicted.output
    answer = last_json(predicted.stdout)
    assert answer["predictions"][0]["label"] == "Z4"
    # predict deployed the model for this call and undeployed it afterwards
    assert len(fake.server.calls_to("DeployModel")) == 1
    assert fake.models[model].deployment_state == UNDEPLOYED
