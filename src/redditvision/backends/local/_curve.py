"""The training curve of a fine-tuned model as a PNG (for the report and for people)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["plot_training_curve"]


def plot_training_curve(
    curve: Sequence[Mapping[str, Any]],
    *,
    best_epoch: int | None = None,
    title: str = "training curve",
) -> bytes:
    """Draw training loss and validation macro-F1 per epoch (matplotlib, Agg backend).

    Args:
        curve: ``model.json["training"]["curve"]``: rows with ``epoch`` (0 = the linear
            probe), ``loss`` (mean training loss, null at epoch 0) and ``val_macro_f1``
            (null without a validation split).
        best_epoch: The epoch kept (``training["best_epoch"]``), marked with a line.
        title: The figure's title.

    Returns:
        PNG bytes (640 x 400 px); a figure saying "no epochs" for an empty curve (the
        ``fast`` preset).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), dpi=100)
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_xlabel("epoch (0 = linear probe)")
    losses = [(row["epoch"], row["loss"]) for row in curve if row.get("loss") is not None]
    scores = [
        (row["epoch"], row["val_macro_f1"]) for row in curve if row.get("val_macro_f1") is not None
    ]
    if not losses and not scores:
        axes.text(0.5, 0.5, "no epochs (frozen features)", ha="center", va="center")
        axes.set_axis_off()
    if losses:
        axes.plot(*zip(*losses, strict=True), marker="o", color="tab:blue", label="training loss")
        axes.set_ylabel("training loss", color="tab:blue")
    if scores:
        right = axes.twinx()
        right.plot(
            *zip(*scores, strict=True), marker="s", color="tab:orange", label="validation macro-F1"
        )
        right.set_ylabel("validation macro-F1", color="tab:orange")
        right.set_ylim(0, 1)
    if best_epoch is not None and (losses or scores):
        axes.axvline(best_epoch, color="gray", linestyle="--", linewidth=1)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
