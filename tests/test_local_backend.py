"""The local backend trains, saves, evaluates and predicts on real photos and refuses bad input."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from redditvision.backends.local import (
    Candidate,
    EfficientNetLite0Extractor,
    LocalBackend,
)
from redditvision.backends.local._folder import content_sha256
from redditvision.classify import Classifier
from redditvision.errors import (
    ConfigError,
    DatasetError,
    MissingDependencyError,
    ModelFormatError,
)
from redditvision.models import (
    DatasetLocation,
    LabeledDataset,
    LabeledImage,
    MLUse,
    TrainedModel,
    TrainingBudget,
)
from redditvision.training import AutoMLTrainer

FOLDERS = {
    "z3_4_8": ("BMW Z4 Convertible 2012", "z3-4-8"),
    "x_suv": ("BMW X5 SUV 2007", "x-suv"),
    "L_3_4series": ("BMW 3 Series Sedan 2012", "3-4series"),
}
LABEL_MAP = {label: original for label, (_, original) in FOLDERS.items()}
ONE_HEAD = [Candidate(name="logreg-C0.1+flip", head="logreg", c=0.1, train_flip=True)]
USES = [MLUse.TRAINING] * 4 + [MLUse.VALIDATION, MLUse.TEST]


@pytest.fixture(scope="module")
def extractor() -> EfficientNetLite0Extractor:
    """One network for the module, so the weights load once."""
    return EfficientNetLite0Extractor()


@pytest.fixture(scope="module")
def dataset(bmw_photos: Path) -> LabeledDataset:
    """Six real photos of each of three models: 4 training, 1 validation, 1 test."""
    images = []
    for label, (folder, original) in FOLDERS.items():
        for path, use in zip(sorted((bmw_photos / folder).iterdir())[:6], USES, strict=True):
            images.append(LabeledImage(path=path, label=label, original_label=original, ml_use=use))
    return LabeledDataset(images=tuple(images), label_map=LABEL_MAP, name="bmw-tiny")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local")


@pytest.fixture(scope="module")
def backend(extractor: EfficientNetLite0Extractor, workdir: Path) -> Iterator[LocalBackend]:
    with LocalBackend(
        quality="fast",
        extractor=extractor,
        cache_dir=workdir / "cache",
        model_dir=workdir / "models",
    ) as opened:
        yield opened


@pytest.fixture(scope="module")
def model(backend: LocalBackend, dataset: LabeledDataset, workdir: Path) -> TrainedModel:
    """The shared model: default search on the tiny dataset."""
    return backend.train(dataset, out=workdir / "model")


def one_head_backend(extractor: EfficientNetLite0Extractor, workdir: Path) -> LocalBackend:
    return LocalBackend(
        quality="fast",
        extractor=extractor,
        cache_dir=workdir / "cache",
        model_dir=workdir / "models",
        candidates=ONE_HEAD,
    )


def copy_model(model: TrainedModel, target: Path) -> Path:
    target.mkdir()
    for item in Path(model.resource).iterdir():
        (target / item.name).write_bytes(item.read_bytes())
    return target


def test_train_writes_manifest_and_skops_head_and_no_pickle(model: TrainedModel) -> None:
    folder = Path(model.resource)
    assert sorted(p.name for p in folder.iterdir()) == [
        "evaluation.json",
        "head.skops",
        "model.json",
    ]
    manifest = json.loads((folder / "model.json").read_text())
    assert manifest["extractor"]["id"] == "efficientnet-lite0"
    assert manifest["extractor"]["version"] == EfficientNetLite0Extractor.version
    assert manifest["labels"] == ["L_3_4series", "x_suv", "z3_4_8"]
    assert manifest["label_map"]["x_suv"] == "x-suv"
    assert {"scikit-learn", "skops", "torch", "numpy"} <= set(manifest["libraries"])
    assert len(manifest["training_data"]["fingerprint"]) == 64
    assert manifest["training_data"]["images"] == 15
    assert len(manifest["files"]["head.skops"]) == 64


def test_trained_model_keeps_the_search_table_and_chosen_candidate(model: TrainedModel) -> None:
    meta = model.metadata
    names = {row["name"] for row in meta["search"]}
    assert meta["candidate"]["name"] in names
    assert len(meta["search"]) == 10  # 5 default candidates, each with and without TTA
    chosen = max(row["cv_macro_f1"] for row in meta["search"])
    assert meta["cv_macro_f1"] == pytest.approx(chosen, abs=1e-6)
    assert meta["training_images"] == 12
    assert meta["validation_images"] == 3
    assert meta["test"]["images"] == 3


def test_classifier_predicts_user_label_names_best_first(
    model: TrainedModel, bmw_photos: Path
) -> None:
    photo = sorted((bmw_photos / "BMW X5 SUV 2007").iterdir())[10]
    with Classifier(model) as classifier:
        predictions = classifier.predict(photo)
    assert {p.label for p in predictions} == {"z3-4-8", "x-suv", "3-4series"}
    assert [p.score for p in predictions] == sorted((p.score for p in predictions), reverse=True)
    assert sum(p.score for p in predictions) == pytest.approx(1.0, abs=1e-6)
    assert predictions[0].model_label in LABEL_MAP


def test_confidence_threshold_and_max_predictions_limit_the_answer(
    model: TrainedModel, bmw_photos: Path
) -> None:
    photos = sorted((bmw_photos / "BMW Z4 Convertible 2012").iterdir())[10:12]
    with Classifier(model) as classifier:
        capped = classifier.predict_many(photos, max_predictions=1)
        above = classifier.predict_many(photos, confidence_threshold=0.34)
    assert [len(row) for row in capped] == [1, 1]
    assert all(p.score >= 0.34 for row in above for p in row)
    assert all(len(row) in (1, 2) for row in above)


def test_predicting_an_empty_list_gives_an_empty_list(model: TrainedModel) -> None:
    with Classifier(model) as classifier:
        assert classifier.predict_many([]) == []
        assert classifier.predictor.predict([]) == []


def test_evaluate_without_data_returns_the_saved_test_split_evaluation(
    backend: LocalBackend, model: TrainedModel
) -> None:
    evaluation = backend.evaluate(model)
    assert evaluation.source == "local:test split"
    assert evaluation.evaluated_items == 3
    assert evaluation.labels == ("3-4series", "x-suv", "z3-4-8")


def test_evaluate_on_a_dataset_uses_its_test_split(
    backend: LocalBackend, model: TrainedModel, dataset: LabeledDataset
) -> None:
    evaluation = backend.evaluate(model, dataset)
    assert evaluation == backend.evaluate(model)
    unsplit = attrs.evolve(
        dataset, images=tuple(attrs.evolve(i, ml_use=None) for i in dataset.images)
    )
    everything = backend.evaluate(model, unsplit)
    assert everything.source == "local:all images"
    assert everything.evaluated_items == 18
    assert sum(map(sum, everything.confusion_matrix)) == 18


def test_trainer_facade_trains_and_evaluates_with_the_local_backend(
    extractor: EfficientNetLite0Extractor, dataset: LabeledDataset, workdir: Path
) -> None:
    with AutoMLTrainer(backend=one_head_backend(extractor, workdir)) as trainer:
        trained = trainer.train(dataset, display_name="facade")
        evaluation = trainer.evaluate(trained)
    assert trained.backend == "local"
    assert Path(trained.resource).parent == workdir / "models"
    assert Path(trained.resource).name.startswith("facade-")
    assert evaluation.evaluated_items == 3


def test_retraining_reads_every_embedding_from_the_cache(
    extractor: EfficientNetLite0Extractor,
    dataset: LabeledDataset,
    workdir: Path,
    model: TrainedModel,
) -> None:
    calls: list[tuple[int, int]] = []
    backend = one_head_backend(extractor, workdir)
    backend.progress = lambda done, total: calls.append((done, total))
    backend.train(dataset, out=workdir / "again")
    # Training images and their mirrors (15 x 2), then the 3 test images, all cached.
    assert calls[0] == (30, 30)
    assert all(done == total for done, total in calls)


def test_corrupt_image_in_training_folder_is_skipped_with_a_warning_naming_it(
    extractor: EfficientNetLite0Extractor,
    dataset: LabeledDataset,
    workdir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    corrupt = workdir / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    bad = LabeledImage(path=corrupt, label="x_suv", original_label="x-suv", ml_use=MLUse.TRAINING)
    data = attrs.evolve(dataset, images=(*dataset.images, bad))
    with caplog.at_level(logging.WARNING, logger="redditvision"):
        trained = one_head_backend(extractor, workdir).train(data, out=workdir / "skip")
    assert str(corrupt) in caplog.text
    assert [item["path"] for item in trained.metadata["skipped"]] == [str(corrupt)]
    assert trained.metadata["training_images"] == 12


def test_label_with_one_image_is_a_dataset_error_naming_the_label(
    extractor: EfficientNetLite0Extractor, dataset: LabeledDataset, workdir: Path
) -> None:
    lone = LabeledImage(
        path=dataset.images[0].path, label="m_coupe", original_label="M Coupe", ml_use=None
    )
    data = attrs.evolve(dataset, images=(*dataset.images, lone))
    with pytest.raises(DatasetError, match="'m_coupe': 1") as info:
        one_head_backend(extractor, workdir).train(data, out=workdir / "lone")
    assert "add images" in str(info.value)


def test_model_folder_from_another_extractor_version_is_refused(
    model: TrainedModel, workdir: Path
) -> None:
    class NextVersion(EfficientNetLite0Extractor):
        version = "2+weights-0.2.0"

    other = LocalBackend(extractor=NextVersion(), cache_dir=workdir / "cache")
    with pytest.raises(ModelFormatError, match="retrain the model with this version"):
        other.open_predictor(model)


def test_tampered_head_file_is_refused(model: TrainedModel, workdir: Path) -> None:
    folder = copy_model(model, workdir / "tampered")
    head = folder / "head.skops"
    data = bytearray(head.read_bytes())
    data[len(data) // 2] ^= 0xFF
    head.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="changed after training"):
        Classifier(folder).predict_many([b"unused"])


def test_head_with_types_outside_the_trust_list_is_refused_even_with_a_matching_hash(
    model: TrainedModel, workdir: Path
) -> None:
    import hashlib

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    folder = copy_model(model, workdir / "untrusted")
    sio.dump(FunctionTransformer(func=print), folder / "head.skops")
    manifest = json.loads((folder / "model.json").read_text())
    manifest["files"]["head.skops"] = hashlib.sha256(
        (folder / "head.skops").read_bytes()
    ).hexdigest()
    manifest["content_sha256"] = content_sha256(manifest)
    (folder / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="not part of a redditvision head"):
        Classifier(folder).predict_many([b"unused"])


def test_model_folder_of_a_newer_format_is_refused(model: TrainedModel, workdir: Path) -> None:
    folder = copy_model(model, workdir / "newer")
    manifest = json.loads((folder / "model.json").read_text())
    manifest["format_version"] = 99
    (folder / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="upgrade redditvision"):
        Classifier(folder).predict_many([b"unused"])


def test_folder_without_manifest_is_not_a_model(workdir: Path) -> None:
    with pytest.raises(ModelFormatError, match="not a local model folder"):
        Classifier(workdir / "nothing-here").predict_many([b"unused"])


def test_output_folder_that_is_not_a_model_is_not_overwritten(
    extractor: EfficientNetLite0Extractor, dataset: LabeledDataset, workdir: Path
) -> None:
    precious = workdir / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a redditvision model folder"):
        one_head_backend(extractor, workdir).train(dataset, out=precious)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_time_limit_stops_the_search_after_the_first_candidate(
    backend: LocalBackend, dataset: LabeledDataset, workdir: Path
) -> None:
    trained = backend.train(dataset, budget=TrainingBudget(time_limit_s=0.0), out=workdir / "quick")
    assert trained.metadata["search_stopped_early"] is True
    assert {row["name"] for row in trained.metadata["search"]} == {"logreg-C0.1+flip"}


def test_dataset_location_in_local_jsonl_trains(
    extractor: EfficientNetLite0Extractor, dataset: LabeledDataset, workdir: Path
) -> None:
    from redditvision.storage import write_local_dataset

    path = write_local_dataset(dataset, workdir / "written")
    location = DatasetLocation(
        uri=(workdir / "written").as_uri(),
        import_file_uri=path.as_uri(),
        import_format="local_jsonl",
        images=len(dataset.images),
        labels=dataset.labels,
    )
    trained = one_head_backend(extractor, workdir).train(location, out=workdir / "from-file")
    assert trained.labels == ("L_3_4series", "x_suv", "z3_4_8")
    assert trained.label_map["L_3_4series"] == "3-4series"


def test_dataset_location_for_a_cloud_format_is_a_config_error(
    backend: LocalBackend,
) -> None:
    location = DatasetLocation(
        uri="gs://bucket/prefix",
        import_file_uri="gs://bucket/prefix/import.csv",
        import_format="vertex_csv",
        images=1,
        labels=("a",),
    )
    with pytest.raises(ConfigError, match="local_jsonl"):
        backend.train(location)


def test_without_the_local_extra_the_error_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'redditvision\[local\]'"):
        LocalBackend()


def test_a_run_folder_given_as_model_names_the_model_folder_inside(tmp_path: Path) -> None:
    inner = tmp_path / "run" / "model" / "bmw-20261130T000000Z"
    inner.mkdir(parents=True)
    (inner / "model.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ModelFormatError, match=r"model folders inside it: .*bmw-20261130T000000Z"):
        LocalBackend().load(tmp_path / "run")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_head_search_keeps_flip_tta_only_when_it_beats_the_plain_head_by_the_margin(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TTA halves prediction throughput, so the search picks it only for a real CV gain."""
    import numpy as np

    from redditvision.backends.local import _search
    from redditvision.backends.local._search import TTA_MIN_GAIN, search

    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), 20)
    centers = rng.normal(size=(3, 16)) * 0.8
    plain = (centers[y] + rng.normal(size=(60, 16))).astype(np.float32)
    # The mirror is another noisy view of the same image: averaging the two helps.
    mirrored = (centers[y] + rng.normal(size=(60, 16))).astype(np.float32)
    result = search(plain, mirrored, y, 3)
    best = {
        tta: max(row["cv_macro_f1"] for row in result.table if row["tta"] is tta)
        for tta in (False, True)
    }
    assert result.tta is (best[True] >= best[False] + TTA_MIN_GAIN)
    assert result.cv_macro_f1 == pytest.approx(best[result.tta], abs=1e-6)
    assert result.tta  # two noisy views of each image: averaging them gains here
    # Identical views: TTA cannot gain, so it is never chosen.
    assert search(plain, plain.copy(), y, 3).tta is False
    # A gain below the margin is not enough.
    monkeypatch.setattr(_search, "TTA_MIN_GAIN", best[True] - best[False] + 0.001)
    plain_only = search(plain, mirrored, y, 3)
    assert plain_only.tta is False
    assert plain_only.cv_macro_f1 == pytest.approx(best[False], abs=1e-6)
