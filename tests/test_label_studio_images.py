"""The image server for Label Studio tasks: the exported URLs load; nothing else does."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from PIL import Image

from redditvision.cli import main
from redditvision.errors import ConfigError
from redditvision.labels.label_studio import export_tasks
from redditvision.serve import BackgroundServer, create_image_app
from redditvision.storage import load_local_dataset
from test_label_studio import _make_dataset


@pytest.fixture
def served(tmp_path: Path) -> tuple[Path, Path]:
    """(the dataset file, the document root holding its images and some non-images)."""
    dataset_file = _make_dataset(tmp_path)
    root = tmp_path / "images"
    (root / "notes.txt").write_text("private notes", encoding="utf-8")
    (tmp_path / "secret.png").write_bytes((root / "M3" / "img0.png").read_bytes())
    os.symlink(tmp_path / "secret.png", root / "M3" / "escape.png")
    return dataset_file, root


def test_every_exported_http_url_loads_the_image_it_names(
    served: tuple[Path, Path], tmp_path: Path
) -> None:
    dataset_file, root = served
    dataset = load_local_dataset(dataset_file)
    with BackgroundServer(create_image_app(root)) as server:
        export = export_tasks(
            dataset, tmp_path / "ls", image_url="http", document_root=root, base_url=server.url
        )
        tasks = json.loads(export.tasks_path.read_text(encoding="utf-8"))
        by_id = {image.sha256: image for image in dataset.images}
        assert len(tasks) == len(dataset.images) == 6
        for task in tasks:
            answer = httpx.get(task["data"]["image"])
            assert answer.status_code == 200
            assert answer.content == by_id[task["data"]["rv_id"]].path.read_bytes()
            assert answer.headers["content-type"] == "image/png"
        # Label Studio's frontend reads the image from another origin.
        answer = httpx.get(tasks[0]["data"]["image"], headers={"Origin": "http://127.0.0.1:8080"})
        assert answer.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    "path",
    ["/notes.txt", "/../secret.png", "/%2e%2e/secret.png", "/M3/escape.png", "/M3/", "/nope.png"],
)
def test_non_images_folders_and_paths_leaving_the_root_are_404(
    served: tuple[Path, Path], path: str
) -> None:
    _, root = served
    with BackgroundServer(create_image_app(root)) as server:
        answer = httpx.get(server.url + path)
        assert answer.status_code == 404, (path, answer.text[:200])
        assert b"private notes" not in answer.content
        assert httpx.post(server.url + "/M3/img0.png").status_code == 405


def test_a_missing_root_and_a_non_loopback_bind_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        create_image_app(tmp_path / "nope")
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    result = CliRunner().invoke(
        main, ["label-studio", "serve-images", str(tmp_path), "--host", "0.0.0.0"]
    )
    assert result.exit_code == 2
    assert "loopback only" in result.output
