"""Awkward real-world image files decode to valid network inputs; ImageNet labels come offline."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from redditvision.backends.local import (
    EfficientNetLite0Extractor,
    ImageDecodeError,
    ImageNetLabeler,
    imagenet_class_names,
)
from redditvision.backends.local._images import decode_rgb

SIZE = 224


@pytest.fixture(scope="module")
def extractor() -> EfficientNetLite0Extractor:
    return EfficientNetLite0Extractor()


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def two_halves(mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue (100 x 60)."""
    image = Image.new("RGB", (100, 60), (255, 0, 0))
    image.paste((0, 0, 255), (50, 0, 100, 60))
    return image.convert(mode) if mode != "RGB" else image


def assert_features(extractor: EfficientNetLite0Extractor, data: bytes) -> None:
    features = extractor.extract([data])
    assert features.shape == (1, 1280)
    assert features.dtype == np.float32
    assert np.isfinite(features).all()


def test_grayscale_jpeg_becomes_three_equal_channels(extractor: EfficientNetLite0Extractor) -> None:
    data = encode(Image.linear_gradient("L").resize((120, 80)), "JPEG")
    array = decode_rgb(data, size=SIZE)
    assert array.shape == (SIZE, SIZE, 3)
    assert (array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all()
    assert_features(extractor, data)


def test_cmyk_jpeg_is_converted_to_rgb(extractor: EfficientNetLite0Extractor) -> None:
    data = encode(two_halves("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    array = decode_rgb(data, size=SIZE)
    left, right = array[SIZE // 2, 10], array[SIZE // 2, SIZE - 10]
    assert left[0] > 200 and left[2] < 60  # red
    assert right[2] > 200 and right[0] < 60  # blue
    assert_features(extractor, data)


def test_rgba_png_transparency_is_composited_on_white(
    extractor: EfficientNetLite0Extractor,
) -> None:
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    image.paste((0, 128, 0, 255), (0, 0, 32, 64))
    data = encode(image, "PNG")
    array = decode_rgb(data, size=SIZE)
    assert tuple(array[SIZE // 2, SIZE - 5]) == (255, 255, 255)
    assert tuple(array[SIZE // 2, 5]) == (0, 128, 0)
    assert_features(extractor, data)


def test_exif_rotated_jpeg_is_turned_upright(extractor: EfficientNetLite0Extractor) -> None:
    upright = two_halves()  # red left, blue right, landscape
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a phone writes: red at bottom
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    data = encode(stored, "JPEG", exif=exif.tobytes(), quality=95)
    array = decode_rgb(data, size=SIZE)
    expected = decode_rgb(encode(upright, "JPEG", quality=95), size=SIZE)
    assert np.abs(array.astype(int) - expected.astype(int)).mean() < 8
    assert_features(extractor, data)


def test_animated_gif_uses_its_first_frame(extractor: EfficientNetLite0Extractor) -> None:
    frames = [Image.new("RGB", (40, 40), color) for color in ((255, 0, 0), (0, 255, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    array = decode_rgb(data, size=SIZE)
    assert array[..., 0].mean() > 200 and array[..., 1].mean() < 50
    assert_features(extractor, data)


def test_ten_thousand_by_ten_image_gives_a_valid_input(
    extractor: EfficientNetLite0Extractor,
) -> None:
    data = encode(Image.new("RGB", (10_000, 10), (10, 200, 30)), "PNG")
    assert decode_rgb(data, size=SIZE).shape == (SIZE, SIZE, 3)
    assert_features(extractor, data)


def test_sixteen_bit_grayscale_png_is_scaled_to_eight_bits() -> None:
    array16 = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16)
    data = encode(Image.fromarray(array16), "PNG")
    array = decode_rgb(data, size=SIZE)
    assert array.min() < 10 and array.max() > 245


def test_undecodable_bytes_name_their_position(extractor: EfficientNetLite0Extractor) -> None:
    good = encode(two_halves(), "PNG")
    with pytest.raises(ImageDecodeError, match="image 1 cannot be decoded") as info:
        extractor.extract([good, b"GIF89a-truncated"])
    assert info.value.index == 1


def test_mirrored_view_is_the_features_of_the_flipped_image(
    extractor: EfficientNetLite0Extractor,
) -> None:
    image = two_halves()
    mirrored = extractor.extract([encode(image, "PNG")], augmentation="hflip")
    flipped = extractor.extract([encode(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "PNG")])
    np.testing.assert_allclose(mirrored, flipped, rtol=1e-3, atol=1e-3)


def test_imagenet_names_come_from_the_package_in_index_order() -> None:
    names = imagenet_class_names()
    assert len(names) == 1000
    assert names[817] == "sports car"
    assert names[511] == "convertible"


def test_imagenet_labeler_calls_a_real_bmw_photo_a_car(
    extractor: EfficientNetLite0Extractor, bmw_photos: Path
) -> None:
    photo = sorted((bmw_photos / "BMW Z4 Convertible 2012").iterdir())[0].read_bytes()
    labeler = ImageNetLabeler(extractor=extractor)
    (result, broken) = labeler.label([photo, b"not an image"], max_results=5)
    assert labeler.name == "imagenet"
    assert len(result.labels) == 5
    assert result.labels[0].label in {
        "sports car",
        "convertible",
        "car wheel",
        "radiator grille",
        "race car",
    }
    assert all(label.source == "imagenet" for label in result.labels)
    assert result.best_guess == result.labels[0].label
    assert broken.labels == () and broken.error is not None
    assert "cannot be decoded" in broken.error
