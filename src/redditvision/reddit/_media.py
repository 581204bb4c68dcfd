"""Media resolution: which image files a submission really points at.

Pure functions over a submission's JSON fields, so the same code serves praw objects (their
attribute dict) and saved JSON (listings, dumps). Nothing here raises on odd data: every
unusable item becomes a :class:`~redditvision.models.SkippedMedia` with a reason.
"""

from __future__ import annotations

import enum
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redditvision.models import MediaItem, MediaKind, SkippedMedia

__all__ = ["SkipReason", "resolve_media"]

MediaResult = tuple[tuple[MediaItem, ...], tuple[SkippedMedia, ...]]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".gifv"})
"""Path extensions (lower case) that make a link a direct image link."""

ANIMATED_EXTENSIONS = frozenset({".gif", ".gifv"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".webm", ".mov", ".mkv", ".avi", ".m3u8", ".mpd"})
VIDEO_DOMAINS = frozenset(
    {
        "v.redd.it",
        "youtube.com",
        "youtu.be",
        "streamable.com",
        "gfycat.com",
        "redgifs.com",
        "vimeo.com",
        "twitch.tv",
        "clips.twitch.tv",
        "tiktok.com",
    }
)
IMAGE_HOST_PAGE_DOMAINS = frozenset(
    {
        "imgur.com",
        "flickr.com",
        "500px.com",
        "500px.org",
        "smugmug.com",
        "deviantart.com",
        "ibb.co",
        "imgbox.com",
        "postimg.cc",
        "photobucket.com",
        "artstation.com",
        "unsplash.com",
    }
)
"""Sites whose links are HTML pages around an image: Reddit's preview is used for them."""

_MAX_CROSSPOST_DEPTH = 3


class SkipReason(enum.StrEnum):
    """Why a submission's media (or part of it) is not used; the values are stable strings.

    They appear as :attr:`SkippedMedia.reason <redditvision.models.SkippedMedia.reason>`
    and as keys of the ``skips`` counts in the ``collect`` summary.
    """

    SELF_POST = "self_post"
    """A text post; it has no link to an image."""
    VIDEO = "video"
    """A video (``is_video``, ``post_hint`` ``hosted:video``/``rich:video``, v.redd.it,
    YouTube, ``.mp4``...), or a gallery item of type ``RedditVideo``."""
    NOT_AN_IMAGE_LINK = "not_an_image_link"
    """A link to a web page (news, blog) that is not an image host."""
    NO_URL = "no_url"
    """The submission has no ``url`` at all."""
    INVALID_URL = "invalid_url"
    """The URL is not absolute http(s)."""
    IMAGE_HOST_PAGE_NO_PREVIEW = "image_host_page_no_preview"
    """A page on an image host (imgur.com/ID, flickr) with no Reddit preview to fall back on."""
    GALLERY_EMPTY = "gallery_empty"
    """``is_gallery`` is set but there are no items (a removed or deleted gallery)."""
    GALLERY_METADATA_MISSING = "gallery_metadata_missing"
    """A gallery item whose ``media_metadata`` entry is absent (or ``media_metadata`` is
    null)."""
    GALLERY_ITEM_FAILED = "gallery_item_failed"
    """``media_metadata[id].status == "failed"``: Reddit could not process the upload."""
    GALLERY_ITEM_UNPROCESSED = "gallery_item_unprocessed"
    """``status == "unprocessed"``: a fresh upload not ready yet; listing it later helps."""
    GALLERY_ITEM_INVALID = "gallery_item_invalid"
    """A gallery item without ``media_id`` or with an unknown status."""
    GALLERY_ITEM_NO_SOURCE = "gallery_item_no_source"
    """A ``media_metadata`` entry with no ``s`` (source rendition) or no usable URL in it."""
    ANIMATED_VIDEO_ONLY = "animated_video_only"
    """An ``AnimatedImage`` gallery item that has only ``s.mp4``, no ``s.gif``."""
    UNSUPPORTED_MEDIA = "unsupported_media_type"
    """A gallery item whose ``e`` is neither ``Image`` nor ``AnimatedImage``."""
    CROSSPOST_PARENT_MISSING = "crosspost_parent_missing"
    """A crosspost whose ``crosspost_parent_list`` is absent, so its media is unknown."""
    TOO_SMALL = "too_small"
    """Known width or height below :class:`~redditvision.reddit.PostFilters` minimums."""
    DOMAIN_NOT_ALLOWED = "domain_not_allowed"
    """The media URL's host is not in :attr:`PostFilters.allowed_domains`."""
    DUPLICATE_URL = "duplicate_url"
    """An item whose URL an earlier item of the same submission already has (a gallery
    listing one ``media_id`` twice); a submission's items never repeat a URL."""


def resolve_media(data: Mapping[str, Any]) -> MediaResult:
    """Resolve a submission's JSON fields into image files and skipped items.

    The rules, in order:

    1. **Crossposts**: when ``crosspost_parent_list`` holds the parent, the parent's media is
       used (marked ``from_crosspost``); a crosspost without it is skipped with
       ``crosspost_parent_missing`` unless its own link is an image.
    2. **Galleries** (``is_gallery`` or ``gallery_data``): one item per
       ``gallery_data.items`` entry, in gallery order, looked up in ``media_metadata``.
       ``status`` ``valid`` is used; ``failed``/``unprocessed`` are skipped. ``e: Image``
       takes ``s.u``; ``e: AnimatedImage`` takes ``s.gif`` (animated), and one with only
       ``s.mp4`` is skipped as ``animated_video_only``. Width/height from ``s.x``/``s.y``.
    3. **Self posts** are skipped (``self_post``).
    4. **Direct image links**: the URL path ends in ``.jpg .jpeg .png .webp .bmp .gif``
       (case-insensitive; the query string and a trailing ``?`` are ignored) on any host.
       ``.gif`` is animated. Imgur ``.gifv`` is an HTML page around an MP4; the same
       image is served as ``.gif`` at the same path, so ``.gifv`` becomes ``.gif`` with
       kind animated. Width/height come from Reddit's preview when present. When the
       submission has a preview (``preview.images[0].source.url``), it follows the link
       as a second item marked ``is_preview`` (kind image, the preview's width/height):
       a **fallback** the downloader fetches only when the link itself gives no image
       (an imgur ``removed.png`` placeholder, a 404), else records as skipped. A crosspost
       takes the parent's preview. Galleries get no fallback item.
    5. **Videos** (``is_video``, ``post_hint`` ``hosted:video``/``rich:video``, v.redd.it,
       YouTube, streamable, ``.mp4``...) are skipped (``video``).
    6. **Preview instead of a page**: when the link is not a direct image but Reddit
       classed it as one (``post_hint: image``) or it is a page on an image host
       (imgur.com, flickr, 500px...), Reddit's preview ``source`` rendition is the only
       item, marked ``is_preview`` (then it is the post's image, always fetched).
    7. Anything else is a link to a web page, skipped as ``not_an_image_link``.

    No two items of one submission share a URL: a later repeat is skipped as
    ``duplicate_url``, and a preview whose URL is the link's own is not added.

    HTML-escaped ``&amp;`` in URLs (the API without ``raw_json=1``, and most dumps) is
    decoded. Missing or mistyped fields never raise.

    Args:
        data: The submission's fields, as in the API's ``t3`` ``data`` object.

    Returns:
        ``(media, skipped)``: the image files in order (a fallback preview last), and what
        was not used, each with a :class:`SkipReason` value.
    """
    media, skipped = _resolve(data, from_crosspost=False, depth=0)
    seen: set[str] = set()
    unique: list[MediaItem] = []
    repeats: list[SkippedMedia] = []
    for index, item in enumerate(media):
        if item.url in seen:
            repeats.append(
                _skip(item.url, SkipReason.DUPLICATE_URL, f"item {index} repeats an earlier URL")
            )
        else:
            seen.add(item.url)
            unique.append(item)
    if not repeats:
        return media, skipped
    return tuple(unique), skipped + tuple(repeats)


def _resolve(data: Mapping[str, Any], *, from_crosspost: bool, depth: int) -> MediaResult:
    parents = data.get("crosspost_parent_list")
    if (
        isinstance(parents, Sequence)
        and not isinstance(parents, str)
        and parents
        and isinstance(parents[0], Mapping)
        and depth < _MAX_CROSSPOST_DEPTH
    ):
        return _resolve(parents[0], from_crosspost=True, depth=depth + 1)

    if data.get("is_gallery") or isinstance(data.get("gallery_data"), Mapping):
        return _resolve_gallery(data, from_crosspost=from_crosspost)

    media, skipped = _resolve_link(data, from_crosspost=from_crosspost)
    if not media and _text(data.get("crosspost_parent")):
        parent = _text(data.get("crosspost_parent"))
        return (), (
            _skip(
                _text(data.get("url")),
                SkipReason.CROSSPOST_PARENT_MISSING,
                f"crosspost of {parent} without crosspost_parent_list; fetch the parent",
            ),
        )
    return media, skipped


def _resolve_link(data: Mapping[str, Any], *, from_crosspost: bool) -> MediaResult:
    if data.get("is_self"):
        return (), (_skip(None, SkipReason.SELF_POST, "text post"),)

    raw_url = _text(data.get("url_overridden_by_dest")) or _text(data.get("url"))
    if raw_url is None:
        return (), (_skip(None, SkipReason.NO_URL, "the submission has no url"),)
    url = _clean_url(raw_url)
    parts = _split(url)
    if parts is None:
        return (), (_skip(url, SkipReason.INVALID_URL, "not an absolute http(s) URL"),)
    host = (parts.hostname or "").lower()
    extension = posixpath.splitext(parts.path)[1].lower()
    width, height = _preview_size(data)

    if extension in IMAGE_EXTENSIONS:
        kind = MediaKind.ANIMATED if extension in ANIMATED_EXTENSIONS else MediaKind.IMAGE
        if extension == ".gifv":
            url = urlunsplit((parts.scheme, parts.netloc, parts.path[:-5] + ".gif", "", ""))
        item = MediaItem(
            url=url, kind=kind, width=width, height=height, from_crosspost=from_crosspost
        )
        fallback = _preview_item(data, from_crosspost=from_crosspost)
        if fallback is None or fallback.url == url:
            return (item,), ()
        return (item, fallback), ()

    post_hint = _text(data.get("post_hint")) or ""
    if (
        data.get("is_video")
        or post_hint.endswith(":video")
        or extension in VIDEO_EXTENSIONS
        or _domain_in(host, VIDEO_DOMAINS)
    ):
        return (), (_skip(url, SkipReason.VIDEO, post_hint or host or None),)

    if post_hint == "image" or _domain_in(host, IMAGE_HOST_PAGE_DOMAINS):
        preview_item = _preview_item(data, from_crosspost=from_crosspost)
        if preview_item is not None:
            return (preview_item,), ()
        return (), (
            _skip(url, SkipReason.IMAGE_HOST_PAGE_NO_PREVIEW, f"{host} page, no Reddit preview"),
        )

    return (), (_skip(url, SkipReason.NOT_AN_IMAGE_LINK, host or None),)


def _resolve_gallery(data: Mapping[str, Any], *, from_crosspost: bool) -> MediaResult:
    gallery = data.get("gallery_data")
    items = gallery.get("items") if isinstance(gallery, Mapping) else None
    metadata = data.get("media_metadata")
    metadata = metadata if isinstance(metadata, Mapping) else None

    entries: list[tuple[str | None, Mapping[str, Any]]] = []
    if isinstance(items, Sequence) and not isinstance(items, str) and items:
        entries = [
            (_text(item.get("media_id")), item) if isinstance(item, Mapping) else (None, {})
            for item in items
        ]
    elif metadata:
        # Some dumps keep media_metadata but lose gallery_data: use the metadata order.
        entries = [(str(media_id), {}) for media_id in metadata]
    if not entries:
        return (), (
            _skip(
                _text(data.get("url")),
                SkipReason.GALLERY_EMPTY,
                "gallery with no items; it may have been removed",
            ),
        )

    media: list[MediaItem] = []
    skipped: list[SkippedMedia] = []
    for index, (media_id, item) in enumerate(entries):
        if media_id is None:
            skipped.append(
                _skip(None, SkipReason.GALLERY_ITEM_INVALID, f"gallery item {index}: no media_id")
            )
            continue
        entry = metadata.get(media_id) if metadata is not None else None
        if not isinstance(entry, Mapping):
            detail = "media_metadata is null" if metadata is None else "no media_metadata entry"
            skipped.append(
                _skip(media_id, SkipReason.GALLERY_METADATA_MISSING, f"item {index}: {detail}")
            )
            continue
        resolved = _gallery_item(media_id, index, item, entry, from_crosspost=from_crosspost)
        if isinstance(resolved, MediaItem):
            media.append(resolved)
        else:
            skipped.append(resolved)
    return tuple(media), tuple(skipped)


def _gallery_item(
    media_id: str,
    index: int,
    item: Mapping[str, Any],
    entry: Mapping[str, Any],
    *,
    from_crosspost: bool,
) -> MediaItem | SkippedMedia:
    status = entry.get("status")
    if status == "failed":
        return _skip(media_id, SkipReason.GALLERY_ITEM_FAILED, f"item {index}: status failed")
    if status == "unprocessed":
        return _skip(
            media_id, SkipReason.GALLERY_ITEM_UNPROCESSED, f"item {index}: status unprocessed"
        )
    if status not in (None, "valid"):
        return _skip(media_id, SkipReason.GALLERY_ITEM_INVALID, f"item {index}: status {status!r}")
    source = entry.get("s")
    if not isinstance(source, Mapping):
        return _skip(media_id, SkipReason.GALLERY_ITEM_NO_SOURCE, f"item {index}: no 's'")
    kind_name = _text(entry.get("e"))
    if kind_name == "AnimatedImage":
        raw = _text(source.get("gif"))
        kind = MediaKind.ANIMATED
        if raw is None:
            mp4 = _text(source.get("mp4"))
            if mp4 is not None:
                return _skip(
                    _clean_url(mp4),
                    SkipReason.ANIMATED_VIDEO_ONLY,
                    f"item {index}: AnimatedImage with only s.mp4",
                )
    elif kind_name in ("Image", None):
        raw = _text(source.get("u"))
        kind = MediaKind.IMAGE
    elif kind_name == "RedditVideo":
        return _skip(media_id, SkipReason.VIDEO, f"item {index}: RedditVideo")
    else:
        return _skip(media_id, SkipReason.UNSUPPORTED_MEDIA, f"item {index}: e={kind_name!r}")
    if raw is None:
        return _skip(media_id, SkipReason.GALLERY_ITEM_NO_SOURCE, f"item {index}: no URL in 's'")
    url = _clean_url(raw)
    if _split(url) is None:
        return _skip(url, SkipReason.INVALID_URL, f"item {index}: not an absolute http(s) URL")
    return MediaItem(
        url=url,
        kind=kind,
        width=_int(source.get("x")),
        height=_int(source.get("y")),
        gallery_index=index,
        media_id=media_id,
        caption=_text(item.get("caption")),
        from_crosspost=from_crosspost,
    )


def _preview_image(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    preview = data.get("preview")
    images = preview.get("images") if isinstance(preview, Mapping) else None
    if isinstance(images, Sequence) and images and isinstance(images[0], Mapping):
        source = images[0].get("source")
        if isinstance(source, Mapping):
            return source
    return None


def _preview_size(data: Mapping[str, Any]) -> tuple[int | None, int | None]:
    source = _preview_image(data)
    if source is None:
        return None, None
    return _int(source.get("width")), _int(source.get("height"))


def _preview_item(data: Mapping[str, Any], *, from_crosspost: bool) -> MediaItem | None:
    """Reddit's preview ``source`` rendition as an ``is_preview`` item, or None."""
    source = _preview_image(data)
    raw = _text(source.get("url")) if source is not None else None
    if source is None or raw is None:
        return None
    url = _clean_url(raw)
    if _split(url) is None:
        return None
    return MediaItem(
        url=url,
        kind=MediaKind.IMAGE,
        width=_int(source.get("width")),
        height=_int(source.get("height")),
        is_preview=True,
        from_crosspost=from_crosspost,
    )


def _clean_url(url: str) -> str:
    """Decode HTML-escaped ampersands and drop an empty trailing query (``x.jpg?``)."""
    url = url.strip()
    while "&amp;" in url:
        url = url.replace("&amp;", "&")
    return url.rstrip("?")


def _split(url: str) -> Any:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return parts


def _domain_in(host: str, domains: frozenset[str]) -> bool:
    return any(host == domain or host.endswith("." + domain) for domain in domains)


def _skip(url: str | None, reason: SkipReason, detail: str | None) -> SkippedMedia:
    return SkippedMedia(url=url, reason=reason.value, detail=detail)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None
