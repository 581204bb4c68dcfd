"""Label Studio export and import, on real PNG files and exports in Label Studio's formats."""

from __future__ import annotations

import csv
import hashlib
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageStat

from redditvision.cli import main
from redditvision.errors import DatasetError
from redditvision.labels.label_studio import (
    export_tasks,
    import_labels,
    label_config,
    read_label_config,
    record_ids,
)
from redditvision.models import LabeledDataset, LabeledImage, Prediction
from redditvision.storage import load_local_dataset, write_local_dataset

LABELS = ("BMW Z4", "M3")


def _make_dataset(root: Path, per_label: int = 3) -> Path:
    """Write real PNGs (distinct gray levels) and the dataset.jsonl `label --out` writes."""
    images: list[LabeledImage] = []
    for label_index, original in enumerate(LABELS):
        service = original.replace(" ", "_")
        folder = root / "images" / service
        folder.mkdir(parents=True)
        for n in range(per_label):
            path = folder / f"img{n}.png"
            level = 30 + 60 * n + 10 * label_index
            Image.new("RGB", (16, 16), (level, level, level)).save(path)
            images.append(
                LabeledImage(
                    path=path,
                    label=service,
                    original_label=original,
                    sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                    source=str(path),
                )
            )
    dataset = LabeledDataset(
        images=tuple(images), label_map={"BMW_Z4": "BMW Z4", "M3": "M3"}, name="cars"
    )
    return write_local_dataset(dataset, root / "labeled" / "dataset.jsonl")


@pytest.fixture
def dataset_file(tmp_path: Path) -> Path:
    return _make_dataset(tmp_path)


def _tasks(path: Path) -> list[dict[str, object]]:
    tasks = json.loads((path / "tasks.json").read_text(encoding="utf-8"))
    assert isinstance(tasks, list)
    return tasks


def _json_export(tasks: list[dict[str, object]], relabel: dict[str, str]) -> list[object]:
    """What Label Studio's JSON export holds: each task with one annotation."""
    exported: list[object] = []
    for task in tasks:
        data = task["data"]
        assert isinstance(data, dict)
        choice = relabel.get(data["rv_id"], data["rv_label"])
        exported.append(
            {
                "id": task["id"],
                "data": data,
                "annotations": [
                    {
                        "id": 100 + int(str(task["id"])),
                        "completed_by": 1,
                        "result": [
                            {
                                "id": "r1",
                                "type": "choices",
                                "value": {"choices": [choice]},
                                "origin": "manual",
                                "to_name": "image",
                                "from_name": "label",
                            }
                        ],
                        "was_cancelled": False,
                        "ground_truth": False,
                        "lead_time": 2.5,
                        "task": task["id"],
                    }
                ],
                "predictions": [],
                "meta": {},
                "file_upload": None,
                "project": 1,
            }
        )
    return exported


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_round_trip_keeps_every_record_and_relabels_the_changed(
    dataset_file: Path, tmp_path: Path
) -> None:
    dataset = load_local_dataset(dataset_file)
    result = export_tasks(dataset, tmp_path / "ls", document_root=tmp_path)
    tasks = _tasks(tmp_path / "ls")
    assert result.tasks == len(tasks) == len(dataset.images) == 6
    first = tasks[0]["data"]
    assert isinstance(first, dict)
    assert str(first["image"]).startswith("/data/local-files/?d=images/")
    ids = record_ids(dataset)
    flip = {ids[0]: "M3", ids[4]: "BMW Z4"}
    export = _write(tmp_path / "export.json", _json_export(tasks, flip))
    relabeled, report = import_labels(export, dataset)
    assert report.export_format == "json"
    assert (report.tasks, report.annotated, report.relabeled) == (6, 6, 2)
    assert [i.path for i in relabeled.images] == [i.path for i in dataset.images]
    for index, (old, new) in enumerate(zip(dataset.images, relabeled.images, strict=True)):
        if index == 0:
            assert (new.label, new.original_label) == ("M3", "M3")
        elif index == 4:
            assert (new.label, new.original_label) == ("BMW_Z4", "BMW Z4")
        else:
            assert (new.label, new.original_label) == (old.label, old.original_label)
        assert new.sha256 == old.sha256
    assert dict(relabeled.label_map) == {"BMW_Z4": "BMW Z4", "M3": "M3"}


def test_matches_by_record_id_not_by_file_name(dataset_file: Path, tmp_path: Path) -> None:
    dataset = load_local_dataset(dataset_file)
    export_tasks(dataset, tmp_path / "ls")
    tasks = _tasks(tmp_path / "ls")
    tasks.reverse()
    for task in tasks:  # the image URL is no help: every task points at the same file
        data = task["data"]
        assert isinstance(data, dict)
        data["image"] = "/data/local-files/?d=elsewhere.png"
    ids = record_ids(dataset)
    relabeled, _ = import_labels(
        _write(tmp_path / "e.json", _json_export(tasks, {ids[2]: "BMW Z4"})), dataset
    )
    assert relabeled.images[2].original_label == "BMW Z4"
    assert [i.original_label for i in relabeled.images[3:]] == ["M3"] * 3


def test_cancelled_annotations_are_ignored_and_counted(dataset_file: Path, tmp_path: Path) -> None:
    dataset = load_local_dataset(dataset_file)
    export_tasks(dataset, tmp_path / "ls")
    exported = _json_export(_tasks(tmp_path / "ls"), {record_ids(dataset)[0]: "M3"})
    task = exported[0]
    assert isinstance(task, dict)
    task["annotations"][0]["was_cancelled"] = True
    relabeled, report = import_labels(_write(tmp_path / "e.json", exported), dataset)
    assert report.cancelled == 1
    assert report.unannotated == 1
    assert relabeled.images == dataset.images


def test_json_min_export(dataset_file: Path, tmp_path: Path) -> None:
    dataset = load_local_dataset(dataset_file)
    export_tasks(dataset, tmp_path / "ls")
    ids = record_ids(dataset)
    rows = [
        {
            **task["data"],  # type: ignore[dict-item]
            "id": task["id"],
            "label": "M3" if task["data"]["rv_id"] == ids[1] else task["data"]["rv_label"],  # type: ignore[index]
            "annotator": 1,
            "annotation_id": 7,
            "created_at": "2026-12-02T15:00:00Z",
            "updated_at": "2026-12-02T15:00:00Z",
            "lead_time": 1.0,
        }
        for task in _tasks(tmp_path / "ls")
    ]
    relabeled, report = import_labels(_write(tmp_path / "min.json", rows), dataset)
    assert report.export_format == "json_min"
    assert report.relabeled == 1
    assert relabeled.images[1].label == "M3"


def test_csv_export(dataset_file: Path, tmp_path: Path) -> None:
    dataset = load_local_dataset(dataset_file)
    export_tasks(dataset, tmp_path / "ls")
    ids = record_ids(dataset)
    path = tmp_path / "export.csv"
    fields = ["annotation_id", "annotator", "created_at", "id", "image", "label", "lead_time"]
    fields += ["rv_id", "rv_label", "updated_at"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for task in _tasks(tmp_path / "ls"):
            data = task["data"]
            assert isinstance(data, dict)
            label = "BMW Z4" if data["rv_id"] == ids[5] else data["rv_label"]
            writer.writerow(
                {
                    "annotation_id": 1,
                    "annotator": 1,
                    "created_at": "2026-12-02T15:00:00Z",
                    "id": task["id"],
                    "image": data["image"],
                    "label": label,
                    "lead_time": 1.0,
                    "rv_id": data["rv_id"],
                    "rv_label": data["rv_label"],
                    "updated_at": "2026-12-02T15:00:00Z",
                }
            )
    relabeled, report = import_labels(path, dataset)
    assert report.export_format == "csv"
    assert report.relabeled == 1
    assert relabeled.images[5].original_label == "BMW Z4"


def _bad_case(name: str, tasks: list[dict[str, object]]) -> object:
    exported = _json_export(tasks, {})
    task = exported[0]
    assert isinstance(task, dict)
    if name == "unknown id":
        task["data"] = {**task["data"], "rv_id": "not-a-record"}
    elif name == "outside config":
        task["annotations"][0]["result"][0]["value"]["choices"] = ["Cat"]
    elif name == "two choices":
        task["annotations"][0]["result"][0]["value"]["choices"] = ["M3", "BMW Z4"]
    elif name == "empty":
        return []
    return exported


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown id", "unknown record id"),
        ("outside config", "not in the labeling config"),
        ("two choices", "2 choices"),
        ("empty", "holds no task"),
    ],
)
def test_bad_export_raises_and_changes_nothing(
    dataset_file: Path, tmp_path: Path, case: str, message: str
) -> None:
    before = dataset_file.read_bytes()
    dataset = load_local_dataset(dataset_file)
    export_tasks(dataset, tmp_path / "ls")
    export = _write(tmp_path / "bad.json", _bad_case(case, _tasks(tmp_path / "ls")))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["label-studio", "import", str(export), "--dataset", str(dataset_file), "--out", str(out)],
    )
    assert result.exit_code != 0
    assert message in result.output
    assert not out.exists()
    assert dataset_file.read_bytes() == before
    with pytest.raises(DatasetError, match=message):
        import_labels(export, dataset)


@pytest.mark.parametrize("text", ["", "not an export\nat all\n", "{broken json"])
def test_not_json_or_csv_raises(dataset_file: Path, tmp_path: Path, text: str) -> None:
    path = tmp_path / "export.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetError, match="Label Studio export"):
        import_labels(path, load_local_dataset(dataset_file))


class BrightnessClassifier:
    """A real, tiny classifier: mean gray level; a mid gray is the least confident."""

    def predict_many(self, images: Iterable[Path]) -> list[list[Prediction]]:
        found: list[list[Prediction]] = []
        for path in images:
            with Image.open(path) as image:
                level = ImageStat.Stat(image.convert("L")).mean[0] / 255
            bright = abs(level - 0.5) + 0.5
            label = "M3" if level > 0.5 else "BMW Z4"
            found.append([Prediction(label=label, score=bright, model_label=label)])
        return found


def test_predictions_order_least_confident_first(dataset_file: Path, tmp_path: Path) -> None:
    dataset = load_local_dataset(dataset_file)
    result = export_tasks(dataset, tmp_path / "ls", classifier=BrightnessClassifier())
    tasks = _tasks(tmp_path / "ls")
    assert result.predictions == 6
    scores = [task["predictions"][0]["score"] for task in tasks]  # type: ignore[index]
    assert scores == sorted(scores)
    prediction = tasks[0]["predictions"][0]  # type: ignore[index]
    assert prediction["model_version"] == "redditvision"
    assert prediction["result"][0]["from_name"] == "label"
    assert prediction["result"][0]["to_name"] == "image"
    assert prediction["result"][0]["type"] == "choices"
    assert prediction["result"][0]["value"]["choices"][0] in LABELS
    assert [t["id"] for t in tasks] == list(range(1, 7))


def test_audit_flagged_images_come_first(dataset_file: Path, tmp_path: Path) -> None:
    dataset = load_local_dataset(dataset_file)
    audit = tmp_path / "audit"
    audit.mkdir()
    flagged = [dataset.images[4], dataset.images[1]]
    lines = [
        {
            "rank": 1,
            "path": str(flagged[0].path),
            "issue": "label_error",
            "score": 0.9,
            "suggested_label": "BMW_Z4",
        },
        {
            "rank": 2,
            "path": str(flagged[1].path),
            "issue": "blurry",
            "score": 0.4,
            "suggested_label": None,
        },
    ]
    (audit / "audit.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    result = export_tasks(dataset, tmp_path / "ls", audit=audit, classifier=BrightnessClassifier())
    assert result.flagged == 2
    ids = record_ids(dataset)
    order = [task["data"]["rv_id"] for task in _tasks(tmp_path / "ls")]  # type: ignore[index]
    assert order[:2] == [ids[4], ids[1]]


def test_label_config_escapes_values() -> None:
    text = label_config(['A & "B"', "<c>"])
    root = ET.fromstring(text)
    assert root.tag == "View"
    image = root.find("Image")
    choices = root.find("Choices")
    assert image is not None and image.attrib == {"name": "image", "value": "$image"}
    assert choices is not None
    assert choices.attrib == {
        "name": "label",
        "toName": "image",
        "choice": "single",
        "showInline": "true",
    }
    assert [c.attrib["value"] for c in choices.findall("Choice")] == ['A & "B"', "<c>"]


def test_http_urls_need_base_url(dataset_file: Path, tmp_path: Path) -> None:
    dataset = load_local_dataset(dataset_file)
    with pytest.raises(DatasetError, match="base_url"):
        export_tasks(dataset, tmp_path / "ls", image_url="http")
    export_tasks(
        dataset,
        tmp_path / "ls",
        image_url="http",
        document_root=tmp_path,
        base_url="http://127.0.0.1:8081/",
    )
    urls = [task["data"]["image"] for task in _tasks(tmp_path / "ls")]  # type: ignore[index]
    assert all(str(u).startswith("http://127.0.0.1:8081/images/") for u in urls)
    with pytest.raises(DatasetError, match="document root"):
        export_tasks(dataset, tmp_path / "ls", document_root=tmp_path / "labeled")


def test_cli_export_then_import(dataset_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "ls"
    result = runner.invoke(
        main,
        [
            "label-studio",
            "export",
            str(dataset_file),
            "--out",
            str(out),
            "--document-root",
            str(tmp_path),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["tasks"] == 6
    assert summary["labels"] == ["BMW Z4", "M3"]
    assert ET.fromstring((out / "label_config.xml").read_text()).tag == "View"
    dataset = load_local_dataset(dataset_file)
    export = _write(
        tmp_path / "export.json", _json_export(_tasks(out), {record_ids(dataset)[0]: "M3"})
    )
    result = runner.invoke(
        main,
        [
            "label-studio",
            "import",
            str(export),
            "--dataset",
            str(dataset_file),
            "--out",
            str(tmp_path / "relabeled"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["relabeled"] == 1
    relabeled = load_local_dataset(tmp_path / "relabeled" / "dataset.jsonl")
    assert relabeled.counts() == {"BMW_Z4": 2, "M3": 4}
    assert [i.path for i in relabeled.images] == [i.path for i in dataset.images]


def test_config_labels_allow_a_new_label(dataset_file: Path, tmp_path: Path) -> None:
    dataset = load_local_dataset(dataset_file)
    out = tmp_path / "ls"
    export_tasks(dataset, out, labels=[*LABELS, "Not a car!"])
    assert read_label_config(out / "label_config.xml") == ("BMW Z4", "M3", "Not a car!")
    export = _write(
        tmp_path / "e.json",
        _json_export(_tasks(out), {record_ids(dataset)[3]: "Not a car!"}),
    )
    with pytest.raises(DatasetError, match="not in the labeling config"):
        import_labels(export, dataset)
    result = CliRunner().invoke(
        main,
        [
            "label-studio",
            "import",
            str(export),
            "--dataset",
            str(dataset_file),
            "--out",
            str(tmp_path / "r"),
            "--config",
            str(out / "label_config.xml"),
        ],
    )
    assert result.exit_code == 0, result.output
    relabeled = load_local_dataset(tmp_path / "r")
    assert (relabeled.images[3].label, relabeled.images[3].original_label) == (
        "Not_a_car",
        "Not a car!",
    )
    assert relabeled.label_map["Not_a_car"] == "Not a car!"


def test_real_classifier_gives_scored_pre_annotations(bmw_photos: Path, tmp_path: Path) -> None:
    from serve_support import FOLDERS, tiny_classifier, tiny_model

    images = [
        LabeledImage(path=path, label=label, original_label=original)
        for label, (folder, original) in FOLDERS.items()
        for path in sorted((bmw_photos / folder).iterdir())[8:11]
    ]
    dataset = LabeledDataset(
        images=tuple(images), label_map={k: v for k, (_, v) in FOLDERS.items()}
    )
    with tiny_classifier(tiny_model(bmw_photos)) as classifier:
        result = export_tasks(dataset, tmp_path / "ls", classifier=classifier)
    tasks = _tasks(tmp_path / "ls")
    assert result.predictions == len(tasks) == 9
    scores = [task["predictions"][0]["score"] for task in tasks]  # type: ignore[index]
    assert scores == sorted(scores)
    assert all(0.0 <= float(s) <= 1.0 for s in scores)
    originals = {original for _, original in FOLDERS.values()}
    for task in tasks:
        chosen = task["predictions"][0]["result"][0]["value"]["choices"]  # type: ignore[index]
        assert len(chosen) == 1 and chosen[0] in originals


@pytest.mark.parametrize("kind", ["json_min", "csv"])
def test_flat_exports_with_two_choices_raise(dataset_file: Path, tmp_path: Path, kind: str) -> None:
    dataset = load_local_dataset(dataset_file)
    export_tasks(dataset, tmp_path / "ls")
    task = _tasks(tmp_path / "ls")[0]
    data = task["data"]
    assert isinstance(data, dict)
    two = {"choices": ["M3", "BMW Z4"]}  # what Label Studio writes for a multi-choice answer
    if kind == "json_min":
        path = _write(tmp_path / "min.json", [{**data, "id": task["id"], "label": two}])
    else:
        path = tmp_path / "export.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["id", "image", "label", "rv_id"])
            writer.writeheader()
            writer.writerow(
                {
                    "id": task["id"],
                    "image": data["image"],
                    "label": json.dumps(two),
                    "rv_id": data["rv_id"],
                }
            )
    with pytest.raises(DatasetError, match="2 choices"):
        import_labels(path, dataset)
