"""Fine-tuning presets on a tiny separable set: converge, resume after SIGKILL, honour budgets.

The backbone is a tiny randomly initialized convolutional network (its "pretrained" weights
saved to a temporary folder), registered with ``register_backbone``: no download, seconds.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")

import torch
from safetensors.torch import load_file, save_file

from redditvision.backends.local import (
    PRESETS,
    Backbone,
    LocalBackend,
    TrainingEvent,
    plot_training_curve,
    register_backbone,
)
from redditvision.classify import Classifier
from redditvision.errors import ModelFormatError
from redditvision.models import LabeledDataset, LabeledImage, MLUse, TrainingBudget

TINY = "tiny-test-cnn"
COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
USES = [MLUse.TRAINING] * 6 + [MLUse.VALIDATION] * 2 + [MLUse.TEST] * 2


def tiny_module() -> torch.nn.Module:
    """Conv, batch norm, ReLU, global pool: 8 features per image."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
    )


def register_tiny(weights: Path) -> None:
    """Register the tiny backbone; its 'pretrained' weights are a random init saved once."""
    if not weights.exists():
        torch.manual_seed(0)
        save_file(tiny_module().state_dict(), str(weights))

    def factory(image_size: int | None, pretrained: bool) -> Backbone:
        module = tiny_module()
        if pretrained:
            module.load_state_dict(load_file(str(weights)))
        return Backbone(
            name=TINY,
            module=module,
            dim=8,
            image_size=image_size or 32,
            mean=[127.0] * 3,
            std=[128.0] * 3,
        )

    register_backbone(TINY, factory)


def colored_dataset(root: Path) -> LabeledDataset:
    """Ten noisy 40x40 PNGs per color: 6 training, 2 validation, 2 test."""
    rng = np.random.default_rng(0)
    images = []
    for label, color in COLORS.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for index, use in enumerate(USES):
            pixels = np.clip(rng.normal(color, 25, size=(40, 40, 3)), 0, 255).astype(np.uint8)
            path = root / label / f"{index}.png"
            Image.fromarray(pixels).save(path)
            images.append(LabeledImage(path=path, label=label, original_label=label, ml_use=use))
    return LabeledDataset(images=tuple(images), name="colors")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("finetune")
    register_tiny(folder / "tiny-pretrained.safetensors")
    return folder


@pytest.fixture(scope="module")
def colors(root: Path) -> LabeledDataset:
    return colored_dataset(root / "images")


def tiny_backend(root: Path, tag: str, **options: object) -> LocalBackend:
    settings: dict[str, object] = {
        "quality": "medium",
        "backbone": TINY,
        "image_size": 32,
        "epochs": 4,
        "cache_dir": root / f"cache-{tag}",
        "model_dir": root / "models",
    }
    return LocalBackend(**(settings | options))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tuned(root: Path, colors: LabeledDataset) -> tuple[object, list[TrainingEvent]]:
    events: list[TrainingEvent] = []
    model = tiny_backend(root, "main", on_event=events.append).train(colors, out=root / "tuned")
    return model, events


def test_fine_tuning_converges_on_a_separable_set(
    tuned: tuple[object, list[TrainingEvent]],
) -> None:
    model, events = tuned
    meta = model.metadata  # type: ignore[attr-defined]
    curve = meta["training"]["curve"]
    assert [row["epoch"] for row in curve] == [0, 1, 2, 3, 4]
    losses = [row["loss"] for row in curve[1:]]
    assert max(losses) < 0.6  # chance is ln 3 = 1.10; label smoothing 0.1 floors it at 0.29
    assert meta["test"]["macro_f1"] == 1.0
    assert meta["training"]["stopped"] in ("completed", "early_stopping")
    assert [e.kind for e in events][:2] == ["linear_probe", "epoch"]


def test_fine_tuning_from_a_blank_head_drives_the_loss_down(root: Path) -> None:
    from redditvision.backends.local import make_backbone
    from redditvision.backends.local._finetune import fine_tune

    rng = np.random.default_rng(2)
    colors = np.array(list(COLORS.values()), dtype=np.float64)
    y = np.repeat(np.arange(3), 8)
    noise = rng.normal(0, 25, size=(24, 37, 37, 3))
    pixels = np.clip(colors[y][:, None, None, :] + noise, 0, 255).astype(np.uint8)
    preset = attrs.evolve(PRESETS["medium"], epochs=6, image_size=32, lr_head=0.05)
    result = fine_tune(
        make_backbone(TINY, image_size=32),
        preset,
        train_pixels=pixels,
        y_train=y,
        val_pixels=None,
        y_val=None,
        head_init=(np.zeros((3, 8), np.float32), np.zeros(3, np.float32)),
        n_labels=3,
    )
    losses = [row["loss"] for row in result.curve]
    assert losses[0] > 0.9  # starts near ln 3, a uniform guess
    assert losses[-1] < 0.75 * losses[0]
    assert result.best_epoch == 6 and result.stopped == "completed"


def test_fine_tuned_folder_records_the_training_and_hashes_every_file(
    tuned: tuple[object, list[TrainingEvent]],
) -> None:
    model, _ = tuned
    folder = Path(model.resource)  # type: ignore[attr-defined]
    assert sorted(p.name for p in folder.iterdir()) == [
        "evaluation.json",
        "head.skops",
        "model.json",
        "network.safetensors",
    ]
    manifest = json.loads((folder / "model.json").read_text())
    assert set(manifest["files"]) == {"evaluation.json", "head.skops", "network.safetensors"}
    assert len(manifest["content_sha256"]) == 64
    assert manifest["network"]["backbone"] == TINY
    assert manifest["network"]["image_size"] == 32
    training = manifest["training"]
    assert training["quality"] == "medium"
    assert training["epochs_planned"] == 4
    assert training["augmentation"]["random_resized_crop"]["scale"] == [0.5, 1.0]
    assert training["augmentation"]["label_smoothing"] == 0.1
    assert {"loss", "val_macro_f1", "val_accuracy", "seconds"} <= set(training["curve"][1])
    assert training["seconds"] > 0
    assert manifest["head"]["tta"] is PRESETS["medium"].tta


def test_the_training_curve_plots_as_a_png(tuned: tuple[object, list[TrainingEvent]]) -> None:
    training = tuned[0].metadata["training"]  # type: ignore[attr-defined]
    png = plot_training_curve(training["curve"], best_epoch=training["best_epoch"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (640, 400)
    assert plot_training_curve([]).startswith(b"\x89PNG")


def test_classifier_predicts_with_the_fine_tuned_network(
    tuned: tuple[object, list[TrainingEvent]], colors: LabeledDataset
) -> None:
    model, _ = tuned
    tests = [image for image in colors.images if image.ml_use == MLUse.TEST]
    with Classifier(model) as classifier:  # type: ignore[arg-type]
        answers = classifier.predict_many([image.path for image in tests], max_predictions=1)
    assert [row[0].label for row in answers] == [image.label for image in tests]
    assert all(0.0 <= row[0].score <= 1.0 for row in answers)


def test_a_preset_with_flip_tta_averages_each_image_and_its_mirror(
    root: Path, colors: LabeledDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    # medium predicts without TTA; high and best keep it: the fine-tuned network then
    # scores the image and its mirror, and the probabilities are their mean.
    from redditvision.backends.local import _presets

    monkeypatch.setitem(_presets.PRESETS, "medium", attrs.evolve(PRESETS["medium"], tta=True))
    backend = tiny_backend(root, "tta", epochs=1)
    model = backend.train(colors, out=root / "tta")
    manifest = json.loads((Path(model.resource) / "model.json").read_text())
    assert manifest["head"]["tta"] is True
    image = colors.images[0].path.read_bytes()
    buffer = io.BytesIO()
    with Image.open(io.BytesIO(image)) as opened:
        opened.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(buffer, format="PNG")
    predictor = backend.open_predictor(model)
    try:
        assert predictor.tta is True
        both = predictor.probabilities([image])
        predictor.tta = False
        plain = predictor.probabilities([image, buffer.getvalue()])
    finally:
        predictor.close()
    assert both[0] == pytest.approx(plain.mean(axis=0), abs=2e-3)
    assert not np.allclose(plain[0], plain[1], atol=1e-6)


def test_same_seed_gives_the_same_model(root: Path, colors: LabeledDataset) -> None:
    first = tiny_backend(root, "seed-a", epochs=2).train(colors, out=root / "seed-a")
    second = tiny_backend(root, "seed-b", epochs=2).train(colors, out=root / "seed-b")
    losses = [[row["loss"] for row in m.metadata["training"]["curve"][1:]] for m in (first, second)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    a = load_file(str(Path(first.resource) / "network.safetensors"))
    b = load_file(str(Path(second.resource) / "network.safetensors"))
    assert all(torch.allclose(a[key], b[key], atol=1e-6) for key in a)


def test_a_zero_time_limit_keeps_the_linear_probe_and_says_so(
    root: Path, colors: LabeledDataset
) -> None:
    events: list[TrainingEvent] = []
    model = tiny_backend(root, "budget", time_limit=0, on_event=events.append).train(
        colors, out=root / "budget"
    )
    training = model.metadata["training"]
    assert model.metadata["time_limit_reached"] is True
    assert training["stopped"] == "time_limit"
    assert training["epochs_run"] == 0 and training["best_epoch"] == 0
    assert any(e.kind == "stopped" and "time limit" in e.message for e in events)
    manifest = json.loads((Path(model.resource) / "model.json").read_text())
    assert manifest["training"]["stopped"] == "time_limit"
    with Classifier(model) as classifier:
        assert len(classifier.predict(colors.images[0].path)) == 3


def test_the_training_budget_of_train_also_limits_fine_tuning(
    root: Path, colors: LabeledDataset
) -> None:
    model = tiny_backend(root, "budget2").train(
        colors, budget=TrainingBudget(time_limit_s=0.0), out=root / "budget2"
    )
    assert model.metadata["training"]["stopped"] == "time_limit"


def test_tampered_network_weights_are_refused(
    tuned: tuple[object, list[TrainingEvent]], root: Path
) -> None:
    import shutil

    folder = root / "tampered"
    shutil.copytree(Path(tuned[0].resource), folder)  # type: ignore[attr-defined]
    weights = folder / "network.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="changed after training"):
        Classifier(folder).predict_many([b"unused"])


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    import test_local_finetune as t
    root = Path(sys.argv[2])
    t.register_tiny(root / "tiny-pretrained.safetensors")

    def hook(event):
        if event.kind == "epoch" and event.epoch == 2:
            print("CHECKPOINTED", flush=True)
            time.sleep(3600)

    backend = t.tiny_backend(root, "resume", on_event=hook)
    backend.train(t.colored_dataset(root / "images"), out=root / "resumed")
    print("FINISHED", flush=True)
    """
)


def test_a_training_killed_after_an_epoch_resumes_from_its_checkpoint(
    root: Path, colors: LabeledDataset, tuned: tuple[object, list[TrainingEvent]]
) -> None:
    script = root / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, str(script), str(Path(__file__).parent), str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip() == "CHECKPOINTED", line
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert not (root / "resumed").exists()
    events: list[TrainingEvent] = []
    model = tiny_backend(root, "resume", on_event=events.append).train(colors, out=root / "resumed")
    training = model.metadata["training"]
    assert training["resumed_from_epoch"] == 2
    assert training["epochs_run"] == 4
    assert [e.epoch for e in events if e.kind == "epoch"] == [3, 4]
    assert (Path(model.resource) / "network.safetensors").is_file()
    # The resumed run trained as the uninterrupted one: same curve, same kind of model.
    uninterrupted = tuned[0].metadata["training"]["curve"]  # type: ignore[attr-defined]
    assert [row["loss"] for row in training["curve"][1:]] == pytest.approx(
        [row["loss"] for row in uninterrupted[1:]], rel=1e-4
    )
    assert not list((root / "cache-resume" / "checkpoints").glob("*/state.json"))


def test_the_default_preset_is_the_documented_one_and_the_environment_can_name_another(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from redditvision.backends.local import DEFAULT_QUALITY, QUALITY_ENV, default_quality
    from redditvision.errors import ConfigError

    monkeypatch.delenv(QUALITY_ENV, raising=False)
    assert default_quality() == DEFAULT_QUALITY == "medium"
    backend = LocalBackend(cache_dir=tmp_path / "c", model_dir=tmp_path / "m")
    assert backend.quality == "medium"
    assert backend.preset.mode == "finetune"
    monkeypatch.setenv(QUALITY_ENV, "fast")
    assert LocalBackend(cache_dir=tmp_path / "c", model_dir=tmp_path / "m").quality == "fast"
    # An explicit preset wins over the environment.
    assert LocalBackend(quality="high", cache_dir=tmp_path / "c").quality == "high"
    monkeypatch.setenv(QUALITY_ENV, "turbo")
    with pytest.raises(ConfigError, match="REDDITVISION_QUALITY='turbo' is not a preset"):
        LocalBackend(cache_dir=tmp_path / "c")
