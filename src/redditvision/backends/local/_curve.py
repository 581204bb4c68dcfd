"""The training curve of a fine-tuned model as a PNG (drawn by the report's plots)."""

from __future__ import annotations

from redditvision.report.plots import plot_training_curve

__all__ = ["plot_training_curve"]
