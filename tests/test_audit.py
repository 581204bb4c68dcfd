"""The data audit finds each kind of problem it names, ranks them, and cleans the dataset."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter

from redditvision.audit import (
    ISSUE_KINDS,
    AuditReport,
    audit_dataset,
    measure_image,
    score_embeddings,
    write_audit,
)
from redditvision.errors import ConfigError, DatasetError
from redditvision.labels import normalize_label
from redditvision.models import LabeledDataset, LabeledImage, MLUse
from redditvision.storage import load_local_dataset, write_local_dataset


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _sharp(size: tuple[int, int] = (256, 256), seed: int = 0) -> Image.Image:
    """A detailed picture: random colored rectangles and lines (sharp edges everywhere)."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.rectangle((x, y, x + rng.randrange(5, 40), y + rng.randrange(5, 40)), fill=color)
        draw.line((rng.randrange(size[0]), 0, rng.randrange(size[0]), size[1]), fill=color, width=2)
    return image


def _issues(image: Image.Image) -> set[str]:
    return {issue.issue for issue in measure_image(_png(image)).issues}


def test_a_sharp_well_exposed_photo_has_no_image_issue() -> None:
    assert _issues(_sharp()) == set()


def test_a_blurred_photo_is_blurry() -> None:
    assert "blurry" in _issues(_sharp().filter(ImageFilter.GaussianBlur(6)))


def test_a_dark_photo_is_dark() -> None:
    dark = Image.eval(_sharp(), lambda v: v // 12)
    assert "dark" in _issues(dark)


def test_a_blown_out_photo_is_overexposed() -> None:
    image = _sharp()
    ImageDraw.Draw(image).rectangle((0, 0, 255, 180), fill=(255, 255, 255))
    assert "overexposed" in _issues(image)


def test_a_thumbnail_is_tiny() -> None:
    found = measure_image(_png(_sharp((40, 30))))
    assert "tiny" in {issue.issue for issue in found.issues}
    assert (found.width, found.height) == (40, 30)


def test_a_banner_has_an_odd_aspect_ratio() -> None:
    assert "odd_aspect_ratio" in _issues(_sharp((1200, 150)))


def test_a_flat_picture_has_low_information_and_is_not_called_blurry() -> None:
    found = _issues(Image.new("RGB", (200, 200), (90, 140, 60)))
    assert "low_information" in found
    assert "blurry" not in found


def _clusters(
    n_per: int, n_labels: int, dim: int = 16, seed: int = 0
) -> tuple[NDArray[np.float32], list[int]]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_labels, dim)) * 4
    features = np.concatenate([c + rng.normal(size=(n_per, dim)) for c in centers])
    labels = [k for k in range(n_labels) for _ in range(n_per)]
    return features.astype(np.float32), labels


def test_flipped_labels_are_flagged_with_the_true_label_suggested() -> None:
    features, labels = _clusters(30, 3)
    flipped = {5: 1, 40: 2, 75: 0}
    given = list(labels)
    for index, wrong in flipped.items():
        given[index] = wrong
    scores = score_embeddings(features, given, n_labels=3)
    flagged = set(np.flatnonzero(scores.label_flag).tolist())
    assert set(flipped) <= flagged
    assert len(flagged) <= 6
    for index in flipped:
        assert int(scores.suggested[index]) == labels[index]
        assert scores.label_quality[index] < 0.5


def test_images_far_from_every_cluster_are_outliers_and_not_scored_as_label_errors() -> None:
    features, labels = _clusters(30, 3, seed=1)
    rng = np.random.default_rng(2)
    far = rng.normal(size=(3, features.shape[1])).astype(np.float32) * 4
    # Outliers point in directions of their own (the scores use cosine distance).
    far[:, :] = 0
    far[0, 0], far[1, 1], far[2, 2] = 50, -50, 50
    x = np.concatenate([features + np.array([0, 0, 0] + [8] * 13, dtype=np.float32), far])
    scores = score_embeddings(x, [*labels, 0, 1, 2], n_labels=3)
    assert scores.outlier_flag[-3:].all()
    assert scores.outlier_flag[:-3].sum() <= 2
    assert (scores.outlier_severity[-3:] >= 0.5).all()
    assert (scores.label_quality[-3:] == 1.0).all()


def test_a_single_label_cannot_be_audited_for_label_errors() -> None:
    features, _ = _clusters(10, 1)
    with pytest.raises(DatasetError, match="at least two labels"):
        score_embeddings(features, [0] * 10, n_labels=1)


class MeanColorExtractor:
    """A real, tiny feature extractor: the mean color of each image's four quadrants.

    Implements the local backend's FeatureExtractor protocol without a network, so the
    audit runs end to end in a fraction of a second.
    """

    id = "mean-color"
    version = "1"
    dim = 12
    preprocessing: dict[str, Any] = {}

    def extract(
        self, images: Sequence[bytes], *, augmentation: str = "none"
    ) -> NDArray[np.float32]:
        rows = []
        for data in images:
            with Image.open(io.BytesIO(data)) as image:
                small = np.asarray(image.convert("RGB").resize((2, 2)), dtype=np.float32)
            rows.append(small.reshape(-1) / 255.0 - 0.5)
        return np.array(rows, dtype=np.float32).reshape(len(rows), self.dim)


def _colored(color: tuple[int, int, int], seed: int) -> Image.Image:
    """A sharp picture dominated by one color (so mean color tells the labels apart)."""
    rng = random.Random(seed)
    image = Image.new("RGB", (128, 128), color)
    draw = ImageDraw.Draw(image)
    for _ in range(400):
        x, y = rng.randrange(128), rng.randrange(128)
        shade = tuple(max(0, min(255, c + rng.randrange(-70, 70))) for c in color)
        draw.rectangle((x, y, x + 5, y + 5), fill=shade)  # type: ignore[arg-type]
    return image


@pytest.fixture
def noisy_dataset(tmp_path: Path) -> tuple[LabeledDataset, dict[str, set[Path]]]:
    """Two labels of 12 photos, one flipped label, one off-domain picture, one copy under the
    other label, one copy across splits, one second copy, one blurred and one tiny image."""
    colors = {"Red Car": (200, 30, 30), "Blue Car": (30, 30, 200)}
    images: list[LabeledImage] = []
    planted: dict[str, set[Path]] = {k: set() for k in ISSUE_KINDS}
    for label, color in colors.items():
        folder = tmp_path / label
        folder.mkdir()
        for i in range(12):
            path = folder / f"{i:02d}.png"
            _colored(color, seed=i + (100 if label == "Blue Car" else 0)).save(path)
            images.append(
                LabeledImage(
                    path=path,
                    label=normalize_label(label),
                    original_label=label,
                    ml_use=MLUse.TRAINING if i < 9 else MLUse.TEST,
                )
            )

    def add(name: str, image: Image.Image, label: str, issue: str, ml_use: MLUse) -> None:
        path = tmp_path / name
        image.save(path)
        images.append(
            LabeledImage(
                path=path, label=normalize_label(label), original_label=label, ml_use=ml_use
            )
        )
        planted[issue].add(path)

    add(
        "flipped.png",
        _colored(colors["Red Car"], seed=55),
        "Blue Car",
        "label_error",
        MLUse.TRAINING,
    )
    add("offdomain.png", _colored((20, 220, 20), seed=7), "Red Car", "off_domain", MLUse.TRAINING)
    red0 = Image.open(tmp_path / "Red Car" / "00.png")
    add("red0-as-blue.png", red0.copy(), "Blue Car", "duplicate_across_labels", MLUse.TRAINING)
    planted["duplicate_across_labels"].add(tmp_path / "Red Car" / "00.png")
    red10 = Image.open(tmp_path / "Red Car" / "10.png")  # a test image
    add("red10-in-training.png", red10.copy(), "Red Car", "split_leak", MLUse.TRAINING)
    planted["split_leak"].add(tmp_path / "Red Car" / "10.png")
    blue5 = Image.open(tmp_path / "Blue Car" / "05.png")
    add("zz-blue5-again.png", blue5.copy(), "Blue Car", "duplicate", MLUse.TRAINING)
    add(
        "blurred.png",
        _colored(colors["Blue Car"], seed=77).filter(ImageFilter.GaussianBlur(8)),
        "Blue Car",
        "blurry",
        MLUse.TRAINING,
    )
    add(
        "tiny.png",
        _colored(colors["Red Car"], seed=78).resize((40, 40)),
        "Red Car",
        "tiny",
        MLUse.TRAINING,
    )
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    images.append(
        LabeledImage(path=broken, label="Red_Car", original_label="Red Car", ml_use=MLUse.TRAINING)
    )
    planted["undecodable"].add(broken)
    dataset = LabeledDataset(
        images=tuple(images),
        label_map={"Red_Car": "Red Car", "Blue_Car": "Blue Car"},
        name="cars",
    )
    return dataset, planted


def _found(report: AuditReport, issue: str) -> set[Path]:
    return {f.path for f in report.findings if f.issue == issue}


def test_every_planted_problem_is_found_under_its_issue(
    noisy_dataset: tuple[LabeledDataset, dict[str, set[Path]]],
) -> None:
    dataset, planted = noisy_dataset
    report = audit_dataset(dataset, extractor=MeanColorExtractor())
    for issue in (
        "undecodable",
        "off_domain",
        "duplicate_across_labels",
        "split_leak",
        "blurry",
        "tiny",
    ):
        assert planted[issue] <= _found(report, issue), issue
    assert _found(report, "duplicate") == planted["duplicate"]
    label_errors = {f.path: f for f in report.findings if f.issue == "label_error"}
    (flipped,) = planted["label_error"]
    assert label_errors[flipped].suggested_label == "Red Car"
    assert label_errors[flipped].action == "relabel"
    # Findings speak the user's label names, and the review order puts off-domain first.
    assert {f.label for f in report.findings} <= {"Red Car", "Blue Car"}
    ranked = report.flagged()
    assert ranked.index(next(iter(planted["off_domain"]))) < ranked.index(flipped)


def test_cleaning_excludes_and_relabels_what_was_asked_only(
    noisy_dataset: tuple[LabeledDataset, dict[str, set[Path]]],
) -> None:
    dataset, planted = noisy_dataset
    report = audit_dataset(dataset, extractor=MeanColorExtractor())
    cleaned, stats = report.cleaned(
        exclude=["off_domain", "undecodable", "duplicate"], relabel=True
    )
    paths = {image.path for image in cleaned.images}
    assert not (planted["off_domain"] | planted["undecodable"] | planted["duplicate"]) & paths
    (flipped,) = planted["label_error"]
    relabeled = next(image for image in cleaned.images if image.path == flipped)
    assert (relabeled.label, relabeled.original_label) == ("Red_Car", "Red Car")
    assert stats["excluded:off_domain"] == 1
    assert stats["excluded:duplicate"] == 1
    assert stats["relabeled"] >= 1
    assert len(cleaned.images) == len(dataset.images) - sum(
        n for k, n in stats.items() if k.startswith("excluded:")
    )
    with pytest.raises(ConfigError, match="unknown audit issue"):
        report.cleaned(exclude=["memes"])


def test_the_audit_files_hold_every_finding_with_neutralized_cells(
    noisy_dataset: tuple[LabeledDataset, dict[str, set[Path]]], tmp_path: Path
) -> None:
    dataset, _ = noisy_dataset
    images = list(dataset.images)
    images[0] = LabeledImage(
        path=images[0].path, label="Red_Car", original_label="=HYPERLINK(1)", ml_use=MLUse.TRAINING
    )
    report = audit_dataset(
        LabeledDataset(
            images=tuple(images), label_map=dict(dataset.label_map) | {"Red_Car": "=HYPERLINK(1)"}
        ),
        extractor=MeanColorExtractor(),
    )
    files = write_audit(report, tmp_path / "audit")
    rows = list(csv.DictReader(files.csv.open(encoding="utf-8")))
    assert len(rows) == len(report.findings)
    assert all(not row["label"].startswith("=") for row in rows)
    lines = [json.loads(line) for line in files.jsonl.read_text(encoding="utf-8").splitlines()]
    assert [line["issue"] for line in lines] == [f.issue for f in report.findings]
    assert lines[0]["rank"] == 1
    page = files.html.read_text(encoding="utf-8")
    assert page.count("data:image/jpeg;base64,") >= len({f.path for f in report.findings}) - 1
    assert "<script>alert" not in page
    assert str(tmp_path) not in page  # paths are shown relative to the audit folder


# Runs after the page's own script: counts what rendered, sorts the label-error table by
# score as a reader's click would, and writes the result into the DOM.
AUDIT_PROBE = """
<script>
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var sections = Array.prototype.map.call(
    document.querySelectorAll('section[id^="issue-"]'), function (s) { return s.id; });
  var table = document.getElementById('table-label_error');
  var header = table.tHead.rows[0].cells[4];
  header.click();
  header.click();
  var scores = Array.prototype.map.call(table.tBodies[0].rows, function (row) {
    return parseFloat(row.cells[4].getAttribute('data-sort'));
  });
  var probe = document.createElement('pre');
  probe.id = 'probe';
  probe.textContent = JSON.stringify({
    ready: document.body.getAttribute('data-sortable'),
    images: images.length,
    thumbnails: document.querySelectorAll('td.thumb img').length,
    broken: images.filter(function (i) { return !i.complete || i.naturalWidth === 0; }).length,
    sections: sections,
    sort: header.getAttribute('aria-sort'),
    scores: scores
  });
  document.body.appendChild(probe);
});
</script>
"""


@pytest.mark.browser
def test_the_audit_page_renders_in_headless_chromium_with_its_thumbnails(
    noisy_dataset: tuple[LabeledDataset, dict[str, set[Path]]], tmp_path: Path
) -> None:
    from harness.browser import console_lines, find_chromium, probe_page, run_chromium

    chromium = find_chromium()
    dataset, _ = noisy_dataset
    report = audit_dataset(dataset, extractor=MeanColorExtractor())
    files = write_audit(report, tmp_path / "audit")
    shot = run_chromium(
        chromium,
        tmp_path / "profile-shot",
        "--window-size=1280,2000",
        f"--screenshot={tmp_path / 'audit.png'}",
        files.html.as_uri(),
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert console_lines(shot.stderr) == []  # the page's script ran; the CSP held
    with Image.open(tmp_path / "audit.png") as screenshot:
        assert screenshot.size == (1280, 2000)
        assert max(screenshot.convert("L").getextrema()) > 0

    result, _ = probe_page(chromium, files.html, AUDIT_PROBE, tmp_path)
    assert result["ready"] == "ready"
    # Every finding's image has a decoded thumbnail, except the undecodable one.
    assert result["thumbnails"] == sum(1 for f in report.findings if f.issue != "undecodable")
    assert result["broken"] == 0
    assert result["images"] == result["thumbnails"]
    assert set(result["sections"]) == {f"issue-{kind}" for kind in report.counts()}
    assert result["sort"] == "descending"
    assert result["scores"] == sorted(result["scores"], reverse=True)


def test_cli_audit_writes_the_files_and_a_cleaned_dataset_the_next_steps_read(
    noisy_dataset: tuple[LabeledDataset, dict[str, set[Path]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from redditvision.cli import main

    dataset, planted = noisy_dataset
    labeled = write_local_dataset(dataset, tmp_path / "labeled" / "dataset.jsonl")
    # The CLI builds the local backend's extractor; give it the tiny one.
    import redditvision.backends.local as local

    monkeypatch.setattr(local, "EfficientNetLite0Extractor", MeanColorExtractor)
    out = tmp_path / "audit"
    result = CliRunner().invoke(
        main,
        [
            "audit",
            str(labeled),
            "--out",
            str(out),
            "--exclude",
            "off_domain",
            "--exclude",
            "undecodable",
            "--no-generic",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["issues"]["off_domain"] >= 1
    assert {"audit.html", "audit.csv", "audit.jsonl", "dataset.jsonl"} <= {
        p.name for p in out.iterdir()
    }
    cleaned = load_local_dataset(out / "dataset.jsonl")
    assert len(cleaned.images) == len(dataset.images) - 2
    assert not {image.path for image in cleaned.images} & (
        planted["off_domain"] | planted["undecodable"]
    )


def test_cli_audit_refuses_an_unknown_issue_with_exit_2(tmp_path: Path) -> None:
    from redditvision.cli import main

    path = tmp_path / "dataset.jsonl"
    path.write_text("")
    result = CliRunner().invoke(
        main, ["audit", str(path), "--out", str(tmp_path / "a"), "--exclude", "memes"]
    )
    assert result.exit_code == 2
    assert "unknown issue(s) for --exclude: memes" in result.output


@pytest.mark.slow
def test_on_the_real_photos_the_top_60_hold_most_injected_problems(
    bmw_photos: Path, shared_data: Path
) -> None:
    """383 BMW photos, 20 flipped labels and 29 off-domain photos under random labels."""
    rng = random.Random(0)
    files = sorted(bmw_photos.glob("*/*.jpg"))
    names = sorted({f.parent.name for f in files})
    labels = [f.parent.name for f in files]
    flipped = rng.sample(range(len(files)), 20)
    for i in flipped:
        labels[i] = rng.choice([n for n in names if n != labels[i]])
    off = sorted(p for p in (shared_data / "offdomain" / "bmw10-noncar").iterdir() if p.is_file())
    files += off
    labels += [rng.choice(names) for _ in off]
    dataset = LabeledDataset(
        images=tuple(
            LabeledImage(path=f, label=normalize_label(name), original_label=name)
            for f, name in zip(files, labels, strict=True)
        ),
        label_map={normalize_label(n): n for n in names},
        name="bmw-noisy",
    )
    report = audit_dataset(dataset)
    injected = {files[i] for i in flipped} | set(off)
    top = set(report.flagged()[:60])
    assert len(injected & top) >= 40  # 80% of 49
    assert set(off) <= {f.path for f in report.findings if f.issue == "off_domain"}
