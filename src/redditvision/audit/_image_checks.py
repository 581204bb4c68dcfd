"""Image-quality checks on Pillow and numpy: blurry, dark, overexposed, tiny, odd shape, flat.

We measure these ourselves rather than with ``cleanvision``: it would pull in its own
dependency tree for six measurements that take a few lines each on the arrays we already
decode, and its thresholds are tuned on other data sets. Each measure is computed on a
grayscale copy whose longer side is at most :data:`ANALYSIS_SIDE` pixels, so a 20-megapixel
photo costs the same as a thumbnail, and every threshold is a named constant below.
"""

from __future__ import annotations

import io
import math

import attrs
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

__all__ = [
    "ANALYSIS_SIDE",
    "BLUR_THRESHOLD",
    "DARK_THRESHOLD",
    "ENTROPY_THRESHOLD",
    "MAX_ASPECT_RATIO",
    "MIN_SIDE",
    "OVEREXPOSED_THRESHOLD",
    "ImageQuality",
    "ImageQualityIssue",
    "measure_image",
]

ANALYSIS_SIDE = 512
"""Longer side, in pixels, of the grayscale copy every measure is computed on."""

BLUR_THRESHOLD = 60.0
"""Variance of the Laplacian (on the 512-px copy, 0-255 scale) below which an image is blurry.

The variance-of-Laplacian focus measure (Pech-Pacheco et al., ICPR 2000): sharp photos of
cars score several hundred, motion-blurred or out-of-focus ones a few tens.
"""

DARK_THRESHOLD = 0.12
"""Mean luminance (0 = black, 1 = white) below which an image is too dark to show its subject."""

OVEREXPOSED_THRESHOLD = 0.5
"""Share of pixels at 250 or brighter above which an image is overexposed (blown out)."""

MIN_SIDE = 64
"""Shorter side in pixels below which an image is tiny: too small to tell models apart."""

MAX_ASPECT_RATIO = 4.0
"""Longer side over shorter side above which an image is a strip (banner, screenshot, panorama).

Set above 3.5: tight side-view crops of cars (Stanford Cars) reach 3.2:1 and are fine.
"""

ENTROPY_THRESHOLD = 3.0
"""Shannon entropy in bits of the 256-bin gray histogram below which an image holds little
information (a flat color, a logo on a plain background, a mostly empty screenshot)."""


@attrs.frozen(kw_only=True)
class ImageQualityIssue:
    """One image-quality problem found in an image.

    Attributes:
        issue: ``"blurry"``, ``"dark"``, ``"overexposed"``, ``"tiny"``, ``"odd_aspect_ratio"``
            or ``"low_information"``.
        score: Severity in ``[0, 1]``: 0 at the threshold, 1 at the extreme.
        reason: The measurement against its threshold, for people.
    """

    issue: str
    score: float
    reason: str


@attrs.frozen(kw_only=True)
class ImageQuality:
    """The measurements of one image.

    Attributes:
        width: Width in pixels (after EXIF orientation).
        height: Height in pixels.
        sharpness: Variance of the Laplacian of the analysis copy.
        brightness: Mean luminance in ``[0, 1]``.
        blown_out: Share of pixels at 250 or brighter.
        entropy: Gray-histogram entropy in bits (0-8).
        issues: The problems found, possibly none.
    """

    width: int
    height: int
    sharpness: float
    brightness: float
    blown_out: float
    entropy: float
    issues: tuple[ImageQualityIssue, ...]


def _laplacian_variance(gray: NDArray[np.float64]) -> float:
    if gray.shape[0] < 3 or gray.shape[1] < 3:
        return 0.0
    center = gray[1:-1, 1:-1]
    laplacian = gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4.0 * center
    return float(laplacian.var())


def _entropy(gray: NDArray[np.uint8]) -> float:
    counts = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    total = counts.sum()
    if total == 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


def _clamp(value: float) -> float:
    return float(min(1.0, max(0.0, value)))


def measure_image(data: bytes) -> ImageQuality:
    """Measure one encoded image and list its quality problems.

    Args:
        data: Encoded bytes in any format Pillow reads; the first frame of an animation.

    Returns:
        The measurements and issues (thresholds: the module constants).

    Raises:
        OSError: Pillow cannot decode the bytes (``PIL.UnidentifiedImageError`` is one);
            also ``ValueError``, ``SyntaxError``, ``EOFError`` or
            ``PIL.Image.DecompressionBombError`` for broken files. Callers record these as
            the ``undecodable`` issue.
    """
    with Image.open(io.BytesIO(data)) as opened:
        # The size the file declares, turned as its EXIF orientation says; draft() below may
        # let a JPEG decode at a fraction of it.
        width, height = opened.size
        if _rotated(opened):
            width, height = height, width
        opened.draft("L", (ANALYSIS_SIDE, ANALYSIS_SIDE))
        image = ImageOps.exif_transpose(opened)
        if image.mode in ("RGBA", "LA", "PA") or (
            image.mode == "P" and "transparency" in image.info
        ):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, rgba)
        gray_image = image.convert("L")
    gray_image.thumbnail((ANALYSIS_SIDE, ANALYSIS_SIDE))
    gray = np.asarray(gray_image, dtype=np.uint8)
    as_float = gray.astype(np.float64)
    sharpness = _laplacian_variance(as_float)
    brightness = float(as_float.mean() / 255.0) if gray.size else 0.0
    blown_out = float((gray >= 250).mean()) if gray.size else 0.0
    entropy = _entropy(gray)
    issues: list[ImageQualityIssue] = []
    short, long = min(width, height), max(width, height)
    if short < MIN_SIDE:
        issues.append(
            ImageQualityIssue(
                issue="tiny",
                score=_clamp(1.0 - short / MIN_SIDE),
                reason=f"{width}x{height} px: the shorter side is under {MIN_SIDE} px",
            )
        )
    ratio = long / short if short else math.inf
    if ratio > MAX_ASPECT_RATIO:
        issues.append(
            ImageQualityIssue(
                issue="odd_aspect_ratio",
                score=_clamp((ratio - MAX_ASPECT_RATIO) / (3 * MAX_ASPECT_RATIO)),
                reason=(
                    f"{width}x{height} px: aspect ratio {ratio:.1f}:1 over {MAX_ASPECT_RATIO:g}:1"
                ),
            )
        )
    if entropy < ENTROPY_THRESHOLD:
        issues.append(
            ImageQualityIssue(
                issue="low_information",
                score=_clamp(1.0 - entropy / ENTROPY_THRESHOLD),
                reason=f"gray-level entropy {entropy:.2f} bits, under {ENTROPY_THRESHOLD:g}",
            )
        )
    elif sharpness < BLUR_THRESHOLD:
        # A flat image has no edges either: call it low-information, not blurry.
        issues.append(
            ImageQualityIssue(
                issue="blurry",
                score=_clamp(1.0 - sharpness / BLUR_THRESHOLD),
                reason=f"sharpness (variance of the Laplacian) {sharpness:.0f}, "
                f"under {BLUR_THRESHOLD:g}",
            )
        )
    if brightness < DARK_THRESHOLD:
        issues.append(
            ImageQualityIssue(
                issue="dark",
                score=_clamp(1.0 - brightness / DARK_THRESHOLD),
                reason=f"mean brightness {brightness:.2f}, under {DARK_THRESHOLD:g}",
            )
        )
    if blown_out > OVEREXPOSED_THRESHOLD:
        issues.append(
            ImageQualityIssue(
                issue="overexposed",
                score=_clamp((blown_out - OVEREXPOSED_THRESHOLD) / (1 - OVEREXPOSED_THRESHOLD)),
                reason=f"{blown_out:.0%} of pixels blown out (250 or brighter), "
                f"over {OVEREXPOSED_THRESHOLD:.0%}",
            )
        )
    return ImageQuality(
        width=width,
        height=height,
        sharpness=sharpness,
        brightness=brightness,
        blown_out=blown_out,
        entropy=entropy,
        issues=tuple(issues),
    )


def _rotated(image: Image.Image) -> bool:
    orientation = image.getexif().get(0x0112, 1)
    return orientation in (5, 6, 7, 8)
