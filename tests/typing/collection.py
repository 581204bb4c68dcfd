"""Typing test of the collection API: mypy --strict must accept this file as written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import praw

from redditvision import (
    CollectStats,
    DumpFileSource,
    ImagePost,
    ListingFileSource,
    MediaItem,
    PostFilters,
    RedditImageSource,
    SkippedMedia,
    SkipReason,
    post_from_submission_data,
    resolve_media,
)

filters: PostFilters = PostFilters(min_score=10, allowed_domains=["i.redd.it"]).evolve(
    include_nsfw=False
)
media: tuple[MediaItem, ...]
skipped: tuple[SkippedMedia, ...]
media, skipped = resolve_media({"id": "abc", "url": "https://i.redd.it/a.jpg"})
post: ImagePost = post_from_submission_data({"id": "abc"})
reason: str = SkipReason.VIDEO.value


def offline(paths: list[Path]) -> Iterator[ImagePost]:
    listing = ListingFileSource(paths, filters=filters)
    dump = DumpFileSource(["RS.zst"])
    stats: CollectStats = dump.stats
    _errors: list[str] = dump.errors + listing.errors + stats.errors
    yield from listing.submissions()
    yield from dump.submissions()


def online(reddit: praw.Reddit) -> list[ImagePost]:
    with RedditImageSource(reddit=reddit, filters=filters, retry=None) as source:
        return list(source.submissions("BMW", sort="top", time_filter="year", limit=None))
