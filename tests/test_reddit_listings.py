"""The offline sources give exact, hand-checked counts on each real Reddit listing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import zstandard

from redditvision.models import MediaKind
from redditvision.reddit import DumpFileSource, ListingFileSource, PostFilters

# Counts established by reading the JSON (post_hint, is_gallery, gallery_data.items,
# media_metadata status/e, is_self, is_video, url extension) with the default filters.
EXPECTED: dict[str, dict[str, Any]] = {
    # r/popular hot: 50 i.redd.it images (one .gif), 14 galleries with 59 valid Image items,
    # 24 hosted videos + 1 streamable, 6 self posts, 5 news links. Each of the 50 direct
    # links has a Reddit preview: 50 fallback previews (galleries get none).
    "TestSubmission.test_hide_multiple_in_batches.0.json": {
        "posts_seen": 100,
        "posts_filtered": {},
        "posts_with_images": 64,
        "posts_without_images": 36,
        "images": 109,
        "animated": 1,
        "previews": 0,
        "gallery_items": 59,
        "fallback_previews": 50,
        "skips": {"not_an_image_link": 5, "self_post": 6, "video": 25},
    },
    # A multireddit's top: 74 post_hint image + 5 old direct .jpg links, 18 imgur.com pages,
    # one 500px page and one flickr page through Reddit's preview, and one imgur.com page
    # from 2014 with no preview at all. The 74 post_hint image links carry a fallback
    # preview; the 5 old .jpg links have no preview.
    "TestMultiredditListings.test_top.0.json": {
        "posts_seen": 100,
        "posts_filtered": {},
        "posts_with_images": 99,
        "posts_without_images": 1,
        "images": 99,
        "animated": 0,
        "previews": 20,
        "gallery_items": 0,
        "fallback_previews": 74,
        "skips": {"image_host_page_no_preview": 1},
    },
    # r/askreddit top: all self posts; 6 are NSFW and filtered by default.
    "TestSubredditListings.test_top.0.json": {
        "posts_seen": 100,
        "posts_filtered": {"nsfw": 6},
        "posts_with_images": 0,
        "posts_without_images": 94,
        "images": 0,
        "animated": 0,
        "previews": 0,
        "gallery_items": 0,
        "fallback_previews": 0,
        "skips": {"self_post": 94},
    },
    "TestSubreddit.test_submit_gallery.0.json": {
        "posts_seen": 1,
        "posts_filtered": {},
        "posts_with_images": 1,
        "posts_without_images": 0,
        "images": 4,
        "animated": 1,
        "previews": 0,
        "gallery_items": 4,
        "fallback_previews": 0,
        "skips": {},
    },
    "TestSubreddit.test_submit_gallery__selftext.0.json": {
        "posts_seen": 1,
        "posts_filtered": {},
        "posts_with_images": 0,
        "posts_without_images": 1,
        "images": 0,
        "animated": 0,
        "previews": 0,
        "gallery_items": 0,
        "fallback_previews": 0,
        "skips": {"gallery_item_unprocessed": 4},
    },
    "TestSubmission.test_crosspost.0.json": {
        "posts_seen": 1,
        "posts_filtered": {},
        "posts_with_images": 0,
        "posts_without_images": 1,
        "images": 0,
        "animated": 0,
        "previews": 0,
        "gallery_items": 0,
        "fallback_previews": 0,
        "skips": {"self_post": 1},
    },
    # The crosspost of a self post: its parent (in crosspost_parent_list) decides.
    "TestSubmission.test_crosspost.1.json": {
        "posts_seen": 1,
        "posts_filtered": {},
        "posts_with_images": 0,
        "posts_without_images": 1,
        "images": 0,
        "animated": 0,
        "previews": 0,
        "gallery_items": 0,
        "fallback_previews": 0,
        "skips": {"self_post": 1},
    },
}
for _index, _animated in ((0, 0), (1, 0), (2, 1)):
    EXPECTED[f"TestSubreddit.test_submit_image.{_index}.json"] = {
        "posts_seen": 1,
        "posts_filtered": {},
        "posts_with_images": 1,
        "posts_without_images": 0,
        "images": 1,
        "animated": _animated,
        "previews": 0,
        "gallery_items": 0,
        "fallback_previews": 1,
        "skips": {},
    }


def test_every_real_listing_has_expected_counts(reddit_data: Path) -> None:
    names = {path.name for path in (reddit_data / "listings").glob("*.json")}
    assert names == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_listing_counts_match_the_json(reddit_data: Path, name: str) -> None:
    source = ListingFileSource([reddit_data / "listings" / name])
    posts = list(source.submissions())
    counts = source.stats.as_dict()
    assert counts.pop("errors") == []
    assert counts == EXPECTED[name]
    assert len(posts) == counts["posts_with_images"]
    # Each direct link with a Reddit preview carries that preview as a fallback item.
    assert sum(len(post.media) for post in posts) == (
        counts["images"] + counts["fallback_previews"]
    )
    assert sum(m.is_preview for p in posts for m in p.media) == (
        counts["previews"] + counts["fallback_previews"]
    )
    for post in posts:
        assert len({m.url for m in post.media}) == len(post.media)


def test_gallery_items_keep_order_captions_and_animation(reddit_data: Path) -> None:
    path = reddit_data / "listings" / "TestSubreddit.test_submit_gallery.0.json"
    (post,) = ListingFileSource([path]).submissions()
    assert post.id == "huw6vs"
    assert [m.media_id for m in post.media] == [
        "pb7qsvi6i3c51",
        "14wmudl6i3c51",
        "vkm62gm6i3c51",
        "wka18en6i3c51",
    ]
    assert [m.gallery_index for m in post.media] == [0, 1, 2, 3]
    assert [m.caption for m in post.media] == [None, "test.jpg", None, "test.png"]
    assert [m.kind for m in post.media] == [
        MediaKind.IMAGE,
        MediaKind.IMAGE,
        MediaKind.ANIMATED,
        MediaKind.IMAGE,
    ]
    assert post.media[2].url == "https://i.redd.it/vkm62gm6i3c51.gif"
    assert all((m.width, m.height) == (128, 128) for m in post.media)


def test_direct_image_submissions_resolve_to_their_i_redd_it_files(reddit_data: Path) -> None:
    paths = [
        reddit_data / "listings" / f"TestSubreddit.test_submit_image.{i}.json" for i in range(3)
    ]
    posts = list(ListingFileSource(paths).submissions())
    assert [p.media[0].url.rsplit(".", 1)[1] for p in posts] == ["png", "jpg", "gif"]
    assert all(p.media[0].url.startswith("https://i.redd.it/") for p in posts)
    assert not any(p.media[0].is_preview for p in posts)
    # Reddit's preview of each follows as the fallback for a deleted original.
    assert [len(p.media) for p in posts] == [2, 2, 2]
    assert all(p.media[1].is_preview for p in posts)
    assert all(p.media[1].url.startswith("https://preview.redd.it/") for p in posts)
    assert all(p.media[1].width == p.media[0].width for p in posts)


def test_nsfw_posts_come_back_when_included(reddit_data: Path) -> None:
    path = reddit_data / "listings" / "TestSubredditListings.test_top.0.json"
    source = ListingFileSource(path, filters=PostFilters(include_nsfw=True, require_images=False))
    posts = list(source.submissions())
    assert len(posts) == 100
    assert sum(p.over_18 for p in posts) == 6
    assert source.stats.skips == {"self_post": 100}


def test_min_score_filter_counts_the_dropped_posts(reddit_data: Path) -> None:
    path = reddit_data / "listings" / "TestMultiredditListings.test_top.0.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    scores = [child["data"]["score"] for child in data["data"]["children"]]
    source = ListingFileSource(path, filters=PostFilters(min_score=6000))
    posts = list(source.submissions())
    assert source.stats.posts_filtered == {"low_score": sum(s < 6000 for s in scores)}
    assert all(p.score >= 6000 for p in posts)


def test_array_of_listings_and_concatenated_pages_are_read(
    reddit_data: Path, tmp_path: Path
) -> None:
    listings = reddit_data / "listings"
    one = json.loads((listings / "TestSubreddit.test_submit_image.0.json").read_text("utf-8"))
    two = json.loads((listings / "TestSubreddit.test_submit_image.1.json").read_text("utf-8"))
    comments = {"kind": "Listing", "data": {"children": [{"kind": "t1", "data": {"id": "c"}}]}}
    array = tmp_path / "comments.json"
    array.write_text(json.dumps([one, comments]), encoding="utf-8")
    pages = tmp_path / "pages.json"
    pages.write_text(json.dumps(one) + "\n" + json.dumps(two) + "\n", encoding="utf-8")
    assert [p.id for p in ListingFileSource([array]).submissions()] == ["16xb01r"]
    assert [p.id for p in ListingFileSource([pages]).submissions()] == ["16xb01r", "16xb06z"]


@pytest.mark.parametrize("compress", [False, True])
def test_dump_of_a_real_listing_gives_the_same_posts(
    reddit_data: Path, tmp_path: Path, compress: bool
) -> None:
    listing = reddit_data / "listings" / "TestSubmission.test_hide_multiple_in_batches.0.json"
    children = json.loads(listing.read_text("utf-8"))["data"]["children"]
    # Dumps hold bare submission objects; half the lines here are t3 things instead.
    lines = [json.dumps(c["data"] if i % 2 else c) for i, c in enumerate(children)]
    payload = ("\n".join(lines) + "\n").encode("utf-8")
    path = tmp_path / ("RS.ndjson.zst" if compress else "RS.ndjson")
    path.write_bytes(zstandard.ZstdCompressor().compress(payload) if compress else payload)
    dump = DumpFileSource([path])
    offline = ListingFileSource([listing])
    assert list(dump.submissions()) == list(offline.submissions())
    assert dump.stats == offline.stats


def test_compressed_listing_file_is_read_like_the_plain_one(
    reddit_data: Path, tmp_path: Path
) -> None:
    listing = reddit_data / "listings" / "TestSubreddit.test_submit_gallery.0.json"
    packed = tmp_path / "gallery.json.zst"
    packed.write_bytes(zstandard.ZstdCompressor().compress(listing.read_bytes()))
    assert list(ListingFileSource(packed).submissions()) == list(
        ListingFileSource(listing).submissions()
    )
