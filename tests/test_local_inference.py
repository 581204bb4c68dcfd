"""The prediction-only network (batch norms folded, channels-last), frozen blocks, views.

The folded network must give the same features as the trained one (it is what every
prediction runs on); frozen blocks must not change while the rest trains; each image's
views come from one decode, equal to asking for each view alone.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import attrs
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")

import torch

from redditvision.backends.local import (
    PRESETS,
    EfficientNetLite0Extractor,
    FineTunedExtractor,
    ImageDecodeError,
    make_backbone,
)
from redditvision.backends.local._finetune import fine_tune
from redditvision.backends.local._inference import (
    decoded_chunks,
    fuse_for_inference,
    inference_network,
    map_chunks,
    network_input,
    stream_plan,
)


def _photo(seed: int, size: tuple[int, int] = (90, 60)) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG")
    return out.getvalue()


def _with_running_statistics(module: torch.nn.Module, seed: int = 0) -> None:
    """Give every batch norm non-trivial statistics, as trained ones have."""
    generator = torch.Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            assert layer.running_mean is not None and layer.running_var is not None
            count = layer.num_features
            layer.running_mean.copy_(torch.randn(count, generator=generator) * 0.1)
            layer.running_var.copy_(torch.rand(count, generator=generator) + 0.5)
            layer.weight.data.copy_(torch.rand(count, generator=generator) + 0.5)
            layer.bias.data.copy_(torch.randn(count, generator=generator) * 0.1)


@pytest.mark.parametrize("name", ["efficientnet-lite0", "efficientnet-lite2"])
def test_the_folded_network_gives_the_features_of_the_trained_one(name: str) -> None:
    backbone = make_backbone(name, pretrained=False)
    _with_running_statistics(backbone.module)
    backbone.module.eval()
    size = backbone.image_size
    inputs = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(1))
    fused, folded = fuse_for_inference(backbone.module)
    # Every batch norm was folded: stem, head and each block's two or three.
    norms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.module.modules())
    assert folded == norms
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    fast = inference_network(backbone.module)
    with torch.inference_mode():
        want = backbone.module(inputs)
        assert torch.allclose(fused(inputs), want, atol=1e-4, rtol=1e-4)
        assert torch.allclose(fast(network_input(inputs)), want, atol=1e-4, rtol=1e-4)
    # The trained network is left as it was (the copy is what predicts).
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.module.modules())
    assert all(p.requires_grad for p in backbone.module.parameters())


def test_a_network_of_another_kind_is_copied_unchanged() -> None:
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    copy, folded = fuse_for_inference(network)
    assert folded == 0
    assert isinstance(copy[1], torch.nn.BatchNorm2d)
    assert copy is not network


def test_frozen_blocks_keep_their_weights_while_the_rest_trains() -> None:
    backbone = make_backbone("efficientnet-lite0", pretrained=False)
    assert backbone.blocks is not None and len(backbone.blocks) == 17  # stem + 16 blocks
    before = {k: v.clone() for k, v in backbone.module.state_dict().items()}
    preset = attrs.evolve(
        PRESETS["medium"], image_size=224, epochs=1, batch_size=4, lr_backbone=1e-2, frozen_blocks=3
    )
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (8, 256, 256, 3), dtype=np.uint8)
    labels = np.array([0, 1] * 4, dtype=np.int64)
    fine_tune(
        backbone,
        preset,
        train_pixels=pixels,
        y_train=labels,
        val_pixels=None,
        y_val=None,
        head_init=(np.zeros((2, 1280), np.float32), np.zeros(2, np.float32)),
        n_labels=2,
    )
    after = backbone.module.state_dict()
    frozen = ["net._conv_stem."] + [f"net._blocks.{i}." for i in range(3)]
    for name, value in after.items():
        if "running_" in name or "num_batches" in name:
            continue
        if name.startswith(tuple(frozen)):
            assert torch.equal(value, before[name]), f"{name} changed but is frozen"
    trained = [n for n in after if n.startswith("net._blocks.15.") and n.endswith("weight")]
    assert any(not torch.equal(after[n], before[n]) for n in trained)
    # The module is back in the default layout (its weights are saved as safetensors).
    assert all(v.is_contiguous() for v in after.values())


def test_freezing_more_blocks_than_a_network_has_leaves_the_last_one_training() -> None:
    backbone = make_backbone("efficientnet-lite0", pretrained=False)
    assert backbone.freeze_blocks(100) == 15
    assert backbone.blocks is not None
    assert all(p.requires_grad for p in backbone.blocks[-1].parameters())
    assert make_backbone("efficientnet-lite0", pretrained=False).freeze_blocks(0) == 0


@pytest.mark.parametrize("kind", ["lite0", "finetuned"])
def test_views_of_one_decode_equal_each_view_asked_alone(kind: str) -> None:
    images = [_photo(seed) for seed in range(5)]
    if kind == "lite0":
        extractor: EfficientNetLite0Extractor | FineTunedExtractor = EfficientNetLite0Extractor()
    else:
        extractor = FineTunedExtractor(
            make_backbone("efficientnet-lite0"), version="test", device="cpu"
        )
    views = extractor.extract_views(images, ("none", "hflip"))
    assert views["none"].shape == (5, 1280)
    assert np.allclose(views["none"], extractor.extract(images), atol=1e-5)
    assert np.allclose(views["hflip"], extractor.extract(images, augmentation="hflip"), atol=1e-5)
    assert not np.allclose(views["none"], views["hflip"])


def test_an_undecodable_image_is_named_by_its_place_in_the_whole_input() -> None:
    images = [_photo(0), _photo(1), _photo(2), b"not an image", _photo(3)]
    backbone = make_backbone("efficientnet-lite0", pretrained=False)
    extractor = FineTunedExtractor(backbone, version="test", device="cpu", batch_size=2)
    with pytest.raises(ImageDecodeError) as raised:
        extractor.extract(images)
    assert raised.value.index == 3
    assert "image 3 " in str(raised.value)


def test_decoded_chunks_come_in_order_and_raise_where_the_input_is_bad() -> None:
    def decode(chunk: Sequence[int], start: int) -> list[int]:
        if any(value < 0 for value in chunk):
            raise ValueError(f"bad value in the chunk at {start}")
        return [value * 10 for value in chunk]

    assert list(decoded_chunks([1, 2, 3, 4, 5], 2, decode)) == [
        (0, [10, 20]),
        (2, [30, 40]),
        (4, [50]),
    ]
    assert list(decoded_chunks([], 2, decode)) == []
    seen: list[int] = []

    def consume() -> None:
        for start, _ in decoded_chunks([1, 2, -3, 4, 5, 6], 2, decode):
            seen.append(start)

    with pytest.raises(ValueError, match="chunk at 2"):
        consume()
    assert seen == [0]


@pytest.mark.parametrize("kind", ["lite0", "finetuned"])
def test_several_streams_give_the_features_of_one(kind: str) -> None:
    images = [_photo(seed) for seed in range(7)]
    extractors: list[EfficientNetLite0Extractor | FineTunedExtractor] = []
    for streams in (1, 2):
        if kind == "lite0":
            extractors.append(EfficientNetLite0Extractor(num_threads=2, streams=streams))
        else:
            extractors.append(
                FineTunedExtractor(
                    make_backbone("efficientnet-lite0"),
                    version="test",
                    device="cpu",
                    num_threads=2,
                    streams=streams,
                )
            )
    one, two = (e.extract_views(images, ("none", "hflip")) for e in extractors)
    for view in ("none", "hflip"):
        assert one[view].shape == (7, 1280)
        assert np.allclose(one[view], two[view], atol=1e-5)


def test_map_chunks_runs_streams_on_their_own_threads_in_order_and_restores_torch() -> None:
    before = torch.get_num_threads()
    seen_threads: list[int] = []

    def decode(chunk: Sequence[int], start: int) -> list[int]:
        if any(value < 0 for value in chunk):
            raise ValueError(f"bad value in the chunk at {start}")
        return list(chunk)

    def infer(chunk: list[int]) -> list[int]:
        seen_threads.append(torch.get_num_threads())
        return [value * 10 for value in chunk]

    out = map_chunks([1, 2, 3, 4, 5], 2, decode, infer, streams=2, threads_per_stream=1)
    assert out == [[10, 20], [30, 40], [50]]
    assert seen_threads == [1, 1, 1]
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="chunk at 2"):  # the first bad chunk, in order
        map_chunks([1, 2, -3, 4, -5, 6], 2, decode, infer, streams=2, threads_per_stream=1)
    assert torch.get_num_threads() == before
    assert map_chunks([1, 2, 3], 2, decode, infer, streams=1) == [[10, 20], [30]]


def test_stream_plan_gives_one_stream_per_thread_on_a_cpu_and_one_on_a_gpu() -> None:
    assert stream_plan(2, "cpu", None) == (2, 1)
    assert stream_plan(8, "cpu", 2) == (2, 4)
    assert stream_plan(2, "cpu", 5) == (2, 1)  # never more streams than threads
    assert stream_plan(1, "cpu", None) == (1, 1)
    assert stream_plan(8, "cuda", None) == (1, 8)
