"""Classifying the real recorded listings' posts, images from a loopback host; re-runs resume."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from harness import ImageHost
from redditvision.classify import Classifier
from redditvision.errors import ConfigError
from redditvision.models import ImagePost, MediaItem, TrainedModel
from redditvision.predict_posts import PostClassification, classify_posts
from redditvision.reddit import ListingFileSource
from serve_support import tiny_classifier, tiny_model

LABELS = {"3-4series", "x-suv", "z3-4-8"}


@pytest.fixture(scope="module")
def listing_host(reddit_data: Path, bmw_photos: Path) -> Iterator[tuple[ImageHost, list[Path]]]:
    """A loopback host serving a real photo at every image URL of the real listings."""
    listings = sorted((reddit_data / "listings").glob("*.json"))
    photos = sorted(bmw_photos.rglob("*.jpg"))
    host = ImageHost().start()
    try:
        for post in ListingFileSource(listings).submissions():
            for item in post.media:
                pick = int(hashlib.sha256(item.url.encode()).hexdigest(), 16) % len(photos)
                host.serve_url(item.url, photos[pick].read_bytes())
        yield host, listings
    finally:
        host.stop()


@pytest.fixture(scope="module")
def model(bmw_photos: Path) -> TrainedModel:
    return tiny_model(bmw_photos)


@pytest.fixture(scope="module")
def classifier(model: TrainedModel) -> Iterator[Classifier]:
    with tiny_classifier(model) as opened:
        yield opened


@pytest.fixture(scope="module")
def first_run(
    listing_host: tuple[ImageHost, list[Path]],
    classifier: Classifier,
    tmp_path_factory: pytest.TempPathFactory,
) -> PostClassification:
    host, listings = listing_host
    out = tmp_path_factory.mktemp("classify") / "out"
    return classify_posts(
        ListingFileSource(listings).submissions(),
        classifier,
        out,
        session=host.session(),
        allow_private_networks=True,
        low_confidence=0.6,
    )


def all_hits(host: ImageHost, posts: list[ImagePost]) -> int:
    return sum(host.hits(ImageHost.mapped_path(item.url)) for post in posts for item in post.media)


def test_every_media_item_gets_a_prediction_or_a_recorded_reason(
    first_run: PostClassification, listing_host: tuple[ImageHost, list[Path]]
) -> None:
    _, listings = listing_host
    posts = list(ListingFileSource(listings).submissions())
    expected = {f"{post.id}:{index}" for post in posts for index in range(len(post.media))}
    assert {item.key for item in first_run.items} == expected
    classified = [item for item in first_run.items if item.classified]
    assert len(classified) >= 150
    for item in first_run.items:
        assert item.classified or item.reason, item
    for item in classified:
        assert item.label in LABELS
        assert set(item.scores) == LABELS
        assert item.score == max(item.scores.values())
        assert item.sha256 and len(item.sha256) == 64
        assert item.permalink.startswith("https://www.reddit.com/r/")
        assert item.low_confidence == (item.score < 0.6)
    # Fallback previews of posts whose own image was fetched are recorded, not fetched.
    assert any("skipped" in (item.reason or "") for item in first_run.items)
    assert first_run.predicted == len({item.sha256 for item in classified})
    assert first_run.predicted + first_run.reused == len(classified)


def test_predictions_file_and_summary_say_the_same(first_run: PostClassification) -> None:
    lines = first_run.predictions_file.read_text("utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == len(first_run.items)
    row = next(r for r in rows if r["label"] is not None)
    for field in (
        "post_id",
        "permalink",
        "title",
        "author",
        "image_url",
        "sha256",
        "label",
        "score",
        "scores",
    ):
        assert field in row
    summary = json.loads(first_run.summary_file.read_text("utf-8"))
    assert summary == json.loads(json.dumps(first_run.summary))
    classified = sum(1 for r in rows if r["label"] is not None)
    assert sum(summary["labels"].values()) + summary["low_confidence"]["count"] == classified
    assert summary["low_confidence"]["threshold"] == 0.6
    assert summary["not_classified"]["count"] == len(rows) - classified
    assert set(summary["labels"]) <= LABELS


def test_a_rerun_fetches_and_predicts_nothing_new_and_a_new_post_alone_is_predicted(
    first_run: PostClassification,
    listing_host: tuple[ImageHost, list[Path]],
    classifier: Classifier,
    bmw_photos: Path,
) -> None:
    host, listings = listing_host
    posts = list(ListingFileSource(listings).submissions())
    hits = all_hits(host, posts)
    before = first_run.predictions_file.read_text("utf-8")
    again = classify_posts(
        posts,
        classifier,
        first_run.out_dir,
        session=host.session(),
        allow_private_networks=True,
        low_confidence=0.6,
    )
    assert again.predicted == 0
    assert all_hits(host, posts) == hits
    assert again.predictions_file.read_text("utf-8") == before

    # New bytes (a mirrored photo), so it is not a duplicate of an image already seen.
    with Image.open(sorted((bmw_photos / "BMW M3 Coupe 2012").iterdir())[0]) as opened:
        buffer = io.BytesIO()
        ImageOps.mirror(opened.convert("RGB")).save(buffer, format="JPEG")
    url = host.serve("/new/m3.jpg", buffer.getvalue())
    new = ImagePost(
        id="newpost",
        subreddit="BMW",
        title="<b>my new M3</b>",
        permalink="/r/BMW/comments/newpost/",
        author="someone",
        media=(MediaItem(url=url),),
    )
    third = classify_posts(
        [*posts, new],
        classifier,
        first_run.out_dir,
        session=host.session(),
        allow_private_networks=True,
        low_confidence=0.6,
    )
    assert third.predicted == 1
    assert host.hits("/new/m3.jpg") == 1
    assert all_hits(host, posts) == hits
    added = next(item for item in third.items if item.post_id == "newpost")
    assert added.label in LABELS
    assert third.html_file is not None
    page = third.html_file.read_text("utf-8")
    assert "&lt;b&gt;my new M3&lt;/b&gt;" in page
    assert "<b>my new M3</b>" not in page


def test_an_unreadable_image_gets_a_reason_and_the_rest_are_predicted(
    image_host: ImageHost, classifier: Classifier, bmw_photos: Path, tmp_path: Path
) -> None:
    photo = sorted((bmw_photos / "BMW X5 SUV 2007").iterdir())[0].read_bytes()
    good = image_host.serve("/good.jpg", photo)
    bad = image_host.serve("/bad.jpg", b"<html>not an image</html>")
    gone = image_host.serve("/gone.jpg", b"", status=404)
    posts = [
        ImagePost(
            id=f"p{i}",
            subreddit="BMW",
            title=f"t{i}",
            permalink=f"/r/BMW/comments/p{i}/",
            media=(MediaItem(url=url),),
        )
        for i, url in enumerate((good, bad, gone))
    ]
    result = classify_posts(posts, classifier, tmp_path / "out", allow_private_networks=True)
    by_post = {item.post_id: item for item in result.items}
    assert by_post["p0"].label in LABELS
    assert not by_post["p1"].classified and by_post["p1"].reason
    assert not by_post["p2"].classified and "404" in (by_post["p2"].reason or "")
    assert result.summary["not_classified"]["count"] == 2


def test_a_threshold_outside_zero_one_is_refused(classifier: Classifier, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="low_confidence"):
        classify_posts([], classifier, tmp_path, low_confidence=1.5)
