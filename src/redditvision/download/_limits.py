"""The frozen settings of the download step: sizes, pixels, formats, redirects, timeouts."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["DEFAULT_FORMATS", "DEFAULT_PLACEHOLDER_URLS", "DownloadLimits"]

DEFAULT_FORMATS: frozenset[str] = frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP"})
"""Pillow format names accepted by default (the raster formats image services take)."""

DEFAULT_PLACEHOLDER_URLS: tuple[str, ...] = (
    # imgur answers a deleted image with a redirect to https://i.imgur.com/removed.png
    r"/removed\.png$",
    # Flickr's "This photo is no longer available" picture
    r"/photo_unavailable[^/]*\.(?:png|gif|jpg)$",
)
"""Regular expressions searched in the path of every URL on the way to the image (the
link and each redirect hop); a match means the image was deleted and the host serves a
placeholder picture instead."""


def _formats(value: Any) -> frozenset[str]:
    return frozenset(str(name).upper() for name in value)


def _digests(value: Any) -> frozenset[str]:
    return frozenset(str(digest).lower() for digest in value)


def _patterns(value: Any) -> tuple[str, ...]:
    return tuple(str(pattern) for pattern in value)


@attrs.frozen(kw_only=True)
class DownloadLimits:
    """What the download step accepts: a frozen settings object, changed with :meth:`evolve`.

    Attributes:
        max_bytes: Largest image body in bytes (default 30 MiB, 31,457,280: Vertex AI
            AutoML refuses training images over 30 MB). A ``Content-Length`` over it is
            refused before reading; a body without one is aborted as soon as it passes it.
        max_pixels: Largest ``width * height`` (default 89,478,485, Pillow's own
            ``Image.MAX_IMAGE_PIXELS`` decompression-bomb threshold). Checked from the
            image header before any pixel is decoded.
        decode_memory: Bytes of decoded pixels allowed at once across all the images
            being verified (default 1 GiB, 1,073,741,824): each decode reserves its
            estimate (``width * height * bands * bytes-per-band``, plus a greyscale copy
            for the hash, read from the header) and waits until it fits. One image over
            the whole budget is decoded alone; the pixel cap bounds it (an RGBA PNG at
            the cap is about 450 MB). JPEGs decode at up to 1/8 scale (libjpeg draft).
        formats: Pillow format names accepted (default JPEG, PNG, GIF, WEBP, BMP). The
            format is sniffed from the bytes, never from the ``Content-Type`` or the
            extension, and Pillow must open and verify the file as that format. SVG is
            never accepted (a vector format can reference other URLs).
        max_redirects: Redirect hops followed per image (default 5); every hop is checked
            by the network guard again.
        connect_timeout: Seconds to wait for a TCP/TLS connection (default 10.0).
        read_timeout: Seconds to wait between bytes of the answer (default 30.0).
        deadline: Seconds one item may take in all, every attempt, redirect and retry
            wait included (default 300.0). Enforced while the headers and the body
            arrive, not only between attempts: a server that trickles one byte a second
            is cut off at the deadline (the read timeout, being per read, never fires).
            The item is then ``failed`` with a reason naming the deadline; not retried.
        min_bytes_per_second: Slowest average body transfer accepted, in bytes per
            second, measured once ``rate_grace`` seconds of body have passed (default
            4,096; 0 turns the check off). A 30 MiB image at the minimum takes 2 hours,
            so the deadline is the tighter bound for big files; the rate ends a trickle
            early.
        rate_grace: Seconds of body before the rate is checked (default 10.0): slow
            starts (TCP slow start, a cold CDN cache) are not penalised.
        placeholder_urls: Regular expressions searched in the path of every URL on the
            way to the image; a match records the item as ``missing`` (the host serves a
            "this image was removed" picture). Default :data:`DEFAULT_PLACEHOLDER_URLS`.
        placeholder_sha256: SHA-256 hex digests of known placeholder pictures; an image
            with one of these digests is recorded as ``missing`` (default none).
        user_agent: ``User-Agent`` sent with each request by the session the downloader
            builds (an injected session keeps its own).
    """

    max_bytes: int = attrs.field(default=30 * 1024 * 1024, validator=attrs.validators.ge(1))
    max_pixels: int = attrs.field(default=89_478_485, validator=attrs.validators.ge(1))
    decode_memory: int = attrs.field(default=1024**3, validator=attrs.validators.ge(1))
    formats: frozenset[str] = attrs.field(default=DEFAULT_FORMATS, converter=_formats)
    max_redirects: int = attrs.field(default=5, validator=attrs.validators.ge(0))
    connect_timeout: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    read_timeout: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    deadline: float = attrs.field(default=300.0, validator=attrs.validators.gt(0))
    min_bytes_per_second: int = attrs.field(default=4096, validator=attrs.validators.ge(0))
    rate_grace: float = attrs.field(default=10.0, validator=attrs.validators.ge(0))
    placeholder_urls: tuple[str, ...] = attrs.field(
        default=DEFAULT_PLACEHOLDER_URLS, converter=_patterns
    )
    placeholder_sha256: frozenset[str] = attrs.field(default=frozenset(), converter=_digests)
    user_agent: str = "redditvision (+https://redditvision.readthedocs.io)"

    def evolve(self, **changes: Any) -> DownloadLimits:
        """Return a copy with some fields changed (``attrs.evolve``).

        Args:
            **changes: Field names and their new values.

        Returns:
            A new settings object.
        """
        return attrs.evolve(self, **changes)
