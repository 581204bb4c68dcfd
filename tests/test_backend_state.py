"""The run state file records names atomically so a cloud run resumes instead of repeating."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from redditvision.backends._state import RunState, run_key
from redditvision.errors import ConfigError


def test_a_recorded_name_survives_a_new_process_reading_the_file(tmp_path: Path) -> None:
    state = RunState.for_run(tmp_path, "vertex", "p", "us-central1", "gs://b/import.csv", "cars")
    state.set("pipeline", "projects/p/locations/us-central1/trainingPipelines/1")
    again = RunState(state.path)
    assert again.get("pipeline") == "projects/p/locations/us-central1/trainingPipelines/1"
    assert json.loads(state.path.read_text())["version"] == 1


def test_the_key_is_stable_and_differs_by_run() -> None:
    assert run_key("vertex", "a", "b") == run_key("vertex", "a", "b")
    assert run_key("vertex", "a", "b") != run_key("vertex", "a", "c")
    assert run_key("vertex", "x", "my cars!").startswith("vertex-my-cars-")


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    state = RunState(tmp_path / "s.json")
    for i in range(5):
        state.set(f"k{i}", i)
    state.discard(["k0", "missing"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]
    assert RunState(tmp_path / "s.json").as_dict() == {"k1": 1, "k2": 2, "k3": 3, "k4": 4}


def test_clear_removes_the_file(tmp_path: Path) -> None:
    state = RunState(tmp_path / "s.json")
    state.set("dataset", "d")
    state.clear()
    state.clear()
    assert not state.path.exists()
    assert RunState(state.path).get("dataset") is None


def test_a_file_that_is_not_a_state_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="move it away"):
        RunState(path)
    path.write_text('{"version": 99}')
    with pytest.raises(ConfigError, match="not a redditvision state file"):
        RunState(path)
