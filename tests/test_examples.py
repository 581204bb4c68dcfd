"""Every example runs (at least to its --help) and every example config parses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from redditvision.labels import LabelMap, RuleSet
from redditvision.pipeline import RunConfig

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))


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
