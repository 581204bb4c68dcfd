"""The elements that flow between the Beam transforms, and their JSON and BigQuery rows.

This module imports nothing from Apache Beam, so the row functions and the BigQuery schema
can be used (and tested) without the ``[beam]`` extra.

The flow::

    dict (submission JSON)        ReadSubmissions
      -> ImagePost                ResolveMedia
      -> StoredImage              DownloadImages   (one per post and media index)
      -> ImageResult              DedupImages      (one per distinct sha256)
      -> ImageResult              ClassifyImages / GenericLabels (fields filled in)
      -> dict row                 WriteResults     (JSON Lines, BigQuery)

Failures at any step become :class:`DeadLetter` elements on the ``dead_letter`` output.
"""

from __future__ import annotations

from typing import Any

import attrs

from redditvision.labelers import ImageLabels
from redditvision.models import ImagePost, ImageRecord, MediaItem, Prediction

__all__ = [
    "BIGQUERY_SCHEMA",
    "DeadLetter",
    "ImageResult",
    "MediaTask",
    "StoredImage",
    "dead_letter_to_row",
    "result_to_row",
]


@attrs.frozen(kw_only=True)
class MediaTask:
    """One media item of a post: the unit :class:`~redditvision.beam.DownloadImages` fetches.

    Attributes:
        post: The post, with all its resolved media.
        index: Position of the item in ``post.media`` (0-based).
    """

    post: ImagePost
    index: int

    @property
    def item(self) -> MediaItem:
        """The media item, ``post.media[index]``."""
        return self.post.media[self.index]

    @property
    def key(self) -> str:
        """The stable key ``"{post_id}:{index}"``, as :attr:`ImageRecord.key`."""
        return f"{self.post.id}:{self.index}"


@attrs.frozen(kw_only=True)
class StoredImage:
    """A verified image of one post, copied to the pipeline's output filesystem.

    Attributes:
        record: The download step's record for this post and media index (status ok or
            duplicate, with sha256, size and format). Its ``path`` is the worker-local file
            the downloader wrote and has no meaning after the step; use :attr:`uri`.
        uri: The image on a filesystem Beam knows (a local path or ``gs://bucket/...``),
            named by the downloader's content address.
    """

    record: ImageRecord
    uri: str


@attrs.frozen(kw_only=True)
class ImageResult:
    """One distinct picture (one sha256), the posts that showed it, and what models said.

    Attributes:
        sha256: Hex SHA-256 of the image bytes.
        uri: Where the verified file is (local path or ``gs://...``).
        width: Pixels, or None when unknown.
        height: Pixels, or None when unknown.
        format: Pillow format name sniffed from the bytes (``"JPEG"``, ``"PNG"``...), or None.
        size_bytes: File size in bytes, or None.
        sources: Every post and media index that showed this picture, sorted by record key.
        predictions: The custom model's predictions, best first, or None before
            :class:`~redditvision.beam.ClassifyImages` ran.
        generic: Generic labels (ImageNet or Cloud Vision), or None before
            :class:`~redditvision.beam.GenericLabels` ran.
    """

    sha256: str
    uri: str
    width: int | None = None
    height: int | None = None
    format: str | None = None
    size_bytes: int | None = None
    sources: tuple[ImageRecord, ...] = ()
    predictions: tuple[Prediction, ...] | None = None
    generic: ImageLabels | None = None


@attrs.frozen(kw_only=True)
class DeadLetter:
    """An element a step could not handle, with the reason; it never fails the bundle.

    Attributes:
        step: ``"read"``, ``"resolve"``, ``"download"``, ``"classify"`` or ``"label"``.
        key: What failed: ``"file:line"`` for read, the submission id for resolve,
            ``"{post_id}:{index}"`` for download, the sha256 for classify and label.
        reason: A short machine-readable reason (the downloader's record reason, or the
            exception's class name).
        detail: A human-readable message (the URL, the error text), or None.
    """

    step: str
    key: str
    reason: str
    detail: str | None = None


BIGQUERY_SCHEMA: dict[str, Any] = {
    "fields": [
        {"name": "sha256", "type": "STRING", "mode": "REQUIRED"},
        {"name": "uri", "type": "STRING", "mode": "REQUIRED"},
        {"name": "width", "type": "INTEGER", "mode": "NULLABLE"},
        {"name": "height", "type": "INTEGER", "mode": "NULLABLE"},
        {"name": "format", "type": "STRING", "mode": "NULLABLE"},
        {"name": "size_bytes", "type": "INTEGER", "mode": "NULLABLE"},
        {"name": "top_label", "type": "STRING", "mode": "NULLABLE"},
        {"name": "top_score", "type": "FLOAT", "mode": "NULLABLE"},
        {
            "name": "predictions",
            "type": "RECORD",
            "mode": "REPEATED",
            "fields": [
                {"name": "label", "type": "STRING", "mode": "REQUIRED"},
                {"name": "score", "type": "FLOAT", "mode": "REQUIRED"},
                {"name": "model_label", "type": "STRING", "mode": "REQUIRED"},
            ],
        },
        {
            "name": "generic_labels",
            "type": "RECORD",
            "mode": "REPEATED",
            "fields": [
                {"name": "label", "type": "STRING", "mode": "REQUIRED"},
                {"name": "score", "type": "FLOAT", "mode": "NULLABLE"},
                {"name": "source", "type": "STRING", "mode": "REQUIRED"},
                {"name": "mid", "type": "STRING", "mode": "NULLABLE"},
            ],
        },
        {"name": "generic_error", "type": "STRING", "mode": "NULLABLE"},
        {
            "name": "sources",
            "type": "RECORD",
            "mode": "REPEATED",
            "fields": [
                {"name": "post_id", "type": "STRING", "mode": "REQUIRED"},
                {"name": "index", "type": "INTEGER", "mode": "REQUIRED"},
                {"name": "url", "type": "STRING", "mode": "REQUIRED"},
                {"name": "subreddit", "type": "STRING", "mode": "NULLABLE"},
                {"name": "title", "type": "STRING", "mode": "NULLABLE"},
                {"name": "author", "type": "STRING", "mode": "NULLABLE"},
                {"name": "flair_text", "type": "STRING", "mode": "NULLABLE"},
                {"name": "permalink", "type": "STRING", "mode": "NULLABLE"},
            ],
        },
    ]
}
"""BigQuery table schema of :func:`result_to_row` rows (the JSON form ``WriteToBigQuery``
takes). Field types are BigQuery standard SQL legacy names (``INTEGER``, ``FLOAT``); see
https://cloud.google.com/bigquery/docs/schemas."""


def result_to_row(result: ImageResult) -> dict[str, Any]:
    """Return the JSON Lines / BigQuery row of one distinct picture.

    Args:
        result: The picture and what the models said.

    Returns:
        A dict whose keys and types follow :data:`BIGQUERY_SCHEMA` exactly: ``sha256``,
        ``uri``, ``width``, ``height``, ``format``, ``size_bytes``, ``top_label`` and
        ``top_score`` (the best prediction, or None), ``predictions`` (list of ``label``,
        ``score``, ``model_label``), ``generic_labels`` (list of ``label``, ``score``,
        ``source``, ``mid``), ``generic_error`` and ``sources`` (list of ``post_id``,
        ``index``, ``url``, ``subreddit``, ``title``, ``author``, ``flair_text``,
        ``permalink``).
    """
    predictions = list(result.predictions or ())
    generic = result.generic
    return {
        "sha256": result.sha256,
        "uri": result.uri,
        "width": result.width,
        "height": result.height,
        "format": result.format,
        "size_bytes": result.size_bytes,
        "top_label": predictions[0].label if predictions else None,
        "top_score": float(predictions[0].score) if predictions else None,
        "predictions": [
            {"label": p.label, "score": float(p.score), "model_label": p.model_label}
            for p in predictions
        ],
        "generic_labels": [
            {
                "label": g.label,
                "score": None if g.score is None else float(g.score),
                "source": g.source,
                "mid": g.mid,
            }
            for g in (generic.labels if generic is not None else ())
        ],
        "generic_error": generic.error if generic is not None else None,
        "sources": [
            {
                "post_id": r.post_id,
                "index": r.index,
                "url": r.url,
                "subreddit": r.subreddit,
                "title": r.title,
                "author": r.author,
                "flair_text": r.flair_text,
                "permalink": r.permalink,
            }
            for r in result.sources
        ],
    }


def dead_letter_to_row(letter: DeadLetter) -> dict[str, Any]:
    """Return the JSON Lines row of a dead letter.

    Args:
        letter: The failure.

    Returns:
        ``{"step": ..., "key": ..., "reason": ..., "detail": ...}``.
    """
    return attrs.asdict(letter)
