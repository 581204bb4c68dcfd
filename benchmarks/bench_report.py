"""Report writing: time to write a comparison of 200 images, and the HTML page's size."""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

from redditvision.compare import (
    ClassComparison,
    ComparisonReport,
    ComparisonSummary,
    ImageComparison,
)
from redditvision.labelers import ImageLabels
from redditvision.models import GenericLabel, Prediction
from redditvision.report import write_report

LABELS = ("1-2series", "3-4series", "5-6series", "x-suv", "z3-4-8")


def _report(n: int) -> ComparisonReport:
    buffer = io.BytesIO()
    Image.effect_noise((160, 120), 40).convert("RGB").save(buffer, format="JPEG", quality=80)
    thumb = buffer.getvalue()
    images = tuple(
        ImageComparison(
            name=f"photos/{LABELS[i % 5]}/{i:04d}.jpg",
            truth=LABELS[i % 5],
            generic=ImageLabels(
                labels=tuple(
                    GenericLabel(label=f"label {j}", score=0.9 - j / 10, source="imagenet")
                    for j in range(5)
                ),
                best_guess="label 0",
            ),
            custom=tuple(Prediction(label=label, score=0.2, model_label=label) for label in LABELS),
            generic_match="generic",
            thumbnail=thumb,
        )
        for i in range(n)
    )
    classes = tuple(
        ClassComparison(
            label=label,
            support=n // 5,
            predicted=n // 5,
            known_to_model=True,
            precision=0.2,
            recall=0.2,
            f1=0.2,
            generic_names_class=0.0,
            generic_only_generic=1.0,
            agreement=0.0,
        )
        for label in LABELS
    )
    matrix = tuple(tuple(n // 5 if i == 0 else 0 for i in range(5)) for _ in range(5))
    return ComparisonReport(
        generic_name="imagenet",
        custom_name="bench",
        labels=LABELS,
        confusion_matrix=matrix,
        images=images,
        classes=classes,
        summary=ComparisonSummary(
            images=n,
            with_truth=n,
            generic_errors=0,
            custom_errors=0,
            custom_accuracy=0.2,
            custom_macro_f1=0.07,
            generic_names_truth=0.0,
            generic_names_other_class=0.0,
            generic_only_generic=1.0,
            generic_none=0.0,
            agreement=0.0,
        ),
    )


def run() -> list[dict[str, Any]]:
    n = 200
    report = _report(n)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        files = write_report(report, Path(folder) / "report")
        seconds = time.perf_counter() - started
        html_bytes = files.html.stat().st_size
        plots = len(files.plots)
    return [
        {
            "benchmark": "report",
            "metric": f"write_report, {n} images, {plots} plots",
            "value": seconds,
            "unit": "s",
            "note": "HTML + Markdown + CSV + JSON Lines + PNGs (matplotlib Agg)",
        },
        {
            "benchmark": "report",
            "metric": "report.html size per image",
            "value": html_bytes / n / 1024,
            "unit": "KiB",
            "note": "160 px JPEG thumbnail inlined as base64, plus its table row",
        },
    ]
