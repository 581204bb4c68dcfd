"""Model folders: replaced crash-safely (SIGKILL at each step), and checked before trusting them."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("sklearn")

from sklearn.linear_model import LogisticRegression

from redditvision.backends.local._folder import (
    content_sha256,
    load_head,
    read_manifest,
    recover,
    write_folder,
)
from redditvision.errors import ModelFormatError

MANIFEST: dict[str, Any] = {
    "name": "old",
    "labels": ["a", "b", "c"],
    "label_map": {"a": "Alpha", "b": "Beta", "c": "Gamma"},
    "extractor": {"id": "efficientnet-lite0", "version": "1+weights-0.1.0", "dim": 2},
    "head": {"tta": False},
    "metadata": {},
}


def fitted_head(n_labels: int = 3) -> LogisticRegression:
    x = np.array([[float(i), float(i % 2)] for i in range(3 * n_labels)])
    return LogisticRegression().fit(x, [i % n_labels for i in range(3 * n_labels)])


def write(folder: Path, **fields: Any) -> Path:
    return write_folder(folder, manifest={**MANIFEST, **fields}, head=fitted_head())


def rewrite(folder: Path, manifest: dict[str, Any], *, rehash: bool = True) -> None:
    if rehash:
        manifest["content_sha256"] = content_sha256(manifest)
    (folder / "model.json").write_text(json.dumps(manifest))


def check(folder: Path) -> dict[str, Any]:
    manifest = read_manifest(folder)
    load_head(folder, manifest)
    return manifest


CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from pathlib import Path
    from sklearn.linear_model import LogisticRegression
    from redditvision.backends.local import _folder

    out, moment = Path(sys.argv[1]), sys.argv[2]

    def hook(step):
        if step == moment:
            print(step, flush=True)
            sys.stdin.read()  # wait here until killed

    _folder.on_step = hook
    x = np.array([[float(i), float(i % 2)] for i in range(9)])
    head = LogisticRegression().fit(x, [i % 3 for i in range(9)])
    manifest = {
        "name": "new",
        "labels": ["a", "b", "c"],
        "label_map": {"a": "Alpha", "b": "Beta", "c": "Gamma"},
        "extractor": {"id": "efficientnet-lite0", "version": "1+weights-0.1.0", "dim": 2},
        "head": {"tta": False},
    }
    _folder.write_folder(out, manifest=manifest, head=head)
    print("done", flush=True)
    """
)


@pytest.mark.parametrize(
    ("moment", "survivor"),
    [
        ("staging", "old"),
        ("staged", "old"),
        ("old-moved-aside", "old"),
        ("new-in-place", "new"),
    ],
)
def test_a_replacement_killed_at_any_moment_leaves_the_old_or_the_new_model(
    tmp_path: Path, moment: str, survivor: str
) -> None:
    out = write(tmp_path / "model")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), str(out), moment],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == moment
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".model.")]  # leftovers
    manifest = check(out)  # the next start recovers
    assert manifest["name"] == survivor
    assert sorted(p.name for p in tmp_path.iterdir()) == ["child.py", "model"]


def test_recover_leaves_the_folders_of_a_live_process_alone(tmp_path: Path) -> None:
    out = write(tmp_path / "model")
    mine = tmp_path / f".model.staging-{os.getpid()}-abc"
    mine.mkdir()
    recover(out)
    assert mine.is_dir()


def test_format_version_zero_or_negative_is_refused(tmp_path: Path) -> None:
    out = write(tmp_path / "model")
    manifest = json.loads((out / "model.json").read_text())
    for version in (0, -1, True):
        manifest["format_version"] = version
        rewrite(out, manifest)
        with pytest.raises(ModelFormatError, match="model format"):
            check(out)


def test_a_label_list_that_does_not_match_the_head_is_a_model_format_error(
    tmp_path: Path,
) -> None:
    out = write(tmp_path / "model")
    manifest = json.loads((out / "model.json").read_text())
    manifest["labels"] = ["a", "b"]
    manifest["label_map"] = {"a": "Alpha"}
    rewrite(out, manifest)
    with pytest.raises(ModelFormatError, match=r"predicts 3 classes but model\.json lists 2"):
        check(out)


def test_an_edited_label_map_is_refused_by_the_content_hash(tmp_path: Path) -> None:
    out = write(tmp_path / "model")
    manifest = json.loads((out / "model.json").read_text())
    manifest["label_map"]["a"] = "Beta"
    rewrite(out, manifest, rehash=False)
    with pytest.raises(ModelFormatError, match="content_sha256"):
        check(out)


def test_a_head_that_links_outside_the_folder_is_refused(tmp_path: Path) -> None:
    out = write(tmp_path / "model")
    outside = tmp_path / "elsewhere.skops"
    shutil.move(out / "head.skops", outside)
    (out / "head.skops").symlink_to(outside)
    with pytest.raises(ModelFormatError, match="is a link"):
        check(out)


def test_a_folder_of_format_1_still_loads(tmp_path: Path) -> None:
    out = write(tmp_path / "model")
    manifest = json.loads((out / "model.json").read_text())
    del manifest["content_sha256"]
    manifest["format_version"] = 1
    rewrite(out, manifest, rehash=False)
    assert check(out)["labels"] == ["a", "b", "c"]


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
KEYS = [
    "format",
    "format_version",
    "files",
    "labels",
    "label_map",
    "extractor",
    "head",
    "metadata",
    "libraries",
    "name",
    "network",
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("pristine") / "model")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    key=st.sampled_from(KEYS),
    sub=st.one_of(st.none(), st.text(max_size=6)),
    value=JSON,
    rehash=st.booleans(),
    delete=st.booleans(),
)
def test_a_mutated_manifest_gives_a_model_or_a_model_format_error(
    pristine: Path,
    tmp_path_factory: pytest.TempPathFactory,
    key: str,
    sub: str | None,
    value: Any,
    rehash: bool,
    delete: bool,
) -> None:
    folder = tmp_path_factory.mktemp("mutated") / "model"
    shutil.copytree(pristine, folder)
    manifest = json.loads((folder / "model.json").read_text())
    target = manifest
    if sub is not None and isinstance(manifest.get(key), dict):
        target, key = manifest[key], sub
    if delete:
        target.pop(key, None)
    else:
        target[key] = value
    rewrite(folder, manifest, rehash=rehash)
    with contextlib.suppress(ModelFormatError):  # a model, or the library's own error
        check(folder)


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=40) | st.binary(max_size=40).map(lambda b: b.decode("latin-1")))
def test_a_manifest_that_is_not_json_gives_a_model_format_error(
    pristine: Path, tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    folder = tmp_path_factory.mktemp("garbage") / "model"
    shutil.copytree(pristine, folder)
    (folder / "model.json").write_text(text, encoding="utf-8")
    with pytest.raises(ModelFormatError):
        check(folder)
