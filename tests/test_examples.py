"""The examples run for real: offline ones on real data, cloud ones to their one-line error.

``label_with_rules.py`` labels a real download of the recorded listings; ``local_run.py``
and ``compare_bmw.py`` train on a few real BMW photos (slow); the four cloud examples, run
without credentials, print one ``Error:`` line and no traceback, as the CLI does. Every
example shows its usage and every example config parses.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import ImageHost
from redditvision import ImageDownloader, RecordStatus
from redditvision.labels import LabelMap, RuleSet
from redditvision.pipeline import RunConfig
from redditvision.reddit import ListingFileSource
from redditvision.storage import load_local_dataset

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
SRC = Path(__file__).resolve().parent.parent / "src"


def _env(home: Path) -> dict[str, str]:
    """A user with no Google credentials and no Reddit settings, on this checkout's code."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.lower().startswith(("praw_", "google_", "cloudsdk_", "gce_"))
        and key not in ("STORAGE_EMULATOR_HOST", "HOME", "XDG_CONFIG_HOME")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        CLOUDSDK_CONFIG=str(home / ".config" / "gcloud"),
        PYTHONPATH=os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]),
        # No probe leaves the machine (see conftest); one try instead of three with backoff.
        GCE_METADATA_HOST="127.0.0.1:9",
        GCE_METADATA_IP="127.0.0.1:9",
        GCE_METADATA_DETECT_RETRIES="1",
    )
    return env


def _run(
    script: str, *args: str, home: Path, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=_env(home),
        cwd=cwd,
    )


def test_there_is_an_example_for_each_step_of_the_seed() -> None:
    names = {path.stem for path in SCRIPTS}
    assert {
        "crawl_to_gcs",
        "label_with_rules",
        "train_vertex",
        "predict_online",
        "compare_cloud_vision",
        "local_run",
    } <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=[path.stem for path in SCRIPTS])
def test_example_shows_its_usage(script: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")


def test_example_run_configs_parse_with_their_relative_paths() -> None:
    local = RunConfig.from_toml(EXAMPLES / "bmw-local.toml")
    assert local.source.kind == "images"
    assert local.labels.label_map == EXAMPLES / "bmw-series.toml"
    reddit = RunConfig.from_toml(EXAMPLES / "bmw-reddit.toml")
    assert reddit.source.subreddit == "BMW"
    assert reddit.labels.rules == EXAMPLES / "bmw-rules.toml"


def test_bmw_rules_cover_the_seeds_classes() -> None:
    rules = RuleSet.from_toml(EXAMPLES / "bmw-rules.toml")
    labels = {rule.label for rule in rules.rules}
    assert labels == {
        "1-2series",
        "3-4series",
        "5-6series",
        "z3-4-8",
        "classics",
        "concept-modern",
    }
    match = rules.match(title="My E46 M3 at the track", flair=None, subreddit="BMW")
    assert match is not None
    assert match.label == "3-4series"


def test_bmw_series_label_map_groups_the_real_folder_names() -> None:
    label_map = LabelMap.from_toml(EXAMPLES / "bmw-series.toml")
    assert label_map.label_for("BMW Z4 Convertible 2012") == "z3-4-8"
    assert label_map.label_for("BMW ActiveHybrid 5 Sedan 2012") == "5-6series"
    assert label_map.label_for("BMW X6 SUV 2012") == "x-suv"


# -- the cloud examples without credentials ----------------------------------------------

_PHOTO = "BMW 3 Series Sedan 2012"
CLOUD_RUNS = {
    "train_vertex": (
        ["--project", "p", "--import-file", "gs://b/redditvision/import.csv"],
        "no Google Cloud credentials found",
    ),
    "predict_online": (
        ["--project", "p", "--endpoint", "projects/p/locations/us-central1/endpoints/1", "x.jpg"],
        "no Google Cloud credentials found",
    ),
    "compare_cloud_vision": (
        ["--model", "MODEL", "--images", "PHOTOS", "--out", "OUT"],
        "no Google Cloud credentials for Cloud Vision",
    ),
    "crawl_to_gcs": (
        ["--subreddit", "BMW", "--rules", "RULES", "--bucket", "b", "--work", "WORK"],
        "Reddit setting",
    ),
}


@pytest.mark.parametrize("name", sorted(CLOUD_RUNS))
def test_cloud_example_without_credentials_prints_one_error_line_and_no_traceback(
    name: str, tmp_path: Path, bmw_photos: Path
) -> None:
    args, expected = CLOUD_RUNS[name]
    photos = tmp_path / "photos" / _PHOTO
    photos.mkdir(parents=True)
    shutil.copyfile(next((bmw_photos / _PHOTO).glob("*.jpg")), photos / "a.jpg")
    replace = {"MODEL": str(tmp_path / "model"), "PHOTOS": str(tmp_path / "photos")}
    replace.update(OUT=str(tmp_path / "out"), WORK=str(tmp_path / "work"))
    replace["RULES"] = str(EXAMPLES / "bmw-rules.toml")
    args = [replace.get(arg, arg) for arg in args]
    result = _run(f"{name}.py", *args, home=tmp_path, cwd=tmp_path)
    assert result.returncode == 2, result.stderr  # a missing setting is bad input, as in the CLI
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert expected in lines[0]
    assert result.stdout == ""


# -- label_with_rules.py on a real download of the recorded listings ---------------------

RULES = """
[[rules]]
label = "landscape"
title = '(?i)\\b(mountains?|lake|canyon|sunset|valley|falls|beach)\\b|\\[oc\\]'

[[rules]]
label = "other"
title = '.'
"""


@pytest.fixture(scope="module")
def downloads(
    reddit_data: Path, bmw_photos: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The recorded listings downloaded for real from a loopback host serving BMW photos."""
    listings = sorted((reddit_data / "listings").glob("*.json"))
    photos = sorted(bmw_photos.rglob("*.jpg"))
    out = tmp_path_factory.mktemp("examples") / "downloads"
    with ImageHost() as host:
        for post in ListingFileSource(listings).submissions():
            for item in post.media:
                pick = int(hashlib.sha256(item.url.encode()).hexdigest(), 16) % len(photos)
                host.serve_url(item.url, photos[pick].read_bytes())
        posts = ListingFileSource(listings).submissions()
        with ImageDownloader(out, session=host.session(), allow_private_networks=True) as dl:
            for _ in dl.fetch(posts):
                pass
    return out


def test_label_with_rules_labels_a_real_download_and_writes_the_dataset(
    downloads: Path, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    out = tmp_path / "labeled.jsonl"
    result = _run(
        "label_with_rules.py", str(downloads), str(rules), str(out), "--target", "local",
        home=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    counts = dict(re.findall(r"^\s*(\w+): (\d+) images$", result.stdout, re.M))
    assert set(counts) == {"landscape", "other"}
    splits = re.search(r"^splits: (\{.*?\}); unmatched: 0(; not ok: \{.*\})?$", result.stdout, re.M)
    assert splits is not None, result.stdout
    assert result.stdout.rstrip().endswith(f"wrote {out}")
    dataset = load_local_dataset(out)
    with ImageDownloader(downloads) as dl:
        ok = sum(1 for record in dl.manifest.records() if record.status is RecordStatus.OK)
    assert len(dataset.images) == sum(int(n) for n in counts.values()) == ok
    assert dataset.counts() == {label: int(n) for label, n in counts.items()}


# -- the local examples, training on a few real BMW photos (slow) ------------------------


def _few_photos(bmw_photos: Path, root: Path, per_folder: int) -> Path:
    """Every model folder with its first ``per_folder`` photos (copies: the folder labeler
    refuses symlinks that point out of the folder)."""
    for folder in sorted(p for p in bmw_photos.iterdir() if p.is_dir()):
        (root / folder.name).mkdir(parents=True)
        for photo in sorted(folder.glob("*.jpg"))[:per_folder]:
            shutil.copyfile(photo, root / folder.name / photo.name)
    return root


@pytest.mark.slow
def test_compare_bmw_trains_compares_and_says_it_reused_the_model_on_a_rerun(
    bmw_photos: Path, tmp_path: Path
) -> None:
    photos = _few_photos(bmw_photos, tmp_path / "photos", per_folder=4)  # 52 photos
    first = _run("compare_bmw.py", str(photos), "build/compare", home=tmp_path, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    trained = re.search(r"^trained on (\d+) photos in \d+ s -> (\S+)$", first.stdout, re.M)
    assert trained is not None, first.stdout
    n_train, model = int(trained.group(1)), trained.group(2)
    assert 36 <= n_train <= 46  # about 80 % of the 52 photos
    assert model == "build/models/bmw-series"  # relative to where it ran, no ".."
    assert (tmp_path / model / "model.json").is_file()
    report = re.search(r"^report: (\S+)$", first.stdout, re.M)
    assert report is not None
    assert report.group(1) == "build/compare/report.html"
    assert (tmp_path / report.group(1)).is_file()
    assert ".. list-table::" in first.stdout

    second = _run("compare_bmw.py", str(photos), "build/compare", home=tmp_path, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    reused = f"reused the model in {model} (trained on {n_train} photos by an earlier run)"
    assert reused in second.stdout
    assert "trained on" not in second.stdout.split("reused", 1)[0]


@pytest.mark.slow
def test_local_run_runs_the_whole_job_and_prints_formatted_figures(
    bmw_photos: Path, tmp_path: Path
) -> None:
    photos = _few_photos(bmw_photos, tmp_path / "photos", per_folder=4)
    config = tmp_path / "conf" / "run.toml"
    config.parent.mkdir()
    config.write_text(
        f"""
output = "../runs/few"
name = "few"

[source]
images = "{photos}"

[labels]
label_map = "{EXAMPLES / "bmw-series.toml"}"

[split]
train = 0.7
validation = 0.15
test = 0.15
seed = 0

[backend]
kind = "local"
time_limit_s = 10

[compare]
vision = "offline"
split = "test"
""",
        encoding="utf-8",
    )
    result = _run("local_run.py", str(config), home=tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    figures = re.search(r"^accuracy (\d\.\d{3}), macro F1 (\d\.\d{3})$", result.stdout, re.M)
    assert figures is not None, result.stdout  # three decimals, not 0.7894736842105263
    report = re.search(r"^report: (\S+)$", result.stdout, re.M)
    assert report is not None
    assert ".." not in report.group(1)
    assert report.group(1).startswith("runs/few/")  # relative to where it ran
    assert (tmp_path / report.group(1)).is_file()
