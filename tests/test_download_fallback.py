"""A post from submission JSON falls back to its Reddit preview only when its image is gone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import ImageHost
from redditvision.download import ImageDownloader
from redditvision.models import ImagePost, RecordStatus
from redditvision.reddit import post_from_submission_data

LINK = "https://i.imgur.com/Gone123.jpg"
REMOVED = "https://i.imgur.com/removed.png"
# As the API sends it without raw_json=1: the ampersand HTML-escaped.
PREVIEW_ESCAPED = "https://preview.redd.it/Gone123.jpg?auto=webp&amp;s=0f1e2d3c"
PREVIEW = "https://preview.redd.it/Gone123.jpg?auto=webp&s=0f1e2d3c"


def _submission() -> dict[str, Any]:
    """A direct i.imgur.com image submission, shaped like a t3 ``data`` object."""
    return {
        "id": "fb1",
        "name": "t3_fb1",
        "subreddit": "BMW",
        "title": "E30 M3 at the track",
        "permalink": "/r/BMW/comments/fb1/e30_m3_at_the_track/",
        "author": "someone",
        "url": LINK,
        "domain": "i.imgur.com",
        "post_hint": "image",
        "is_self": False,
        "is_video": False,
        "preview": {
            "images": [
                {
                    "source": {"url": PREVIEW_ESCAPED, "width": 1024, "height": 683},
                    "resolutions": [],
                    "variants": {},
                    "id": "abc",
                }
            ],
            "enabled": True,
        },
    }


@pytest.fixture
def photo(bmw_photos: Path) -> bytes:
    """One real JPEG photo of a BMW."""
    return sorted(bmw_photos.glob("*/*.jpg"))[0].read_bytes()


@pytest.fixture
def collected() -> ImagePost:
    post = post_from_submission_data(_submission())
    assert [(m.url, m.is_preview) for m in post.media] == [(LINK, False), (PREVIEW, True)]
    return post


def test_deleted_imgur_image_is_missing_and_the_preview_is_fetched_instead(
    image_host: ImageHost, photo: bytes, tmp_path: Path, collected: ImagePost
) -> None:
    image_host.serve_url(REMOVED, b"\x89PNG placeholder", content_type="image/png")
    image_host.serve_url(LINK, b"")  # registers the i.imgur.com origin for the session
    # imgur answers a deleted image with a redirect to its removed.png placeholder.
    image_host.redirect(ImageHost.mapped_path(LINK), REMOVED)
    image_host.serve_url(PREVIEW, photo)
    with ImageDownloader(
        tmp_path / "out", session=image_host.session(), allow_private_networks=True
    ) as downloader:
        records = {r.key: r for r in downloader.fetch([collected])}
    assert records["fb1:0"].status is RecordStatus.MISSING
    assert "placeholder" in (records["fb1:0"].reason or "")
    assert image_host.hits(ImageHost.mapped_path(REMOVED)) == 0
    fallback = records["fb1:1"]
    assert fallback.status is RecordStatus.OK
    assert fallback.url == PREVIEW
    assert fallback.path is not None and fallback.path.read_bytes() == photo
    assert image_host.hits(ImageHost.mapped_path(PREVIEW)) == 1


def test_preview_is_not_fetched_and_recorded_skipped_when_the_image_is_there(
    image_host: ImageHost, photo: bytes, tmp_path: Path, collected: ImagePost
) -> None:
    image_host.serve_url(LINK, photo)
    image_host.serve_url(PREVIEW, photo)
    with ImageDownloader(
        tmp_path / "out", session=image_host.session(), allow_private_networks=True
    ) as downloader:
        records = {r.key: r for r in downloader.fetch([collected])}
        assert records["fb1:0"].status is RecordStatus.OK
        assert records["fb1:1"].status is RecordStatus.SKIPPED
        assert image_host.hits(ImageHost.mapped_path(PREVIEW)) == 0
        # A re-run reads both from the manifest: still nothing fetched.
        again = {r.key: r.status for r in downloader.fetch([collected])}
    assert again == {"fb1:0": RecordStatus.OK, "fb1:1": RecordStatus.SKIPPED}
    assert image_host.hits(ImageHost.mapped_path(PREVIEW)) == 0
    assert image_host.hits(ImageHost.mapped_path(LINK)) == 1
