r"""Classify the images of Reddit posts with a trained model, as the original design ends.

Reads posts from saved listing files (offline) or a subreddit (``--subreddit``, needs
praw credentials), downloads their images into ``--out``, predicts each new one with a
local model folder or a REST endpoint, and writes ``predictions.jsonl``, ``summary.json``
and ``index.html`` there. Run it again: only new posts are fetched and predicted::

    python examples/classify_new_posts.py --model models/bmw --listing new.json --out bmw-new
    python examples/classify_new_posts.py --endpoint http://127.0.0.1:8080 \
        --subreddit BMW --limit 50 --out bmw-new
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from redditvision import Classifier, ListingFileSource, RedditImageSource, RedditVisionError
from redditvision.predict_posts import classify_posts


def main(argv: list[str] | None = None) -> int:
    """Run the example with ``argv`` (default: the command line); return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", type=Path, help="local model folder")
    model.add_argument("--endpoint", help="REST endpoint URL (redditvision serve or Vertex AI)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--listing", type=Path, action="append", help="saved listing JSON")
    source.add_argument("--subreddit", help="read r/NAME's newest posts (praw credentials)")
    parser.add_argument("--limit", type=int, default=100, help="posts to read from Reddit")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--low-confidence", type=float, default=0.5, help="threshold")
    args = parser.parse_args(argv)

    try:
        classifier = (
            Classifier.from_endpoint(args.endpoint) if args.endpoint else Classifier(args.model)
        )
        reader = ListingFileSource(args.listing) if args.listing else RedditImageSource.from_env()
        with classifier, reader:
            posts = (
                reader.submissions()
                if isinstance(reader, ListingFileSource)
                else reader.submissions(args.subreddit, sort="new", limit=args.limit)
            )
            result = classify_posts(posts, classifier, args.out, low_confidence=args.low_confidence)
    except RedditVisionError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    print(json.dumps(dict(result.summary)))
    print(f"page: {result.html_file}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
