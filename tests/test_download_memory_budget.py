"""The decodes running at once share a memory budget, so peak memory is bounded per run.

Issue 12.2: sixteen posts linking large RGBA PNGs were decoded at once. Here many large
images are fetched by 16 workers under a small budget; the budget object records the most
bytes ever reserved at once.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from harness import ImageHost
from redditvision.download import DownloadLimits, ImageDownloader, MemoryBudget
from redditvision.download._verify import decoded_bytes
from redditvision.errors import ConfigError
from redditvision.models import ImagePost, MediaItem, RecordStatus


def encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def posts_for(urls: list[str]) -> list[ImagePost]:
    return [
        ImagePost(
            id=f"p{n}", subreddit="s", title="t", permalink="/r/s/", media=(MediaItem(url=url),)
        )
        for n, url in enumerate(urls)
    ]


def test_concurrent_large_pngs_never_exceed_the_budget_and_all_are_verified(
    image_host: ImageHost, tmp_path: Path
) -> None:
    # 1000x800 RGBA: 3.2 MB decoded + 0.8 MB greyscale copy = 4 MB each; budget: 3 of them.
    each = 1000 * 800 * (4 + 1)
    budget = 3 * each
    urls = [
        image_host.serve(
            f"/{n}.png", encode(Image.new("RGBA", (1000, 800), (n, 255 - n, 7, 200)), "PNG")
        )
        for n in range(40)
    ]
    limits = DownloadLimits(decode_memory=budget)
    with ImageDownloader(
        tmp_path / "out", limits=limits, concurrency=16, per_host=16, allow_private_networks=True
    ) as downloader:
        records = list(downloader.fetch(posts_for(urls)))
        spent = downloader.memory_budget
    assert len(records) == 40
    assert all(record.status is RecordStatus.OK for record in records)
    assert spent.reservations == 40
    assert spent.peak <= budget
    assert spent.peak >= each
    assert spent.in_use == 0


def test_a_jpeg_is_decoded_in_draft_mode_at_a_fraction_of_its_full_size(
    image_host: ImageHost, tmp_path: Path, bmw_photos: Path
) -> None:
    photo = next(iter(sorted(bmw_photos.glob("*/*.jpg"))))
    big = Image.open(photo).convert("RGB").resize((2400, 1600))
    full = 2400 * 1600 * (3 + 1)
    url = image_host.serve("/big.jpg", encode(big, "JPEG"))
    limits = DownloadLimits(decode_memory=full // 16)
    with ImageDownloader(tmp_path / "out", limits=limits, allow_private_networks=True) as d:
        (record,) = list(d.fetch(posts_for([url])))
        peak = d.memory_budget.peak
    assert record.status is RecordStatus.OK
    assert (record.width, record.height) == (2400, 1600)  # the header's size is recorded
    assert 0 < peak <= full // 16  # 1/8 scale, greyscale: 300x200 x 2 bytes


def test_one_image_larger_than_the_whole_budget_is_decoded_alone(
    image_host: ImageHost, tmp_path: Path
) -> None:
    url = image_host.serve("/a.png", encode(Image.new("RGBA", (500, 500), "red"), "PNG"))
    with ImageDownloader(
        tmp_path / "out", limits=DownloadLimits(decode_memory=1000), allow_private_networks=True
    ) as downloader:
        (record,) = list(downloader.fetch(posts_for([url])))
        assert downloader.memory_budget.peak == 500 * 500 * 5
    assert record.status is RecordStatus.OK


@pytest.mark.parametrize(
    ("mode", "per_pixel"), [("RGBA", 5), ("RGB", 4), ("L", 2), ("I;16", 3), ("F", 5), ("P", 2)]
)
def test_the_estimate_is_pixels_times_bands_times_bytes_per_band_plus_the_grey_copy(
    mode: str, per_pixel: int
) -> None:
    assert decoded_bytes(Image.new(mode, (30, 20))) == 30 * 20 * per_pixel


def test_a_budget_below_one_byte_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        MemoryBudget(0)
