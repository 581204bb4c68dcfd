"""Fine-tuning of a backbone and a linear head (the FT of LP-FT), resumable epoch by epoch.

The recipe (Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features", LP-FT): the
head starts from a linear probe fitted on frozen features, then backbone and head train
together with AdamW (decoupled weight decay) on a one-cycle schedule (Smith 2018: linear
warm-up over the first 25 % of steps, cosine decay after), the backbone at a lower peak
learning rate than the head; cross-entropy with label smoothing 0.1; batch-norm running
statistics frozen (the few hundred images of a user's dataset would only make them worse);
augmentation by random resized crops, mirror flips and light brightness/contrast jitter.
After each epoch the validation macro-F1 is measured. With at least
``preset.min_validation`` validation images the best epoch is kept and training stops early
after ``patience`` epochs without improvement; with fewer, the figure is too noisy to choose
by (on the BMW photos a 31-image validation split kept the linear probe of a fold whose
fine-tuned epochs scored higher on its test part), so the one-cycle schedule runs to its end
and the last epoch is kept. Training also stops at the time limit.

Every epoch ends with a checkpoint (weights, optimizer state and the curve, in
safetensors and JSON): a killed run resumes at the next epoch on re-run. The random state of
an epoch is derived from ``(seed, epoch)``, so a resumed run trains as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from redditvision.backends.local._backbones import Backbone
from redditvision.backends.local._deps import require
from redditvision.backends.local._presets import Preset

__all__ = [
    "CheckpointStore",
    "EventCallback",
    "FineTuneResult",
    "TrainingEvent",
    "base_size",
    "fine_tune",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1


@attrs.frozen(kw_only=True)
class TrainingEvent:
    """What fine-tuning reports to ``LocalBackend(on_event=...)``.

    Attributes:
        kind: ``"linear_probe"`` (the head fitted on frozen features was scored),
            ``"resumed"`` (a checkpoint was found), ``"epoch"`` (an epoch ended),
            ``"stopped"`` (early stopping or the time limit ended training; ``message`` says
            which) or ``"done"``.
        epoch: The epoch it concerns (0 = the linear probe).
        epochs: Epochs planned.
        message: One line for people.
        loss: Mean training loss of the epoch, or None.
        val_macro_f1: Validation macro-F1 after the epoch, or None without a validation split.
    """

    kind: str
    epoch: int
    epochs: int
    message: str
    loss: float | None = None
    val_macro_f1: float | None = None


EventCallback = Callable[[TrainingEvent], None]
"""Called with each :class:`TrainingEvent`."""


@attrs.frozen(kw_only=True)
class FineTuneResult:
    """The best model of a fine-tuning run and how it went.

    Attributes:
        backbone_state: Tensors of the best epoch's backbone (name -> tensor, on the CPU).
        weight: Head weights, shape (labels, dim).
        bias: Head biases, shape (labels,).
        curve: One row per epoch: epoch, loss, val_macro_f1, val_accuracy, lr, seconds.
        best_epoch: The epoch kept (0 = the linear probe on the pretrained backbone).
        epochs_run: Epochs completed.
        stopped: ``"completed"``, ``"early_stopping"`` or ``"time_limit"``.
        resumed_from: Epoch of the checkpoint the run resumed from, or None.
        seconds: Wall-clock time of this call.
    """

    backbone_state: dict[str, Any]
    weight: NDArray[np.float32]
    bias: NDArray[np.float32]
    curve: tuple[dict[str, Any], ...]
    best_epoch: int
    epochs_run: int
    stopped: str
    resumed_from: int | None
    seconds: float


def base_size(image_size: int) -> int:
    """Side at which training images are decoded and cached (crops are taken from it).

    Returns:
        ``round(image_size * 8 / 7)`` (256 for 224), the usual resize-then-crop ratio.
    """
    return round(image_size * 8 / 7)


def _one_cycle(step: int, total: int, peak: float, warmup: float = 0.25) -> float:
    """Learning rate of a one-cycle schedule at ``step`` of ``total`` (Smith 2018)."""
    total = max(1, total)
    rise = max(1, int(total * warmup))
    start, end = peak / 25.0, peak / 1e3
    if step < rise:
        return start + (peak - start) * step / rise
    progress = min(1.0, (step - rise) / max(1, total - rise))
    return end + (peak - end) * 0.5 * (1 + math.cos(math.pi * progress))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class CheckpointStore:
    """A folder with the latest epoch's checkpoint of one training run.

    ``state.json`` is written last (atomically) and names the tensor files with their
    SHA-256; a checkpoint whose files are missing, changed or from another run (``key``) is
    ignored, so a kill at any moment leaves either the previous or the new checkpoint.

    Args:
        folder: The folder (created on first save).
        key: Identifies the run (data, labels, preset, backbone, seed); a checkpoint with
            another key is not resumed.
    """

    def __init__(self, folder: str | os.PathLike[str], *, key: str) -> None:
        self.folder = Path(folder)
        self.key = key

    def __repr__(self) -> str:
        return f"CheckpointStore({str(self.folder)!r})"

    def save(self, epoch: int, tensors: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        """Write the checkpoint of ``epoch`` (tensor names -> CPU tensors; JSON meta)."""
        st = require("safetensors.torch")
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch}.safetensors"
        tmp = self.folder / f".{name}.tmp"
        st.save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
        os.replace(tmp, self.folder / name)
        state = {
            "format": CHECKPOINT_FORMAT,
            "key": self.key,
            "epoch": epoch,
            "file": name,
            "sha256": _sha256(self.folder / name),
            "meta": dict(meta),
        }
        tmp_json = self.folder / ".state.json.tmp"
        tmp_json.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp_json, self.folder / "state.json")
        for old in self.folder.glob("epoch-*.safetensors"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def load(self) -> tuple[int, dict[str, Any], dict[str, Any]] | None:
        """Return (epoch, tensors, meta) of a usable checkpoint of this run, or None."""
        try:
            state = json.loads((self.folder / "state.json").read_text(encoding="utf-8"))
            if state.get("format") != CHECKPOINT_FORMAT or state.get("key") != self.key:
                return None
            path = self.folder / str(state["file"])
            if Path(str(state["file"])).name != state["file"] or _sha256(path) != state["sha256"]:
                logger.warning("ignoring checkpoint %s: its file was changed", self.folder)
                return None
            st = require("safetensors.torch")
            tensors = st.load_file(str(path))
            return int(state["epoch"]), dict(tensors), dict(state["meta"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if (self.folder / "state.json").exists():
                logger.warning("ignoring unreadable checkpoint %s: %s", self.folder, exc)
            return None
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            logger.warning("ignoring unreadable checkpoint %s: %s", self.folder, exc)
            return None

    def remove(self) -> None:
        """Delete the folder (after the model is saved)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _augment(
    torch: Any, pixels: NDArray[np.uint8], size: int, preset: Preset, rng: random.Random
) -> Any:
    """Random resized crop + flip + brightness/contrast jitter of uint8 (N, S, S, 3) pixels.

    Crop and resize are one Pillow ``resize(box=...)`` per image (bilinear, C code); flip and
    jitter are applied to the batch tensor. Returns float (N, 3, size, size) in 0-255.
    """
    from PIL import Image

    side = pixels.shape[1]
    low, high = preset.crop_scale
    crops = []
    for image in pixels:
        scale = rng.uniform(low, high)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        width = min(side, round(side * math.sqrt(scale * ratio)))
        height = min(side, round(side * math.sqrt(scale / ratio)))
        top = rng.randint(0, side - height)
        left = rng.randint(0, side - width)
        crop = Image.fromarray(image).resize(
            (size, size), Image.Resampling.BILINEAR, box=(left, top, left + width, top + height)
        )
        array = np.asarray(crop)
        crops.append(array[:, ::-1] if rng.random() < 0.5 else array)
    batch = torch.from_numpy(np.ascontiguousarray(np.stack(crops))).permute(0, 3, 1, 2).float()
    if preset.jitter > 0:
        count = len(crops)
        brightness = torch.tensor(
            [rng.uniform(1 - preset.jitter, 1 + preset.jitter) for _ in range(count)]
        ).view(-1, 1, 1, 1)
        contrast = torch.tensor(
            [rng.uniform(1 - preset.jitter, 1 + preset.jitter) for _ in range(count)]
        ).view(-1, 1, 1, 1)
        batch = batch * brightness
        mean = batch.mean(dim=(1, 2, 3), keepdim=True)
        batch = ((batch - mean) * contrast + mean).clamp(0, 255)
    return batch


def _freeze_batch_norm(torch: Any, module: Any) -> None:
    for layer in module.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            layer.eval()


def _scores(
    y: NDArray[np.int64], predicted: NDArray[np.int64], n_labels: int
) -> tuple[float, float]:
    metrics = require("sklearn.metrics")
    f1 = metrics.f1_score(
        y, predicted, labels=list(range(n_labels)), average="macro", zero_division=0
    )
    return float(f1), float(np.mean(y == predicted))


def _evaluate(
    torch: Any, backbone: Backbone, head: Any, pixels: Any, device: str, batch: int
) -> NDArray[np.int64]:
    backbone.module.eval()
    predicted = []
    with torch.inference_mode():
        for start in range(0, len(pixels), batch):
            chunk = pixels[start : start + batch].to(device).permute(0, 3, 1, 2).float()
            inputs = backbone.normalize(chunk).contiguous(memory_format=torch.channels_last)
            logits = head(backbone.module(inputs))
            predicted.append(logits.argmax(1).cpu().numpy())
    return np.concatenate(predicted).astype(np.int64)


def _optimizer_tensors(optimizer: Any, params: list[Any]) -> dict[str, Any]:
    out = {}
    for index, param in enumerate(params):
        for name, value in optimizer.state.get(param, {}).items():
            out[f"opt.{index}.{name}"] = value
    return out


def _restore_optimizer(
    torch: Any, optimizer: Any, params: list[Any], tensors: Mapping[str, Any]
) -> None:
    for index, param in enumerate(params):
        state = {
            key.split(".", 2)[2]: value
            for key, value in tensors.items()
            if key.startswith(f"opt.{index}.")
        }
        if state:
            # empty_like keeps the parameter's memory format (channels-last while training).
            optimizer.state[param] = {
                k: (v if k == "step" else torch.empty_like(param).copy_(v))
                for k, v in state.items()
            }


def fine_tune(
    backbone: Backbone,
    preset: Preset,
    *,
    train_pixels: NDArray[np.uint8],
    y_train: NDArray[np.int64],
    val_pixels: NDArray[np.uint8] | None,
    y_val: NDArray[np.int64] | None,
    head_init: tuple[NDArray[np.float32], NDArray[np.float32]],
    n_labels: int,
    seed: int = 0,
    deadline: float | None = None,
    checkpoints: CheckpointStore | None = None,
    device: str = "cpu",
    on_event: EventCallback | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> FineTuneResult:
    """Fine-tune ``backbone`` and a linear head; return the best epoch's weights.

    Args:
        backbone: Pretrained backbone (trained in place).
        preset: Epochs, batch size, learning rates, augmentation.
        train_pixels: uint8 (N, S, S, 3) training images at :func:`base_size`.
        y_train: Label indices (N,).
        val_pixels: uint8 (M, size, size, 3) validation images (whole image), or None.
        y_val: Their label indices (M,), or None.
        head_init: (weight (labels, dim), bias (labels,)) of the linear probe.
        n_labels: Number of labels.
        seed: Seeds shuffling, augmentation and dropout of every epoch.
        deadline: ``time.monotonic()`` value at which to stop (checked after every batch);
            None for no limit.
        checkpoints: Where to checkpoint each epoch and resume from, or None.
        device: torch device.
        on_event: Receives :class:`TrainingEvent` values.
        progress: Called as ``progress(done, total)`` in training images over all epochs.

    Returns:
        The result (weights of the best epoch on the validation split; the last epoch
        without one).
    """
    torch = require("torch")
    started = time.monotonic()
    size = backbone.image_size
    epochs = preset.epochs

    def say(kind: str, epoch: int, message: str, **values: Any) -> None:
        logger.info("%s", message)
        if on_event is not None:
            on_event(
                TrainingEvent(kind=kind, epoch=epoch, epochs=epochs, message=message, **values)
            )

    # Channels-last (NHWC) tensors let oneDNN run the depthwise convolutions and their
    # gradients without reordering: an epoch of 160 photos of EfficientNet-Lite0 at 256 px
    # took 16.6 s instead of 25.2 on 2 cores. The module is turned back at the end.
    module = backbone.module.to(device).to(memory_format=torch.channels_last)
    frozen = backbone.freeze_blocks(preset.frozen_blocks)
    if frozen:
        logger.info("the stem and the first %d blocks stay frozen", frozen)
    head = torch.nn.Linear(backbone.dim, n_labels).to(device)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(np.asarray(head_init[0], dtype=np.float32)))
        head.bias.copy_(torch.from_numpy(np.asarray(head_init[1], dtype=np.float32)))
    backbone_params = [p for p in module.parameters() if p.requires_grad]
    head_params = list(head.parameters())
    params = backbone_params + head_params
    optimizer = torch.optim.AdamW(
        [
            {"params": backbone_params, "lr": preset.lr_backbone, "peak": preset.lr_backbone},
            {"params": head_params, "lr": preset.lr_head, "peak": preset.lr_head},
        ],
        weight_decay=preset.weight_decay,
    )
    train_array = np.ascontiguousarray(train_pixels)
    train_tensor = torch.from_numpy(train_array)
    labels = torch.from_numpy(np.asarray(y_train, dtype=np.int64))
    val_tensor = (
        torch.from_numpy(np.ascontiguousarray(val_pixels))
        if val_pixels is not None and len(val_pixels)
        else None
    )
    batch = preset.batch_size
    steps_per_epoch = max(1, math.ceil(len(train_tensor) / batch))
    total_steps = steps_per_epoch * max(1, epochs)

    def snapshot() -> tuple[dict[str, Any], dict[str, Any]]:
        return (
            {
                k: v.detach().cpu().clone(memory_format=torch.contiguous_format)
                for k, v in module.state_dict().items()
            },
            {k: v.detach().cpu().clone() for k, v in head.state_dict().items()},
        )

    selecting = val_tensor is not None and len(val_tensor) >= preset.min_validation
    curve: list[dict[str, Any]] = []
    best_score = -1.0
    best_epoch = 0
    best = snapshot()
    first_epoch = 1
    resumed_from: int | None = None
    if val_tensor is not None and y_val is not None:
        f1, accuracy = _scores(
            y_val, _evaluate(torch, backbone, head, val_tensor, device, 32), n_labels
        )
        if selecting:
            best_score = f1
        curve.append(
            {
                "epoch": 0,
                "loss": None,
                "val_macro_f1": round(f1, 6),
                "val_accuracy": round(accuracy, 6),
                "lr": None,
                "seconds": 0.0,
            }
        )
        say("linear_probe", 0, f"linear probe: validation macro-F1 {f1:.3f}", val_macro_f1=f1)
    loaded = checkpoints.load() if checkpoints is not None else None
    if loaded is not None:
        epoch_done, tensors, meta = loaded
        module.load_state_dict({k[9:]: v for k, v in tensors.items() if k.startswith("backbone.")})
        head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
        _restore_optimizer(torch, optimizer, params, tensors)
        best = (
            {k[14:]: v for k, v in tensors.items() if k.startswith("best.backbone.")},
            {k[10:]: v for k, v in tensors.items() if k.startswith("best.head.")},
        )
        curve = list(meta["curve"])
        best_score = float(meta["best_score"])
        best_epoch = int(meta["best_epoch"])
        first_epoch = epoch_done + 1
        resumed_from = epoch_done
        say("resumed", epoch_done, f"resumed from the checkpoint of epoch {epoch_done}")
    stopped = "completed"
    since_best = sum(1 for row in curve if row["epoch"] > best_epoch)
    epochs_run = first_epoch - 1
    step = (first_epoch - 1) * steps_per_epoch
    for epoch in range(first_epoch, epochs + 1):
        if since_best >= preset.patience and selecting and epoch > epochs // 2 + 1:
            stopped = "early_stopping"
            break
        if deadline is not None and time.monotonic() >= deadline:
            stopped = "time_limit"
            break
        began = time.monotonic()
        rng = random.Random(seed * 100_003 + epoch)  # noqa: S311 - augmentation, not secrets
        torch.manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(
            len(train_tensor), generator=torch.Generator().manual_seed(rng.randrange(2**31))
        )
        module.train()
        _freeze_batch_norm(torch, module)
        head.train()
        losses = []
        cut = False
        for start in range(0, len(order), batch):
            index = order[start : start + batch]
            inputs = _augment(torch, train_array[index.numpy()], size, preset, rng).to(device)
            for group in optimizer.param_groups:
                group["lr"] = _one_cycle(step, total_steps, group["peak"])
            logits = head(
                module(backbone.normalize(inputs).contiguous(memory_format=torch.channels_last))
            )
            loss = torch.nn.functional.cross_entropy(
                logits, labels[index].to(device), label_smoothing=preset.label_smoothing
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(float(loss.detach()))
            if progress is not None:
                progress((epoch - 1) * len(order) + start + len(index), epochs * len(order))
            if deadline is not None and time.monotonic() >= deadline:
                cut = True
                break
        if cut:
            stopped = "time_limit"
            break
        epochs_run = epoch
        row: dict[str, Any] = {
            "epoch": epoch,
            "loss": round(float(np.mean(losses)), 6),
            "val_macro_f1": None,
            "val_accuracy": None,
            "lr": round(optimizer.param_groups[0]["lr"], 8),
            "seconds": round(time.monotonic() - began, 3),
        }
        if val_tensor is not None and y_val is not None:
            f1, accuracy = _scores(
                y_val, _evaluate(torch, backbone, head, val_tensor, device, 32), n_labels
            )
            row["val_macro_f1"], row["val_accuracy"] = round(f1, 6), round(accuracy, 6)
        if not selecting:
            best_epoch, best = epoch, snapshot()
        elif f1 >= best_score:  # ties go to the longer-trained network
            best_score, best_epoch, best = f1, epoch, snapshot()
            since_best = 0
        else:
            since_best += 1
        curve.append(row)
        if checkpoints is not None:
            tensors = {f"backbone.{k}": v for k, v in module.state_dict().items()}
            tensors |= {f"head.{k}": v for k, v in head.state_dict().items()}
            tensors |= {f"best.backbone.{k}": v for k, v in best[0].items()}
            tensors |= {f"best.head.{k}": v for k, v in best[1].items()}
            tensors |= _optimizer_tensors(optimizer, params)
            checkpoints.save(
                epoch,
                tensors,
                {"curve": curve, "best_score": best_score, "best_epoch": best_epoch},
            )
        say(
            "epoch",
            epoch,
            f"epoch {epoch}/{epochs}: loss {row['loss']:.4f}"
            + (
                f", validation macro-F1 {row['val_macro_f1']:.3f}"
                if row["val_macro_f1"] is not None
                else ""
            ),
            loss=row["loss"],
            val_macro_f1=row["val_macro_f1"],
        )
    if stopped == "time_limit":
        say(
            "stopped",
            epochs_run,
            f"time limit reached after {epochs_run} epochs: keeping epoch {best_epoch}",
        )
    elif stopped == "early_stopping":
        say(
            "stopped",
            epochs_run,
            f"early stopping after epoch {epochs_run}: keeping epoch {best_epoch}",
        )
    module.to(memory_format=torch.contiguous_format)
    return FineTuneResult(
        backbone_state=best[0],
        weight=best[1]["weight"].numpy().astype(np.float32),
        bias=best[1]["bias"].numpy().astype(np.float32),
        curve=tuple(curve),
        best_epoch=best_epoch,
        epochs_run=epochs_run,
        stopped=stopped,
        resumed_from=resumed_from,
        seconds=time.monotonic() - started,
    )
