"""One image shrinker for every service with a request size limit.

Vertex AI online prediction (1.5 MB of base64 ``content``), legacy AutoML v1 prediction
(30 MB of ``image_bytes``), Cloud Vision requests and the Vertex-shaped REST backend each
refuse images over a size limit. :func:`fit_image_bytes` is the one place that makes an
image fit: it leaves an image under the limit untouched, and otherwise re-encodes it as a
JPEG scaled from a prediction of the size it will have, so it fits after one to three
encodes (a JPEG's size grows about with its pixel count).

This is a leaf module: it imports Pillow and :mod:`redditvision.errors` only.
"""

from __future__ import annotations

import io
import logging

from PIL import Image, UnidentifiedImageError

from redditvision.errors import PredictionError, RedditVisionError

__all__ = ["encoded_size", "fit_image_bytes"]

logger = logging.getLogger(__name__)

_QUALITY = 85
"""JPEG quality of a re-encoding: visually lossless for classification, about a tenth of
the size of quality 100."""

_TRIES = 8
"""Most encodes before giving up; a real image fits after one to three."""


def encoded_size(size: int, *, base64: bool = False) -> int:
    """Return how many bytes ``size`` bytes take on the wire.

    Args:
        size: Raw length in bytes.
        base64: Count the length of the base64 form (4 bytes for every 3, padded).

    Returns:
        ``size``, or its base64 length.
    """
    return (size + 2) // 3 * 4 if base64 else size


def fit_image_bytes(
    data: bytes,
    *,
    limit: int,
    base64: bool = False,
    max_side: int | None = None,
    error: type[RedditVisionError] = PredictionError,
) -> bytes:
    """Return ``data`` or a JPEG re-encoding of it that fits in ``limit`` bytes.

    An image already within the limit (and within ``max_side``) is returned unchanged. A
    larger one is converted to RGB and re-encoded as JPEG at quality 85: a JPEG input is
    first scaled by ``0.9 * sqrt(limit / its size)`` (and decoded at that reduced scale
    by libjpeg's draft mode, much faster for big photos), then every try that is still
    too big is scaled again by ``min(0.9, 0.9 * sqrt(limit / its size))``.

    Args:
        data: Encoded image bytes, any format Pillow reads.
        limit: Largest size in bytes, e.g. 1,500,000 for Vertex AI online prediction
            (counted on the base64 form, so pass ``base64=True``) or 30 MiB for AutoML v1.
        base64: The limit applies to the base64 form of the bytes (Vertex AI's
            ``content``), not to the raw bytes.
        max_side: Largest width or height in pixels, or None for no bound (Cloud Vision
            needs no more than 2048 for labels); an image over it is scaled down even
            when its bytes fit.
        error: The error class to raise (default
            :class:`~redditvision.errors.PredictionError`; the Cloud Vision labeler
            passes :class:`~redditvision.errors.ComparisonError`).

    Returns:
        Encoded bytes whose size (raw or base64, as asked) is at most ``limit``.

    Raises:
        RedditVisionError: Of class ``error``: the bytes are not an image Pillow can read,
            or no JPEG under the limit was found after 8 tries.
    """
    if limit < 1:
        raise error(f"an image size limit must be at least 1 byte, got {limit}")
    if encoded_size(len(data), base64=base64) <= limit and max_side is None:
        return data
    try:
        with Image.open(io.BytesIO(data)) as opened:
            width, height = opened.size
            scale = 1.0
            if max_side is not None and max(width, height) > max_side:
                scale = max_side / max(width, height)
            if encoded_size(len(data), base64=base64) <= limit and scale == 1.0:
                return data
            if opened.format == "JPEG" and encoded_size(len(data), base64=base64) > limit:
                # A JPEG's own size predicts the re-encoding's: aim under the limit at once.
                scale = min(scale, 0.9 * (limit / encoded_size(len(data), base64=base64)) ** 0.5)
            if opened.format == "JPEG":
                opened.draft("RGB", (max(1, int(width * scale)), max(1, int(height * scale))))
            picture = opened.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise error(
            f"an image of {len(data)} bytes is over the {limit:,}-byte limit and is not an "
            f"image that can be re-encoded to fit ({exc}); send JPEG, PNG, GIF, BMP or ICO"
        ) from exc
    wanted = (max(1, int(width * scale)), max(1, int(height * scale)))
    resized = (
        picture if picture.size == wanted else picture.resize(wanted, Image.Resampling.LANCZOS)
    )
    for _ in range(_TRIES):
        buffer = io.BytesIO()
        resized.save(buffer, format="JPEG", quality=_QUALITY)
        fitted = buffer.getvalue()
        size = encoded_size(len(fitted), base64=base64)
        if size <= limit:
            logger.info(
                "re-encoded a %d-byte image as a %dx%d JPEG of %d bytes (limit %d)",
                len(data),
                resized.width,
                resized.height,
                len(fitted),
                limit,
            )
            return fitted
        factor = min(0.9, 0.9 * (limit / size) ** 0.5)
        if resized.width <= 1 and resized.height <= 1:
            break
        smaller = (max(1, int(resized.width * factor)), max(1, int(resized.height * factor)))
        resized = picture.resize(smaller, Image.Resampling.LANCZOS)
    raise error(
        f"an image of {len(data)} bytes cannot be re-encoded under the {limit:,}-byte limit; "
        "send a smaller image"
    )
