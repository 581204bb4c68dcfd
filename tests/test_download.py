"""ImageDownloader fetches, checks, retries and deduplicates images from a loopback HTTP server."""

from __future__ import annotations

import io
import itertools
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from harness import Fault, ImageHost
from redditvision import retry
from redditvision.download import DownloadLimits, ImageDownloader
from redditvision.models import ImagePost, ImageRecord, MediaItem, RecordStatus

# -- helpers ------------------------------------------------------------------------------


def post(post_id: str, *urls: str, title: str = "a photo", preview: str | None = None) -> ImagePost:
    media = tuple(MediaItem(url=url) for url in urls)
    if preview is not None:
        media += (MediaItem(url=preview, is_preview=True),)
    return ImagePost(
        id=post_id,
        subreddit="BMW",
        title=title,
        permalink=f"/r/BMW/comments/{post_id}/x/",
        author="someone",
        flair_text="M3",
        media=media,
    )


def fetch_all(downloader: ImageDownloader, *posts: ImagePost) -> dict[str, ImageRecord]:
    return {record.key: record for record in downloader.fetch(posts)}


def png_bytes(size: tuple[int, int] = (40, 30), color: str = "red", fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


@pytest.fixture(scope="module")
def photos(bmw_photos: Path) -> list[bytes]:
    """Ten real JPEG photos of BMWs."""
    return [path.read_bytes() for path in sorted(bmw_photos.glob("*/*.jpg"))[:10]]


@pytest.fixture
def make_downloader(tmp_path: Path) -> Iterator[Callable[..., ImageDownloader]]:
    made: list[ImageDownloader] = []

    def make(**kwargs: object) -> ImageDownloader:
        kwargs.setdefault("allow_private_networks", True)
        downloader = ImageDownloader(tmp_path / "out", **kwargs)  # type: ignore[arg-type]
        made.append(downloader)
        return downloader

    yield make
    for downloader in made:
        downloader.close()


# -- the happy path -----------------------------------------------------------------------


def test_real_photo_is_saved_under_its_sha256_with_provenance_in_the_manifest(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    url = image_host.serve("/a.jpg", photos[0])
    downloader = make_downloader()
    record = fetch_all(downloader, post("p1", url))["p1:0"]
    assert record.status is RecordStatus.OK
    assert record.path is not None
    assert record.path.read_bytes() == photos[0]
    assert record.path.name == f"{record.sha256}.jpg"
    assert record.format == "JPEG"
    assert (record.width, record.height) == Image.open(io.BytesIO(photos[0])).size
    assert record.size_bytes == len(photos[0])
    assert record.phash is not None
    assert len(record.phash) == 16
    assert record.near_duplicate_group == "p1:0"
    stored = downloader.manifest.get("p1:0")
    assert stored == record
    assert (stored.title, stored.author, stored.flair_text) == ("a photo", "someone", "M3")


@pytest.mark.parametrize(
    ("fmt", "ext"), [("PNG", "png"), ("GIF", "gif"), ("WEBP", "webp"), ("BMP", "bmp")]
)
def test_format_is_sniffed_from_bytes_not_content_type(
    image_host: ImageHost, make_downloader: Callable[..., ImageDownloader], fmt: str, ext: str
) -> None:
    url = image_host.serve("/lies.jpg", png_bytes(fmt=fmt), content_type="image/jpeg")
    record = fetch_all(make_downloader(), post("p1", url))["p1:0"]
    assert record.status is RecordStatus.OK
    assert record.format == fmt
    assert record.path is not None
    assert record.path.suffix == f".{ext}"


def test_fetch_reads_posts_lazily_so_memory_does_not_grow_with_posts(
    image_host: ImageHost, make_downloader: Callable[..., ImageDownloader]
) -> None:
    url = image_host.serve("/a.png", png_bytes())
    pulled = 0

    def endless() -> Iterator[ImagePost]:
        nonlocal pulled
        for number in itertools.count():
            pulled += 1
            yield post(f"p{number}", url)

    downloader = make_downloader(concurrency=2)
    stream = downloader.fetch(endless())
    first = list(itertools.islice(stream, 5))
    stream.close()  # type: ignore[attr-defined]
    assert len(first) == 5
    assert pulled <= 5 + 4 * 2 + 1  # a bounded window ahead, not the whole (endless) input


def test_per_host_cap_bounds_requests_in_flight(
    image_host_factory: Callable[..., ImageHost], make_downloader: Callable[..., ImageDownloader]
) -> None:
    host = image_host_factory(latency=0.05)
    urls = [host.serve(f"/{i}.png", png_bytes(color=(i * 9 % 255, 0, 0))) for i in range(12)]
    downloader = make_downloader(concurrency=8, per_host=2)
    records = fetch_all(downloader, *(post(f"p{i}", url) for i, url in enumerate(urls)))
    assert len(records) == 12
    assert host.max_in_flight <= 2


def test_32_workers_keep_at_least_16_requests_in_flight_at_once(
    image_host: ImageHost, make_downloader: Callable[..., ImageDownloader]
) -> None:
    # The server answers nothing until 16 requests wait at the same time (gather), so the
    # run only completes promptly, with `gathered` true, if the 32 workers really overlap.
    # 16, not 32: the workers also decode, hash and commit between requests.
    urls = [image_host.serve(f"/{i}.png", png_bytes(color=(i * 5 % 255, i, 0))) for i in range(64)]
    image_host.gather(16, timeout=60)
    downloader = make_downloader(concurrency=32, per_host=32)
    records = fetch_all(downloader, *(post(f"p{i}", url) for i, url in enumerate(urls)))
    assert {r.status for r in records.values()} == {RecordStatus.OK}
    assert len(records) == 64
    assert image_host.gathered, f"at most {image_host.max_in_flight} requests were in flight"
    assert 16 <= image_host.max_in_flight <= 32


def test_real_reddit_urls_reach_loopback_through_the_harness_session(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    real = "https://i.redd.it/abcdef123.jpg"
    image_host.serve_url(real, photos[1])
    downloader = make_downloader(session=image_host.session())
    record = fetch_all(downloader, post("p1", real))["p1:0"]
    assert record.status is RecordStatus.OK
    assert record.url == real
    assert downloader.manifest.final_url("p1:0") == real


# -- bad input, one test each ---------------------------------------------------------------


def test_html_page_served_as_image_jpeg_is_failed(
    image_host: ImageHost, make_downloader: Callable[..., ImageDownloader]
) -> None:
    url = image_host.serve("/x.jpg", b"<!DOCTYPE html><html><body>Imgur</body></html>")
    record = fetch_all(make_downloader(), post("p1", url))["p1:0"]
    assert record.status is RecordStatus.FAILED
    assert "HTML page" in (record.reason or "")
    assert record.path is None


def test_zero_byte_body_is_failed(
    image_host: ImageHost, make_downloader: Callable[..., ImageDownloader]
) -> None:
    url = image_host.serve("/empty.jpg", b"")
    record = fetch_all(make_downloader(), post("p1", url))["p1:0"]
    assert record.status is RecordStatus.FAILED
    assert "empty body" in (record.reason or "")


def test_truncated_jpeg_is_failed_as_corrupt(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    cut = photos[0][: len(photos[0]) * 2 // 3]
    url = image_host.serve("/cut.jpg", cut)  # an honest Content-Length of the cut file
    record = fetch_all(make_downloader(), post("p1", url))["p1:0"]
    assert record.status is RecordStatus.FAILED
    assert "truncated or corrupt" in (record.reason or "")


def test_body_cut_off_before_content_length_is_retried(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    url = image_host.serve("/a.jpg", photos[0])
    image_host.script("/a.jpg", Fault.truncate(1000))
    record = fetch_all(make_downloader(), post("p1", url))["p1:0"]
    assert record.status is RecordStatus.OK
    assert image_host.hits("/a.jpg") == 2


def test_body_over_the_cap_with_content_length_is_refused_before_reading(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    url = image_host.serve("/big.jpg", photos[0])
    downloader = make_downloader(limits=DownloadLimits(max_bytes=1000))
    record = fetch_all(downloader, post("p1", url))["p1:0"]
    assert record.status is RecordStatus.FAILED
    assert "announces" in (record.reason or "")
    assert image_host.hits("/big.jpg") == 1  # permanent: not retried


def test_body_over_the_cap_without_content_length_is_aborted_while_streaming(
    image_host: ImageHost, make_downloader: Callable[..., ImageDownloader]
) -> None:
    url = image_host.serve("/big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 300_000, chunked=True)
    downloader = make_downloader(limits=DownloadLimits(max_bytes=100_000))
    record = fetch_all(downloader, post("p1", url))["p1:0"]
    assert record.status is RecordStatus.FAILED
    assert "sent more than 100,000 bytes" in (record.reason or "")
    assert not list((downloader.out_dir / ".partial").iterdir())


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def test_image_over_the_pixel_cap_is_refused_from_its_header(
    image_host: ImageHost, make_downloader: Callable[..., ImageDownloader]
) -> None:
    # A 100,000 x 100,000 PNG header: 10 gigapixels, a decompression bomb in 70 bytes.
    url = image_host.serve(
        "/bomb.png", _png_header_only(100_000, 100_000), content_type="image/png"
    )
    record = fetch_all(make_downloader(), post("p1", url))["p1:0"]
    assert record.status is RecordStatus.FAILED
    assert "pixel" in (record.reason or "")


def test_image_over_a_configured_pixel_cap_is_refused(
    image_host: ImageHost, make_downloader: Callable[..., ImageDownloader]
) -> None:
    url = image_host.serve("/wide.png", png_bytes((2000, 600)), content_type="image/png")
    downloader = make_downloader(limits=DownloadLimits(max_pixels=1_000_000))
    record = fetch_all(downloader, post("p1", url))["p1:0"]
    assert record.status is RecordStatus.FAILED
    assert "2000x600 = 1,200,000 pixels" in (record.reason or "")


def test_svg_is_refused(
    image_host: ImageHost, make_downloader: Callable[..., ImageDownloader]
) -> None:
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    url = image_host.serve("/logo.svg", svg, content_type="image/svg+xml")
    record = fetch_all(make_downloader(), post("p1", url))["p1:0"]
    assert record.status is RecordStatus.FAILED
    assert "SVG" in (record.reason or "")


def test_redirect_to_removed_png_is_missing_and_the_preview_is_fetched_instead(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    image_host.serve("/removed.png", png_bytes((161, 81), "gray"), content_type="image/png")
    gone = image_host.redirect("/abc.jpg", "/removed.png")
    preview = image_host.serve("/preview.jpg", photos[2])
    records = fetch_all(make_downloader(), post("p1", gone, preview=preview))
    assert records["p1:0"].status is RecordStatus.MISSING
    assert "placeholder" in (records["p1:0"].reason or "")
    assert image_host.hits("/removed.png") == 0  # recognised from the redirect alone
    assert records["p1:1"].status is RecordStatus.OK
    assert records["p1:1"].path is not None
    assert records["p1:1"].path.read_bytes() == photos[2]


def test_preview_is_skipped_when_the_original_is_fetched(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    original = image_host.serve("/a.jpg", photos[0])
    preview = image_host.serve("/preview.jpg", photos[1])
    records = fetch_all(make_downloader(), post("p1", original, preview=preview))
    assert records["p1:0"].status is RecordStatus.OK
    assert records["p1:1"].status is RecordStatus.SKIPPED
    assert image_host.hits("/preview.jpg") == 0


def test_known_placeholder_bytes_are_missing(
    image_host: ImageHost, make_downloader: Callable[..., ImageDownloader]
) -> None:
    import hashlib

    placeholder = png_bytes((161, 81), "gray")
    url = image_host.serve("/x.png", placeholder, content_type="image/png")
    limits = DownloadLimits(placeholder_sha256={hashlib.sha256(placeholder).hexdigest()})
    record = fetch_all(make_downloader(limits=limits), post("p1", url))["p1:0"]
    assert record.status is RecordStatus.MISSING


def test_404_is_failed_at_once(
    image_host: ImageHost, make_downloader: Callable[..., ImageDownloader]
) -> None:
    url = image_host.url_for("/nothing.jpg")
    record = fetch_all(make_downloader(), post("p1", url))["p1:0"]
    assert record.status is RecordStatus.FAILED
    assert "HTTP 404" in (record.reason or "")
    assert image_host.hits("/nothing.jpg") == 1
    assert retry.recorded_sleeps() == []


def test_429_with_retry_after_waits_as_asked(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    url = image_host.serve("/a.jpg", photos[0])
    image_host.script("/a.jpg", Fault.status(429, retry_after="7"))
    record = fetch_all(make_downloader(), post("p1", url))["p1:0"]
    assert record.status is RecordStatus.OK
    sleeps = retry.recorded_sleeps()
    assert len(sleeps) == 1
    assert sleeps[0] >= 7


def test_429_without_retry_after_backs_off(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    url = image_host.serve("/a.jpg", photos[0])
    image_host.script("/a.jpg", Fault.status(429), Fault.status(429))
    record = fetch_all(make_downloader(), post("p1", url))["p1:0"]
    assert record.status is RecordStatus.OK
    sleeps = retry.recorded_sleeps()
    assert len(sleeps) == 2
    assert sleeps[0] < 7  # the policy's own backoff, not a server's wish


def test_retry_after_beyond_the_cap_ends_retries_and_records_the_failure(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    url = image_host.serve("/a.jpg", photos[0])
    image_host.script("/a.jpg", Fault.status(429, retry_after="3600"))
    record = fetch_all(make_downloader(), post("p1", url))["p1:0"]
    assert record.status is RecordStatus.FAILED
    assert "retry_after=3600s" in (record.reason or "")
    assert image_host.hits("/a.jpg") == 1


def test_503_then_success_is_ok(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    url = image_host.serve("/a.jpg", photos[0])
    image_host.script("/a.jpg", Fault.status(503))
    downloader = make_downloader()
    record = fetch_all(downloader, post("p1", url))["p1:0"]
    assert record.status is RecordStatus.OK
    assert downloader.manifest.attempts("p1:0") == 2


def test_503_every_time_is_failed_after_the_policy_attempts(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    url = image_host.serve("/a.jpg", photos[0])
    image_host.script("/a.jpg", *[Fault.status(503)] * 10)
    record = fetch_all(make_downloader(), post("p1", url))["p1:0"]
    assert record.status is RecordStatus.FAILED
    assert "HTTP 503" in (record.reason or "")
    assert image_host.hits("/a.jpg") == 4  # DEFAULT_DOWNLOAD_RETRY.attempts


def test_connection_reset_is_retried(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    url = image_host.serve("/a.jpg", photos[0])
    image_host.script("/a.jpg", Fault.reset())
    record = fetch_all(make_downloader(), post("p1", url))["p1:0"]
    assert record.status is RecordStatus.OK
    assert image_host.hits("/a.jpg") == 2


def test_redirect_chain_longer_than_the_cap_fails(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    for hop in range(7):
        image_host.redirect(f"/r{hop}", f"/r{hop + 1}")
    image_host.serve("/r7", photos[0])
    downloader = make_downloader(limits=DownloadLimits(max_redirects=5))
    record = fetch_all(downloader, post("p1", image_host.url_for("/r0")))["p1:0"]
    assert record.status is RecordStatus.FAILED
    assert "more than 5 redirects" in (record.reason or "")
    assert image_host.hits("/r7") == 0


def test_redirect_chain_within_the_cap_is_followed(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    for hop in range(3):
        image_host.redirect(f"/r{hop}", f"/r{hop + 1}")
    image_host.serve("/r3", photos[0])
    downloader = make_downloader()
    record = fetch_all(downloader, post("p1", image_host.url_for("/r0")))["p1:0"]
    assert record.status is RecordStatus.OK
    assert downloader.manifest.final_url("p1:0") == image_host.url_for("/r3")


# -- duplicates -----------------------------------------------------------------------------


def test_same_image_in_two_posts_is_one_file_and_a_duplicate_record(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    first = image_host.serve("/a.jpg", photos[0])
    second = image_host.serve("/repost.jpg", photos[0])
    downloader = make_downloader(concurrency=1)
    records = fetch_all(downloader, post("p1", first), post("p2", second))
    assert records["p1:0"].status is RecordStatus.OK
    assert records["p2:0"].status is RecordStatus.DUPLICATE
    assert records["p2:0"].duplicate_of == "p1:0"
    assert records["p2:0"].path == records["p1:0"].path
    assert records["p2:0"].near_duplicate_group == records["p1:0"].near_duplicate_group
    assert len(list((downloader.out_dir / "images").rglob("*.jpg"))) == 1


def test_same_image_fetched_concurrently_is_still_one_ok_and_the_rest_duplicates(
    image_host_factory: Callable[..., ImageHost],
    photos: list[bytes],
    make_downloader: Callable[..., ImageDownloader],
) -> None:
    host = image_host_factory(latency=0.05)  # all of them in flight at once
    urls = [host.serve(f"/copy{i}.jpg", photos[7]) for i in range(8)]
    downloader = make_downloader(concurrency=8, per_host=8)
    records = fetch_all(downloader, *(post(f"p{i}", url) for i, url in enumerate(urls)))
    statuses = sorted(record.status.value for record in records.values())
    assert statuses == ["duplicate"] * 7 + ["ok"]
    assert len({record.path for record in records.values()}) == 1
    assert len(list((downloader.out_dir / "images").rglob("*.jpg"))) == 1


def test_same_image_in_a_later_run_is_a_duplicate(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    url = image_host.serve("/a.jpg", photos[0])
    fetch_all(make_downloader(), post("p1", url))
    again = fetch_all(make_downloader(), post("p9", url))["p9:0"]
    assert again.status is RecordStatus.DUPLICATE
    assert again.duplicate_of == "p1:0"


def _reencoded(photo: bytes, scale: float, quality: int) -> bytes:
    image = Image.open(io.BytesIO(photo)).convert("RGB")
    size = (int(image.width * scale), int(image.height * scale))
    out = io.BytesIO()
    image.resize(size, Image.Resampling.LANCZOS).save(out, "JPEG", quality=quality)
    return out.getvalue()


def test_near_duplicate_resized_and_reencoded_shares_the_group_across_posts(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    original = image_host.serve("/a.jpg", photos[3])
    smaller = image_host.serve("/small.jpg", _reencoded(photos[3], 0.5, 70))
    other = image_host.serve("/other.jpg", photos[4])
    downloader = make_downloader(concurrency=1)
    records = fetch_all(downloader, post("p1", original), post("p2", smaller), post("p3", other))
    assert records["p2:0"].status is RecordStatus.OK  # a different file, kept
    assert records["p2:0"].sha256 != records["p1:0"].sha256
    assert records["p2:0"].near_duplicate_group == records["p1:0"].near_duplicate_group == "p1:0"
    assert records["p3:0"].near_duplicate_group == "p3:0"
    groups = {r.key: r.near_duplicate_group for r in downloader.manifest.records(RecordStatus.OK)}
    assert groups == {"p1:0": "p1:0", "p2:0": "p1:0", "p3:0": "p3:0"}


def test_near_duplicate_in_a_later_run_joins_the_earlier_group(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    fetch_all(make_downloader(), post("p1", image_host.serve("/a.jpg", photos[5])))
    later = image_host.serve("/b.jpg", _reencoded(photos[5], 0.8, 50))
    record = fetch_all(make_downloader(), post("p2", later))["p2:0"]
    assert record.near_duplicate_group == "p1:0"


# -- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "title",
    ["../../etc/passwd", "my car 🚗🔥 at night", "宝马" * 150],
    ids=["dot-dot-slash", "emoji", "300-cjk"],
)
def test_titles_never_reach_file_names_and_are_kept_whole_in_the_manifest(
    image_host: ImageHost,
    photos: list[bytes],
    make_downloader: Callable[..., ImageDownloader],
    title: str,
) -> None:
    url = image_host.serve("/a.jpg", photos[6])
    downloader = make_downloader()
    record = fetch_all(downloader, post("p1", url, title=title))["p1:0"]
    assert record.path is not None
    assert record.path.name.isascii()
    assert len(record.path.name) <= 70
    assert record.path.resolve().is_relative_to((downloader.out_dir / "images").resolve())
    assert downloader.manifest.get("p1:0").title == title  # type: ignore[union-attr]


# -- resuming -------------------------------------------------------------------------------


def test_rerun_skips_what_is_done_and_retries_what_failed(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    good = image_host.serve("/a.jpg", photos[0])
    flaky = image_host.serve("/b.jpg", photos[1])
    image_host.script("/b.jpg", *[Fault.status(500)] * 4)
    posts = [post("p1", good), post("p2", flaky)]
    first = fetch_all(make_downloader(), *posts)
    assert first["p2:0"].status is RecordStatus.FAILED
    second = fetch_all(make_downloader(), *posts)
    assert second["p1:0"] == first["p1:0"]
    assert second["p2:0"].status is RecordStatus.OK
    assert image_host.hits("/a.jpg") == 1
    assert image_host.hits("/b.jpg") == 5


def test_rerun_fetches_again_when_the_file_was_deleted(
    image_host: ImageHost, photos: list[bytes], make_downloader: Callable[..., ImageDownloader]
) -> None:
    url = image_host.serve("/a.jpg", photos[0])
    record = fetch_all(make_downloader(), post("p1", url))["p1:0"]
    assert record.path is not None
    record.path.unlink()
    again = fetch_all(make_downloader(), post("p1", url))["p1:0"]
    assert again.status is RecordStatus.OK
    assert again.path == record.path
    assert record.path.is_file()


def test_close_is_idempotent_and_a_closed_downloader_refuses_to_fetch(tmp_path: Path) -> None:
    downloader = ImageDownloader(tmp_path / "out")
    downloader.close()
    downloader.close()
    with pytest.raises(ValueError, match="closed"):
        list(downloader.fetch([]))
