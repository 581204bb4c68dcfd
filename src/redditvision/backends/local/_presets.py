"""Quality presets of the local backend, as AutoGluon's ``medium_quality`` ... ``best_quality``.

``fast`` is the frozen-feature head search (seconds); the others fine-tune a pretrained
network (LP-FT: a linear head fitted on frozen features first, then the whole network).
The default is ``medium``: the best preset that trains a few hundred photos in a few
minutes on 2 cores (``high`` took about 7 minutes for 275 photos in cross-validation).
Figures per preset: the local backend's docs and ``docs/performance.rst``.
"""

from __future__ import annotations

import os
from typing import Any

import attrs

from redditvision.errors import ConfigError

__all__ = [
    "DEFAULT_QUALITY",
    "PRESETS",
    "QUALITIES",
    "QUALITY_ENV",
    "Preset",
    "default_quality",
    "get_preset",
]


@attrs.frozen(kw_only=True)
class Preset:
    """One quality level: what is trained, at which resolution, for how long.

    Attributes:
        name: ``"fast"``, ``"medium"``, ``"high"`` or ``"best"``.
        mode: ``"frozen"`` (features of the pretrained network, head search) or
            ``"finetune"`` (LP-FT).
        backbone: Backbone name (see :func:`~redditvision.backends.local.make_backbone`).
        image_size: Input side in pixels (at least the backbone's native resolution), or
            None for the native one.
        epochs: Fine-tuning epochs at most (early stopping may end sooner).
        batch_size: Images per optimizer step.
        lr_backbone: Peak learning rate of the backbone (AdamW, one-cycle schedule).
        lr_head: Peak learning rate of the linear head (higher than the backbone's).
        weight_decay: AdamW weight decay.
        label_smoothing: Cross-entropy label smoothing.
        patience: Epochs without a better validation macro-F1 before stopping early (never
            in the first half of the epochs, while the learning rate is high).
        min_validation: Validation images needed for the validation macro-F1 to choose
            the epoch kept and to stop early (default 100); with fewer, the schedule runs
            to its end and the last epoch is kept (a few dozen images give a figure too
            noisy to choose by).
        crop_scale: (min, max) share of the image area a random resized crop keeps.
        jitter: Brightness and contrast change at most (0.2 = +-20 %).
        tta: Average the prediction of an image and its mirror (flip TTA).
        frozen_blocks: Blocks after the stem that stay frozen while fine-tuning, with the
            stem (default 0: the whole network trains); see
            :meth:`~redditvision.backends.local.Backbone.freeze_blocks`.
        description: One line for ``--help`` and the docs.
    """

    name: str
    mode: str
    backbone: str
    image_size: int | None
    epochs: int = 0
    batch_size: int = 16
    lr_backbone: float = 1e-4
    lr_head: float = 1e-3
    weight_decay: float = 0.02
    label_smoothing: float = 0.1
    patience: int = 3
    min_validation: int = 100
    crop_scale: tuple[float, float] = (0.5, 1.0)
    jitter: float = 0.2
    tta: bool = False
    frozen_blocks: int = 0
    description: str = ""

    def as_json(self) -> dict[str, Any]:
        """Return the preset as a JSON-compatible dict (stored in ``model.json``)."""
        data = attrs.asdict(self)
        data["crop_scale"] = list(self.crop_scale)
        return data

    def augmentation(self) -> dict[str, Any]:
        """Return the training augmentation as a JSON-compatible dict."""
        if self.mode == "frozen":
            return {"train": "image and its mirror (features of both)"}
        return {
            "random_resized_crop": {"scale": list(self.crop_scale), "ratio": [0.75, 1.3333]},
            "hflip": 0.5,
            "brightness": self.jitter,
            "contrast": self.jitter,
            "label_smoothing": self.label_smoothing,
        }


PRESETS: dict[str, Preset] = {
    "fast": Preset(
        name="fast",
        mode="frozen",
        backbone="efficientnet-lite0",
        image_size=224,
        description="frozen EfficientNet-Lite0 features + head search (seconds)",
    ),
    "medium": Preset(
        name="medium",
        mode="finetune",
        backbone="efficientnet-lite0",
        image_size=288,
        epochs=10,
        batch_size=8,
        lr_backbone=2e-4,
        frozen_blocks=3,
        description=(
            "EfficientNet-Lite0 fine-tuned at 288 px, stem and first 3 blocks frozen "
            "(minutes on 2 cores)"
        ),
    ),
    "high": Preset(
        name="high",
        mode="finetune",
        backbone="efficientnet-lite2",
        image_size=260,
        epochs=8,
        tta=True,
        description="EfficientNet-Lite2 fine-tuned at 260 px, flip TTA (about 3x medium)",
    ),
    "best": Preset(
        name="best",
        mode="finetune",
        backbone="efficientnet-lite2",
        image_size=300,
        epochs=12,
        patience=4,
        tta=True,
        description="EfficientNet-Lite2 fine-tuned at 300 px for 12 epochs, flip TTA (slowest)",
    ),
}
"""The presets by name."""

QUALITIES: tuple[str, ...] = tuple(PRESETS)
"""Preset names, fastest first."""

DEFAULT_QUALITY = "medium"
"""The preset of ``LocalBackend()`` and ``redditvision train``."""


QUALITY_ENV = "REDDITVISION_QUALITY"
"""Environment variable naming the preset used when none is given (e.g. ``fast`` on a CI
machine that should not fine-tune); unset, :data:`DEFAULT_QUALITY` applies."""


def default_quality() -> str:
    """Return the preset used when none is given: ``$REDDITVISION_QUALITY`` or the default.

    Returns:
        A preset name.

    Raises:
        ConfigError: The variable names no preset (the message lists the valid ones).
    """
    chosen = os.environ.get(QUALITY_ENV, "").strip()
    if not chosen:
        return DEFAULT_QUALITY
    if chosen not in PRESETS:
        raise ConfigError(
            f"{QUALITY_ENV}={chosen!r} is not a preset: choose one of {', '.join(QUALITIES)}"
        )
    return chosen


def get_preset(quality: str) -> Preset:
    """Return the preset named ``quality``.

    Args:
        quality: One of :data:`QUALITIES`.

    Returns:
        The preset.

    Raises:
        ConfigError: Unknown name (the message lists the valid ones).
    """
    try:
        return PRESETS[quality]
    except KeyError:
        raise ConfigError(
            f"unknown quality {quality!r}: choose one of {', '.join(QUALITIES)}"
        ) from None
