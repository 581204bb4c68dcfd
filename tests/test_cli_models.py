"""`redditvision train`, `evaluate`, `predict` and `labels` work end to end on real photos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from redditvision.cli import main

FOLDERS = ("BMW Z4 Convertible 2012", "BMW X5 SUV 2007")
LABEL_MAP = """
[labels]
"z3-4-8" = ["BMW Z4 *"]
"x-suv" = ["BMW X5 *", "BMW X6 *"]
"""


@pytest.fixture(scope="module")
def folders(bmw_photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten real photos of each of two models, in folders named as in the data set."""
    root = tmp_path_factory.mktemp("cli") / "images"
    for folder in FOLDERS:
        (root / folder).mkdir(parents=True)
        for path in sorted((bmw_photos / folder).iterdir())[:10]:
            shutil.copy(path, root / folder / path.name)
    (root.parent / "series.toml").write_text(LABEL_MAP)
    return root


@pytest.fixture(scope="module")
def trained(folders: Path) -> tuple[Path, dict[str, object]]:
    out = folders.parent / "model"
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--backend",
            "local",
            "--images",
            str(folders),
            "--label-map",
            str(folders.parent / "series.toml"),
            "--out",
            str(out),
            "--cache-dir",
            str(folders.parent / "cache"),
            "--time-limit",
            "0",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout.strip().splitlines()[-1])


def test_train_writes_the_model_folder_and_prints_its_scores(
    trained: tuple[Path, dict[str, object]],
) -> None:
    out, summary = trained
    assert (out / "model.json").is_file() and (out / "head.skops").is_file()
    assert summary["model"] == str(out.resolve())
    assert sorted(summary["labels"]) == ["x-suv", "z3-4-8"]  # type: ignore[arg-type]
    assert 0.0 <= summary["cv_macro_f1"] <= 1.0  # type: ignore[operator]
    assert summary["test"]["images"] == 2  # type: ignore[index]


def test_predict_json_prints_one_line_per_image_in_the_users_names(
    trained: tuple[Path, dict[str, object]], bmw_photos: Path
) -> None:
    out, _ = trained
    photos = [sorted((bmw_photos / folder).iterdir())[20] for folder in FOLDERS]
    result = CliRunner().invoke(main, ["predict", "--model", str(out), "--json", *map(str, photos)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [line["image"] for line in lines] == [str(p) for p in photos]
    for line in lines:
        labels = [p["label"] for p in line["predictions"]]
        scores = [p["score"] for p in line["predictions"]]
        assert sorted(labels) == ["x-suv", "z3-4-8"]
        assert scores == sorted(scores, reverse=True)


def test_predict_reports_an_undecodable_image_and_answers_the_others(
    trained: tuple[Path, dict[str, object]], bmw_photos: Path, tmp_path: Path
) -> None:
    out, _ = trained
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    photo = sorted((bmw_photos / FOLDERS[0]).iterdir())[20]
    result = CliRunner().invoke(
        main, ["predict", "--model", str(out), "--json", str(broken), str(photo)]
    )
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert lines[0]["image"] == str(broken) and "cannot be decoded" in lines[0]["error"]
    assert lines[1]["image"] == str(photo) and len(lines[1]["predictions"]) == 2


def test_predict_on_a_text_file_names_the_file_not_its_position(
    trained: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    out, _ = trained
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo\n")
    result = CliRunner().invoke(main, ["predict", "--model", str(out), str(notes)])
    assert result.exit_code == 1
    assert f"{notes} cannot be decoded" in result.stderr
    assert "image 0" not in result.stderr


def test_predict_without_images_is_a_usage_error(
    trained: tuple[Path, dict[str, object]],
) -> None:
    out, _ = trained
    result = CliRunner().invoke(main, ["predict", "--model", str(out)])
    assert result.exit_code == 2
    assert "IMAGE" in result.output


def test_evaluate_json_on_the_image_folder(
    trained: tuple[Path, dict[str, object]], folders: Path
) -> None:
    out, _ = trained
    result = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--model",
            str(out),
            "--images",
            str(folders),
            "--label-map",
            str(folders.parent / "series.toml"),
            "--cache-dir",
            str(folders.parent / "cache"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    evaluation = json.loads(result.stdout)
    assert evaluation["evaluated_items"] == 20
    assert sorted(evaluation["labels"]) == ["x-suv", "z3-4-8"]
    assert sum(map(sum, evaluation["confusion_matrix"])) == 20


def test_evaluate_prints_the_saved_test_evaluation_as_a_table(
    trained: tuple[Path, dict[str, object]],
) -> None:
    out, _ = trained
    result = CliRunner().invoke(main, ["evaluate", "--model", str(out)])
    assert result.exit_code == 0, result.output
    assert "confusion matrix" in result.output
    assert "z3-4-8" in result.output


def test_evaluate_a_folder_that_is_not_a_model_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["evaluate", "--model", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a local model folder" in result.output


def test_labels_json_gives_imagenet_classes(bmw_photos: Path) -> None:
    photo = sorted((bmw_photos / FOLDERS[0]).iterdir())[0]
    result = CliRunner().invoke(main, ["labels", "--json", "--max-results", "3", str(photo)])
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout)
    assert line["image"] == str(photo)
    assert len(line["labels"]) == 3
    assert line["labels"][0]["score"] >= line["labels"][1]["score"]
