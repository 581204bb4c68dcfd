"""JSON forms of the value types, as the command line writes them in JSON Lines.

``redditvision collect`` writes one :func:`post_to_json` object per line and
``redditvision download --posts`` reads them back with :func:`post_from_json`, so the two
commands compose through a pipe. The field names are the attribute names of
:class:`~redditvision.models.ImagePost` and :class:`~redditvision.models.MediaItem`; enum
values are their strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from redditvision.errors import ListingFormatError
from redditvision.models import ImagePost, MediaItem, MediaKind, SkippedMedia

__all__ = ["post_from_json", "post_to_json"]


def _plain(value: Any) -> Any:
    if isinstance(value, MediaKind):
        return value.value
    return value


def post_to_json(post: ImagePost) -> dict[str, Any]:
    """Return the JSON object for a post (one line of ``collect`` output).

    Args:
        post: The post.

    Returns:
        A dict with every :class:`~redditvision.models.ImagePost` field; ``media`` and
        ``skipped`` are lists of objects (``url``, ``kind``, ... / ``url``, ``reason``,
        ``detail``).
    """
    data = attrs.asdict(post, recurse=True, value_serializer=lambda _i, _a, v: _plain(v))
    data["media"] = list(data["media"])
    data["skipped"] = list(data["skipped"])
    return data


def post_from_json(data: Mapping[str, Any]) -> ImagePost:
    """Build a post from its JSON object, as written by :func:`post_to_json`.

    Unknown fields are ignored, so lines written by newer versions still load.

    Args:
        data: The decoded JSON object.

    Returns:
        The post.

    Raises:
        ListingFormatError: A required field (``id``, ``subreddit``, ``title``,
            ``permalink``, or a media item's ``url``) is missing or has the wrong type.
    """
    try:
        media = tuple(
            MediaItem(
                **{
                    **_known(MediaItem, item),
                    "kind": MediaKind(item.get("kind", MediaKind.IMAGE.value)),
                }
            )
            for item in data.get("media") or ()
        )
        skipped = tuple(
            SkippedMedia(**_known(SkippedMedia, item)) for item in data.get("skipped") or ()
        )
        fields = _known(ImagePost, data)
        fields.update(media=media, skipped=skipped)
        return ImagePost(**fields)
    except (TypeError, ValueError, AttributeError) as exc:
        ident = data.get("id") if isinstance(data, Mapping) else None
        raise ListingFormatError(
            f"post {ident!r} is not a redditvision post object: {exc}; "
            "expected a line written by `redditvision collect`"
        ) from exc


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = {field.name for field in attrs.fields(cls)}
    return {key: value for key, value in data.items() if key in names}
