"""Media resolution turns messy submission JSON into image files or skips with a reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from redditvision import ListingFormatError
from redditvision.models import MediaItem, MediaKind, SkippedMedia
from redditvision.reddit import (
    CollectStats,
    DumpFileSource,
    ListingFileSource,
    PostFilters,
    SkipReason,
    collect_submission,
    post_from_submission_data,
    resolve_media,
)
from redditvision.serialize import post_from_json, post_to_json


def _entry(media_id: str, *, status: str = "valid", e: str = "Image") -> dict[str, Any]:
    return {
        "status": status,
        "e": e,
        "m": "image/jpg",
        "s": {"x": 640, "y": 480, "u": f"https://preview.redd.it/{media_id}.jpg?width=640&amp;s=a"},
        "id": media_id,
    }


def _gallery(metadata: dict[str, Any] | None, ids: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "id": "gal1",
        "subreddit": "BMW",
        "title": "gallery",
        "permalink": "/r/BMW/comments/gal1/gallery/",
        "url": "https://www.reddit.com/gallery/gal1",
        "domain": "reddit.com",
        "is_gallery": True,
        "gallery_data": {"items": [{"media_id": i, "id": n} for n, i in enumerate(ids)]},
        "media_metadata": metadata,
        **extra,
    }


def test_gallery_with_one_failed_item_keeps_the_valid_ones_in_order() -> None:
    data = _gallery(
        {"a": _entry("a"), "b": _entry("b", status="failed"), "c": _entry("c")}, ["a", "b", "c"]
    )
    media, skipped = resolve_media(data)
    assert [(m.media_id, m.gallery_index) for m in media] == [("a", 0), ("c", 2)]
    assert media[0].url == "https://preview.redd.it/a.jpg?width=640&s=a"
    assert (media[0].width, media[0].height) == (640, 480)
    assert skipped == (
        SkippedMedia(url="b", reason="gallery_item_failed", detail="item 1: status failed"),
    )


def test_gallery_whose_items_are_all_unprocessed_gives_no_media() -> None:
    data = _gallery({"a": {"status": "unprocessed"}, "b": {"status": "unprocessed"}}, ["a", "b"])
    media, skipped = resolve_media(data)
    assert media == ()
    assert [s.reason for s in skipped] == [SkipReason.GALLERY_ITEM_UNPROCESSED.value] * 2
    assert [s.url for s in skipped] == ["a", "b"]


def test_animated_gallery_entry_with_only_gif_is_animated_and_with_only_mp4_is_skipped() -> None:
    gif_only = {
        "status": "valid",
        "e": "AnimatedImage",
        "s": {"x": 10, "y": 20, "gif": "https://i.redd.it/g.gif"},
    }
    mp4_only = {
        "status": "valid",
        "e": "AnimatedImage",
        "s": {"mp4": "https://preview.redd.it/m.gif?format=mp4&amp;s=1"},
    }
    media, skipped = resolve_media(_gallery({"g": gif_only, "m": mp4_only}, ["g", "m"]))
    assert media == (
        MediaItem(
            url="https://i.redd.it/g.gif",
            kind=MediaKind.ANIMATED,
            width=10,
            height=20,
            gallery_index=0,
            media_id="g",
        ),
    )
    assert skipped[0].reason == "animated_video_only"
    assert skipped[0].url == "https://preview.redd.it/m.gif?format=mp4&s=1"


def test_gallery_data_without_media_metadata_skips_every_item() -> None:
    media, skipped = resolve_media(_gallery(None, ["a", "b"]))
    assert media == ()
    assert [(s.url, s.reason) for s in skipped] == [
        ("a", "gallery_metadata_missing"),
        ("b", "gallery_metadata_missing"),
    ]
    assert "media_metadata is null" in (skipped[0].detail or "")


def test_gallery_entry_without_s_is_skipped_and_the_others_kept() -> None:
    no_source = {"status": "valid", "e": "Image", "m": "image/png", "id": "n"}
    media, skipped = resolve_media(_gallery({"a": _entry("a"), "n": no_source}, ["a", "n"]))
    assert [m.media_id for m in media] == ["a"]
    assert [(s.url, s.reason) for s in skipped] == [("n", "gallery_item_no_source")]


def test_gallery_flag_without_items_is_an_empty_gallery_not_a_key_error() -> None:
    data = {"id": "x", "is_gallery": True, "gallery_data": None, "media_metadata": None}
    media, skipped = resolve_media(data)
    assert media == ()
    assert skipped[0].reason == "gallery_empty"


def test_crossposted_gallery_takes_media_from_the_parent_list() -> None:
    parent = _gallery({"a": _entry("a"), "b": _entry("b")}, ["a", "b"])
    parent["gallery_data"]["items"][1]["caption"] = "second"
    crosspost = {
        "id": "xp1",
        "subreddit": "pics",
        "title": "crossposted",
        "url": "/r/BMW/comments/gal1/gallery/",
        "crosspost_parent": "t3_gal1",
        "crosspost_parent_list": [parent],
    }
    media, skipped = resolve_media(crosspost)
    assert skipped == ()
    assert [(m.media_id, m.gallery_index, m.caption, m.from_crosspost) for m in media] == [
        ("a", 0, None, True),
        ("b", 1, "second", True),
    ]


def test_crosspost_without_parent_list_says_the_parent_is_missing() -> None:
    media, skipped = resolve_media(
        {"id": "xp2", "url": "https://www.reddit.com/gallery/abc", "crosspost_parent": "t3_abc"}
    )
    assert media == ()
    assert skipped[0].reason == "crosspost_parent_missing"
    assert "t3_abc" in (skipped[0].detail or "")


def test_preview_url_with_escaped_ampersands_is_decoded_and_marked_as_preview() -> None:
    data = {
        "id": "p1",
        "url": "https://imgur.com/AbCdEf",
        "domain": "imgur.com",
        "post_hint": "link",
        "preview": {
            "images": [
                {
                    "source": {
                        "url": "https://external-preview.redd.it/x.jpg?auto=webp&amp;s=abc&amp;v=2",
                        "width": 1200,
                        "height": 800,
                    }
                }
            ]
        },
    }
    media, skipped = resolve_media(data)
    assert skipped == ()
    assert media == (
        MediaItem(
            url="https://external-preview.redd.it/x.jpg?auto=webp&s=abc&v=2",
            width=1200,
            height=800,
            is_preview=True,
        ),
    )


def _preview(url: str, width: int = 1024, height: int = 768) -> dict[str, Any]:
    return {"images": [{"source": {"url": url, "width": width, "height": height}}]}


def test_direct_link_with_a_preview_keeps_the_preview_as_a_fallback_after_it() -> None:
    data = {
        "id": "d1",
        "url": "https://i.imgur.com/AbC123.gifv",
        "post_hint": "image",
        "preview": _preview("https://preview.redd.it/AbC123.gif?format=png8&amp;s=f", 480, 270),
    }
    media, skipped = resolve_media(data)
    assert skipped == ()
    assert media == (
        MediaItem(
            url="https://i.imgur.com/AbC123.gif", kind=MediaKind.ANIMATED, width=480, height=270
        ),
        MediaItem(
            url="https://preview.redd.it/AbC123.gif?format=png8&s=f",
            width=480,
            height=270,
            is_preview=True,
        ),
    )


def test_crossposted_direct_link_takes_the_parents_preview_as_fallback() -> None:
    parent = {
        "id": "par1",
        "url": "https://i.redd.it/par1.jpg",
        "preview": _preview("https://preview.redd.it/par1.jpg?auto=webp&amp;s=1"),
    }
    crosspost = {
        "id": "xp3",
        "url": "/r/pics/comments/par1/",
        "crosspost_parent": "t3_par1",
        "crosspost_parent_list": [parent],
        "preview": _preview("https://preview.redd.it/other.jpg"),
    }
    media, _ = resolve_media(crosspost)
    assert [(m.url, m.is_preview, m.from_crosspost) for m in media] == [
        ("https://i.redd.it/par1.jpg", False, True),
        ("https://preview.redd.it/par1.jpg?auto=webp&s=1", True, True),
    ]


def test_gallery_gets_no_fallback_preview_and_never_repeats_a_url() -> None:
    data = _gallery(
        {"a": _entry("a"), "b": _entry("b")},
        ["a", "b", "a"],
        preview=_preview("https://preview.redd.it/gal1.jpg"),
    )
    media, skipped = resolve_media(data)
    assert [(m.media_id, m.is_preview) for m in media] == [("a", False), ("b", False)]
    assert [(s.url, s.reason) for s in skipped] == [
        ("https://preview.redd.it/a.jpg?width=640&s=a", "duplicate_url")
    ]


def test_preview_with_the_links_own_url_is_not_added_twice() -> None:
    url = "https://i.redd.it/same.png"
    media, _ = resolve_media({"id": "s2", "url": url, "preview": _preview(url)})
    assert [(m.url, m.is_preview) for m in media] == [(url, False)]


def test_fallback_previews_are_counted_apart_from_images() -> None:
    stats = CollectStats()
    direct = {"id": "f1", "url": "https://i.redd.it/f1.jpg", "preview": _preview("https://p/f1")}
    page = {"id": "f2", "url": "https://imgur.com/f2", "preview": _preview("https://p/f2")}
    for data in (direct, page):
        assert collect_submission(data, stats=stats) is not None
    assert (stats.images, stats.previews, stats.fallback_previews) == (2, 1, 1)
    assert stats.posts_with_images == 2


@pytest.mark.parametrize(
    ("url", "expected", "kind"),
    [
        ("https://i.imgur.com/AbC123.GIFV?", "https://i.imgur.com/AbC123.gif", MediaKind.ANIMATED),
        ("http://i.imgur.com/AbC123.gifv?1", "http://i.imgur.com/AbC123.gif", MediaKind.ANIMATED),
        ("https://i.imgur.com/AbC123.JPG?", "https://i.imgur.com/AbC123.JPG", MediaKind.IMAGE),
        ("http://i.imgur.com/3f27eza.jpg?1", "http://i.imgur.com/3f27eza.jpg?1", MediaKind.IMAGE),
        ("https://i.redd.it/abc.gif", "https://i.redd.it/abc.gif", MediaKind.ANIMATED),
    ],
)
def test_imgur_links_resolve_by_extension_case_insensitively(
    url: str, expected: str, kind: MediaKind
) -> None:
    media, skipped = resolve_media({"id": "i1", "url": url, "domain": "i.imgur.com"})
    assert skipped == ()
    assert [(m.url, m.kind) for m in media] == [(expected, kind)]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"is_self": True, "url": "https://www.reddit.com/r/a/comments/x/"}, "self_post"),
        ({"is_video": True, "url": "https://v.redd.it/abc", "post_hint": "hosted:video"}, "video"),
        ({"url": "https://youtu.be/abc", "post_hint": "rich:video"}, "video"),
        ({"url": "https://example.com/clip.MP4"}, "video"),
        ({"url": "https://www.bbc.co.uk/news/1", "post_hint": "link"}, "not_an_image_link"),
        ({"url": "http://imgur.com/YY3bLP7"}, "image_host_page_no_preview"),
        ({"url": "ftp://example.com/a.jpg"}, "invalid_url"),
        ({}, "no_url"),
    ],
)
def test_videos_links_and_self_posts_are_skipped_with_a_reason(
    data: dict[str, Any], reason: str
) -> None:
    media, skipped = resolve_media({"id": "s1", **data})
    assert media == ()
    assert [s.reason for s in skipped] == [reason]


def test_deleted_author_becomes_none() -> None:
    for author in (None, "[deleted]"):
        post = post_from_submission_data({"id": "d1", "subreddit": "BMW", "author": author})
        assert post.author is None
        assert post.permalink == "/r/BMW/comments/d1/"


def test_emoji_and_300_character_cjk_titles_survive_the_json_line_round_trip() -> None:
    cjk = ("宝马三系轿车" * 50)[:300]
    for title in ("BMW M3 🚗💨 at the Nürburgring 🏁", cjk):
        post = post_from_submission_data(
            {"id": "t1", "subreddit": "BMW", "title": title, "url": "https://i.redd.it/a.jpg"}
        )
        line = json.dumps(post_to_json(post), ensure_ascii=False)
        assert post_from_json(json.loads(line)) == post
        assert post.title == title
    assert len(cjk) == 300


def test_submission_without_id_is_a_listing_format_error() -> None:
    with pytest.raises(ListingFormatError, match="no 'id'"):
        post_from_submission_data({"title": "no id"})


def test_min_size_and_allowed_domains_move_media_to_skipped(tmp_path: Path) -> None:
    small = {
        "id": "a",
        "url": "https://i.redd.it/a.jpg",
        "preview": {"images": [{"source": {"url": "https://p/x", "width": 100, "height": 80}}]},
    }
    other = {"id": "b", "url": "https://example.org/b.png"}
    path = tmp_path / "dump.ndjson"
    path.write_text("\n".join(json.dumps(d) for d in (small, other)) + "\n", encoding="utf-8")
    source = DumpFileSource(
        [path],
        filters=PostFilters(min_width=200, allowed_domains=["REDD.IT"], require_images=False),
    )
    posts = list(source.submissions())
    assert [p.skipped[-1].reason for p in posts] == ["too_small", "domain_not_allowed"]
    # The small image's fallback preview has the same 100x80 size: dropped as well.
    assert source.stats.skips == {"too_small": 2, "domain_not_allowed": 1}
    assert source.stats.posts_with_images == 0


def test_malformed_dump_line_is_reported_with_its_line_number_and_the_rest_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = {"id": "ok1", "subreddit": "BMW", "url": "https://i.redd.it/1.jpg"}
    lines = [
        json.dumps(good),
        '{"id": "broken", "url": ',
        "",
        json.dumps({**good, "id": "ok2"}),
        "[1, 2]",
    ]
    plain = tmp_path / "RS_sample.ndjson"
    plain.write_text("\n".join(lines) + "\n", encoding="utf-8")
    compressed = tmp_path / "RS_sample.zst"
    compressed.write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
    for path in (plain, compressed):
        source = DumpFileSource([path])
        caplog.clear()
        posts = list(source.submissions())
        assert [p.id for p in posts] == ["ok1", "ok2"]
        assert len(source.errors) == 2
        assert source.errors[0].startswith(f"{path}:2: malformed JSON")
        assert source.errors[1].startswith(f"{path}:5: expected a JSON object")
        assert f"{path}:2" in caplog.text


@pytest.mark.parametrize(
    "content",
    ['{"kind": "t1", "data": {"body": "a comment"}}', "[1, 2, 3]", "not json at all", ""],
)
def test_a_file_that_is_not_a_listing_is_a_listing_format_error(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "notes.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ListingFormatError, match=r"notes\.json is not a Reddit listing"):
        list(ListingFileSource([path]).submissions())


def test_a_dump_without_any_submission_line_is_a_listing_format_error(tmp_path: Path) -> None:
    path = tmp_path / "pretty.json"
    path.write_text('{\n  "kind": "Listing",\n  "data": {}\n}\n', encoding="utf-8")
    with pytest.raises(ListingFormatError, match="not an NDJSON submission dump"):
        list(DumpFileSource([path]).submissions())


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(
    [
        "url",
        "is_gallery",
        "gallery_data",
        "media_metadata",
        "crosspost_parent_list",
        "crosspost_parent",
        "preview",
        "post_hint",
        "is_self",
        "is_video",
        "domain",
        "items",
        "s",
        "e",
        "status",
        "media_id",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_keys, _json, max_size=8))
def test_resolution_never_raises_on_arbitrary_json(data: dict[str, Any]) -> None:
    media, skipped = resolve_media(data)
    assert media or skipped


def test_collect_submission_filters_and_counts_one_submission() -> None:
    stats = CollectStats()
    nsfw = {"id": "n1", "over_18": True, "url": "https://i.redd.it/n.jpg"}
    image = {"id": "i1", "url": "https://i.redd.it/i.jpg"}
    assert collect_submission(nsfw, stats=stats) is None
    kept = collect_submission(image, stats=stats)
    assert kept is not None and kept.media[0].url == "https://i.redd.it/i.jpg"
    assert collect_submission({"title": "no id"}, stats=stats, where="RS.ndjson:3") is None
    assert (stats.posts_seen, stats.posts_filtered, stats.images) == (3, {"nsfw": 1}, 1)
    assert stats.errors[0].startswith("RS.ndjson:3: a submission has no 'id'")
