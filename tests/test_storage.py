"""Writing datasets to Cloud Storage (gcp-storage-emulator on 127.0.0.1) and local folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness_gcs import GcsEmulator
from redditvision import DatasetError, LabeledDataset, MLUse, StorageError, retry
from redditvision.cli import main
from redditvision.labels import LabelMap, label_folders
from redditvision.split import split_dataset
from redditvision.storage import (
    DatasetWriter,
    GcsDatasetWriter,
    LocalDatasetWriter,
    load_local_dataset,
    write_local_dataset,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def bmw_series(bmw_photos: Path) -> LabeledDataset:
    """The 383 real photos grouped into the five series and split 80/10/10."""
    label_map = LabelMap.from_toml(EXAMPLES / "bmw-series.toml")
    return split_dataset(label_folders(bmw_photos, label_map=label_map))


def _objects(emulator: GcsEmulator, bucket: str, prefix: str) -> dict[str, str]:
    client = emulator.client()
    try:
        return {
            blob.name: blob.content_type for blob in client.list_blobs(bucket, prefix=f"{prefix}/")
        }
    finally:
        client.close()


def _read(emulator: GcsEmulator, bucket: str, name: str) -> str:
    client = emulator.client()
    try:
        return str(client.bucket(bucket).blob(name).download_as_text())
    finally:
        client.close()


def test_cli_labels_and_uploads_the_real_photos_and_a_second_run_uploads_nothing(
    bmw_photos: Path, gcs_emulator: GcsEmulator, tmp_path: Path
) -> None:
    gcs_emulator.create_bucket("cars")
    runner = CliRunner()
    out = tmp_path / "bmw"
    labeled = runner.invoke(
        main,
        [
            "label",
            "--images",
            str(bmw_photos),
            "--label-map",
            str(EXAMPLES / "bmw-series.toml"),
            "--out",
            str(out),
            "--json-summary",
        ],
    )
    assert labeled.exit_code == 0, labeled.output
    report = json.loads(labeled.stdout.strip().splitlines()[-1])
    assert report["ok"] is True
    assert sum(report["counts"].values()) == 383
    assert (out / "dataset.jsonl").is_file()

    args = ["upload", "--dataset", str(out / "dataset.jsonl"), "--bucket", "cars"]
    args += ["--prefix", "bmw", "--json-summary"]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["uploaded"] == 383
    assert summary["skipped_unchanged"] == 0
    assert summary["bytes"] == sum(p.stat().st_size for p in bmw_photos.rglob("*.jpg"))
    assert summary["import_file"] == "gs://cars/bmw/import.csv"

    objects = _objects(gcs_emulator, "cars", "bmw")
    images = {name: kind for name, kind in objects.items() if name.endswith(".jpg")}
    assert len(images) == 383
    assert set(images.values()) == {"image/jpeg"}
    rows = _read(gcs_emulator, "cars", "bmw/import.csv").splitlines()
    assert len(rows) == 383
    uses, uris, labels = zip(*(row.split(",") for row in rows), strict=True)
    assert set(uses) == {"training", "validation", "test"}
    assert {uri.removeprefix("gs://cars/") for uri in uris} == set(images)
    assert set(labels) == {"L_1_2series", "L_3_4series", "L_5_6series", "x_suv", "z3_4_8"}
    label_map = json.loads(_read(gcs_emulator, "cars", "bmw/label_map.json"))
    assert label_map["L_1_2series"] == "1-2series"

    second = runner.invoke(main, args)
    assert second.exit_code == 0, second.output
    again = json.loads(second.stdout.strip().splitlines()[-1])
    assert (again["uploaded"], again["bytes"], again["skipped_unchanged"]) == (0, 0, 383)


def test_upload_interrupted_by_an_outage_fails_clearly_and_a_rerun_completes(
    bmw_series: LabeledDataset, gcs_emulator: GcsEmulator
) -> None:
    gcs_emulator.create_bucket("cars")
    dataset = LabeledDataset(
        images=tuple(i for i in bmw_series.images if i.label == "z3_4_8"),
        label_map=bmw_series.label_map,
    )
    assert len(dataset.images) == 34
    seen: list[int] = []

    def stop_after_first_batch(done: int, total: int) -> None:
        seen.append(done)
        if done >= 8:
            gcs_emulator.stop()

    client = gcs_emulator.client()
    writer = GcsDatasetWriter(client=client, bucket="cars", prefix="cut", batch_size=8)
    with writer, pytest.raises(StorageError) as info:
        writer.write(dataset, progress=stop_after_first_batch)
    assert info.value.transient
    assert "run again to resume" in str(info.value)
    assert len(retry.recorded_sleeps()) == 4  # 5 attempts of the failing batch, no real sleep

    gcs_emulator.start()
    before = _objects(gcs_emulator, "cars", "cut")
    assert len(before) == 8
    assert "cut/import.csv" not in before  # never points at missing images

    with GcsDatasetWriter(client=gcs_emulator.client(), bucket="cars", prefix="cut") as rerun:
        result = rerun.write(dataset, extra_formats=["vertex_jsonl", "automl_csv"])
    assert (result.uploaded, result.skipped_unchanged) == (26, 8)
    after = _objects(gcs_emulator, "cars", "cut")
    assert len([n for n in after if n.endswith(".jpg")]) == 34
    assert result.location.extra_import_files == {
        "vertex_jsonl": "gs://cars/cut/import.jsonl",
        "automl_csv": "gs://cars/cut/import_automl.csv",
    }
    listed = {
        json.loads(line)["imageGcsUri"].removeprefix("gs://cars/")
        for line in _read(gcs_emulator, "cars", "cut/import.jsonl").splitlines()
    }
    assert listed == {n for n in after if n.endswith(".jpg")}


def test_bucket_that_does_not_exist_is_a_clear_error(
    bmw_series: LabeledDataset, gcs_emulator: GcsEmulator
) -> None:
    writer = GcsDatasetWriter.from_env(bucket="no-such-bucket")
    with writer, pytest.raises(StorageError, match="bucket 'no-such-bucket' does not exist"):
        writer.write(bmw_series)
    writer.close()  # safe twice


def test_empty_dataset_is_refused_before_any_request(gcs_emulator: GcsEmulator) -> None:
    with (
        GcsDatasetWriter.from_env(bucket="cars") as writer,
        pytest.raises(DatasetError, match="the dataset is empty"),
    ):
        writer.write(LabeledDataset(images=()))


def test_emulator_host_without_scheme_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:9023")
    with pytest.raises(Exception, match="needs a scheme"):
        GcsDatasetWriter.from_env(bucket="cars")


def test_local_writer_lays_out_the_dataset_and_skips_unchanged_files(
    bmw_series: LabeledDataset, tmp_path: Path
) -> None:
    root = tmp_path / "local"
    with LocalDatasetWriter(root) as writer:
        assert isinstance(writer, DatasetWriter)
        first = writer.write(bmw_series, extra_formats=["vertex_csv"])
        second = writer.write(bmw_series)
    assert (first.uploaded, second.uploaded, second.skipped_unchanged, second.bytes) == (
        383,
        0,
        383,
        0,
    )
    assert first.location.import_file_uri == (root / "dataset.jsonl").resolve().as_uri()
    first_csv_row = (root / "import.csv").read_text().splitlines()[0]
    assert first_csv_row.split(",")[1].startswith("file:///")
    loaded = load_local_dataset(first.location.import_file_uri)
    assert len(loaded.images) == 383
    for image in loaded.images:
        assert image.path.is_file()
        assert image.path.parent.name == image.label
        assert image.path.name == f"{image.sha256}.jpg"
    assert {i.ml_use for i in loaded.images} == set(MLUse)
    assert loaded.label_map == bmw_series.label_map


def test_upload_killed_mid_run_completes_on_rerun_with_nothing_missing(
    bmw_series: LabeledDataset, gcs_emulator: GcsEmulator, tmp_path: Path
) -> None:
    gcs_emulator.create_bucket("cars")
    subset = LabeledDataset(
        images=tuple(i for i in bmw_series.images if i.label in {"L_3_4series", "z3_4_8"}),
        label_map=bmw_series.label_map,
    )
    total = len(subset.images)
    assert total == 122
    dataset_file = write_local_dataset(subset, tmp_path / "dataset.jsonl")
    command = [sys.executable, "-c", "from redditvision.cli import main; main()", "upload"]
    command += ["--dataset", str(dataset_file), "--bucket", "cars", "--prefix", "killed"]
    process = subprocess.Popen(command, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if len(_objects(gcs_emulator, "cars", "killed")) >= 10:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the upload ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    partial = _objects(gcs_emulator, "cars", "killed")
    assert 10 <= len(partial) < total
    assert "killed/import.csv" not in partial

    with GcsDatasetWriter.from_env(bucket="cars", prefix="killed") as writer:
        result = writer.write(load_local_dataset(dataset_file))
    assert result.uploaded + result.skipped_unchanged == total
    assert result.skipped_unchanged >= len(partial)
    images = {n for n in _objects(gcs_emulator, "cars", "killed") if n.endswith(".jpg")}
    assert len(images) == total
    rows = _read(gcs_emulator, "cars", "killed/import.csv").splitlines()
    assert {row.split(",")[1].removeprefix("gs://cars/") for row in rows} == images


def test_cli_upload_to_a_local_folder(bmw_series: LabeledDataset, tmp_path: Path) -> None:
    dataset_file = write_local_dataset(bmw_series, tmp_path / "in" / "dataset.jsonl")
    args = ["upload", "--dataset", str(dataset_file), "--local", str(tmp_path / "out")]
    result = CliRunner().invoke(main, [*args, "--json-summary"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["uploaded"] == 383
    assert summary["import_file"] == (tmp_path / "out" / "dataset.jsonl").as_uri()
    neither = CliRunner().invoke(main, ["upload", "--dataset", str(dataset_file)])
    assert neither.exit_code == 2
    assert "exactly one of --bucket NAME or --local DIR" in neither.output


def test_upload_is_a_deprecated_alias_of_write(bmw_series: LabeledDataset, tmp_path: Path) -> None:
    subset = LabeledDataset(images=bmw_series.images[:5], label_map=bmw_series.label_map)
    with LocalDatasetWriter(tmp_path / "local") as writer:
        written = writer.write(subset)
        with pytest.warns(DeprecationWarning, match=r"upload\(\) is deprecated; call write\(\)"):
            again = writer.upload(subset)
    assert (written.uploaded, again.uploaded, again.skipped_unchanged) == (5, 0, 5)
    assert again.location == written.location


def test_the_local_writer_and_write_local_dataset_write_one_dataset_file_format(
    bmw_series: LabeledDataset, tmp_path: Path
) -> None:
    subset = LabeledDataset(images=bmw_series.images[:7], label_map=bmw_series.label_map)
    with LocalDatasetWriter(tmp_path / "copied") as writer:
        copied_file = Path(writer.write(subset).location.uri.removeprefix("file://"))
    copied = load_local_dataset(copied_file)
    # The same function writes the file for images left in place: paths relative to it.
    rewritten = write_local_dataset(copied, tmp_path / "copied" / "again.jsonl")
    assert rewritten.read_text() == (copied_file / "dataset.jsonl").read_text()
    assert load_local_dataset(rewritten).images == copied.images
