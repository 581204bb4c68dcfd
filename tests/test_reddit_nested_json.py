"""Deeply nested or oversized JSON in a listing or dump is the source's error, with the file.

Issue 12.7: ``[[[[...]]]]`` 100,000 deep raised a ``RecursionError`` traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from redditvision.cli import main
from redditvision.errors import ListingFormatError
from redditvision.reddit import DumpFileSource, ListingFileSource


def submission(number: int) -> dict[str, object]:
    return {"id": f"p{number}", "subreddit": "BMW", "url": f"https://i.redd.it/p{number}.jpg"}


def dump_text(count: int) -> bytes:
    return b"".join(json.dumps(submission(n)).encode() + b"\n" for n in range(count))


def listing_text(count: int) -> bytes:
    children = [{"kind": "t3", "data": submission(n)} for n in range(count)]
    return json.dumps({"kind": "Listing", "data": {"children": children}}).encode()


def test_a_listing_nested_100k_deep_is_a_listing_format_error_naming_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ListingFormatError) as caught:
        list(ListingFileSource(path).submissions())
    assert str(path) in caught.value.message
    assert "nested too deeply" in caught.value.message


def test_arrays_of_listings_nested_900_deep_are_walked_without_recursion(tmp_path: Path) -> None:
    path = tmp_path / "pages.json"
    path.write_bytes(b"[" * 900 + listing_text(2) + b"]" * 900)
    assert [post.id for post in ListingFileSource(path).submissions()] == ["p0", "p1"]


def test_a_dump_line_nested_100k_deep_is_recorded_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "dump.ndjson"
    path.write_bytes(dump_text(1) + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"\n")
    source = DumpFileSource(path)
    assert [post.id for post in source.submissions()] == ["p0"]
    assert len(source.errors) == 1
    assert f"{path}:2" in source.errors[0]
    assert "nested too deeply" in source.errors[0]


def test_a_dump_of_only_a_nested_line_is_a_listing_format_error(tmp_path: Path) -> None:
    path = tmp_path / "dump.ndjson"
    path.write_bytes(b"[" * 100_000 + b"]" * 100_000 + b"\n")
    with pytest.raises(ListingFormatError, match="nested too deeply"):
        list(DumpFileSource(path).submissions())


def test_an_integer_past_pythons_digit_limit_is_bad_input_not_a_value_error(tmp_path: Path) -> None:
    line = b'{"id": "p1", "score": ' + b"9" * 5_000 + b"}\n"
    dump = tmp_path / "dump.ndjson"
    dump.write_bytes(dump_text(1) + line)
    source = DumpFileSource(dump)
    assert [post.id for post in source.submissions()] == ["p0"]
    assert "malformed JSON" in source.errors[0]
    listing = tmp_path / "top.json"
    listing.write_bytes(listing_text(1)[:-2] + b', "n": ' + b"9" * 5_000 + b"}}")
    with pytest.raises(ListingFormatError, match=str(listing)):
        list(ListingFileSource(listing).submissions())


def test_download_skips_a_posts_line_nested_100k_deep_and_reads_the_next(tmp_path: Path) -> None:
    posts = tmp_path / "posts.jsonl"
    good = {"id": "p1", "subreddit": "s", "title": "t", "permalink": "/r/s/", "media": []}
    posts.write_text("[" * 100_000 + "]" * 100_000 + "\n" + json.dumps(good) + "\n")
    result = CliRunner().invoke(
        main, ["download", "--posts", str(posts), "--out", str(tmp_path / "out"), "--json-summary"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["bad_lines"] == 1
    assert "line 1 skipped" in result.stderr
    assert "nested too deeply" in result.stderr


def test_download_of_posts_that_are_not_utf8_exits_2_with_the_reason(tmp_path: Path) -> None:
    posts = tmp_path / "posts.jsonl"
    posts.write_bytes(b'{"id": "\xff\xfe"}\n')
    result = CliRunner().invoke(
        main, ["download", "--posts", str(posts), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2
    assert "is not UTF-8 text" in result.output
