"""``redditvision classify``: predict the images of new Reddit posts with a trained model."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import click

from redditvision.cli._common import echo_json, err_console, handle_errors, progress
from redditvision.errors import ConfigError, ListingFormatError
from redditvision.models import ImagePost
from redditvision.reddit import SORTS, TIME_FILTERS
from redditvision.serialize import post_from_json

__all__ = ["COMMANDS", "classify"]


def _read_posts(stream: IO[str], name: str) -> Iterator[ImagePost]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ListingFormatError("not a JSON object")
            yield post_from_json(data)
        except (json.JSONDecodeError, ListingFormatError) as exc:
            err_console.print(f"[yellow]{name} line {number} skipped:[/] {exc}", highlight=False)


@click.command(
    "classify",
    epilog="Examples: redditvision classify --model models/bmw -s BMW --sort new --limit 100 "
    "--out bmw-new; redditvision classify --endpoint http://127.0.0.1:8080 --listing new.json "
    "--out bmw-new",
)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A local model folder (from `redditvision train`).",
)
@click.option(
    "--endpoint",
    metavar="URL",
    help="A Vertex-shaped REST endpoint: `redditvision serve`'s http://HOST:PORT or a Vertex "
    "AI endpoint URL (https://REGION-aiplatform.googleapis.com/v1/projects/P/locations/L/"
    "endpoints/E; Application Default Credentials).",
)
@click.option(
    "--api-key-env",
    metavar="VAR",
    help="With --endpoint: environment variable holding the server's API key.",
)
@click.option("--subreddit", "-s", metavar="NAME", help="Read r/NAME through the Reddit API.")
@click.option(
    "--sort", type=click.Choice(SORTS), default="new", show_default=True, help="Listing sort."
)
@click.option(
    "--time-filter",
    type=click.Choice(TIME_FILTERS),
    default="all",
    show_default=True,
    help="Period for top and controversial.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Posts to read."
)
@click.option("--site", metavar="NAME", help="praw.ini section with the API credentials.")
@click.option(
    "--listing",
    "listings",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A saved Reddit listing JSON file (repeatable).",
)
@click.option(
    "--dump",
    "dumps",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An NDJSON submission dump, plain, .zst or .gz (repeatable).",
)
@click.option(
    "--posts",
    "posts_file",
    type=click.File("r", encoding="utf-8"),
    help="JSON Lines of posts as `redditvision collect` writes them; - for standard input.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder: images/, manifest.sqlite, predictions.jsonl, summary.json, "
    "index.html (a re-run predicts only new items).",
)
@click.option(
    "--low-confidence",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Top scores under this go to the low-confidence bucket.",
)
@click.option(
    "--generic-labels",
    is_flag=True,
    help="Also keep the top ImageNet labels of each image (offline; the [local] extra).",
)
@click.option("--no-html", is_flag=True, help="Do not write index.html.")
@click.option(
    "--allow-private-networks",
    is_flag=True,
    help="Also fetch from loopback/private/link-local addresses (tests, intranets only).",
)
@click.option(
    "--json-summary",
    is_flag=True,
    help="Print summary.json as one JSON object on standard output (no progress bar).",
)
@handle_errors
def classify(
    model_dir: Path | None,
    endpoint: str | None,
    api_key_env: str | None,
    subreddit: str | None,
    sort: str,
    time_filter: str,
    limit: int,
    site: str | None,
    listings: tuple[Path, ...],
    dumps: tuple[Path, ...],
    posts_file: IO[str] | None,
    out_dir: Path,
    low_confidence: float,
    generic_labels: bool,
    no_html: bool,
    allow_private_networks: bool,
    json_summary: bool,
) -> None:
    """Classify the images of Reddit posts with a trained model.

    Give one model (--model DIR or --endpoint URL) and one input (--subreddit, --listing,
    --dump or --posts). The images are downloaded into --out as `download` does (verified,
    deduplicated, resumable), each new one is predicted once, and --out gets
    predictions.jsonl (one line per image: post, image, top label and score, all scores),
    summary.json (count per label, the low-confidence bucket, why some have no prediction)
    and index.html (the posts grouped by predicted label).
    """
    from redditvision.classify import Classifier
    from redditvision.predict_posts import classify_posts
    from redditvision.reddit import DumpFileSource, ListingFileSource, RedditImageSource

    if (model_dir is None) == (endpoint is None):
        raise ConfigError("give exactly one model: --model DIR or --endpoint URL")
    given = [
        name
        for name, value in (
            ("--subreddit", subreddit),
            ("--listing", listings),
            ("--dump", dumps),
            ("--posts", posts_file),
        )
        if value
    ]
    if len(given) != 1:
        raise ConfigError(
            "give exactly one input: --subreddit NAME, --listing FILE, --dump FILE or "
            "--posts FILE" + (f" (got {' and '.join(given)})" if given else "")
        )
    api_key: str | None = None
    if api_key_env is not None:
        if endpoint is None:
            raise ConfigError("--api-key-env goes with --endpoint")
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise ConfigError(f"--api-key-env {api_key_env}: that variable is not set or is empty")

    source: Any = None
    posts: Iterable[ImagePost]
    if subreddit is not None:
        source = RedditImageSource.from_env(site)
        posts = source.submissions(subreddit, sort=sort, time_filter=time_filter, limit=limit)
    elif listings:
        source = ListingFileSource(listings)
        posts = source.submissions()
    elif dumps:
        source = DumpFileSource(dumps)
        posts = source.submissions()
    else:
        assert posts_file is not None
        posts = _read_posts(posts_file, getattr(posts_file, "name", "<posts>"))

    generic: Any = None
    if generic_labels:
        from redditvision.backends.local import ImageNetLabeler

        generic = ImageNetLabeler()
    classifier = (
        Classifier.from_endpoint(endpoint, api_key=api_key)
        if endpoint is not None
        else Classifier(model_dir)  # type: ignore[arg-type]
    )
    try:
        with classifier, progress(disable=json_summary) as bar:
            fetched = bar.add_task("download", total=None)
            predicted = bar.add_task("predict", total=None)

            def advance(stage: str, count: int) -> None:
                bar.advance(fetched if stage == "downloaded" else predicted, count)

            result = classify_posts(
                posts,
                classifier,
                out_dir,
                allow_private_networks=allow_private_networks,
                low_confidence=low_confidence,
                generic=generic,
                html=not no_html,
                progress=advance,
            )
    finally:
        if source is not None:
            source.close()
        if generic is not None:
            generic.close()
    summary = dict(result.summary)
    if json_summary:
        echo_json({**summary, "out": str(out_dir), "html": str(result.html_file or "")})
        return
    err_console.print(
        f"[bold]{summary['classified']}[/] of {summary['items']} images classified "
        f"({result.predicted} predicted now, {result.reused} kept from before) -> {out_dir}",
        highlight=False,
    )
    for label, count in summary["labels"].items():
        err_console.print(f"  {count:>6} {label}", markup=False, highlight=False)
    low = summary["low_confidence"]
    err_console.print(
        f"  {low['count']:>6} low confidence (under {low['threshold']:g})",
        markup=False,
        highlight=False,
    )
    for reason, count in summary["not_classified"]["reasons"].items():
        err_console.print(f"  {count:>6} not classified: {reason}", markup=False, highlight=False)
    if result.html_file is not None:
        err_console.print(f"page: {result.html_file}", markup=False, highlight=False)


COMMANDS: list[click.Command] = [classify]
