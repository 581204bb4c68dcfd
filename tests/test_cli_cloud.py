"""The deploy and undeploy commands against the in-process Vertex AI fake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from click.testing import CliRunner
from PIL import Image

from redditvision.cli import main

if TYPE_CHECKING:
    from fakes.vertex import FakeVertex

pytest_plugins = ["fakes.vertex"]


def cloud_args(fake: FakeVertex, state_dir: Path) -> list[str]:
    return [
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


def test_deploy_prints_the_endpoint_and_undeploy_takes_it_down(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    model = vertex_fake.add_model()
    runner = CliRunner()
    deployed = runner.invoke(main, ["deploy", "--model", model, *cloud_args(vertex_fake, tmp_path)])
    assert deployed.exit_code == 0, deployed.output
    result = json.loads(deployed.stdout.strip().splitlines()[-1])
    assert result["model"] == model
    assert result["endpoint"] in vertex_fake.endpoints
    assert vertex_fake.endpoints[result["endpoint"]].deployed_models[0].model == model

    again = runner.invoke(main, ["deploy", "--model", model, *cloud_args(vertex_fake, tmp_path)])
    assert json.loads(again.stdout.strip().splitlines()[-1]) == result
    assert vertex_fake.calls("CreateEndpoint") == 1

    undeployed = runner.invoke(
        main, ["undeploy", "--endpoint", result["endpoint"], *cloud_args(vertex_fake, tmp_path)]
    )
    assert undeployed.exit_code == 0, undeployed.output
    summary = json.loads(undeployed.stdout.strip().splitlines()[-1])
    assert summary["undeployed"] == [result["deployed_model_id"]]
    assert summary["endpoint_deleted"] is True
    assert vertex_fake.endpoints == {}


def test_deploy_of_a_missing_model_exits_with_the_servers_message(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    missing = f"{vertex_fake.parent}/models/1"
    run = CliRunner().invoke(
        main, ["deploy", "--model", missing, *cloud_args(vertex_fake, tmp_path)]
    )
    assert run.exit_code == 1
    assert "not found" in run.stderr
    assert "status=NOT_FOUND" in run.stderr


def test_undeploy_without_an_endpoint_is_bad_input(vertex_fake: FakeVertex, tmp_path: Path) -> None:
    run = CliRunner().invoke(main, ["undeploy", *cloud_args(vertex_fake, tmp_path)])
    assert run.exit_code == 2
    assert "--endpoint" in run.stderr


def test_train_evaluate_and_predict_with_backend_vertex(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    runner = CliRunner()
    cloud = cloud_args(vertex_fake, tmp_path / "state")
    trained = runner.invoke(
        main,
        [
            "train",
            "--backend",
            "vertex",
            "--dataset",
            "gs://bucket/cars/import.csv",
            "--budget",
            "8000",
            "--model-type",
            "CLOUD",
            "--json",
            *cloud,
        ],
    )
    assert trained.exit_code == 0, trained.output
    result = json.loads(trained.stdout.strip().splitlines()[-1])
    assert result["backend"] == "vertex"
    assert result["budget_milli_node_hours"] == 8000
    model = result["model"]
    assert model in vertex_fake.models
    assert "PIPELINE_STATE_SUCCEEDED" in trained.stderr

    again = runner.invoke(
        main, ["train", "--backend", "vertex", "--dataset", "gs://bucket/cars/import.csv", *cloud]
    )
    assert again.stdout.strip() == model
    assert vertex_fake.calls("CreateTrainingPipeline") == 1

    evaluated = runner.invoke(
        main, ["evaluate", "--backend", "vertex", "--model", model, "--json", *cloud]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["labels"] == ["bmw_m3", "bmw_x5", "bmw_z4"]

    deployed = runner.invoke(main, ["deploy", "--model", model, *cloud])
    endpoint = json.loads(deployed.stdout.strip().splitlines()[-1])["endpoint"]
    image = tmp_path / "car.png"
    Image.new("RGB", (24, 24), "blue").save(image)
    predicted = runner.invoke(
        main,
        ["predict", "--backend", "vertex", "--endpoint", endpoint, "--json", str(image), *cloud],
    )
    assert predicted.exit_code == 0, predicted.output
    line = json.loads(predicted.stdout.strip().splitlines()[-1])
    assert line["image"] == str(image)
    assert {p["label"] for p in line["predictions"]} == {"bmw_m3", "bmw_x5", "bmw_z4"}


def test_train_backend_vertex_needs_a_gs_import_file(
    vertex_fake: FakeVertex, tmp_path: Path
) -> None:
    local = tmp_path / "dataset.jsonl"
    local.write_text("")
    run = CliRunner().invoke(
        main,
        [
            "train",
            "--backend",
            "vertex",
            "--dataset",
            str(local),
            *cloud_args(vertex_fake, tmp_path),
        ],
    )
    assert run.exit_code == 2
    assert "--dataset gs://" in run.stderr
    assert vertex_fake.calls("CreateDataset") == 0
