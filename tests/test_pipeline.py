"""The main job end to end on real input: listings + loopback image host, and a photo folder."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner
from PIL import Image

from fakes.vertex import FakeVertex
from harness import ImageHost
from harness_gcs import GcsEmulator
from redditvision.cli import main
from redditvision.errors import ConfigError, MissingDependencyError
from redditvision.pipeline import (
    STEPS,
    LabelConfig,
    RunClients,
    RunConfig,
    Step,
    StepContext,
    run,
)
from redditvision.reddit import ListingFileSource

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = PROJECT_ROOT / "examples"

# Title rules for the real listings (r/EarthPorn, r/HistoryPorn, r/popular ...): a
# landscape class, a dated-photo class, and everything else.
LANDSCAPE_WORDS = (
    "mountains?|lake|canyon|sunrise|sunset|yosemite|iceland|norway|patagonia|glacier|beach"
    "|valley|falls"
)
RULES = f"""
[[rules]]
label = "landscape"
title = '(?i)\\b({LANDSCAPE_WORDS})\\b|\\[oc\\]'

[[rules]]
label = "dated"
title = '\\b(1[89]\\d\\d|20[0-2]\\d)\\b'

[[rules]]
label = "other"
title = '.'
"""


def host_urls(listings: list[Path]) -> list[str]:
    return [item.url for post in ListingFileSource(listings).submissions() for item in post.media]


def _photos(bmw_photos: Path) -> list[Path]:
    return sorted(bmw_photos.rglob("*.jpg"))


@pytest.fixture(scope="module")
def listing_host(reddit_data: Path, bmw_photos: Path) -> Iterator[tuple[ImageHost, list[Path]]]:
    """A loopback host serving a real photo at every image URL of the real listings."""
    listings = sorted((reddit_data / "listings").glob("*.json"))
    photos = _photos(bmw_photos)
    host = ImageHost().start()
    try:
        for post in ListingFileSource(listings).submissions():
            for item in post.media:
                pick = int(hashlib.sha256(item.url.encode()).hexdigest(), 16) % len(photos)
                host.serve_url(item.url, photos[pick].read_bytes())
        yield host, listings
    finally:
        host.stop()


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: its content hash and modification time (ns)."""
    return {
        str(path.relative_to(folder)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
        )
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _counted(calls: list[str]) -> tuple[Step, ...]:
    """The run's steps, each recording its name in ``calls`` when its function runs."""

    def wrap(step: Step) -> Step:
        def counted(ctx: StepContext) -> Mapping[str, Any]:
            calls.append(step.name)
            return step.run(ctx)

        return attrs.evolve(step, run=counted)

    return tuple(wrap(step) for step in STEPS)


@pytest.mark.slow
def test_listing_run_finishes_with_a_report_and_a_rerun_changes_nothing(
    tmp_path: Path, listing_host: tuple[ImageHost, list[Path]]
) -> None:
    host, listings = listing_host
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    config = RunConfig.from_mapping(
        {
            "output": str(tmp_path / "run"),
            "source": {"listings": [str(p) for p in listings]},
            "download": {"allow_private_networks": True, "concurrency": 8},
            "labels": {"rules": str(rules)},
            "backend": {"time_limit_s": 60},
        }
    )
    clients = RunClients(session=host.session())
    calls: list[str] = []
    first = run(config, clients=clients, steps=_counted(calls))

    assert [s.status for s in first.steps] == ["ran"] * 2 + ["skipped"] + ["ran"] * 6
    assert calls == [step.name for step in STEPS if step.name != "classify"]
    assert first.report_html is not None
    assert first.report_html.is_file()
    assert set(first.dataset.labels) == {"landscape", "dated", "other"}
    downloaded = first.steps[1].detail["records"]
    assert downloaded["ok"] >= 150
    # 342 media items: 215 images and 127 fallback previews. Every post's own image is
    # served, so each fallback preview is recorded skipped and never requested.
    assert sum(downloaded.values()) == 342
    assert downloaded["skipped"] == 127
    fallbacks = [
        item.url
        for post in ListingFileSource(listings).submissions()
        for item in post.media
        if item.is_preview and any(not other.is_preview for other in post.media)
    ]
    assert len(fallbacks) == 127
    assert not any(host.hits(ImageHost.mapped_path(url)) for url in fallbacks)
    assert first.evaluation.evaluated_items > 0
    assert first.comparison is not None

    before = _snapshot(config.output)
    calls.clear()
    served = sum(host.hits(ImageHost.mapped_path(url)) for url in host_urls(listings))
    second = run(config, clients=RunClients(session=host.session()), steps=_counted(calls))
    # Nothing re-executed: no step function called, no image requested again, every
    # file under the run folder has the same bytes and modification time.
    assert calls == []
    assert [s.status for s in second.steps] == ["reused"] * 2 + ["skipped"] + ["reused"] * 6
    assert sum(host.hits(ImageHost.mapped_path(url)) for url in host_urls(listings)) == served
    assert _snapshot(config.output) == before
    assert [s.detail for s in second.steps] == [s.detail for s in first.steps]
    assert second.evaluation == first.evaluation
    assert second.model == first.model


@pytest.mark.slow
def test_image_folder_run_through_the_cli_gives_model_evaluation_and_report(
    tmp_path: Path, bmw_photos: Path
) -> None:
    out = tmp_path / "bmw"
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--images",
            str(bmw_photos),
            "--label-map",
            str(EXAMPLES / "bmw-series.toml"),
            "--out",
            str(out),
            "--json-summary",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(summary["labels"]) == [
        "L_1_2series",
        "L_3_4series",
        "L_5_6series",
        "x_suv",
        "z3_4_8",
    ]
    assert summary["images"] == 383
    # One source, named after its folder; within a source nothing is dropped.
    assert list(summary["sources"]) == [bmw_photos.name]
    assert summary["sources"][bmw_photos.name]["images"] == 383
    assert summary["sources"][bmw_photos.name]["duplicates"] == 0
    assert Path(summary["report_html"]).is_file()
    assert Path(summary["model"]).is_dir()
    # The summary's figures are the evaluation's: macro-F1 is the mean of the five
    # per-label F1 scores in evaluation.json, and the accuracy is the share of the test
    # split on the confusion matrix's diagonal.
    evaluation = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    per_label_f1 = [row["f1"] for row in evaluation["per_label"]]
    assert len(per_label_f1) == 5
    assert summary["macro_f1"] == pytest.approx(sum(per_label_f1) / 5)
    matrix = evaluation["confusion_matrix"]
    diagonal = sum(matrix[i][i] for i in range(len(matrix)))
    assert summary["accuracy"] == pytest.approx(diagonal / evaluation["evaluated_items"])
    # Five classes: chance is 0.2; a model that learned nothing would sit near it.
    assert summary["accuracy"] > 0.4
    assert summary["macro_f1"] > 0.4


@pytest.mark.parametrize("content", ["{not json", '{"version": 99, "values": {}}'])
def test_a_corrupt_run_state_stops_the_run_instead_of_redoing_everything(
    tmp_path: Path, content: str
) -> None:
    (tmp_path / "photos" / "a").mkdir(parents=True)
    out = tmp_path / "run"
    out.mkdir()
    state = out / "run-state.json"
    state.write_text(content, encoding="utf-8")
    config = RunConfig.from_mapping(
        {"output": str(out), "source": {"images": "photos"}}, base_dir=tmp_path
    )
    calls: list[str] = []
    with pytest.raises(ConfigError, match=r"run-state\.json.*move it away"):
        run(config, steps=_counted(calls))
    assert calls == []
    assert state.read_text(encoding="utf-8") == content
    assert sorted(p.name for p in out.iterdir()) == ["run-state.json"]


def test_a_run_that_fails_before_writing_anything_leaves_no_output_folder(
    tmp_path: Path,
) -> None:
    (tmp_path / "photos" / "empty-label").mkdir(parents=True)
    out = tmp_path / "runs" / "first"
    result = CliRunner().invoke(
        main, ["run", "--images", str(tmp_path / "photos"), "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert "no images found under" in result.output
    assert not (tmp_path / "runs").exists()


def test_a_missing_local_extra_is_reported_before_the_first_step(
    tmp_path: Path, reddit_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torch not importable, as without the [local] extra.
    monkeypatch.setitem(sys.modules, "torch", None)
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    listing = reddit_data / "listings" / "TestMultiredditListings.test_top.0.json"
    config = RunConfig.from_mapping(
        {"output": str(tmp_path / "run"), "source": {"listings": [str(listing)]},
         "labels": {"rules": str(rules)}}
    )  # fmt: skip
    calls: list[str] = []
    with pytest.raises(MissingDependencyError, match=r"torch.*pip install 'redditvision\[local\]'"):
        run(config, steps=_counted(calls))
    assert calls == []
    assert not (tmp_path / "run").exists()

    result = CliRunner().invoke(
        main,
        ["run", "--listing", str(listing), "--rules", str(rules), "--out", str(tmp_path / "c")],
    )
    assert result.exit_code == 2
    assert "pip install 'redditvision[local]'" in result.output
    assert "collect" not in result.output


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--listing", "{tmp}/nope.json", "--rules", "{tmp}/rules.toml"], "listings: file"),
        (["--images", "{tmp}/nope"], "[source] images: folder"),
        (["--images", "{tmp}/photos", "--label-map", "{tmp}/nope.toml"], "[labels] label_map"),
        (["--listing", "{tmp}/rules.toml", "--rules", "{tmp}/nope.toml"], "[labels] rules"),
    ],
)
def test_a_missing_input_exits_2_naming_it_before_any_step(
    tmp_path: Path, flags: list[str], named: str
) -> None:
    (tmp_path / "photos" / "a").mkdir(parents=True)
    (tmp_path / "rules.toml").write_text(RULES, encoding="utf-8")
    out = tmp_path / "out"
    args = ["run", *(flag.format(tmp=tmp_path) for flag in flags), "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert "nope" in result.output
    assert not out.exists()


def test_the_mixed_example_reads_two_sources_each_with_its_own_labeler() -> None:
    config = RunConfig.from_toml(EXAMPLES / "bmw-mixed.toml")
    assert config.source_names() == ("stanford-bmw", "r/BMW")
    photos, reddit = config.sources
    assert photos.kind == "images"
    assert config.labels_for(photos).label_map == EXAMPLES / "bmw-series.toml"
    assert reddit.kind == "subreddit"
    assert config.labels_for(reddit).rules == EXAMPLES / "bmw-rules.toml"
    with pytest.raises(ConfigError, match="2 sources"):
        _ = config.source


def test_source_tables_get_unique_default_names_and_the_labels_section_as_default(
    tmp_path: Path,
) -> None:
    config = RunConfig.from_mapping(
        {
            "output": "o",
            "source": [
                {"listings": ["saved/top.json"]},
                {"listings": ["other/top.json"], "csv": "hand.csv"},
                {"images": "photos"},
            ],
            "labels": {"rules": "rules.toml"},
        },
        base_dir=tmp_path,
    )
    assert config.source_names() == ("top", "top-2", "photos")
    first, second, third = config.sources
    assert config.labels_for(first).rules == tmp_path / "rules.toml"
    assert config.labels_for(second).csv == tmp_path / "hand.csv"
    assert config.labels_for(second).rules is None
    # From [labels], an image folder takes no rules: its folders name its labels.
    assert config.labels_for(third) == LabelConfig()
    # A flag naming a new source replaces all three.
    replaced = config.with_overrides(source__listings=(tmp_path / "new.json",))
    assert [s.listings for s in replaced.sources] == [(tmp_path / "new.json",)]


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ([{"images": "p"}, {"images": "q", "rules": "r.toml"}], "#2 (q): rules label Reddit"),
        ([{"images": "p"}, {"subreddit": "BMW"}], "#2 (r/BMW): a Reddit source needs rules"),
        ([{"images": "p", "name": "x"}, {"images": "q", "name": "x"}], "two sources are named"),
        ([{"images": "p"}, {"images": "q", "colour": 1}], "unknown keys in [[source]] #2"),
        ([{"images": "p"}, {}], "[[source]] #2 needs exactly one"),
    ],
)
def test_bad_source_tables_name_the_table(
    tmp_path: Path, sources: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_mapping({"output": "o", "source": sources}, base_dir=tmp_path)
    assert message in str(caught.value)


def test_an_output_path_that_is_a_file_exits_2_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "photos" / "a").mkdir(parents=True)
    taken = tmp_path / "taken"
    taken.write_text("not a folder", encoding="utf-8")
    result = CliRunner().invoke(
        main, ["run", "--images", str(tmp_path / "photos"), "--out", str(taken / "run")]
    )
    assert result.exit_code == 2, result.output
    assert f"cannot create the output folder {taken / 'run'}" in result.output
    assert os.linesep not in result.output.strip()


def test_config_file_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    config_file = tmp_path / "conf" / "run.toml"
    config_file.write_text(
        'output = "out"\n[source]\nimages = "photos"\n[labels]\nlabel_map = "map.toml"\n',
        encoding="utf-8",
    )
    config = RunConfig.from_toml(config_file)
    assert config.output == tmp_path / "conf" / "out"
    assert config.source.images == tmp_path / "conf" / "photos"
    assert config.labels.label_map == tmp_path / "conf" / "map.toml"


def test_overrides_replace_the_source_and_switch_backend(tmp_path: Path) -> None:
    config = RunConfig.from_mapping(
        {"output": "o", "source": {"images": "p"}, "labels": {"label_map": "m.toml"}},
        base_dir=tmp_path,
    )
    changed = config.with_overrides(
        writer__kind="gcs", writer__bucket="b", backend__kind="vertex", backend__project="p1"
    )
    assert changed.backend.kind == "vertex"
    assert changed.writer.bucket == "b"
    assert changed.source == config.source


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"source": {"images": "p"}}, "needs `output`"),
        ({"output": "o"}, "exactly one of"),
        ({"output": "o", "source": {"images": "p", "subreddit": "BMW"}}, "exactly one of"),
        (
            {"output": "o", "source": {"subreddit": "BMW"}},
            "[source]: a Reddit source needs rules",
        ),
        ({"output": "o", "source": {"images": "p"}, "bogus": 1}, "unknown config keys: bogus"),
        ({"output": "o", "source": {"images": "p", "colour": 1}}, "unknown keys in [source]"),
        (
            {
                "output": "o",
                "source": {"images": "p"},
                "backend": {"kind": "vertex", "project": "x"},
            },
            "set [writer] kind = 'gcs'",
        ),
        (
            {"output": "o", "source": {"images": "p"}, "backend": {"kind": "vertex"}},
            "needs a project",
        ),
    ],
)
def test_bad_configs_name_the_problem(
    tmp_path: Path, data: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        RunConfig.from_mapping(data, base_dir=tmp_path)


def test_cli_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("output = \n", encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(bad)])
    assert result.exit_code == 2
    assert "is not valid TOML" in result.output
    assert os.linesep not in result.output.strip()


@pytest.mark.slow
def test_the_same_config_runs_on_cloud_storage_and_vertex_with_two_sections_changed(
    tmp_path: Path, bmw_photos: Path, gcs_emulator: GcsEmulator
) -> None:
    # A small image folder: two classes of 12 real photos each (Vertex needs 10 per label).
    photos = tmp_path / "photos"
    for folder in ("BMW X3 SUV 2012", "BMW Z4 Convertible 2012"):
        (photos / folder).mkdir(parents=True)
        for source in sorted((bmw_photos / folder).glob("*.jpg"))[:12]:
            (photos / folder / source.name).write_bytes(source.read_bytes())
    base = RunConfig.from_mapping(
        {"output": str(tmp_path / "local"), "source": {"images": str(photos)}}
    )
    gcs_emulator.create_bucket("rv-bucket")
    with FakeVertex() as vertex:
        storage_client = gcs_emulator.client()
        vertex.import_reader = lambda uri: (
            storage_client.bucket(uri.split("/")[2]).blob(uri.split("/", 3)[3]).download_as_text()
        )
        cloud = base.with_overrides(
            output=tmp_path / "cloud",
            writer__kind="gcs",
            writer__bucket="rv-bucket",
            backend__kind="vertex",
            backend__project=vertex.project,
            backend__api_endpoint=vertex.address,
            backend__insecure=True,
        )
        changed = {
            section
            for section in ("source", "download", "labels", "split", "writer", "backend", "compare")
            if getattr(base, section) != getattr(cloud, section)
        }
        assert changed == {"writer", "backend"}

        result = run(cloud)

        assert result.dataset.uri.startswith("gs://rv-bucket/")
        assert result.dataset.import_file_uri.startswith("gs://rv-bucket/")
        names = {blob.name for blob in storage_client.list_blobs("rv-bucket")}
        assert len([n for n in names if n.endswith(".jpg")]) == 24
        assert result.model.backend == "vertex"
        assert result.model.resource.startswith(f"{vertex.parent}/models/")
        assert vertex.calls("CreateTrainingPipeline") == 1
        assert set(result.evaluation.labels) == {"BMW X3 SUV 2012", "BMW Z4 Convertible 2012"}
        assert result.report_html is not None
        assert result.report_html.is_file()
        # The comparison deployed the model and undeployed it when it was done.
        assert vertex.calls("DeployModel") == 1
        assert vertex.calls("UndeployModel") == 1

        again = run(cloud)
        assert [s.status for s in again.steps] == ["skipped"] * 3 + ["reused"] * 6
        assert vertex.calls("CreateTrainingPipeline") == 1


FOLDER_CLASSES = ("BMW 1 Series Coupe 2012", "BMW X3 SUV 2012", "BMW Z4 Convertible 2012")


def _half_size_copy(photo: Path) -> bytes:
    """The photo at half size, re-encoded at JPEG quality 70: a near-duplicate."""
    with Image.open(photo) as image:
        small = image.convert("RGB").resize((image.width // 2, image.height // 2))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=70)
    return buffer.getvalue()


@pytest.mark.slow
def test_a_listing_and_a_photo_folder_in_one_run_deduplicate_and_count_per_source(
    tmp_path: Path, reddit_data: Path, bmw_photos: Path
) -> None:
    # Source 1: a folder of three BMW models, 12 real photos each, grouped by the series
    # label map. Source 2: a recorded listing whose images a loopback host serves: other
    # BMW photos, except 3 exact copies and 2 half-size re-encoded copies of folder photos.
    photos = tmp_path / "photos"
    for folder in FOLDER_CLASSES:
        (photos / folder).mkdir(parents=True)
        for source in sorted((bmw_photos / folder).glob("*.jpg"))[:12]:
            (photos / folder / source.name).write_bytes(source.read_bytes())
    folder_photos = sorted(photos.rglob("*.jpg"))
    pool = [p for p in _photos(bmw_photos) if p.parent.name not in FOLDER_CLASSES]
    listing = reddit_data / "listings" / "TestMultiredditListings.test_top.0.json"
    posts = list(ListingFileSource([listing]).submissions())
    own_images = [item.url for post in posts for item in post.media if not item.is_preview]
    exact, near = own_images[:3], own_images[3:5]
    host = ImageHost().start()
    try:
        urls = list(dict.fromkeys(item.url for post in posts for item in post.media))
        assert len(urls) < len(pool)
        for number, url in enumerate(urls):
            body = pool[number].read_bytes()
            if url in exact:
                body = folder_photos[exact.index(url)].read_bytes()
            elif url in near:
                body = _half_size_copy(folder_photos[10 + near.index(url)])
            host.serve_url(url, body)
        rules = tmp_path / "rules.toml"
        rules.write_text(RULES, encoding="utf-8")
        config = RunConfig.from_mapping(
            {
                "output": str(tmp_path / "run"),
                "source": [
                    {
                        "name": "bmw-photos",
                        "images": str(photos),
                        "label_map": str(EXAMPLES / "bmw-series.toml"),
                    },
                    {"listings": [str(listing)], "rules": str(rules)},
                ],
                "download": {"allow_private_networks": True, "concurrency": 8},
                "compare": {"enabled": False},
            }
        )
        result = run(config, clients=RunClients(session=host.session()))
    finally:
        host.stop()

    assert [s.status for s in result.steps] == ["ran"] * 2 + ["skipped"] + ["ran"] * 5 + ["skipped"]
    assert list(result.sources) == ["bmw-photos", "TestMultiredditListings"]
    folder, reddit = result.sources["bmw-photos"], result.sources["TestMultiredditListings"]
    assert folder == {
        "kind": "images",
        "images": 36,
        "labels": {"1-2series": 12, "x-suv": 12, "z3-4-8": 12},
        "duplicates": 0,
        "near_duplicates": 0,
        "unmatched": 0,
    }
    downloaded = reddit["records"]["ok"]
    assert reddit["kind"] == "listings"
    assert reddit["posts"] == len(posts)
    assert reddit["duplicates"] == 3
    assert reddit["near_duplicates"] == 2
    assert reddit["images"] == downloaded - 5
    assert set(reddit["labels"]) == {"landscape", "dated", "other"}
    assert result.dataset.images == 36 + downloaded - 5
    assert set(result.dataset.labels) == {
        "L_1_2series", "x_suv", "z3_4_8", "landscape", "dated", "other"
    }  # fmt: skip

    # Provenance: one row per image of every source; each dropped listing image names
    # the folder photo it duplicates.
    rows = [
        json.loads(line)
        for line in (config.output / "provenance.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(rows) == 36 + downloaded
    dropped = {row["dropped"]: [] for row in rows if row["dropped"]}
    for row in rows:
        if row["dropped"]:
            assert row["source"] == "TestMultiredditListings"
            dropped[row["dropped"]].append(row["duplicate_of"])
    assert sorted(dropped["duplicate"]) == [str(p) for p in folder_photos[:3]]
    assert sorted(dropped["near_duplicate"]) == [str(p) for p in folder_photos[10:12]]
    kept = {row["path"]: row["source"] for row in rows if row["kept"]}
    labeled = [
        json.loads(line)
        for line in (config.output / "labeled.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(labeled) == len(kept) == result.dataset.images
    # Trained on both sources: the model knows all six labels.
    assert set(result.model.labels) == set(result.dataset.labels)
    assert result.evaluation.evaluated_items > 0


def test_a_run_with_an_existing_model_classifies_the_new_posts_and_a_rerun_predicts_nothing(
    tmp_path: Path, listing_host: tuple[ImageHost, list[Path]], bmw_photos: Path
) -> None:
    """``[model] path`` (``run --model``): collect, download, classify; no label or train."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from redditvision.backends.local import LocalBackend
    from serve_support import ThumbnailExtractor, tiny_model

    host, listings = listing_host
    model = Path(tiny_model(bmw_photos).resource)
    config = RunConfig.from_mapping(
        {
            "output": str(tmp_path / "run"),
            "source": {"listings": [str(p) for p in listings]},
            "download": {"allow_private_networks": True},
            "model": {"path": str(model), "low_confidence": 0.4},
        }
    )
    calls: list[str] = []

    def clients() -> RunClients:
        backend = LocalBackend(extractor=ThumbnailExtractor(), use_cache=False)
        return RunClients(session=host.session(), backend=backend)

    first = run(config, clients=clients(), steps=_counted(calls))
    assert calls == ["collect", "download", "classify"]
    out = tmp_path / "run" / "classify"
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    predicted = [line for line in lines if line.get("label")]
    assert predicted, lines[:3]
    known = {"BMW M3 Coupe 2012", "BMW X5 SUV 2007", "BMW Z4 Convertible 2012"} | {
        original for _, (_, original) in __import__("serve_support").FOLDERS.items()
    }
    assert {line["label"] for line in predicted} <= known
    summary = json.loads((out / "summary.json").read_text())
    statuses = {step.name: step.status for step in first.steps}
    assert statuses["classify"] == "ran"
    assert first.classified is not None
    assert first.classified["predicted"] + first.classified["reused"] == len(predicted)
    assert first.model is None
    assert statuses["train"] == statuses["label"] == "skipped"
    assert (out / "index.html").is_file()
    before = _snapshot(out)
    calls.clear()
    run(config, clients=clients(), steps=_counted(calls))
    assert calls == []  # every step reused: nothing fetched or predicted again
    assert _snapshot(out) == before
    assert summary
