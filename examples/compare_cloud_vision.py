r"""Put Cloud Vision's generic labels beside a custom model's answers, and write a report.

Cloud Vision (LABEL_DETECTION and WEB_DETECTION, 16 images per request) says "car" or
"BMW"; the custom model says "z3-4-8". The report measures how often each names the true
class (from the image folder's names, grouped by an optional label map) and writes
``report.html``, ``report.md``, ``comparison.csv`` and the plots::

    python examples/compare_cloud_vision.py --model runs/bmw/model/<name> \
        --images ../shared/data/cars/stanford-bmw \
        --label-map examples/bmw-series.toml --out build/cv

Credentials: Application Default Credentials with the Cloud Vision API enabled (billed per
image and feature; the first 1,000 units a month are free).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from redditvision import (
    Classifier,
    CloudVisionLabeler,
    LabelMap,
    RedditVisionError,
    VisionComparator,
    label_folders,
    write_report,
)


def main(argv: list[str] | None = None) -> int:
    """Run the example with ``argv`` (default: the command line); return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="local model folder")
    parser.add_argument("--images", type=Path, required=True, help="folder of label folders")
    parser.add_argument("--label-map", type=Path, help="TOML grouping of folder names")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    args = parser.parse_args(argv)

    label_map = LabelMap.from_toml(args.label_map) if args.label_map else None
    dataset = label_folders(args.images, label_map=label_map)
    aliases: dict[str, set[str]] = {}
    for image in dataset.images:
        aliases.setdefault(image.original_label, set()).add(image.path.parent.name)
    with CloudVisionLabeler.from_env() as generic, Classifier(args.model) as custom:
        comparator = VisionComparator(generic=generic, custom=custom, aliases=aliases)
        report = comparator.compare(
            [str(image.path) for image in dataset.images],
            truth=[image.original_label for image in dataset.images],
        )
    files = write_report(report, args.out, overwrite=True)
    for key, value in report.summary_dict().items():
        print(f"{key}: {value}")
    print(f"report: {files.html}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except RedditVisionError as exc:  # the library's one root error: one line, as the CLI
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(2 if isinstance(exc, ValueError) else 1) from None  # 2: bad input
