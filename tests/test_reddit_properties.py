"""Property-based tests of every parser of outside input in the collect step.

Listing JSON, dump lines (NDJSON, plain, gzip, zstandard, whole or cut short), submission
dicts through media resolution, and the posts lines of ``download``: random and mutated
inputs give a result or the library's own error, never another exception. Sizes are
bounded in the strategies, so time and memory are too (issue 12, property tests).
"""

from __future__ import annotations

import gzip
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redditvision.cli._download import _PostReader
from redditvision.errors import ListingFormatError, SourceError
from redditvision.reddit import (
    CollectStats,
    DumpFileSource,
    ListingFileSource,
    collect_submission,
    resolve_media,
)

_SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "https://i.redd.it/a.jpg",
            "http://127.0.0.1/x.png",
            "https://imgur.com/abc",
            "https://i.imgur.com/a.gifv",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://[::1/x.jpg",
            "https://preview.redd.it/b.jpg?width=1&amp;s=2",
            "valid",
            "failed",
            "unprocessed",
            "Image",
            "AnimatedImage",
            "RedditVideo",
            "t3",
            "Listing",
        ]
    )
)
_json = st.recursive(
    _scalar,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=16,
)
_FIELDS = [
    "id", "name", "url", "url_overridden_by_dest", "title", "subreddit", "author", "score",
    "created_utc", "over_18", "spoiler", "stickied", "is_self", "is_video", "post_hint",
    "domain", "permalink", "link_flair_text", "removed_by_category", "selftext",
    "crosspost_parent", "is_gallery",
]  # fmt: skip


@st.composite
def _gallery(draw: st.DrawFn) -> dict[str, Any]:
    ids = draw(st.lists(st.text(min_size=1, max_size=4), max_size=4))
    items = [draw(st.one_of(st.just({"media_id": media_id}), _json)) for media_id in ids]
    metadata = {
        media_id: draw(
            st.one_of(
                st.fixed_dictionaries(
                    {
                        "status": _scalar,
                        "e": _scalar,
                        "s": st.one_of(
                            _json,
                            st.fixed_dictionaries(
                                {"u": _scalar, "gif": _scalar, "mp4": _scalar, "x": _scalar}
                            ),
                        ),
                    }
                ),
                _json,
            )
        )
        for media_id in ids
    }
    return {
        "is_gallery": draw(_scalar),
        "gallery_data": draw(st.one_of(st.just({"items": items}), _json)),
        "media_metadata": draw(st.one_of(st.just(metadata), _json)),
    }


@st.composite
def _submission(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = draw(st.dictionaries(st.sampled_from(_FIELDS), _json, max_size=10))
    if draw(st.booleans()):
        data.update(draw(_gallery()))
    if draw(st.booleans()):
        data["preview"] = draw(
            st.one_of(
                _json,
                st.fixed_dictionaries(
                    {"images": st.lists(st.fixed_dictionaries({"source": _json}), max_size=2)}
                ),
            )
        )
    if depth < 4 and draw(st.booleans()):
        data["crosspost_parent_list"] = draw(
            st.one_of(_json, st.lists(_submission(depth + 1), max_size=2))
        )
    return data


@_SETTINGS
@given(_submission())
def test_media_resolution_of_any_submission_dict_gives_items_or_skips(
    data: dict[str, Any],
) -> None:
    media, skipped = resolve_media(data)
    assert media or skipped
    urls = [item.url for item in media]
    assert len(urls) == len(set(urls))  # a submission's items never repeat a URL
    assert all(url.startswith(("http://", "https://")) for url in urls)


@_SETTINGS
@given(st.one_of(_submission(), _json))
def test_collecting_any_submission_gives_a_post_none_or_a_recorded_error(data: Any) -> None:
    stats = CollectStats()
    post = collect_submission(data, stats=stats, where="x")
    assert stats.posts_seen == 1
    if post is None:
        return
    assert post.id
    assert all(item.url for item in post.media)


# -- mutated real submissions ------------------------------------------------------------


def _real_submissions(reddit_data: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted((reddit_data / "listings").glob("*.json")):
        value = json.loads(path.read_text(encoding="utf-8"))
        for listing in value if isinstance(value, list) else [value]:
            for child in listing.get("data", {}).get("children", []):
                if child.get("kind") == "t3":
                    found.append(child["data"])
    return found


@pytest.fixture(scope="module")
def real_submissions(reddit_data: Path) -> list[dict[str, Any]]:
    found = _real_submissions(reddit_data)
    assert len(found) > 100
    return found


def _mutate(value: Any, draw: st.DrawFn, budget: list[int]) -> Any:
    if budget[0] <= 0:
        return value
    if isinstance(value, dict) and value:
        key = draw(st.sampled_from(sorted(value)))
        action = draw(st.sampled_from(["replace", "delete", "recurse", "recurse"]))
        budget[0] -= 1
        copy = dict(value)
        if action == "replace":
            copy[key] = draw(_json)
        elif action == "delete":
            del copy[key]
        else:
            copy[key] = _mutate(copy[key], draw, budget)
        return copy
    if isinstance(value, list) and value:
        index = draw(st.integers(0, len(value) - 1))
        copy = list(value)
        budget[0] -= 1
        copy[index] = _mutate(copy[index], draw, budget) if draw(st.booleans()) else draw(_json)
        return copy
    budget[0] -= 1
    return draw(_json)


@_SETTINGS
@given(st.data())
def test_mutated_real_submissions_give_a_post_none_or_a_recorded_error(
    real_submissions: list[dict[str, Any]], data: st.DataObject
) -> None:
    original = data.draw(st.sampled_from(real_submissions))
    budget = [data.draw(st.integers(1, 8))]
    mutated = original
    while budget[0] > 0:
        mutated = _mutate(mutated, data.draw, budget)
    stats = CollectStats()
    collect_submission(mutated, stats=stats)
    resolve_media(mutated)
    assert stats.posts_seen == 1


# -- listing files -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="redditvision-properties-") as folder:
        yield Path(folder)


def _read_listing(path: Path) -> None:
    source = ListingFileSource(path, max_bytes=4 * 1024 * 1024)
    try:
        posts = list(source.submissions())
    except (ListingFormatError, SourceError):
        return
    assert all(post.id for post in posts)


_listing_like = st.fixed_dictionaries(
    {
        "kind": st.one_of(st.just("Listing"), _scalar),
        "data": st.one_of(
            _json,
            st.fixed_dictionaries(
                {
                    "children": st.lists(
                        st.one_of(
                            st.fixed_dictionaries(
                                {"kind": st.one_of(st.just("t3"), _scalar), "data": _submission()}
                            ),
                            _json,
                        ),
                        max_size=4,
                    )
                }
            ),
        ),
    }
)


@_SETTINGS
@given(st.lists(st.one_of(_listing_like, _json), min_size=0, max_size=3), st.booleans())
def test_any_listing_json_gives_posts_or_a_listing_error(
    scratch: Path, values: list[Any], as_array: bool
) -> None:
    path = scratch / "listing.json"
    text = json.dumps(values) if as_array else "\n".join(json.dumps(value) for value in values)
    path.write_text(text, encoding="utf-8")
    _read_listing(path)


@pytest.fixture(scope="module")
def real_listing_bytes(reddit_data: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted((reddit_data / "listings").glob("*.json"))]


def _mutate_bytes(data: bytes, draw: st.DrawFn) -> bytes:
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        where = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "insert", "delete", "cut", "repeat"]))
        if action == "flip":
            data = (
                data[:where] + bytes([data[where] ^ draw(st.integers(1, 255))]) + data[where + 1 :]
            )
        elif action == "insert":
            data = data[:where] + draw(st.binary(min_size=1, max_size=8)) + data[where:]
        elif action == "delete":
            data = data[:where] + data[where + draw(st.integers(1, 64)) :]
        elif action == "cut":
            data = data[:where]
        else:
            data = data[:where] + data[where : where + 32] * 3 + data[where + 32 :]
    return data


def _compress(data: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(data)
    if kind == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


@_SETTINGS
@given(st.data(), st.sampled_from(["plain", "gzip", "zstd"]), st.booleans())
def test_mutated_real_listing_files_give_posts_or_the_sources_error(
    scratch: Path,
    real_listing_bytes: list[bytes],
    data: st.DataObject,
    kind: str,
    mutate_compressed: bool,
) -> None:
    original = data.draw(st.sampled_from(real_listing_bytes))
    if mutate_compressed:
        content = _mutate_bytes(_compress(original, kind), data.draw)
    else:
        content = _compress(_mutate_bytes(original, data.draw), kind)
    path = scratch / "mutated.json"
    path.write_bytes(content)
    _read_listing(path)


# -- dump files --------------------------------------------------------------------------

_line = st.one_of(
    _submission().map(lambda value: json.dumps(value).encode()),
    _json.map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries({"kind": _scalar, "data": _submission()}).map(
        lambda value: json.dumps(value).encode()
    ),
    st.binary(max_size=40),
    st.just(b"[" * 5000 + b"]" * 5000),
    st.just(b'{"id": "p", "score": ' + b"9" * 5000 + b"}"),
)


@_SETTINGS
@given(
    st.lists(_line, max_size=12),
    st.sampled_from(["plain", "gzip", "zstd"]),
    st.one_of(st.none(), st.floats(0.0, 1.0)),
)
def test_any_dump_plain_or_compressed_whole_or_cut_gives_posts_or_the_sources_error(
    scratch: Path, lines: list[bytes], kind: str, cut: float | None
) -> None:
    content = _compress(b"\n".join(lines) + b"\n", kind)
    if cut is not None:
        content = content[: int(len(content) * cut)]
    path = scratch / "dump.ndjson"
    path.write_bytes(content)
    source = DumpFileSource(path, max_line_bytes=64 * 1024, max_bytes=4 * 1024 * 1024)
    try:
        posts = list(source.submissions())
    except SourceError:  # ListingFormatError is one
        return
    assert all(post.id for post in posts)
    assert source.stats.posts_seen <= len(lines)


# -- download's posts lines ----------------------------------------------------------------

_post_like = st.fixed_dictionaries(
    {
        "id": _scalar,
        "subreddit": _scalar,
        "title": _scalar,
        "permalink": _scalar,
        "media": st.one_of(
            _json, st.lists(st.dictionaries(st.sampled_from(["url", "kind", "width"]), _json))
        ),
        "skipped": _json,
    }
)


@_SETTINGS
@given(
    st.lists(
        st.one_of(
            _post_like.map(json.dumps),
            _json.map(json.dumps),
            st.text(max_size=30),
            st.just("[" * 5000 + "]" * 5000),
        ),
        max_size=8,
    )
)
def test_any_posts_lines_give_posts_or_skipped_lines(lines: list[str]) -> None:
    stream = io.StringIO("\n".join(line.replace("\n", " ") for line in lines) + "\n")
    reader = _PostReader(stream, "posts.jsonl")
    posts = list(reader)
    assert len(posts) + reader.bad == reader.lines
