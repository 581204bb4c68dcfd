"""JSON forms of the value types, as the command line writes them in JSON Lines.

The one JSON form of each type lives here or next to it: posts (:func:`post_to_json`),
model handles (:func:`model_to_json`, the pipeline's ``train`` step record) and evaluations
(:func:`redditvision.metrics.evaluation_to_json`, re-exported here).

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

from redditvision.errors import DatasetError, ListingFormatError
from redditvision.metrics import evaluation_from_json, evaluation_to_json
from redditvision.models import ImagePost, MediaItem, MediaKind, SkippedMedia, TrainedModel

__all__ = [
    "evaluation_from_json",
    "evaluation_to_json",
    "model_from_json",
    "model_to_json",
    "post_from_json",
    "post_to_json",
]


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


def model_to_json(model: TrainedModel) -> dict[str, Any]:
    """Return the JSON object of a model handle (every field).

    Args:
        model: The handle.

    Returns:
        ``{"backend", "resource", "labels", "label_map", "display_name", "metadata"}``;
        ``metadata`` must hold JSON-compatible values (every backend's does).
    """
    return {
        "backend": model.backend,
        "resource": model.resource,
        "labels": list(model.labels),
        "label_map": dict(model.label_map),
        "display_name": model.display_name,
        "metadata": dict(model.metadata),
    }


def model_from_json(data: Mapping[str, Any]) -> TrainedModel:
    """Build a model handle from its JSON object, as written by :func:`model_to_json`.

    Args:
        data: The decoded JSON object.

    Returns:
        The handle.

    Raises:
        DatasetError: ``backend`` or ``resource`` is missing, or a field has the wrong type.
    """
    try:
        return TrainedModel(
            backend=str(data["backend"]),
            resource=str(data["resource"]),
            labels=tuple(str(label) for label in data.get("labels") or ()),
            label_map={str(k): str(v) for k, v in dict(data.get("label_map") or {}).items()},
            display_name=data.get("display_name"),
            metadata=dict(data.get("metadata") or {}),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DatasetError(f"not a model object ({exc}); expected backend and resource") from exc
