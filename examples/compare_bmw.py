"""Compare a local model of the five BMW series with the offline ImageNet labels.

Trains the local backend on 80 % of the Stanford Cars BMW photos, grouped into five series
by ``examples/bmw-series.toml``, and compares it with the ImageNet-1k labels of
EfficientNet-Lite0 on the held-out 20 % (never seen in training). The aggregate table goes
to standard output as reStructuredText; the report folder to ``build/compare-bmw``::

    python examples/compare_bmw.py ../shared/data/cars/stanford-bmw build/compare-bmw
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from redditvision import Classifier
from redditvision.backends.local import LocalBackend
from redditvision.compare import ComparisonReport, VisionComparator
from redditvision.labelers import ImageNetLabeler
from redditvision.labels import LabelMap, label_folders
from redditvision.metrics import evaluate_comparison
from redditvision.models import MLUse
from redditvision.report import write_report
from redditvision.split import split_dataset

HERE = Path(__file__).resolve().parent


def aliases(label_map: LabelMap, folders: dict[str, set[str]]) -> dict[str, list[str]]:
    """Each series' other names: its folder names and its patterns without the globs."""
    out: dict[str, list[str]] = {}
    for target, patterns in label_map.targets:
        names = sorted(folders.get(target, set()))
        names += [" ".join(re.sub(r"[*?\[\]]", " ", p).split()) for p in patterns]
        out[target] = names
    return out


def rst_table(report: ComparisonReport) -> str:
    """The per-class and overall figures as an RST list-table."""
    rows = [
        (
            c.label,
            str(c.support),
            f"{c.precision:.2f}",
            f"{c.recall:.2f}",
            f"{c.f1:.2f}",
            "n/a" if c.generic_names_class is None else f"{c.generic_names_class:.2f}",
            "n/a" if c.generic_only_generic is None else f"{c.generic_only_generic:.2f}",
        )
        for c in report.classes
    ]
    s = report.summary

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    rows.append(
        (
            "all (accuracy, macro-F1)",
            str(s.with_truth),
            "",
            f"acc. {fmt(s.custom_accuracy)}",
            f"macro {fmt(s.custom_macro_f1)}",
            fmt(s.generic_names_truth),
            fmt(s.generic_only_generic),
        )
    )
    header = (
        "class",
        "images",
        "custom precision",
        "custom recall",
        "custom F1",
        "ImageNet names the class",
        "ImageNet only make/vehicle",
    )
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in (header, *rows):
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    return "\n".join(lines)


def main(photos: Path, out: Path) -> None:
    """Train, compare, write the report and print the table."""
    label_map = LabelMap.from_toml(HERE / "bmw-series.toml")
    dataset = split_dataset(
        label_folders(photos, label_map=label_map), train=0.8, validation=0.0, test=0.2, seed=0
    )
    test = dataset.subset(MLUse.TEST)
    folders: dict[str, set[str]] = {}
    for image in dataset.images:
        folders.setdefault(image.original_label, set()).add(image.path.parent.name)
    started = time.monotonic()
    folder = out.parent / "models" / "bmw-series"
    with LocalBackend(model_dir=out.parent / "models") as backend:
        if (folder / "model.json").is_file():  # the split is seeded: reuse the model
            model = backend.load(folder)
        else:
            model = backend.train(dataset, out=folder)
        trained = time.monotonic() - started
        with Classifier(model.resource) as classifier:
            labeler = ImageNetLabeler(extractor=backend.extractor)  # type: ignore[arg-type]
            comparator = VisionComparator(
                generic=labeler, custom=classifier, aliases=aliases(label_map, folders)
            )
            started = time.monotonic()
            report = comparator.compare(
                [image.path for image in test], [image.original_label for image in test]
            )
            compared = time.monotonic() - started
    files = write_report(report, out, evaluation=evaluate_comparison(report), overwrite=True)
    print(f"trained on {len(dataset.images) - len(test)} photos in {trained:.0f} s")
    print(f"compared {len(test)} held-out photos in {compared:.0f} s")
    print(f"report: {files.html}")
    print()
    print(rst_table(report))
    print()
    print(report.summary)
    top: dict[str, int] = {}
    for row in report.images:
        if row.generic.labels:
            first = row.generic.labels[0].label
            top[first] = top.get(first, 0) + 1
    print("top-1 ImageNet labels:", sorted(top.items(), key=lambda kv: -kv[1]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("photos", type=Path, help="the stanford-bmw folder of model folders")
    parser.add_argument("out", type=Path, help="report folder to write")
    args = parser.parse_args()
    main(args.photos, args.out)
