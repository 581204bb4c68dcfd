"""The one image shrinker, ``fit_image_bytes``, that every size-limited service uses."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from redditvision._imaging import encoded_size, fit_image_bytes
from redditvision.errors import ComparisonError, PredictionError


def _noise_png(size: int = 256) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((size, size), 100).convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _small_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_image_within_the_limit_is_returned_unchanged() -> None:
    data = _small_png()
    assert fit_image_bytes(data, limit=len(data)) is data


def test_an_image_over_a_raw_limit_becomes_a_jpeg_under_it() -> None:
    big = _noise_png()
    limit = len(big) // 4
    fitted = fit_image_bytes(big, limit=limit)
    assert len(fitted) <= limit
    with Image.open(io.BytesIO(fitted)) as image:
        assert image.format == "JPEG"


def test_a_base64_limit_counts_the_encoded_length() -> None:
    big = _noise_png()
    limit = len(big)  # the raw bytes fit, their base64 form (4/3 as long) does not
    fitted = fit_image_bytes(big, limit=limit, base64=True)
    assert len(base64.b64encode(fitted)) <= limit
    assert fitted != big
    assert encoded_size(len(fitted), base64=True) == len(base64.b64encode(fitted))


def test_max_side_scales_an_image_down_even_when_its_bytes_fit() -> None:
    data = _noise_png(300)
    fitted = fit_image_bytes(data, limit=10 * len(data), max_side=100)
    with Image.open(io.BytesIO(fitted)) as image:
        assert max(image.size) == 100


def test_bytes_that_are_no_image_raise_the_callers_error_class() -> None:
    with pytest.raises(PredictionError, match="is not an image that can be re-encoded"):
        fit_image_bytes(b"x" * 100, limit=10)
    with pytest.raises(ComparisonError):
        fit_image_bytes(b"x" * 100, limit=10, error=ComparisonError)


def test_an_impossible_limit_is_an_error_not_a_loop() -> None:
    with pytest.raises(PredictionError, match="cannot be re-encoded under the 1-byte limit"):
        fit_image_bytes(_noise_png(64), limit=1)
