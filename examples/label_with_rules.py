r"""Label downloaded Reddit images with ordered rules over title, flair and subreddit.

Reads the manifest of a download folder (``redditvision download --out DIR``), applies the
rules (first match wins; unmatched images are listed, never dropped silently), splits the
result 80/10/10 keeping near-duplicates together, prints the check report against Vertex
AI's limits, and writes the labeled dataset as JSON Lines::

    python examples/label_with_rules.py build/bmw/downloads examples/bmw-rules.toml \
        build/bmw/labeled.jsonl
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from redditvision import (
    ImageManifest,
    RedditVisionError,
    RuleSet,
    check_dataset,
    label_records,
    split_dataset,
    write_local_dataset,
)


def main(argv: list[str] | None = None) -> int:
    """Run the example with ``argv`` (default: the command line); return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("downloads", type=Path, help="folder written by `redditvision download`")
    parser.add_argument("rules", type=Path, help="TOML rules file")
    parser.add_argument("out", type=Path, help="labeled dataset to write (.jsonl)")
    parser.add_argument(
        "--target", default="local", help="limits to check: local (default)/vertex/automl"
    )
    args = parser.parse_args(argv)

    with ImageManifest.for_folder(args.downloads) as manifest:
        dataset, report = label_records(manifest.records(), RuleSet.from_toml(args.rules))
    dataset = split_dataset(dataset)
    splits = Counter(image.ml_use.value for image in dataset.images if image.ml_use)
    for label, count in dataset.counts().items():
        print(f"{dataset.label_map.get(label, label):>16}: {count} images")
    failed = Counter(str(record.status) for record in report.not_ok)
    print(f"splits: {dict(splits)}; unmatched: {len(report.unmatched)}; not ok: {dict(failed)}")
    check = check_dataset(dataset, target=args.target)
    for issue in (*check.errors, *check.warnings):
        print(f"{issue.code}: {issue.message}")
    write_local_dataset(dataset, args.out)
    print(f"wrote {args.out}")
    return 0 if check.ok else 2


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except RedditVisionError as exc:  # the library's one root error: one line, as the CLI
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(2 if isinstance(exc, ValueError) else 1) from None  # 2: bad input
