"""Backbones: EfficientNet-Lite1/2 from their wheels; timm and open_clip adapters on tiny models.

timm and open_clip are not installed in CI (and cannot be imported beside this torch here),
so their adapters are tested on tiny randomly initialized torch modules with the attributes
those libraries' ``create_model`` results have; training through them runs end to end.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("torch")

import torch
from safetensors.torch import load_file, save_file

from redditvision.backends.local import (
    PRESETS,
    QUALITIES,
    LocalBackend,
    backbone_from_open_clip,
    backbone_from_timm,
    make_backbone,
    register_backbone,
)
from redditvision.cli import main
from redditvision.errors import ConfigError, MissingDependencyError
from redditvision.models import LabeledDataset, LabeledImage, MLUse

DOCS = Path(__file__).resolve().parent.parent / "docs" / "backends" / "local.rst"


class TinyTimm(torch.nn.Module):
    """What ``timm.create_model(name, num_classes=0)`` returns: pooled features, a cfg."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, stride=2)
        self.num_features = 6
        self.pretrained_cfg = {"input_size": (3, 36, 36), "mean": (0.5,) * 3, "std": (0.25,) * 3}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean((2, 3))


class TinyVisual(torch.nn.Module):
    """An open_clip image tower: fixed image size, ``output_dim`` embeddings."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 5, 3, stride=2)
        self.image_size = (36, 36)
        self.output_dim = 5
        self.image_mean = (0.4, 0.4, 0.4)
        self.image_std = (0.2, 0.2, 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x)).mean((2, 3))


class TinyClip(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.visual = TinyVisual()


@pytest.mark.parametrize(
    ("name", "size"), [("efficientnet-lite1", 240), ("efficientnet-lite2", 260)]
)
def test_lite1_and_lite2_load_their_wheel_weights_at_native_size(name: str, size: int) -> None:
    backbone = make_backbone(name)
    assert (backbone.image_size, backbone.dim) == (size, 1280)
    with torch.inference_mode():
        features = backbone.module(torch.zeros(1, 3, size, size))
    assert features.shape == (1, 1280) and torch.isfinite(features).all()


def test_a_lite_backbone_runs_above_but_not_below_its_native_resolution() -> None:
    assert make_backbone("efficientnet-lite0", image_size=288).image_size == 288
    with pytest.raises(ConfigError, match="at least 240"):
        make_backbone("efficientnet-lite1", image_size=224)


def test_the_timm_adapter_reads_features_size_and_normalization() -> None:
    backbone = backbone_from_timm("timm:tiny", TinyTimm())
    assert (backbone.dim, backbone.image_size) == (6, 36)
    assert backbone.mean == (127.5,) * 3 and backbone.std == (63.75,) * 3
    assert backbone.module(torch.zeros(2, 3, 36, 36)).shape == (2, 6)
    with pytest.raises(ConfigError, match="at least 36"):
        backbone_from_timm("timm:tiny", TinyTimm(), image_size=32)


def test_the_open_clip_adapter_uses_the_image_tower() -> None:
    backbone = backbone_from_open_clip("clip:Tiny/none", TinyClip())
    assert (backbone.dim, backbone.image_size) == (5, 36)
    assert backbone.mean == pytest.approx((102.0,) * 3)
    with pytest.raises(ConfigError, match="takes 36 px"):
        backbone_from_open_clip("clip:Tiny/none", TinyClip(), image_size=48)


def test_without_timm_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)
    monkeypatch.setitem(sys.modules, "open_clip", None)
    with pytest.raises(MissingDependencyError, match=r"redditvision\[timm\]"):
        make_backbone("timm:resnet18")
    with pytest.raises(MissingDependencyError, match=r"redditvision\[clip\]"):
        make_backbone("clip:ViT-B-32/openai")


def test_unknown_and_built_in_backbone_names_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown backbone"):
        make_backbone("resnet-9000")
    with pytest.raises(ConfigError, match="built-in"):
        register_backbone("timm:mine", lambda size, pretrained: backbone_from_timm("x", TinyTimm()))


def _register(name: str, build: Any, adapter: Any, weights: Path) -> None:
    if not weights.exists():
        torch.manual_seed(0)
        model = build()
        save_file((model.visual if hasattr(model, "visual") else model).state_dict(), str(weights))

    def factory(image_size: int | None, pretrained: bool) -> Any:
        model = build()
        target = model.visual if hasattr(model, "visual") else model
        if pretrained:
            target.load_state_dict(load_file(str(weights)))
        return adapter(name, model, image_size=image_size)

    register_backbone(name, factory)


def _stripes(root: Path) -> LabeledDataset:
    rng = np.random.default_rng(1)
    images = []
    uses = [MLUse.TRAINING] * 5 + [MLUse.VALIDATION, MLUse.TEST]
    for label, axis in (("rows", 0), ("columns", 1)):
        (root / label).mkdir(parents=True, exist_ok=True)
        for index, use in enumerate(uses):
            stripes = (np.arange(36) // 3 % 2 * 200 + rng.integers(0, 40, 36)).astype(np.uint8)
            plane = (
                np.repeat(stripes[:, None], 36, axis=1)
                if axis == 0
                else np.repeat(stripes[None, :], 36, axis=0)
            )
            path = root / label / f"{index}.png"
            Image.fromarray(np.stack([plane] * 3, axis=2)).save(path)
            images.append(LabeledImage(path=path, label=label, original_label=label, ml_use=use))
    return LabeledDataset(images=tuple(images), name="stripes")


@pytest.mark.parametrize(
    ("name", "build", "adapter"),
    [
        ("tiny-timm-test", TinyTimm, backbone_from_timm),
        ("tiny-clip-test", TinyClip, backbone_from_open_clip),
    ],
)
def test_fine_tuning_and_prediction_run_through_the_adapters(
    tmp_path: Path, name: str, build: Any, adapter: Any
) -> None:
    _register(name, build, adapter, tmp_path / f"{name}.safetensors")
    data = _stripes(tmp_path / "images")
    backend = LocalBackend(quality="medium", backbone=name, epochs=2, cache_dir=tmp_path / "cache")
    model = backend.train(data, out=tmp_path / "model")
    assert model.metadata["training"]["backbone"] == name
    assert model.metadata["training"]["epochs_run"] == 2
    predictor = backend.open_predictor(model)
    answers = predictor.predict([data.images[0].path.read_bytes()])
    predictor.close()
    assert {p.label for p in answers[0]} == {"rows", "columns"}


def test_quality_and_every_preset_appear_in_train_help_and_the_docs() -> None:
    result = CliRunner().invoke(main, ["train", "--help"])
    assert result.exit_code == 0
    assert "--quality" in result.output and "--time-limit" in result.output
    text = DOCS.read_text(encoding="utf-8")
    for quality in QUALITIES:
        assert quality in result.output
        assert f"``{quality}``" in text
        assert PRESETS[quality].backbone in text
    assert "time_limit" in text


def test_an_unknown_quality_is_a_config_error_naming_the_choices() -> None:
    with pytest.raises(ConfigError, match="fast, medium, high, best"):
        LocalBackend(quality="ultra")
