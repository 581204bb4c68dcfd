"""``redditvision collect``: image submissions to JSON Lines, from Reddit or saved files."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from redditvision.cli._common import echo_json, err_console, handle_errors, progress
from redditvision.errors import ConfigError
from redditvision.models import ImagePost
from redditvision.reddit import (
    DEFAULT_LISTING_MAX_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    LISTING_CAP,
    SEARCH_SORTS,
    SORTS,
    TIME_FILTERS,
    CollectStats,
    DumpFileSource,
    ListingFileSource,
    PostFilters,
    RedditImageSource,
)
from redditvision.serialize import post_to_json

__all__ = ["COMMANDS", "collect"]


@click.command(
    "collect",
    epilog="Examples: redditvision collect -s BMW --time-filter year --limit 500 -o bmw.jsonl; "
    "redditvision collect --listing top.json --json-summary -o posts.jsonl",
)
@click.option("--subreddit", "-s", metavar="NAME", help="Read r/NAME through the Reddit API.")
@click.option(
    "--sort",
    type=click.Choice(sorted({*SORTS, *SEARCH_SORTS})),
    default="top",
    show_default=True,
    help="Listing sort (with --query: relevance, hot, top, new, comments).",
)
@click.option(
    "--time-filter",
    type=click.Choice(TIME_FILTERS),
    default="all",
    show_default=True,
    help="Period for top, controversial and search.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help=f"Submissions to read; Reddit serves about {LISTING_CAP} at most per listing.",
)
@click.option("--query", "-q", metavar="TEXT", help="Search the subreddit instead of listing it.")
@click.option("--site", metavar="NAME", help="praw.ini section with the API credentials.")
@click.option(
    "--listing",
    "listings",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A saved Reddit listing JSON file (repeatable).",
)
@click.option(
    "--dump",
    "dumps",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="An NDJSON submission dump, plain, .zst or .gz (repeatable).",
)
@click.option(
    "--max-input-bytes",
    type=click.IntRange(min=1),
    help=f"Largest decompressed size of one --listing or --dump file [listing default: "
    f"{DEFAULT_LISTING_MAX_BYTES:,}; dumps are streamed, no default cap].",
)
@click.option(
    "--max-line-bytes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_LINE_BYTES,
    show_default=True,
    help="Longest line of a --dump file.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the JSON Lines here (written whole at the end); default standard output.",
)
@click.option(
    "--json-summary",
    is_flag=True,
    help="Print the summary as one JSON object on standard output (needs --out).",
)
@click.option("--nsfw/--no-nsfw", default=False, show_default=True, help="Keep NSFW posts.")
@click.option("--spoilers/--no-spoilers", default=True, show_default=True, help="Keep spoilers.")
@click.option("--stickied/--no-stickied", default=False, show_default=True, help="Keep pinned.")
@click.option(
    "--removed/--no-removed", default=False, show_default=True, help="Keep removed posts."
)
@click.option("--min-score", type=int, help="Drop posts scoring below this.")
@click.option("--min-width", type=click.IntRange(min=1), help="Drop images known narrower.")
@click.option("--min-height", type=click.IntRange(min=1), help="Drop images known shorter.")
@click.option(
    "--domain",
    "domains",
    multiple=True,
    metavar="HOST",
    help="Keep only media on this host or its subdomains (repeatable).",
)
@handle_errors
def collect(
    subreddit: str | None,
    sort: str,
    time_filter: str,
    limit: int,
    query: str | None,
    site: str | None,
    listings: tuple[Path, ...],
    dumps: tuple[Path, ...],
    max_input_bytes: int | None,
    max_line_bytes: int,
    out: Path | None,
    json_summary: bool,
    nsfw: bool,
    spoilers: bool,
    stickied: bool,
    removed: bool,
    min_score: int | None,
    min_width: int | None,
    min_height: int | None,
    domains: tuple[str, ...],
) -> None:
    """Collect image submissions as JSON Lines, one post with its images per line.

    Give exactly one input: --subreddit (the Reddit API; credentials from praw.ini or the
    praw_client_id, praw_client_secret and praw_user_agent environment variables), one or
    more --listing files, or one or more --dump files. Only posts with at least one image
    are written; a summary of what was seen and skipped goes to standard error.
    """
    given = [
        name
        for name, value in (("--subreddit", subreddit), ("--listing", listings), ("--dump", dumps))
        if value
    ]
    if len(given) != 1:
        raise ConfigError(
            "give exactly one input: --subreddit NAME, --listing FILE or --dump FILE"
            + (f" (got {' and '.join(given)})" if given else "")
        )
    if json_summary and out is None:
        raise ConfigError("--json-summary prints the summary on standard output: give --out FILE")
    for path in (*listings, *dumps):
        if not path.is_file():
            raise ConfigError(f"{path} does not exist or is not a file")
    filters = PostFilters(
        include_nsfw=nsfw,
        include_spoilers=spoilers,
        include_stickied=stickied,
        include_removed=removed,
        min_score=min_score,
        min_width=min_width,
        min_height=min_height,
        allowed_domains=domains or None,
    )

    source: RedditImageSource | ListingFileSource | DumpFileSource
    if subreddit is not None:
        source = RedditImageSource.from_env(site, filters=filters)
        described = f"r/{subreddit} " + (f"search {query!r} " if query else "") + f"{sort}"
        posts = source.submissions(
            subreddit, sort=sort, time_filter=time_filter, limit=limit, query=query
        )
        total: int | None = limit
    elif listings:
        source = ListingFileSource(
            listings, filters=filters, max_bytes=max_input_bytes or DEFAULT_LISTING_MAX_BYTES
        )
        described, posts, total = f"{len(listings)} listing file(s)", source.submissions(), None
    else:
        source = DumpFileSource(
            dumps, filters=filters, max_line_bytes=max_line_bytes, max_bytes=max_input_bytes
        )
        described, posts, total = f"{len(dumps)} dump file(s)", source.submissions(), None

    with source, progress(disable=json_summary) as bar:
        task = bar.add_task(f"collecting {described}", total=total)

        def tracked() -> Iterator[ImagePost]:
            for post in posts:
                bar.update(task, completed=source.stats.posts_seen)
                yield post
            bar.update(task, completed=source.stats.posts_seen)

        written = _write(tracked(), out)

    summary = _summary(source.stats, described, out, written)
    if json_summary:
        echo_json(summary)
    else:
        _print_summary(summary)


def _write(posts: Iterator[ImagePost], out: Path | None) -> int:
    """Write one JSON line per post; a file appears whole (temporary file, then rename)."""
    count = 0

    def emit(stream: IO[str]) -> None:
        nonlocal count
        for post in posts:
            stream.write(json.dumps(post_to_json(post), ensure_ascii=False) + "\n")
            count += 1

    if out is None:
        emit(sys.stdout)
        sys.stdout.flush()
        return count
    partial = out.with_name(out.name + ".partial")
    try:
        with open(partial, "w", encoding="utf-8") as stream:
            emit(stream)
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count


def _summary(stats: CollectStats, described: str, out: Path | None, written: int) -> dict[str, Any]:
    data = stats.as_dict()
    errors = data.pop("errors")
    return {
        "source": described,
        "out": str(out) if out is not None else None,
        "posts_written": written,
        **data,
        "errors": len(errors),
        "error_messages": errors[:20],
    }


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"collected from {summary['source']}", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for key in (
        "posts_seen",
        "posts_with_images",
        "posts_without_images",
        "images",
        "animated",
        "previews",
        "gallery_items",
        "fallback_previews",
    ):
        table.add_row(key.replace("_", " "), str(summary[key]))
    for reason, count in summary["posts_filtered"].items():
        table.add_row(f"posts filtered: {reason}", str(count))
    for reason, count in summary["skips"].items():
        table.add_row(f"skipped: {reason}", str(count))
    if summary["errors"]:
        table.add_row("bad input lines", str(summary["errors"]))
    err_console.print(table)
    for message in summary["error_messages"]:
        err_console.print(
            f"[yellow]bad input[/] {escape(message)}", highlight=False, soft_wrap=True
        )
    where = summary["out"] or "standard output"
    err_console.print(f"{summary['posts_written']} posts written to {where}", highlight=False)


COMMANDS: list[click.Command] = [collect]
