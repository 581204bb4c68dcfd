"""The real commands on a real EfficientNet model: serve in a process, classify, the example."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from harness import ImageHost
from redditvision.backends.local import Candidate, LocalBackend, default_num_threads
from redditvision.classify import Classifier
from redditvision.cli import main
from redditvision.models import ImagePost, LabeledDataset, LabeledImage, MediaItem, MLUse
from redditvision.serialize import post_to_json
from serve_support import FOLDERS, holdout_images, wait_ready

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model_dir(bmw_photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An EfficientNet-Lite0 model on 4 photos of each of 3 BMW models."""
    uses = [MLUse.TRAINING] * 4 + [MLUse.VALIDATION, MLUse.TEST]
    images = [
        LabeledImage(path=path, label=label, original_label=original, ml_use=use)
        for label, (folder, original) in FOLDERS.items()
        for path, use in zip(sorted((bmw_photos / folder).iterdir())[:6], uses, strict=True)
    ]
    dataset = LabeledDataset(
        images=tuple(images),
        label_map={label: original for label, (_, original) in FOLDERS.items()},
        name="bmw-slow",
    )
    root = tmp_path_factory.mktemp("slow-model")
    with LocalBackend(
        model_dir=root,
        candidates=[Candidate(name="logreg", head="logreg", c=0.1, train_flip=False)],
    ) as backend:
        backend.train(dataset, out=root / "model")
    return root / "model"


@pytest.fixture(scope="module")
def served(model_dir: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from redditvision.cli import main; main()",
            "serve",
            "--model",
            str(model_dir),
            "--port",
            "0",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    url = None
    for line in process.stderr:
        if " at http://" in line and "/predict" in line:
            url = line.split(" at ", 1)[1].split("/predict", 1)[0]
            # Keep reading its log, or a full pipe would block the server.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            break
    assert url is not None, process.wait()
    try:
        wait_ready(url)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_answers_like_the_model_in_process_and_stops_on_sigterm(
    served: tuple[subprocess.Popen[str], str], model_dir: Path, bmw_photos: Path
) -> None:
    process, url = served
    images = holdout_images(bmw_photos, 4)
    with Classifier(model_dir) as local, Classifier.from_endpoint(url) as remote:
        want = local.predict_many(images)
        got = remote.predict_many(images)
    assert [[p.label for p in row] for row in got] == [[p.label for p in row] for row in want]
    for got_row, want_row in zip(got, want, strict=True):
        assert [p.score for p in got_row] == pytest.approx([p.score for p in want_row], abs=1e-5)
    # The command runs one batch worker per core (at most 4), each with its share of threads.
    limits = httpx.get(url + "/metadata").json()["limits"]
    assert limits["workers"] == min(default_num_threads(), 4)

    example = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "serve_model.py"),
            "--model",
            str(model_dir),
            str(sorted((bmw_photos / "BMW X5 SUV 2007").iterdir())[9]),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert example.returncode == 0, example.stderr
    line = json.loads(example.stdout.strip().splitlines()[-1])
    assert len(line["predictions"]) == 3

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0


def test_classify_with_a_model_folder(
    model_dir: Path, image_host: ImageHost, bmw_photos: Path, tmp_path: Path
) -> None:
    paths = sorted((bmw_photos / "BMW Z4 Convertible 2012").iterdir())[10:13]
    post = ImagePost(
        id="z4",
        subreddit="BMW",
        title="my Z4",
        permalink="/r/BMW/comments/z4/",
        media=tuple(
            MediaItem(url=image_host.serve(f"/{i}.jpg", p.read_bytes()))
            for i, p in enumerate(paths)
        ),
    )
    posts = tmp_path / "posts.jsonl"
    posts.write_text(json.dumps(post_to_json(post)) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        main,
        [
            "classify",
            "--model",
            str(model_dir),
            "--posts",
            str(posts),
            "--out",
            str(tmp_path / "out"),
            "--allow-private-networks",
            "--generic-labels",
            "--json-summary",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["classified"] == 3
    rows = [
        json.loads(line)
        for line in (tmp_path / "out" / "predictions.jsonl").read_text("utf-8").splitlines()
    ]
    assert all(row["generic"] for row in rows)
