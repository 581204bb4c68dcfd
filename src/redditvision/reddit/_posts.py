"""From a submission's JSON fields to an :class:`ImagePost`, plus filters and counters."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from redditvision.errors import ListingFormatError
from redditvision.models import ImagePost, MediaItem, MediaKind, SkippedMedia
from redditvision.reddit._media import SkipReason, resolve_media

__all__ = ["CollectStats", "PostFilters", "collect_submission", "post_from_submission_data"]

logger = logging.getLogger("redditvision.reddit")

_DELETED = "[deleted]"
_REMOVED_TEXTS = frozenset({"[removed]", "[deleted]"})


def post_from_submission_data(data: Mapping[str, Any]) -> ImagePost:
    """Build an :class:`~redditvision.models.ImagePost` from a submission's JSON fields.

    The same function serves the API (praw's attribute dict), saved listings and NDJSON
    dumps. Media is resolved with :func:`~redditvision.reddit.resolve_media`.

    Args:
        data: The ``t3`` ``data`` object. ``id`` (or ``name``, ``t3_...``) is required;
            every other field is optional. ``author`` ``null`` or ``"[deleted]"`` becomes
            ``None``; ``permalink`` is built from subreddit and id when absent.

    Returns:
        The post, with ``media`` and ``skipped`` resolved.

    Raises:
        ListingFormatError: ``data`` is not a mapping or has no submission id.
    """
    if not isinstance(data, Mapping):
        raise ListingFormatError(
            f"a submission must be a JSON object, got {type(data).__name__}; "
            "expected the 'data' of a t3 thing"
        )
    post_id = _text(data.get("id"))
    if post_id is None:
        name = _text(data.get("name"))
        post_id = name[3:] if name is not None and name.startswith("t3_") else None
    if post_id is None:
        raise ListingFormatError(
            "a submission has no 'id' (nor 'name' t3_...); "
            "expected the 'data' object of a t3 thing as Reddit's API returns it"
        )
    post_id = post_id.removeprefix("t3_")
    subreddit = _text(data.get("subreddit")) or ""
    subreddit = subreddit.removeprefix("r/")
    author = _text(data.get("author"))
    permalink = _text(data.get("permalink")) or (
        f"/r/{subreddit}/comments/{post_id}/" if subreddit else f"/comments/{post_id}/"
    )
    media, skipped = resolve_media(data)
    return ImagePost(
        id=post_id,
        subreddit=subreddit,
        title=_text(data.get("title")) or "",
        permalink=permalink,
        author=None if author in (None, _DELETED) else author,
        score=_int(data.get("score")),
        created_utc=_float(data.get("created_utc")),
        over_18=bool(data.get("over_18")),
        spoiler=bool(data.get("spoiler")),
        stickied=bool(data.get("stickied")),
        flair_text=_text(data.get("link_flair_text")),
        url=_text(data.get("url")),
        domain=_text(data.get("domain")),
        media=media,
        skipped=skipped,
    )


def _normalise_domains(value: Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    return frozenset(domain.strip().lower().lstrip(".") for domain in value if domain.strip())


@attrs.frozen(kw_only=True)
class PostFilters:
    """Which submissions and media a source keeps.

    Post filters drop a whole submission (counted under ``posts_filtered`` by reason);
    media filters move single items from ``media`` to ``skipped`` (reasons ``too_small``,
    ``domain_not_allowed``).

    Attributes:
        include_nsfw: Keep posts marked NSFW (``over_18``). Default False: excluded.
        include_spoilers: Keep posts marked spoiler. Default True.
        include_stickied: Keep posts pinned by moderators (usually announcements).
            Default False.
        include_removed: Keep removed or deleted posts (``removed_by_category`` set, or
            selftext ``[removed]``/``[deleted]``). Default False.
        min_score: Drop posts whose score is below this; None (default) for no minimum.
        min_width: Drop media whose width is known and below this many pixels; unknown
            sizes are kept. None (default) for no minimum.
        min_height: The same for the height.
        allowed_domains: Keep only media whose URL host is one of these or a subdomain
            (``imgur.com`` allows ``i.imgur.com``); case-insensitive. None (default)
            allows every host.
        require_images: Yield only posts with at least one media item (default True);
            the others are still counted.
    """

    include_nsfw: bool = False
    include_spoilers: bool = True
    include_stickied: bool = False
    include_removed: bool = False
    min_score: int | None = None
    min_width: int | None = attrs.field(default=None)
    min_height: int | None = attrs.field(default=None)
    allowed_domains: frozenset[str] | None = attrs.field(default=None, converter=_normalise_domains)
    require_images: bool = True

    def evolve(self, **changes: Any) -> PostFilters:
        """Return a copy with some fields changed (``attrs.evolve``).

        Args:
            **changes: Field names and their new values.

        Returns:
            New filters.
        """
        return attrs.evolve(self, **changes)

    def post_rejection(self, post: ImagePost, data: Mapping[str, Any]) -> str | None:
        """Tell why a whole submission is dropped, or None when it is kept.

        Args:
            post: The converted post.
            data: Its JSON fields (for ``removed_by_category`` and the selftext).

        Returns:
            ``"nsfw"``, ``"spoiler"``, ``"stickied"``, ``"removed"``, ``"low_score"``
            or None.
        """
        if post.over_18 and not self.include_nsfw:
            return "nsfw"
        if post.spoiler and not self.include_spoilers:
            return "spoiler"
        if post.stickied and not self.include_stickied:
            return "stickied"
        if not self.include_removed and _is_removed(data):
            return "removed"
        if self.min_score is not None and post.score < self.min_score:
            return "low_score"
        return None

    def media_rejection(self, item: MediaItem) -> SkippedMedia | None:
        """Tell why one media item is dropped, or None when it is kept.

        Args:
            item: A resolved media item.

        Returns:
            A skip with reason ``too_small`` or ``domain_not_allowed``, or None.
        """
        if (
            self.min_width is not None and item.width is not None and item.width < self.min_width
        ) or (
            self.min_height is not None
            and item.height is not None
            and item.height < self.min_height
        ):
            return SkippedMedia(
                url=item.url,
                reason=SkipReason.TOO_SMALL.value,
                detail=f"{item.width}x{item.height} px",
            )
        if self.allowed_domains is not None:
            host = _host(item.url)
            if not any(host == d or host.endswith("." + d) for d in self.allowed_domains):
                return SkippedMedia(
                    url=item.url, reason=SkipReason.DOMAIN_NOT_ALLOWED.value, detail=host
                )
        return None


@attrs.define(kw_only=True)
class CollectStats:
    """Counters a source keeps while it streams; the ``collect`` summary prints them.

    Attributes:
        posts_seen: Submissions read, before any filter.
        posts_filtered: Submissions dropped by a post filter, by reason (``nsfw``,
            ``spoiler``, ``stickied``, ``removed``, ``low_score``).
        posts_with_images: Kept submissions with at least one media item.
        posts_without_images: Kept submissions with none (not yielded when
            ``require_images``).
        images: Images of kept submissions: the media items a download fetches in the
            normal case (stills and animations). A fallback preview (an ``is_preview``
            item after the post's own image) is not one of them.
        animated: Of those, animated ones.
        previews: Of those, Reddit previews used in place of an image-host page (the
            post's only item, always fetched).
        gallery_items: Of those, gallery items.
        fallback_previews: Fallback preview items behind a post's own image, fetched
            only when none of the post's images ends ok; not counted in ``images``.
            ``images + fallback_previews`` is the number of media items yielded.
        skips: Skipped media of kept submissions, by :class:`SkipReason` value.
        errors: Input problems that did not stop the run (``"file:line: message"``).
    """

    posts_seen: int = 0
    posts_filtered: dict[str, int] = attrs.field(factory=dict)
    posts_with_images: int = 0
    posts_without_images: int = 0
    images: int = 0
    animated: int = 0
    previews: int = 0
    gallery_items: int = 0
    fallback_previews: int = 0
    skips: dict[str, int] = attrs.field(factory=dict)
    errors: list[str] = attrs.field(factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the counters as a JSON-compatible dict (reason maps sorted by key).

        Returns:
            A new dict; ``errors`` is the list of messages.
        """
        data = attrs.asdict(self)
        data["posts_filtered"] = dict(sorted(self.posts_filtered.items()))
        data["skips"] = dict(sorted(self.skips.items()))
        return data


class _Collector:
    """Turns submission data into kept posts while updating :class:`CollectStats`."""

    def __init__(self, filters: PostFilters, stats: CollectStats) -> None:
        self.filters = filters
        self.stats = stats

    def error(self, where: str, message: str) -> None:
        text = f"{where}: {message}"
        self.stats.errors.append(text)
        logger.warning("skipped bad input at %s", text)

    def take(self, data: Mapping[str, Any], where: str) -> ImagePost | None:
        """Convert, filter and count one submission; None when it is not yielded."""
        try:
            post = post_from_submission_data(data)
        except ListingFormatError as exc:
            self.stats.posts_seen += 1
            self.error(where, exc.message)
            return None
        self.stats.posts_seen += 1
        rejection = self.filters.post_rejection(post, data)
        if rejection is not None:
            self.stats.posts_filtered[rejection] = self.stats.posts_filtered.get(rejection, 0) + 1
            return None
        post = self._filter_media(post)
        for skip in post.skipped:
            self.stats.skips[skip.reason] = self.stats.skips.get(skip.reason, 0) + 1
        if not post.media:
            self.stats.posts_without_images += 1
            return None if self.filters.require_images else post
        self.stats.posts_with_images += 1
        has_own_image = any(not item.is_preview for item in post.media)
        for item in post.media:
            if item.is_preview and has_own_image:
                self.stats.fallback_previews += 1
                continue
            self.stats.images += 1
            self.stats.animated += item.kind is MediaKind.ANIMATED
            self.stats.previews += item.is_preview
            self.stats.gallery_items += item.gallery_index is not None
        return post

    def _filter_media(self, post: ImagePost) -> ImagePost:
        kept: list[MediaItem] = []
        dropped: list[SkippedMedia] = []
        for item in post.media:
            rejection = self.filters.media_rejection(item)
            if rejection is None:
                kept.append(item)
            else:
                dropped.append(rejection)
        if not dropped:
            return post
        return attrs.evolve(post, media=tuple(kept), skipped=post.skipped + tuple(dropped))


def collect_submission(
    data: Mapping[str, Any],
    *,
    filters: PostFilters | None = None,
    stats: CollectStats | None = None,
    where: str = "submission",
) -> ImagePost | None:
    """Convert, filter and count one submission, exactly as every source does.

    For callers that read submissions by other means (a Beam ``ReadFromText``, a BigQuery
    export) and want the sources' behaviour for each one.

    Args:
        data: The submission's JSON fields (the ``data`` of a ``t3`` thing).
        filters: Which posts and media to keep (default :class:`PostFilters`).
        stats: Counters to update; a throwaway one when None.
        where: Where the submission came from, for the message recorded in
            ``stats.errors`` when it is not a submission (``"file:line"``).

    Returns:
        The kept post, or None when it is filtered out, has no image (with
        ``require_images``), or is not a submission (then ``stats.errors`` says why and a
        warning is logged).
    """
    collector = _Collector(
        filters if filters is not None else PostFilters(), stats or CollectStats()
    )
    return collector.take(data, where)


def _is_removed(data: Mapping[str, Any]) -> bool:
    if data.get("removed_by_category") or data.get("removed_by"):
        return True
    selftext = data.get("selftext")
    # A stranger's file may hold any JSON here: only a string can be a removal marker.
    removed = isinstance(selftext, str) and selftext in _REMOVED_TEXTS
    return removed or data.get("title") == "[deleted by user]"


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0
    return int(number) if math.isfinite(number) else 0


def _float(value: Any) -> float:
    if isinstance(value, bool):
        return 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0
