"""Saved listings and dumps cannot exhaust memory, stop early in silence, or crash the parser.

Issue 12.6 (compression bombs, endless lines, truncated frames) and 12.7 (deeply nested
JSON): real zstandard and gzip files built in ``tmp_path``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard
from click.testing import CliRunner

from redditvision.cli import main
from redditvision.errors import ConfigError, ListingFormatError, SourceError
from redditvision.models import ImagePost
from redditvision.reddit import DumpFileSource, ListingFileSource

MIB = 1024 * 1024


def submission(number: int) -> dict[str, object]:
    return {
        "id": f"p{number}",
        "subreddit": "BMW",
        "title": f"photo {number}",
        "url": f"https://i.redd.it/p{number}.jpg",
    }


def dump_text(count: int) -> bytes:
    return b"".join(json.dumps(submission(n)).encode() + b"\n" for n in range(count))


def listing_text(count: int) -> bytes:
    children = [{"kind": "t3", "data": submission(n)} for n in range(count)]
    return json.dumps({"kind": "Listing", "data": {"children": children}}).encode()


def read_into(posts: Iterator[ImagePost], seen: list[str]) -> None:
    """Read posts until the source raises, keeping the ids read before."""
    for post in posts:
        seen.append(post.id)


def zstd_stream(path: Path, chunks: int, chunk: bytes) -> Path:
    """Compress ``chunk`` repeated ``chunks`` times, streaming (the test never holds it)."""
    with path.open("wb") as raw:
        with zstandard.ZstdCompressor(level=3).stream_writer(raw) as writer:
            for _ in range(chunks):
                writer.write(chunk)
    return path


# -- compression bombs ------------------------------------------------------------------


def test_a_zstd_bomb_listing_is_refused_at_the_default_cap_naming_file_and_limit(
    tmp_path: Path,
) -> None:
    # 80 MiB of spaces compress to a few KB: a listing file 20,000 times its size.
    bomb = zstd_stream(tmp_path / "top.json", 80, b" " * MIB)
    assert bomb.stat().st_size < 64 * 1024
    with pytest.raises(ListingFormatError) as caught:
        list(ListingFileSource(bomb).submissions())
    message = caught.value.message
    assert str(bomb) in message
    assert "67,108,864 bytes" in message
    assert "max_bytes" in message
    assert "--max-input-bytes" in message


def test_a_zstd_bomb_dump_is_refused_at_its_cap(tmp_path: Path) -> None:
    bomb = zstd_stream(tmp_path / "RS.zst", 32, b"\n" * MIB)
    with pytest.raises(ListingFormatError, match=r"more than 1,048,576 bytes"):
        list(DumpFileSource(bomb, max_bytes=MIB).submissions())


def test_a_gzip_bomb_listing_is_refused_too(tmp_path: Path) -> None:
    bomb = tmp_path / "top.json.gz"
    with gzip.open(bomb, "wb") as writer:
        for _ in range(8):
            writer.write(b" " * MIB)
    with pytest.raises(ListingFormatError, match=r"more than 2,097,152 bytes"):
        list(ListingFileSource(bomb, max_bytes=2 * MIB).submissions())


def test_a_listing_under_the_cap_still_reads_whole(tmp_path: Path) -> None:
    path = tmp_path / "top.json"
    path.write_bytes(zstandard.ZstdCompressor().compress(listing_text(50)))
    posts = list(ListingFileSource(path, max_bytes=len(listing_text(50))).submissions())
    assert [post.id for post in posts] == [f"p{n}" for n in range(50)]


@pytest.mark.parametrize("value", [0, -5])
def test_caps_below_one_byte_are_config_errors(tmp_path: Path, value: int) -> None:
    with pytest.raises(ConfigError):
        ListingFileSource(tmp_path / "x", max_bytes=value)
    with pytest.raises(ConfigError):
        DumpFileSource(tmp_path / "x", max_line_bytes=value)


# -- endless lines ----------------------------------------------------------------------


def test_a_dump_with_one_endless_line_is_refused_at_the_default_line_cap(tmp_path: Path) -> None:
    endless = zstd_stream(tmp_path / "RS.zst", 64, b"a" * MIB)  # 64 MiB, no newline
    source = DumpFileSource(endless)
    with pytest.raises(ListingFormatError) as caught:
        list(source.submissions())
    message = caught.value.message
    assert f"{endless}: line 1 is longer than 4,194,304 bytes" in message
    assert "--max-line-bytes" in message


def test_an_endless_line_after_good_lines_is_refused_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "dump.ndjson"
    path.write_bytes(dump_text(3) + b"[" * (2 * MIB))
    seen: list[str] = []
    with pytest.raises(ListingFormatError, match="line 4 is longer than 1,048,576 bytes"):
        read_into(DumpFileSource(path, max_line_bytes=MIB).submissions(), seen)
    assert seen == ["p0", "p1", "p2"]


def test_a_line_exactly_at_the_cap_is_read(tmp_path: Path) -> None:
    line = json.dumps(submission(1)).encode() + b"\n"
    path = tmp_path / "dump.ndjson"
    path.write_bytes(line)
    assert [post.id for post in DumpFileSource(path, max_line_bytes=len(line)).submissions()] == [
        "p1"
    ]
    with pytest.raises(ListingFormatError):
        list(DumpFileSource(path, max_line_bytes=len(line) - 1).submissions())


# -- truncated frames -------------------------------------------------------------------


def test_a_zstd_dump_cut_in_half_is_an_error_not_a_shorter_dump(tmp_path: Path) -> None:
    whole = zstandard.ZstdCompressor().compress(dump_text(20_000))
    path = tmp_path / "RS_cut.zst"
    path.write_bytes(whole[: len(whole) // 2])
    seen: list[str] = []
    with pytest.raises(SourceError, match="truncated") as caught:
        read_into(DumpFileSource(path).submissions(), seen)
    assert not isinstance(caught.value, ListingFormatError)
    assert str(path) in caught.value.message
    assert 0 < len(seen) < 20_000


def test_a_zstd_listing_cut_short_is_an_error(tmp_path: Path) -> None:
    whole = zstandard.ZstdCompressor().compress(listing_text(500))
    path = tmp_path / "top.json.zst"
    path.write_bytes(whole[:-7])
    with pytest.raises(SourceError, match="truncated"):
        list(ListingFileSource(path).submissions())


def test_a_gzip_dump_cut_short_is_an_error(tmp_path: Path) -> None:
    whole = gzip.compress(dump_text(5_000))
    path = tmp_path / "RS.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SourceError, match="truncated"):
        list(DumpFileSource(path).submissions())


def test_a_zstd_file_of_several_frames_reads_every_frame(tmp_path: Path) -> None:
    def lines(numbers: range) -> bytes:
        return b"".join(json.dumps(submission(n)).encode() + b"\n" for n in numbers)

    compressor = zstandard.ZstdCompressor()
    path = tmp_path / "RS.zst"
    path.write_bytes(
        compressor.compress(lines(range(1_000))) + compressor.compress(lines(range(1_000, 3_000)))
    )
    ids = [post.id for post in DumpFileSource(path).submissions()]
    assert ids == [f"p{n}" for n in range(3_000)]


def test_collect_of_a_truncated_dump_exits_non_zero(tmp_path: Path) -> None:
    whole = zstandard.ZstdCompressor().compress(dump_text(20_000))
    path = tmp_path / "RS_cut.zst"
    path.write_bytes(whole[: len(whole) // 2])
    result = CliRunner().invoke(main, ["collect", "--dump", str(path), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "truncated" in result.output
    assert not (tmp_path / "o").exists()


def test_collect_line_cap_option_is_passed_to_the_dump_reader(tmp_path: Path) -> None:
    path = tmp_path / "dump.ndjson"
    path.write_bytes(dump_text(2))
    result = CliRunner().invoke(
        main, ["collect", "--dump", str(path), "--max-line-bytes", "20", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "line 1 is longer than 20 bytes" in result.output
