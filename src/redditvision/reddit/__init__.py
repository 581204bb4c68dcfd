"""Collecting image submissions from Reddit: the API through praw, or saved JSON offline.

* :class:`RedditImageSource` reads subreddit listings and searches through ``praw``.
* :class:`ListingFileSource` reads saved ``Listing`` JSON files; :class:`DumpFileSource`
  reads NDJSON submission dumps (plain, ``.zst`` or gzip).
* :func:`resolve_media` turns a submission's JSON fields into image files, and
  :func:`post_from_submission_data` into an :class:`~redditvision.models.ImagePost`; all
  three sources use them, so the same JSON gives the same posts.

Every source yields :class:`~redditvision.models.ImagePost` from ``submissions()``, applies
:class:`PostFilters` and counts what it saw in :class:`CollectStats`.
"""

from redditvision.reddit._media import SkipReason, resolve_media
from redditvision.reddit._offline import (
    DEFAULT_LISTING_MAX_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    DumpFileSource,
    ListingFileSource,
)
from redditvision.reddit._posts import (
    CollectStats,
    PostFilters,
    collect_submission,
    post_from_submission_data,
)
from redditvision.reddit._source import (
    LISTING_CAP,
    SEARCH_SORTS,
    SORTS,
    TIME_FILTERS,
    RedditImageSource,
    translate_reddit_error,
)

__all__ = [
    "DEFAULT_LISTING_MAX_BYTES",
    "DEFAULT_MAX_LINE_BYTES",
    "LISTING_CAP",
    "SEARCH_SORTS",
    "SORTS",
    "TIME_FILTERS",
    "CollectStats",
    "DumpFileSource",
    "ListingFileSource",
    "PostFilters",
    "RedditImageSource",
    "SkipReason",
    "collect_submission",
    "post_from_submission_data",
    "resolve_media",
    "translate_reddit_error",
]
