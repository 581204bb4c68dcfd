"""The Beam transforms on the DirectRunner, over the real listings and a loopback image server."""

from __future__ import annotations

import builtins
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import requests

beam = pytest.importorskip("apache_beam")

from apache_beam.metrics.metric import MetricsFilter  # noqa: E402
from apache_beam.options.pipeline_options import (  # noqa: E402
    GoogleCloudOptions,
    StandardOptions,
)
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline  # noqa: E402
from apache_beam.testing.util import assert_that, equal_to  # noqa: E402

from harness import ImageHost, RouteAdapter  # noqa: E402
from redditvision.beam import (  # noqa: E402
    BIGQUERY_SCHEMA,
    DeadLetter,
    ImageResult,
    PipelineConfig,
    ReadSubmissions,
    ResolveMedia,
    build_pipeline,
    result_to_row,
)
from redditvision.beam.__main__ import main, parse_args  # noqa: E402
from redditvision.errors import MissingDependencyError  # noqa: E402
from redditvision.labelers import ImageLabels  # noqa: E402
from redditvision.models import (  # noqa: E402
    GenericLabel,
    ImageRecord,
    LabeledDataset,
    LabeledImage,
    Prediction,
    RecordStatus,
)
from redditvision.reddit import DumpFileSource, ListingFileSource  # noqa: E402

SUBMIT_IMAGES = [f"TestSubreddit.test_submit_image.{i}.json" for i in range(3)]
GALLERY = "TestSubreddit.test_submit_gallery.0.json"


@attrs.frozen
class LoopbackRoutes:
    """A picklable session factory: real image origins are answered by a loopback ImageHost.

    The harness's own ``ImageHost.session()`` holds the server object, which cannot be
    pickled into Beam workers; this holds only its address.
    """

    base_url: str
    origins: tuple[str, ...]

    def rewrite(self, url: str) -> str:
        return self.base_url + ImageHost.mapped_path(url)

    def __call__(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        for origin in self.origins:
            session.mount(origin, RouteAdapter(self))
        return session


def _children(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text(encoding="utf-8"))
    return [child["data"] for child in document["data"]["children"] if child["kind"] == "t3"]


def _letters_matching(expected: list[tuple[str, str, str]]) -> Any:
    """Matcher: the dead letters' (step, key, reason prefix) are exactly ``expected``."""

    def check(actual: list[DeadLetter]) -> None:
        got = sorted((d.step, d.key, d.reason) for d in actual)
        want = sorted(expected)
        assert len(got) == len(want), got
        for (step, key, reason), (w_step, w_key, w_reason) in zip(got, want, strict=True):
            assert (step, key) == (w_step, w_key), got
            assert reason.startswith(w_reason), got

    return check


# --------------------------------------------------------------------------- read / resolve


def test_read_submissions_yields_the_collect_steps_posts(reddit_data: Path, tmp_path: Path) -> None:
    listings = reddit_data / "listings"
    expected = list(ListingFileSource(sorted(listings.glob("*.json"))).submissions())
    assert len(expected) == 167  # 99 + 64 + 1 + 1 + 1 + 1 image posts, see the README
    not_a_listing = tmp_path / "comments.json"
    not_a_listing.write_text('{"kind": "t1", "data": {}}')
    with BeamTestPipeline() as pipeline:
        posts, dead = pipeline | ReadSubmissions(
            listings=[str(listings / "*.json"), str(not_a_listing)]
        )
        assert_that(posts, equal_to(expected), label="posts")
        assert_that(
            dead,
            _letters_matching([("read", str(not_a_listing), "ListingFormatError")]),
            label="dead",
        )


def _replayed_source() -> Any:
    """Build a RedditImageSource over praw with dummy credentials (picklable factory)."""
    import praw

    from redditvision.reddit import RedditImageSource

    reddit = praw.Reddit(
        client_id="dummy-id",
        client_secret="dummy-secret",
        user_agent="linux:redditvision-tests:0.1 (replay)",
        check_for_updates=False,
    )
    return RedditImageSource(reddit=reddit)


def test_read_submissions_reads_subreddits_through_praw_and_dead_letters_a_failing_one(
    reddit_data: Path,
) -> None:
    vcr = pytest.importorskip("vcr")
    expected = list(
        ListingFileSource(
            [reddit_data / "listings" / "TestSubmission.test_hide_multiple_in_batches.0.json"]
        ).submissions()
    )
    # Recorded r/popular traffic, matched on method and path; r/nosuchplace was never
    # recorded, so its request fails like a network error would.
    recorder = vcr.VCR(record_mode="none", match_on=["method", "path"])
    cassette = reddit_data / "cassettes" / "TestSubmission.test_hide_multiple_in_batches.json"
    with recorder.use_cassette(str(cassette)), BeamTestPipeline() as pipeline:
        posts, dead = pipeline | ReadSubmissions(
            subreddits=["popular", "nosuchplace"],
            sort="hot",
            limit=100,
            source_factory=_replayed_source,
        )
        assert_that(posts, equal_to(expected), label="posts")
        assert_that(dead, _letters_matching([("read", "r/nosuchplace", "")]), label="dead")


def test_read_submissions_reads_dumps_and_reports_bad_lines_with_their_number(
    reddit_data: Path, tmp_path: Path
) -> None:
    children = _children(
        reddit_data / "listings" / "TestSubmission.test_hide_multiple_in_batches.0.json"
    )
    dump = tmp_path / "dump.ndjson"
    lines = [json.dumps(c) for c in children[:10]]
    lines.insert(2, "{not json")
    dump.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = list(DumpFileSource([dump]).submissions())
    assert expected
    with BeamTestPipeline() as pipeline:
        posts, dead = pipeline | ReadSubmissions(dumps=[str(dump)])
        assert_that(posts, equal_to(expected), label="posts")
        assert_that(dead, _letters_matching([("read", f"{dump}:3", "bad_input")]), label="dead")


def test_resolve_media_turns_submission_dicts_into_the_same_posts(reddit_data: Path) -> None:
    path = reddit_data / "listings" / "TestSubmission.test_hide_multiple_in_batches.0.json"
    expected = list(ListingFileSource([path]).submissions())
    assert len(expected) == 64
    with BeamTestPipeline() as pipeline:
        posts, dead = (
            pipeline | beam.Create([*_children(path), {"title": "no id at all"}]) | ResolveMedia()
        )
        assert_that(posts, equal_to(expected), label="posts")
        assert_that(dead, _letters_matching([("resolve", "?", "ListingFormatError")]), label="dead")


# --------------------------------------------------------------------------- rows, options, guard


def test_result_rows_follow_the_bigquery_schema() -> None:
    record = ImageRecord(
        post_id="abc",
        index=1,
        url="https://i.redd.it/x.jpg",
        status=RecordStatus.OK,
        subreddit="BMW",
        title="Z4 🚗",
        author=None,
        permalink="/r/BMW/comments/abc/",
    )
    result = ImageResult(
        sha256="0" * 64,
        uri="gs://bucket/images/00/x.jpg",
        width=640,
        height=480,
        format="JPEG",
        size_bytes=1234,
        sources=(record,),
        predictions=(Prediction(label="z4", score=0.9, model_label="z4"),),
        generic=ImageLabels(
            labels=(GenericLabel(label="sports car", score=None, source="imagenet"),)
        ),
    )
    types = {"STRING": str, "INTEGER": int, "FLOAT": float}

    def check(row: dict[str, Any], fields: list[dict[str, Any]]) -> None:
        assert set(row) == {f["name"] for f in fields}
        for field in fields:
            value = row[field["name"]]
            if field["mode"] == "REPEATED":
                assert isinstance(value, list) and value, field["name"]
                for item in value:
                    check(item, field["fields"])
            elif value is None:
                assert field["mode"] == "NULLABLE", field["name"]
            else:
                assert isinstance(value, types[field["type"]]), field["name"]

    row = result_to_row(result)
    check(row, BIGQUERY_SCHEMA["fields"])
    assert (row["top_label"], row["top_score"]) == ("z4", 0.9)
    assert json.loads(json.dumps(row, ensure_ascii=False)) == row


def test_entry_point_passes_standard_options_through_to_beam(tmp_path: Path) -> None:
    config, options = parse_args(
        [
            "--listing",
            "gs://bucket/listings/*.json",
            "--model",
            "gs://bucket/models/bmw",
            "--output",
            "gs://bucket/run",
            "--runner",
            "DataflowRunner",
            "--project",
            "p1",
            "--region",
            "europe-west1",
            "--temp_location",
            "gs://bucket/tmp",
        ]
    )
    assert config.listings == ("gs://bucket/listings/*.json",)
    assert config.model == "gs://bucket/models/bmw"
    assert config.join("images") == "gs://bucket/run/images"
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    cloud = options.view_as(GoogleCloudOptions)
    assert (cloud.project, cloud.region, cloud.temp_location) == (
        "p1",
        "europe-west1",
        "gs://bucket/tmp",
    )


def test_entry_point_refuses_a_vertex_backend_without_its_project(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse_args(
            [
                "--listing",
                "x.json",
                "--output",
                "out",
                "--backend",
                "vertex",
                "--model",
                "projects/p/locations/l/models/1",
            ]
        )
    assert "--vertex-project" in capsys.readouterr().err


def test_import_without_beam_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_beam(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "apache_beam" or name.startswith("apache_beam."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_beam)
    for name in [m for m in sys.modules if m.startswith("redditvision.beam")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(MissingDependencyError, match=r"pip install 'redditvision\[beam\]'"):
        import redditvision.beam  # noqa: F401


# --------------------------------------------------------------------------- the whole job


@pytest.fixture(scope="module")
def tiny_model(bmw_photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real local model trained on 4 + 4 real photos (Z4 against X5), one head, no search."""
    pytest.importorskip("torch")
    from redditvision.backends.local import Candidate, LocalBackend

    images = [
        LabeledImage(path=path, label=label, original_label=label)
        for folder, label in (("BMW Z4 Convertible 2012", "z4"), ("BMW X5 SUV 2007", "x5"))
        for path in sorted((bmw_photos / folder).iterdir())[:4]
    ]
    root = tmp_path_factory.mktemp("model")
    with LocalBackend(
        cache_dir=root / "cache",
        model_dir=root,
        candidates=[Candidate(name="logreg-C0.1", head="logreg", c=0.1)],
    ) as backend:
        model = backend.train(LabeledDataset(images=tuple(images)), out=root / "bmw")
    return Path(model.resource)


@pytest.fixture
def served(reddit_data: Path, bmw_photos: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Real listings, their real URLs answered by a loopback server with real photos.

    Besides the three image submissions and the gallery, a repost listing (a copy of the
    first image submission under another id and subreddit, same URL) makes a URL
    duplicate; two gallery items are served the same photo (same bytes, other URLs); one
    gallery item answers 404. The GIF submission's original answers 404 too, so its
    Reddit preview (a fallback item) is fetched; the other posts' previews are not served
    and must never be asked for.
    """
    listings = reddit_data / "listings"
    folder = tmp_path / "listings"
    folder.mkdir()
    for name in [*SUBMIT_IMAGES, GALLERY]:
        shutil.copy(listings / name, folder / name)
    document = json.loads((listings / SUBMIT_IMAGES[0]).read_text(encoding="utf-8"))
    original = document["data"]["children"][0]["data"]
    repost = {
        **original,
        "id": "repost1",
        "name": "t3_repost1",
        "subreddit": "BMW",
        "permalink": "/r/BMW/comments/repost1/",
    }
    document["data"]["children"] = [{"kind": "t3", "data": repost}]
    (folder / "repost.json").write_text(json.dumps(document), encoding="utf-8")

    posts = list(ListingFileSource(sorted(folder.glob("*.json"))).submissions())
    # The three image submissions and the repost also carry Reddit's preview as a fallback
    # item, fetched only when the post's own image fails.
    items = [
        (post, index, item)
        for post in posts
        for index, item in enumerate(post.media)
        if not item.is_preview
    ]
    assert sum(len(post.media) for post in posts) == len(items) + 4
    urls = sorted({item.url for _, _, item in items})
    assert len(posts) == 5 and len(items) == 8 and len(urls) == 7
    photos = sorted((bmw_photos / "BMW Z4 Convertible 2012").iterdir())
    gallery = next(post for post in posts if post.id == "huw6vs")
    missing = gallery.media[3].url
    same_a, same_b = gallery.media[0].url, gallery.media[1].url
    gif = next(post for post in posts if post.id == "16xb0aa")
    (gif_original, gif_preview) = (gif.media[0].url, gif.media[1].url)
    assert gif.media[1].is_preview and not gif.media[0].is_preview
    previews = [i.url for p in posts for i in p.media if i.is_preview and i.url != gif_preview]
    assert len(previews) == 3
    with ImageHost() as host:
        served_urls = [u for u in urls if u not in (missing, gif_original)] + [gif_preview]
        for number, url in enumerate(served_urls):
            photo = photos[0] if url in (same_a, same_b) else photos[number + 1]
            host.serve_url(url, photo.read_bytes())
        for url in (missing, gif_original):
            host.serve_url(url, b"gone", status=404, content_type="text/plain")
        for url in previews:  # registers the origin; a hit here would be a wrong fetch
            host.serve_url(url, b"not a fallback", status=410, content_type="text/plain")
        yield {
            "host": host,
            "folder": folder,
            "posts": posts,
            "session": LoopbackRoutes(host.base_url, tuple(sorted(host._origins))),
            "missing": (gallery.id, 3, missing),
            "gif": (gif.id, gif_original, gif_preview),
            "previews": previews,
            "same": (same_a, same_b),
            "repost_url": original["url"],
        }


def _counter(result: Any, name: str) -> int:
    found = result.metrics().query(MetricsFilter().with_name(name))["counters"]
    return int(sum(c.committed for c in found))


@pytest.mark.slow
def test_pipeline_fetches_each_url_once_classifies_each_picture_once_and_dead_letters_failures(
    served: dict[str, Any], tiny_model: Path, tmp_path: Path
) -> None:
    host: ImageHost = served["host"]
    out = tmp_path / "out"
    config = PipelineConfig(
        output=str(out),
        # The third image submission is read twice (two patterns match its file): it is
        # still one source of its picture.
        listings=[str(served["folder"] / "*.json"), str(served["folder"] / SUBMIT_IMAGES[2])],
        model=str(tiny_model),
        generic_labels="imagenet",
        torch_threads=1,  # builds the model and labeler with the workers' factories
        allow_private_networks=True,
        session_factory=served["session"],
    )
    gallery_id, missing_index, missing_url = served["missing"]
    same_a, same_b = served["same"]
    repost_url = served["repost_url"]  # the matchers below are pickled: no server inside
    served_posts = served["posts"]
    gif_id, gif_original, gif_preview = served["gif"]
    pipeline = BeamTestPipeline()
    outputs = build_pipeline(pipeline, config)

    def check_results(results: list[ImageResult]) -> None:
        # 7 distinct URLs of the posts' own images, two 404, two serving the same bytes,
        # and the GIF post's preview fallback: 5 distinct pictures.
        assert len(results) == 5, results
        by_url = {s.url: r for r in results for s in r.sources}
        assert gif_original not in by_url
        assert [(s.post_id, s.index) for s in by_url[gif_preview].sources] == [(gif_id, 1)]
        assert by_url[same_a] is by_url[same_b]
        assert len(by_url[same_a].sources) == 2
        # One worker fetched both: the downloader's duplicate names the real key it repeats.
        original, duplicate = sorted(by_url[same_a].sources, key=lambda r: r.status.value != "ok")
        assert (original.status, duplicate.status) == (RecordStatus.OK, RecordStatus.DUPLICATE)
        assert duplicate.duplicate_of == original.key
        assert original.key in (duplicate.reason or "")
        keys = {f"{p.id}:{i}" for p in served_posts for i in range(len(p.media))}
        assert {s.near_duplicate_group for r in results for s in r.sources} <= keys
        reposted = by_url[repost_url]
        assert sorted(s.post_id for s in reposted.sources) == ["16xb01r", "repost1"]
        assert sorted(s.subreddit for s in reposted.sources) == ["<TEST_SUBREDDIT>", "BMW"]
        for result in results:
            assert len({s.key for s in result.sources}) == len(result.sources)
            assert Path(result.uri).is_file() and result.uri.startswith(str(out / "images"))
            assert Path(result.uri).stem == result.sha256
            assert result.predictions is not None
            assert {p.label for p in result.predictions} == {"z4", "x5"}
            assert result.generic is not None and result.generic.labels
            assert all(g.source == "imagenet" for g in result.generic.labels)

    assert_that(outputs["results"], check_results, label="results")
    assert_that(
        outputs["dead_letter"],
        _letters_matching(
            [
                ("download", f"{gallery_id}:{missing_index}", "failed"),
                ("download", f"{gif_id}:0", "failed"),
            ]
        ),
        label="dead",
    )
    result = pipeline.run()
    result.wait_until_finish()

    assert host.hits(ImageHost.mapped_path(repost_url)) == 1
    assert host.hits(ImageHost.mapped_path(gif_preview)) == 1
    assert [host.hits(ImageHost.mapped_path(url)) for url in served["previews"]] == [0, 0, 0]
    assert _counter(result, "urls_fetched") == 8  # 7 own URLs and one preview fallback
    assert _counter(result, "images_stored") == 7  # 8 own items, less two 404, plus the preview
    assert _counter(result, "images_classified") == 5
    assert _counter(result, "images_labeled") == 5
    rows = [
        json.loads(line)
        for shard in sorted(out.glob("results-*.jsonl"))
        for line in shard.read_text(encoding="utf-8").splitlines()
    ]
    assert len(rows) == 5 and all(row["top_label"] in {"z4", "x5"} for row in rows)
    letters = [
        json.loads(line)
        for shard in sorted(out.glob("dead_letter-*.jsonl"))
        for line in shard.read_text(encoding="utf-8").splitlines()
    ]
    assert sorted((d["step"], d["key"], d["detail"]) for d in letters) == sorted(
        [
            ("download", f"{gallery_id}:{missing_index}", missing_url),
            ("download", f"{gif_id}:0", gif_original),
        ]
    )
    assert all("404" in letter["reason"] for letter in letters)


def test_entry_point_runs_the_job_without_a_model(
    reddit_data: Path, bmw_photos: Path, tmp_path: Path
) -> None:
    photo = next((bmw_photos / "BMW M3 Coupe 2012").iterdir()).read_bytes()
    with ImageHost() as host:
        host.serve("/one.jpg", photo)
        document = json.loads(
            (reddit_data / "listings" / SUBMIT_IMAGES[1]).read_text(encoding="utf-8")
        )
        data = document["data"]["children"][0]["data"]
        data["url"] = data["url_overridden_by_dest"] = host.url_for("/one.jpg")
        listing = tmp_path / "local.json"
        listing.write_text(json.dumps(document), encoding="utf-8")
        out = tmp_path / "out"
        code = main(["--listing", str(listing), "--output", str(out), "--allow-private-networks"])
    assert code == 0
    (shard,) = out.glob("results-*.jsonl")
    (row,) = [json.loads(line) for line in shard.read_text(encoding="utf-8").splitlines()]
    assert row["sources"][0]["post_id"] == "16xb06z"
    assert row["predictions"] == [] and row["top_label"] is None
    assert (out / "images" / row["sha256"][:2]).is_dir()
