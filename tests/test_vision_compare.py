"""VisionComparator with a real local model, against the Cloud Vision fake and ImageNet labels."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from google.rpc import code_pb2

from fakes.vision import FakeVision, annotation, error, key_of
from redditvision.classify import Classifier
from redditvision.compare import (
    CAR_TERMS,
    DEFAULT_VOCABULARY,
    BatchPredictor,
    GenericMatch,
    VisionComparator,
    Vocabulary,
    class_phrases,
)
from redditvision.errors import ConfigError
from redditvision.labelers import CloudVisionLabeler, ImageLabels
from redditvision.models import LabeledDataset, LabeledImage, Prediction
from redditvision.report import evaluate_comparison, write_report

Z4 = "BMW Z4 Convertible 2012"
X5 = "BMW X5 SUV 2007"
ALIASES = {"z3-4-8": [Z4], "x-suv": [X5]}


def photos(bmw_photos: Path, folder: str, start: int, count: int) -> list[Path]:
    return sorted((bmw_photos / folder).iterdir())[start : start + count]


@pytest.fixture(scope="module")
def tiny_model(bmw_photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real local model trained on 4 + 4 real photos (Z4 against X5), one head, no search.

    Its service labels are ``z3_4_8`` and ``x_suv``; the user's names ``z3-4-8`` and
    ``x-suv`` come back in predictions through the label map.
    """
    pytest.importorskip("torch")
    from redditvision.backends.local import Candidate, LocalBackend

    images = [
        LabeledImage(path=path, label=label, original_label=original)
        for folder, label, original in ((Z4, "z3_4_8", "z3-4-8"), (X5, "x_suv", "x-suv"))
        for path in photos(bmw_photos, folder, 0, 4)
    ]
    root = tmp_path_factory.mktemp("model")
    with LocalBackend(
        cache_dir=root / "cache",
        model_dir=root,
        candidates=[Candidate(name="logreg-C0.1", head="logreg", c=0.1)],
    ) as backend:
        model = backend.train(
            LabeledDataset(images=tuple(images), label_map={"z3_4_8": "z3-4-8", "x_suv": "x-suv"}),
            out=root / "bmw",
        )
    return Path(model.resource)


@pytest.fixture(scope="module")
def classifier(tiny_model: Path) -> Iterator[Classifier]:
    """One classifier for the module, so the network's weights load once."""
    with Classifier(tiny_model) as opened:
        yield opened


@pytest.fixture
def vision() -> Iterator[FakeVision]:
    with FakeVision() as fake:
        yield fake


@pytest.fixture
def cloud(vision: FakeVision) -> Iterator[CloudVisionLabeler]:
    client = vision.client()
    with CloudVisionLabeler(client=client) as labeler:
        yield labeler
    client.transport.close()


def test_class_phrases_keep_the_words_that_name_the_model() -> None:
    drop = ["bmw", "convertible", "sedan", "coupe", "suv"]
    assert class_phrases(Z4, drop=drop) == ("z4",)
    assert class_phrases("BMW 3 Series Sedan 2012", drop=drop) == ("3 series",)
    assert class_phrases("BMW M3 Coupe 2012", drop=drop) == ("m3",)
    assert class_phrases("BMW 2012", drop=drop) == ()
    assert class_phrases("5", drop=drop) == ()


@pytest.mark.slow
def test_compare_with_cloud_vision_measures_each_image_and_the_aggregates(
    bmw_photos: Path, classifier: Classifier, vision: FakeVision, cloud: CloudVisionLabeler
) -> None:
    z4s = photos(bmw_photos, Z4, 4, 3)
    x5s = photos(bmw_photos, X5, 4, 3)
    script = {
        z4s[0]: annotation(labels=[("Car", 0.98)], web=[("BMW Z4", 1.2)], best_guess="bmw z4"),
        z4s[1]: annotation(labels=[("Car", 0.97), ("Bmw", 0.9), ("Convertible", 0.8)]),
        z4s[2]: annotation(labels=[("Sports car", 0.9)], web=[("BMW X5", 0.5)]),
        x5s[0]: annotation(labels=[("Sport utility vehicle", 0.95)], web=[("BMW X5", 0.9)]),
        x5s[1]: annotation(labels=[("Asphalt", 0.9), ("Sky", 0.7)]),
        x5s[2]: error(code_pb2.INVALID_ARGUMENT, "Bad image data."),
    }
    for path, answer in script.items():
        vision.script[key_of(path.read_bytes())] = answer
    comparator = VisionComparator(generic=cloud, custom=classifier, aliases=ALIASES)

    report = comparator.compare([*z4s, *x5s], ["z3-4-8"] * 3 + ["x-suv"] * 3)

    assert [image.generic_match for image in report.images] == [
        GenericMatch.CLASS,
        GenericMatch.GENERIC,
        GenericMatch.OTHER_CLASS,
        GenericMatch.CLASS,
        GenericMatch.NONE,
        None,
    ]
    assert report.images[0].generic.best_guess == "bmw z4"
    assert report.images[0].generic_classes == ("z3-4-8",)
    assert report.images[5].generic.error == "INVALID_ARGUMENT: Bad image data."
    assert report.make_terms == ("bmw",)
    # The custom side: real predictions in the user's label names, all labels scored.
    assert all(image.custom_label in {"z3-4-8", "x-suv"} for image in report.images)
    assert all(len(image.custom) == 2 for image in report.images)
    correct = sum(bool(image.custom_correct) for image in report.images)
    s = report.summary
    assert s.images == 6
    assert s.with_truth == 6
    assert s.generic_errors == 1
    assert s.custom_errors == 0
    assert s.custom_accuracy == pytest.approx(correct / 6)
    assert s.generic_names_truth == pytest.approx(2 / 5)
    assert s.generic_names_other_class == pytest.approx(1 / 5)
    assert s.generic_only_generic == pytest.approx(1 / 5)
    assert s.generic_none == pytest.approx(1 / 5)
    agreeing = sum(bool(image.agreement) for image in report.images)
    assert s.agreement == pytest.approx(agreeing / 5)
    assert report.labels == ("x-suv", "z3-4-8")
    assert sum(map(sum, report.confusion_matrix)) == 6
    by_label = {c.label: c for c in report.classes}
    assert by_label["z3-4-8"].support == 3
    assert by_label["z3-4-8"].generic_names_class == pytest.approx(1 / 3)
    assert by_label["x-suv"].generic_names_class == pytest.approx(1 / 2)
    assert all(c.known_to_model for c in report.classes)
    assert vision.batch_sizes() == [6]


@pytest.mark.slow
def test_an_image_nobody_can_read_is_recorded_and_the_report_is_still_written(
    bmw_photos: Path, classifier: Classifier, cloud: CloudVisionLabeler, tmp_path: Path
) -> None:
    good = photos(bmw_photos, Z4, 4, 1)[0]
    missing = tmp_path / "gone.jpg"
    garbage = b"this is not an image"
    comparator = VisionComparator(generic=cloud, custom=classifier)

    report = comparator.compare([good, missing, garbage], ["z3-4-8", "z3-4-8", "x-suv"])

    ok, gone, broken = report.images
    assert ok.custom_error is None
    assert ok.generic.error is None
    assert gone.generic.error is not None and "gone.jpg" in gone.generic.error
    assert gone.custom_error is not None
    assert broken.name == "image 3"
    assert broken.custom_error is not None  # the model cannot decode it
    assert broken.custom == ()
    assert report.summary.custom_errors == 2
    files = write_report(report, tmp_path / "report")
    assert "gone.jpg" in files.html.read_text("utf-8")


@pytest.mark.slow
def test_a_batch_of_0_images_gives_an_empty_report(
    classifier: Classifier, cloud: CloudVisionLabeler, vision: FakeVision, tmp_path: Path
) -> None:
    report = VisionComparator(generic=cloud, custom=classifier).compare([])
    assert report.images == ()
    assert report.summary.images == 0
    assert report.summary.custom_accuracy is None
    assert report.summary.generic_names_truth is None
    assert vision.server.calls == []
    assert write_report(report, tmp_path / "report").html.is_file()


@pytest.mark.slow
def test_17_images_go_to_cloud_vision_in_two_batches(
    bmw_photos: Path, classifier: Classifier, cloud: CloudVisionLabeler, vision: FakeVision
) -> None:
    from PIL import Image

    images = []
    for path in photos(bmw_photos, Z4, 4, 17):  # small copies keep the model's work short
        with Image.open(path) as opened:
            opened.thumbnail((96, 96))
            buffer = io.BytesIO()
            opened.convert("RGB").save(buffer, format="JPEG")
            images.append(buffer.getvalue())
    seen: list[int] = []

    report = VisionComparator(generic=cloud, custom=classifier).compare(
        images, on_progress=seen.append
    )

    assert len(report.images) == 17
    assert vision.batch_sizes() == [16, 1]
    assert seen == [16, 1]
    assert [image.name for image in report.images][-1] == "image 17"
    assert all(image.custom for image in report.images)
    assert all(image.truth is None and image.generic_match is None for image in report.images)


@pytest.mark.slow
def test_a_truth_label_the_model_does_not_know_is_reported_not_raised(
    bmw_photos: Path, classifier: Classifier, cloud: CloudVisionLabeler
) -> None:
    images = photos(bmw_photos, Z4, 4, 2)
    truth = {str(images[0]): "z3-4-8", str(images[1]): "5-6series"}

    report = VisionComparator(generic=cloud, custom=classifier).compare(images, truth)

    assert report.summary.unknown_truth_labels == ("5-6series",)
    unknown = next(c for c in report.classes if c.label == "5-6series")
    assert not unknown.known_to_model
    assert unknown.support == 1
    assert unknown.recall == 0.0
    assert report.images[1].custom_correct is False
    evaluation = evaluate_comparison(report)
    assert evaluation is not None
    assert evaluation.evaluated_items == 1  # only the image whose truth the model knows


@pytest.mark.slow
def test_labels_with_html_special_characters_are_escaped_in_the_report(
    bmw_photos: Path,
    classifier: Classifier,
    cloud: CloudVisionLabeler,
    vision: FakeVision,
    tmp_path: Path,
) -> None:
    image = photos(bmw_photos, Z4, 4, 1)[0]
    hostile = '<img src=x onerror="alert(1)"> & Co'
    vision.script[key_of(image.read_bytes())] = annotation(
        labels=[(hostile, 0.9)], best_guess=hostile
    )
    report = VisionComparator(generic=cloud, custom=classifier).compare([image])
    page = write_report(report, tmp_path / "report").html.read_text("utf-8")
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; Co" in page


def test_truth_of_the_wrong_length_is_a_config_error(tmp_path: Path) -> None:
    class Silent:
        name = "silent"

        def label(self, images: object, *, max_results: int = 10) -> list[ImageLabels]:
            raise AssertionError("must not be called")

        def close(self) -> None:
            pass

    pytest.importorskip("torch")
    with Classifier(tmp_path) as unopened:  # never opened: nothing is predicted
        comparator = VisionComparator(generic=Silent(), custom=unopened)
        with pytest.raises(ConfigError, match="2 labels for 1 images"):
            comparator.compare([b"x"], ["a", "b"])
        with pytest.raises(ConfigError):
            VisionComparator(generic=Silent(), custom=unopened, top_k=0)


@pytest.mark.slow
def test_the_offline_imagenet_labeler_compares_the_same_way(
    bmw_photos: Path, classifier: Classifier
) -> None:
    from redditvision.backends.local import ImageNetLabeler

    labeler = ImageNetLabeler(extractor=classifier.backend.extractor)  # type: ignore[attr-defined]
    images = [*photos(bmw_photos, Z4, 4, 2), *photos(bmw_photos, X5, 4, 2)]

    report = VisionComparator(generic=labeler, custom=classifier, aliases=ALIASES).compare(
        images, ["z3-4-8", "z3-4-8", "x-suv", "x-suv"]
    )

    assert report.generic_name == "imagenet"
    assert all(image.generic.labels for image in report.images)
    assert all(g.source == "imagenet" for image in report.images for g in image.generic.labels)
    # ImageNet knows no BMW model: its labels never name a class here.
    assert report.summary.generic_names_truth == 0.0
    assert report.summary.generic_only_generic is not None


@pytest.mark.slow
def test_cli_compare_writes_the_report_and_prints_the_summary(
    bmw_photos: Path, tiny_model: Path, tmp_path: Path
) -> None:
    from redditvision.cli import main

    images = tmp_path / "images"
    for folder in (Z4, X5):
        (images / folder).mkdir(parents=True)
        for path in photos(bmw_photos, folder, 4, 2):
            (images / folder / path.name).write_bytes(path.read_bytes())
    label_map = tmp_path / "series.toml"
    label_map.write_text(
        '[labels]\n"z3-4-8" = ["BMW Z3 *", "BMW Z4 *"]\n"x-suv" = ["BMW X5 *"]\n',
        encoding="utf-8",
    )
    out = tmp_path / "report"
    args = [
        "compare",
        "--model",
        str(tiny_model),
        "--images",
        str(images),
        "--label-map",
        str(label_map),
        "--out",
        str(out),
        "--json-summary",
    ]

    result = CliRunner().invoke(main, args)

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["generic"] == "imagenet"
    assert summary["overall"]["images"] == 4
    assert summary["overall"]["with_truth"] == 4
    assert {row["label"] for row in summary["classes"]} == {"z3-4-8", "x-suv"}
    for name in ("report.html", "report.md", "comparison.csv", "headline.png"):
        assert (out / name).is_file(), name
    # The evaluation of the compared images draws the confusion matrix, once.
    assert (out / "evaluation_pr_curves.png").is_file()
    assert not (out / "confusion_matrix.png").exists()

    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2
    assert "--overwrite" in again.output

    assert (out / "evaluation_confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_compare_refuses_bad_arguments_before_any_work(tmp_path: Path) -> None:
    from redditvision.cli import main

    images = tmp_path / "flat"
    images.mkdir()
    (images / "notes.txt").write_text("not an image", encoding="utf-8")
    runner = CliRunner()

    neither = runner.invoke(
        main, ["compare", "--images", str(images), "--out", str(tmp_path / "a")]
    )
    assert neither.exit_code == 2
    assert "exactly one of --model" in neither.output
    assert not (tmp_path / "a").exists()

    both = runner.invoke(
        main,
        [
            "compare",
            "--model",
            str(tmp_path),
            "--endpoint",
            "projects/p/locations/l/endpoints/1",
            "--images",
            str(images),
            "--out",
            str(tmp_path / "b"),
        ],
    )
    assert both.exit_code == 2

    no_images = runner.invoke(
        main,
        [
            "compare",
            "--model",
            str(tmp_path),
            "--images",
            str(images),
            "--out",
            str(tmp_path / "c"),
        ],
    )
    assert no_images.exit_code == 2
    assert "no images in" in no_images.output

    bad_endpoint = runner.invoke(
        main,
        [
            "compare",
            "--endpoint",
            "my-endpoint",
            "--images",
            str(images),
            "--out",
            str(tmp_path / "d"),
        ],
    )
    assert bad_endpoint.exit_code == 2
    assert "projects/PROJECT/locations/LOCATION/endpoints/ID" in bad_endpoint.output


def test_cli_compare_with_cloud_vision_and_no_credentials_says_how_to_log_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    from redditvision.cli import main

    pytest.importorskip("torch")
    images = tmp_path / "flat"
    images.mkdir()
    Image.new("RGB", (8, 8)).save(images / "one.png")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))

    result = CliRunner().invoke(
        main,
        [
            "compare",
            "--model",
            str(tmp_path),
            "--vision",
            "cloud",
            "--images",
            str(images),
            "--out",
            str(tmp_path / "out"),
        ],
    )

    assert result.exit_code == 2
    assert "gcloud auth application-default login" in result.output
    assert "missing.json" not in result.output


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


class FixedLabels:
    """A generic labeler answering the same labels for every image (the protocol, no model)."""

    name = "fixed"

    def __init__(self, *texts: str) -> None:
        from redditvision.models import GenericLabel

        self.answer = ImageLabels(
            labels=tuple(GenericLabel(label=t, score=0.9, source="test") for t in texts)
        )

    def label(self, images: Sequence[bytes], *, max_results: int = 10) -> list[ImageLabels]:
        return [self.answer for _ in images]

    def close(self) -> None:
        pass


class FixedPredictor:
    """A custom model that is not a Classifier: any object with predict_many and close."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.closed = False

    def predict_many(self, images: Iterable[object]) -> list[list[Prediction]]:
        return [[Prediction(label=self.label, score=0.8, model_label=self.label)] for _ in images]

    def close(self) -> None:
        self.closed = True


def test_the_comparator_takes_any_batch_predictor_not_only_a_classifier() -> None:
    custom = FixedPredictor("finch")
    assert isinstance(custom, BatchPredictor)
    comparator = VisionComparator(
        generic=FixedLabels("Finch", "Bird"),
        custom=custom,
        custom_name="birds-v1",
        known_labels=["finch", "sparrow"],
        vocabulary=Vocabulary(generic_terms=("bird",)),
    )
    with comparator:
        report = comparator.compare([_jpeg((200, 0, 0)), _jpeg((0, 200, 0))], ["finch", "sparrow"])
    assert custom.closed
    assert report.custom_name == "birds-v1"
    assert report.labels == ("finch", "sparrow")
    assert [image.custom_correct for image in report.images] == [True, False]
    assert [image.generic_match for image in report.images] == ["class", "other_class"]
    assert report.summary.custom_accuracy == 0.5


def test_the_vocabulary_is_data_a_label_map_can_supply(tmp_path: Path) -> None:
    label_map = tmp_path / "birds.toml"
    label_map.write_text(
        '[labels]\nfinch = ["Finch *"]\nsparrow = ["Sparrow *"]\n\n'
        '[vocabulary]\ngeneric_terms = ["bird", "songbird"]\n',
        encoding="utf-8",
    )
    birds = Vocabulary.from_toml(label_map)
    assert birds.generic_terms == ("bird", "songbird")
    images = [_jpeg((10, 10, 10))]

    def match(vocabulary: Vocabulary) -> str | None:
        comparator = VisionComparator(
            generic=FixedLabels("Songbird"),
            custom=FixedPredictor("finch"),
            known_labels=["finch", "sparrow"],
            vocabulary=vocabulary,
        )
        return comparator.compare(images, ["finch"]).images[0].generic_match

    # With the car words, "Songbird" names nothing; with the label map's words it is generic.
    assert match(DEFAULT_VOCABULARY) == GenericMatch.NONE
    assert match(birds) == GenericMatch.GENERIC


def test_a_label_map_without_vocabulary_gives_the_car_words_and_extras_add_to_them(
    tmp_path: Path,
) -> None:
    plain = tmp_path / "plain.toml"
    plain.write_text('[labels]\n"z3-4-8" = ["BMW Z4 *"]\n', encoding="utf-8")
    assert Vocabulary.from_toml(plain) == DEFAULT_VOCABULARY
    assert DEFAULT_VOCABULARY.generic_terms == CAR_TERMS
    extra = Vocabulary.from_mapping({"extra_generic_terms": ["racing car", "car"]})
    assert extra.generic_terms == (*CAR_TERMS, "racing car")
    assert Vocabulary.from_mapping({"make_terms": ["BMW"]}).make_terms == ("BMW",)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"generic": ["car"]}, "unknown key"),
        ({"generic_terms": "car"}, "list of words"),
        ({"generic_terms": ["car", 3]}, "list of words"),
    ],
)
def test_a_malformed_vocabulary_table_is_a_config_error(
    table: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Vocabulary.from_mapping(table, source="birds.toml [vocabulary]")


def test_a_vocabulary_file_that_is_not_toml_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[vocabulary\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Vocabulary.from_toml(bad)
