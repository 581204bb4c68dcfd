"""One registry of backends: a new backend is one module plus one registry line."""

from __future__ import annotations

import functools
import io
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from PIL import Image

from redditvision import AutoMLTrainer, Classifier, check_dataset
from redditvision.backends import (
    Backend,
    BackendOptions,
    Deployer,
    PredictionBackend,
    TargetLimits,
    TrainingBackend,
    backend_names,
    build_backend,
    get_backend,
    register_backend,
    unregister_backend,
)
from redditvision.errors import ConfigError
from redditvision.models import (
    DatasetLocation,
    Evaluation,
    LabeledDataset,
    LabeledImage,
    LabelMetrics,
    MLUse,
    Prediction,
    TrainedModel,
    TrainingBudget,
)

# --- the whole "constant" backend: what docs/backends/writing.rst shows --------------------

CONSTANT_LIMITS = TargetLimits(
    name="constant",
    min_images_per_label=1,
    recommended_images_per_label=1,
    max_imbalance=1000.0,
    formats=None,
    max_bytes=None,
)


class ConstantPredictor:
    """Answers the same label for every image."""

    def __init__(self, label: str) -> None:
        self.label = label

    def predict(
        self,
        images: Sequence[bytes],
        *,
        confidence_threshold: float = 0.0,
        max_predictions: int | None = None,
    ) -> list[list[Prediction]]:
        return [[Prediction(label=self.label, score=1.0, model_label=self.label)] for _ in images]

    def close(self) -> None:
        pass


class ConstantBackend:
    """Trains by remembering the most common label; predicts it for every image."""

    name = "constant"

    def __init__(self, *, model_dir: str | None = None) -> None:
        self.model_dir = model_dir
        self.closed = False

    @classmethod
    def from_options(cls, options: BackendOptions) -> ConstantBackend:
        return cls(model_dir=None if options.model_dir is None else str(options.model_dir))

    def train(
        self,
        data: LabeledDataset | DatasetLocation,
        *,
        budget: TrainingBudget,
        display_name: str | None = None,
    ) -> TrainedModel:
        if not isinstance(data, LabeledDataset):
            raise ConfigError("the constant backend trains from a LabeledDataset")
        labels = [image.label for image in data.images]
        best = max(set(labels), key=labels.count)
        return TrainedModel(backend=self.name, resource=best, labels=tuple(sorted(set(labels))))

    def evaluate(self, model: TrainedModel, data: LabeledDataset | None = None) -> Evaluation:
        items = list(data.images) if data is not None else []
        hits = sum(1 for image in items if image.label == model.resource)
        precision = hits / len(items) if items else 0.0
        return Evaluation(
            labels=(model.resource,),
            per_label=(
                LabelMetrics(
                    label=model.resource, precision=precision, recall=1.0, f1=0.0, support=hits
                ),
            ),
            confusion_matrix=((hits,),),
            accuracy=precision,
            macro_precision=precision,
            macro_recall=1.0,
            macro_f1=0.0,
            micro_precision=precision,
            micro_recall=1.0,
            micro_f1=0.0,
            evaluated_items=len(items),
        )

    def open_predictor(self, model: TrainedModel, *, deploy: bool = True) -> ConstantPredictor:
        return ConstantPredictor(model.resource)

    def load(self, reference: str) -> TrainedModel:
        return TrainedModel(backend=self.name, resource=reference)

    def close(self) -> None:
        self.closed = True


# -------------------------------------------------------------------------------------------


@pytest.fixture
def constant() -> Iterator[None]:
    # The one registry line of the new backend (here the factory is an object, not a string).
    register_backend("constant", ConstantBackend.from_options, limits=CONSTANT_LIMITS)
    yield
    unregister_backend("constant")


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG")
    return buffer.getvalue()


def _dataset(folder: Path | None = None) -> LabeledDataset:
    """Three e30 and one e36 (distinct PNG files when ``folder`` is given)."""
    images = []
    for label, count in (("e30", 3), ("e36", 1)):
        for i in range(count):
            path = Path(f"{label}-{i}.png")
            if folder is not None:
                path = folder / path.name
                Image.new("RGB", (4, 4), (i * 40, len(label), 9)).save(path, format="PNG")
            images.append(
                LabeledImage(path=path, label=label, original_label=label, ml_use=MLUse.TRAINING)
            )
    return LabeledDataset(name="cars", images=tuple(images))


def test_the_built_in_backends_are_registered_with_their_limits() -> None:
    assert backend_names()[:3] == ("local", "vertex", "automl")
    assert get_backend("vertex").limits.min_images_per_label == 10
    vertex = get_backend("vertex").import_formats
    assert {name: kind.file_name for name, kind in vertex.items()} == {
        "vertex_csv": "import.csv",
        "vertex_jsonl": "import.jsonl",
    }
    assert get_backend("automl").import_formats["automl_csv"].suffix == ".csv"
    assert get_backend("local").limits.formats is None
    assert backend_names(deploys=True) == ("vertex", "automl")


def test_a_new_backend_is_one_class_and_one_registry_line(constant: None) -> None:
    assert "constant" in backend_names()
    backend = build_backend("constant", model_dir="models")
    assert isinstance(backend, ConstantBackend)
    assert backend.model_dir == "models"
    assert isinstance(backend, Backend)
    assert isinstance(backend, TrainingBackend)
    assert isinstance(backend, PredictionBackend)
    assert not isinstance(backend, Deployer)  # deploying is optional
    with AutoMLTrainer(backend=backend) as trainer:
        model = trainer.train(_dataset())
    assert model.resource == "e30"
    assert backend.closed
    # Classifier builds the registered backend itself for a model that names it.
    with Classifier(model) as classifier:
        assert classifier.predict(_png())[0].label == "e30"


def test_check_dataset_reads_a_registered_backends_limits(constant: None, tmp_path: Path) -> None:
    # One image of e36 is enough for the constant backend, not for Vertex AI (10).
    dataset = _dataset(tmp_path)
    assert check_dataset(dataset, target="constant").errors == ()
    assert check_dataset(dataset, target=ConstantBackend()).errors == ()  # a backend works too
    report = check_dataset(dataset, target="vertex")
    assert [issue.code for issue in report.errors].count("too_few_images") == 2


def test_an_unknown_backend_names_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match="unknown backend 'nope'; choose one of local, vertex"):
        build_backend("nope")


def test_an_unknown_option_is_a_config_error_listing_the_options() -> None:
    with pytest.raises(ConfigError, match="the options are project, location"):
        build_backend("local", colour="blue")


def test_a_name_is_registered_once(constant: None) -> None:
    with pytest.raises(ConfigError, match="registered already"):
        register_backend("constant", ConstantBackend.from_options, limits=CONSTANT_LIMITS)
    with pytest.raises(ConfigError, match="declares limits named 'constant'"):
        register_backend("other", ConstantBackend.from_options, limits=CONSTANT_LIMITS)


def test_cloud_backends_refuse_to_be_built_without_a_project() -> None:
    with pytest.raises(ConfigError, match="needs a Google Cloud project"):
        build_backend("vertex")
    with pytest.raises(ConfigError, match="needs its backend"):
        Classifier(TrainedModel(backend="vertex", resource="projects/p/locations/l/models/m"))


def test_a_factory_partial_for_beam_workers_pickles() -> None:
    factory = functools.partial(build_backend, "vertex", project="p", location="europe-west4")
    assert pickle.loads(pickle.dumps(factory)).args == ("vertex",)
