"""Decoding any image file Pillow reads into a fixed-size RGB array.

Handles what real uploads hold: grayscale, palette, CMYK, 16-bit, transparency (composited
on white), EXIF orientation, animated GIF/WebP (first frame), and extreme aspect ratios
(the whole image is resized to a square, so a 10000x10 strip still gives a valid input).
"""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

__all__ = ["DECODE_ERRORS", "decode_rgb", "image_sha256"]

DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    Image.DecompressionBombError,
)
"""What Pillow raises for bytes it cannot decode (``UnidentifiedImageError`` is an OSError)."""


def image_sha256(data: bytes) -> str:
    """Return the hex SHA-256 of encoded image bytes (the embedding cache key)."""
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        scaled = (array - low) / (high - low) * 255.0 if high > low else np.zeros_like(array)
        return Image.fromarray(scaled.astype(np.uint8), mode="L").convert("RGB")
    if mode == "RGB":
        return image
    return image.convert("RGB")


def decode_rgb(data: bytes, *, size: int) -> NDArray[np.uint8]:
    """Decode encoded image bytes into a ``size`` x ``size`` RGB array.

    The first frame of an animation is used; EXIF orientation is applied; transparent
    pixels are composited on white; the whole image is resized (bilinear, antialiased) to a
    square without cropping, as EfficientNet-Lite's reference preprocessing does.

    Args:
        data: Encoded bytes (JPEG, PNG, GIF, WebP, BMP, TIFF, ... whatever Pillow reads).
        size: Output side in pixels (224 for EfficientNet-Lite0).

    Returns:
        A ``uint8`` array of shape (size, size, 3).

    Raises:
        OSError, ValueError, SyntaxError, EOFError, DecompressionBombError: The bytes are
        not an image Pillow can decode (see :data:`DECODE_ERRORS`); callers translate them.
    """
    with Image.open(io.BytesIO(data)) as image:
        if getattr(image, "is_animated", False):
            image.seek(0)
        if image.format == "JPEG":
            # Let libjpeg decode at a reduced scale (still >= size) for big photos.
            image.draft("RGB", (size, size))
        image.load()
        oriented = ImageOps.exif_transpose(image)
        rgb = _to_rgb(oriented)
        resized = rgb.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(resized, dtype=np.uint8)
