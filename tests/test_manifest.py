"""ImageManifest stores one fully populated row per media item in SQLite and reads it back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from redditvision.errors import ConfigError
from redditvision.manifest import MANIFEST_NAME, ImageManifest
from redditvision.models import ImageRecord, RecordStatus


def record(key: str, status: RecordStatus, folder: Path, **fields: object) -> ImageRecord:
    post_id, index = key.split(":")
    base: dict[str, object] = {
        "post_id": post_id,
        "index": int(index),
        "url": f"https://i.redd.it/{post_id}.jpg",
        "status": status,
        "subreddit": "BMW",
        "title": "宝马 🚗 ../x",
        "author": None,
        "flair_text": "M3",
        "permalink": f"/r/BMW/comments/{post_id}/",
    }
    if status is RecordStatus.OK:
        path = folder / "images" / "ab" / f"ab{post_id}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 10)
        base.update(
            path=path,
            sha256="ab" + post_id,
            phash="f0f0f0f0f0f0f0f0",
            width=4,
            height=3,
            format="JPEG",
            size_bytes=10,
            near_duplicate_group=key,
        )
    base.update(fields)
    return ImageRecord(**base)  # type: ignore[arg-type]


def test_put_then_get_returns_the_same_fully_populated_record(tmp_path: Path) -> None:
    with ImageManifest.for_folder(tmp_path, create=True) as manifest:
        written = record("p1:0", RecordStatus.OK, tmp_path)
        manifest.put(written, final_url="https://i.redd.it/final.jpg", attempts=2)
        assert manifest.get("p1:0") == written
        assert manifest.final_url("p1:0") == "https://i.redd.it/final.jpg"
        assert manifest.attempts("p1:0") == 2
        assert manifest.get("nope:0") is None


def test_paths_are_stored_relative_so_the_folder_can_move(tmp_path: Path) -> None:
    first = tmp_path / "one"
    with ImageManifest.for_folder(first, create=True) as manifest:
        manifest.put(record("p1:0", RecordStatus.OK, first))
    shutil.move(first, tmp_path / "two")
    with ImageManifest.for_folder(tmp_path / "two") as manifest:
        moved = manifest.get("p1:0")
    assert moved is not None
    assert moved.path is not None
    assert moved.path.is_file()
    assert moved.path.is_relative_to((tmp_path / "two").resolve())


def test_records_filters_by_status_in_first_written_order_across_batches(tmp_path: Path) -> None:
    with ImageManifest.for_folder(tmp_path, create=True) as manifest:
        for number in range(25):
            status = RecordStatus.OK if number % 3 else RecordStatus.FAILED
            manifest.put(record(f"p{number}:0", status, tmp_path, reason=None))
        manifest.put(record("p1:0", RecordStatus.OK, tmp_path))  # an update keeps its place
        ok = [r.key for r in manifest.records(RecordStatus.OK, batch=4)]
        everything = [r.key for r in manifest.records(batch=4)]
    assert everything == [f"p{n}:0" for n in range(25)]
    assert ok == [f"p{n}:0" for n in range(25) if n % 3]


def test_summary_counts_each_status_and_the_ok_bytes(tmp_path: Path) -> None:
    with ImageManifest.for_folder(tmp_path, create=True) as manifest:
        manifest.put(record("a:0", RecordStatus.OK, tmp_path))
        manifest.put(record("b:0", RecordStatus.OK, tmp_path, near_duplicate_group="a:0"))
        manifest.put(record("c:0", RecordStatus.DUPLICATE, tmp_path, duplicate_of="a:0"))
        manifest.put(record("d:0", RecordStatus.FAILED, tmp_path, reason="HTTP 404"))
        manifest.put(record("e:0", RecordStatus.MISSING, tmp_path, reason="placeholder"))
        manifest.put(record("e:1", RecordStatus.SKIPPED, tmp_path, reason="preview"))
        assert manifest.summary() == {
            "total": 6,
            "ok": 2,
            "duplicates": 1,
            "missing": 1,
            "skipped": 1,
            "failed": 1,
            "bytes": 20,
            "groups": 1,
        }
        assert len(manifest) == 6


def test_attempts_add_up_over_runs(tmp_path: Path) -> None:
    with ImageManifest.for_folder(tmp_path, create=True) as manifest:
        manifest.put(record("a:0", RecordStatus.FAILED, tmp_path), attempts=4)
        manifest.put(record("a:0", RecordStatus.OK, tmp_path), attempts=1)
        assert manifest.attempts("a:0") == 5
        assert manifest.get("a:0").status is RecordStatus.OK  # type: ignore[union-attr]


def test_folder_without_a_manifest_raises_a_config_error_naming_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="redditvision download"):
        ImageManifest.for_folder(tmp_path)


def test_a_file_that_is_not_sqlite_raises_a_config_error(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_NAME).write_text("not a database " * 100)
    with pytest.raises(ConfigError, match="not a redditvision manifest"):
        ImageManifest.for_folder(tmp_path)


def test_record_path_outside_the_folder_is_refused(tmp_path: Path) -> None:
    with ImageManifest.for_folder(tmp_path / "m", create=True) as manifest:
        outside = record("a:0", RecordStatus.OK, tmp_path)
        with pytest.raises(ConfigError, match="outside the manifest folder"):
            manifest.put(outside)


def test_close_is_idempotent_and_closed_manifest_refuses_queries(tmp_path: Path) -> None:
    manifest = ImageManifest.for_folder(tmp_path, create=True)
    manifest.close()
    manifest.close()
    with pytest.raises(ConfigError, match="closed"):
        manifest.get("a:0")
