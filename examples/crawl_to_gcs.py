r"""Crawl a subreddit's images into Cloud Storage, labeled and split, ready for AutoML.

The seed's first step, as you would write it today: list the top submissions through praw,
download their images safely (resumable), label them with title/flair rules, split them
without leaking reposts, check them against Vertex AI's limits, and upload them with the
import file written last::

    export praw_client_id=... praw_client_secret=... praw_user_agent="bmw-crawler by u/you"
    python examples/crawl_to_gcs.py --subreddit BMW --rules examples/bmw-rules.toml \
        --bucket my-bucket --work build/bmw

Credentials: praw.ini or the praw_* variables for Reddit; Application Default Credentials
for Cloud Storage. A re-run resumes: finished downloads and unchanged objects are skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from redditvision import (
    GcsDatasetWriter,
    ImageDownloader,
    ImageManifest,
    PostFilters,
    RecordStatus,
    RedditImageSource,
    RuleSet,
    check_dataset,
    label_records,
    split_dataset,
)


def main(argv: list[str] | None = None) -> int:
    """Run the example with ``argv`` (default: the command line); return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subreddit", required=True, help="subreddit name, without r/")
    parser.add_argument("--rules", type=Path, required=True, help="TOML title/flair rules")
    parser.add_argument("--bucket", required=True, help="Cloud Storage bucket")
    parser.add_argument("--prefix", default="redditvision", help="object name prefix")
    parser.add_argument("--work", type=Path, default=Path("build/crawl"), help="local folder")
    parser.add_argument("--limit", type=int, default=1000, help="submissions (Reddit: <= ~1000)")
    parser.add_argument("--time-filter", default="year", help="hour/day/week/month/year/all")
    parser.add_argument("--min-score", type=int, default=10, help="drop posts scored lower")
    args = parser.parse_args(argv)

    downloads = args.work / "downloads"
    filters = PostFilters(min_score=args.min_score)
    with RedditImageSource.from_env(filters=filters) as source, ImageDownloader(downloads) as dl:
        posts = source.submissions(
            args.subreddit, sort="top", time_filter=args.time_filter, limit=args.limit
        )
        for record in dl.fetch(posts):
            if record.status is not RecordStatus.OK:
                print(f"{record.status.value:>9} {record.url} {record.reason or ''}")

    with ImageManifest.for_folder(downloads) as manifest:
        dataset, report = label_records(
            manifest.records(RecordStatus.OK), RuleSet.from_toml(args.rules), name=args.subreddit
        )
    print(f"labeled {len(dataset.images)} images, {len(report.unmatched)} matched no rule")
    dataset = split_dataset(dataset, seed=0)
    check = check_dataset(dataset, target="vertex")
    for issue in (*check.errors, *check.warnings):
        print(f"{issue.code}: {issue.message}")
    check.raise_for_errors()

    with GcsDatasetWriter.from_env(bucket=args.bucket, prefix=args.prefix) as writer:
        location = writer.write(dataset, import_format="vertex_csv").location
    print(f"{location.images} images in {location.uri}; import file {location.import_file_uri}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
