"""Labeling (redditvision.labels), splits, checks, import files and the local dataset file."""

from __future__ import annotations

import json
import random
from pathlib import Path

import attrs
import pytest
from PIL import Image

from redditvision import DatasetError, ImageRecord, LabeledDataset, LabeledImage, MLUse
from redditvision._import_formats import render_import_file
from redditvision.checks import check_dataset, convert_unsupported
from redditvision.labels import (
    LABEL_PATTERN,
    LabelMap,
    RuleSet,
    export_label_csv,
    label_csv,
    label_folders,
    label_records,
    map_labels,
    normalize_label,
)
from redditvision.models import RecordStatus
from redditvision.split import group_near_duplicates, split_dataset
from redditvision.storage import load_local_dataset, write_local_dataset

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BMW_SERIES_COUNTS = {"1-2series": 59, "3-4series": 88, "5-6series": 111, "z3-4-8": 34, "x-suv": 91}


def _image(path: Path, seed: int, fmt: str = "PNG", size: int = 32) -> Path:
    """Write a small image whose content differs per seed (distinct perceptual hashes)."""
    rng = random.Random(seed)
    image = Image.new("RGB", (size, size))
    image.putdata(
        [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(size * size)]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt)
    return path


def _folders(root: Path, counts: dict[str, int]) -> Path:
    seed = 0
    for name, count in counts.items():
        for i in range(count):
            seed += 1
            _image(root / name / f"{i:03d}.png", seed)
    return root


def _dataset(counts: dict[str, int], tmp_path: Path) -> LabeledDataset:
    return label_folders(_folders(tmp_path / "images", counts))


# ---------------------------------------------------------------- label names


def test_normalize_label_keeps_valid_names_and_fixes_invalid_ones() -> None:
    assert normalize_label("sedan") == "sedan"
    assert normalize_label("BMW 1 Series Coupe 2012") == "BMW_1_Series_Coupe_2012"
    assert normalize_label("cars/bmw") == "cars_bmw"
    assert normalize_label("3-4series") == "L_3_4series"
    long = "a" * 20 + " " + "b" * 20
    assert len(normalize_label(long)) == 32
    assert normalize_label("Citroën ë") == "Citroen_e"
    for name in ("cars/bmw", "3-4series", long, "Citroën ë", " x "):
        assert LABEL_PATTERN.match(normalize_label(name))


def test_normalize_label_refuses_names_without_letters_or_digits() -> None:
    with pytest.raises(DatasetError, match="no letter or digit"):
        normalize_label("///")


def test_map_labels_rejects_every_bad_label_with_a_suggestion_when_not_normalizing() -> None:
    with pytest.raises(DatasetError) as info:
        map_labels(["ok", "cars/bmw", "3-4series", "x" * 40], normalize=False)
    message = str(info.value)
    assert "3 label(s)" in message
    assert "'cars/bmw' (try 'cars_bmw')" in message
    assert "'3-4series' (try 'L_3_4series')" in message
    assert "x" * 32 in message


def test_map_labels_reports_two_labels_that_normalize_to_the_same_name() -> None:
    with pytest.raises(DatasetError, match=r"'BMW 3' and 'BMW-3' both become 'BMW_3'"):
        map_labels(["BMW-3", "BMW 3"])


def test_real_folder_names_with_spaces_and_digits_are_normalized_reversibly(
    bmw_photos: Path,
) -> None:
    dataset = label_folders(bmw_photos)
    assert len(dataset.labels) == 13
    assert len(dataset.images) == 383
    assert all(LABEL_PATTERN.match(label) for label in dataset.labels)
    assert dataset.label_map["BMW_Z4_Convertible_2012"] == "BMW Z4 Convertible 2012"
    for image in dataset.images:
        assert dataset.label_map[image.label] == image.original_label == image.path.parent.name
        assert image.sha256 is not None and len(image.sha256) == 64


def test_real_folder_names_are_rejected_without_normalization(bmw_photos: Path) -> None:
    with pytest.raises(DatasetError, match=r"13 label\(s\).*'BMW M3 Coupe 2012' \(try"):
        label_folders(bmw_photos, normalize=False)


# ---------------------------------------------------------------- folders and label map


def test_label_map_groups_the_real_photos_into_five_series(bmw_photos: Path) -> None:
    label_map = LabelMap.from_toml(EXAMPLES / "bmw-series.toml")
    dataset = label_folders(bmw_photos, label_map=label_map)
    originals = {dataset.label_map[label]: n for label, n in dataset.counts().items()}
    assert originals == BMW_SERIES_COUNTS
    assert dataset.label_map["L_1_2series"] == "1-2series"


def test_label_map_leaves_out_unmatched_folders_and_names_them(tmp_path: Path) -> None:
    root = _folders(tmp_path / "images", {"BMW M3 Coupe": 2, "Audi A4": 1})
    label_map = LabelMap.from_mapping({"m3": ["BMW M3 *"]})
    assert label_map.unmatched(["BMW M3 Coupe", "Audi A4"]) == ["Audi A4"]
    dataset = label_folders(root, label_map=label_map)
    assert dataset.counts() == {"m3": 2}


def test_label_map_file_without_labels_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "map.toml"
    path.write_text('[groups]\nx = ["a"]\n')
    with pytest.raises(DatasetError, match=r"no \[labels\] table"):
        LabelMap.from_toml(path)


def test_label_folders_refuses_a_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images found"):
        label_folders(tmp_path / "empty")


# ---------------------------------------------------------------- CSV


def test_csv_with_bom_and_crlf_reads_back(tmp_path: Path) -> None:
    a = _image(tmp_path / "img" / "a.png", 1)
    b = _image(tmp_path / "img" / "b.png", 2)
    text = "path,label\r\nimg/a.png,Sedan\r\nimg/b.png,cars/suv\r\nimg/c.png,\r\n"
    (tmp_path / "labels.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    dataset = label_csv(tmp_path / "labels.csv")
    assert [(i.path, i.label, i.original_label) for i in dataset.images] == [
        (a, "Sedan", "Sedan"),
        (b, "cars_suv", "cars/suv"),
    ]


def test_csv_row_pointing_to_a_missing_file_names_the_row(tmp_path: Path) -> None:
    _image(tmp_path / "a.png", 1)
    (tmp_path / "labels.csv").write_text("path,label\na.png,x\nnot-there.png,y\n")
    with pytest.raises(DatasetError, match=r"row 3: not-there.png"):
        label_csv(tmp_path / "labels.csv")
    dataset = label_csv(tmp_path / "labels.csv", missing="skip")
    assert dataset.counts() == {"x": 1}


def test_exported_csv_is_filled_in_and_read_back(tmp_path: Path) -> None:
    records = [
        ImageRecord(
            post_id=f"p{i}",
            index=0,
            url=f"https://i.redd.it/{i}.png",
            status=RecordStatus.OK,
            path=_image(tmp_path / "dl" / f"{i}.png", i),
            title=f"My E46, photo {i}",
        )
        for i in range(3)
    ]
    records.append(attrs.evolve(records[0], post_id="gone", status=RecordStatus.FAILED, path=None))
    out = tmp_path / "to-label.csv"
    assert export_label_csv(records, out) == 3
    lines = out.read_text().splitlines()
    assert lines[0] == "path,label,url,title,flair,subreddit,permalink"
    filled = [lines[0]] + [line.replace(",,", ",E46,", 1) for line in lines[1:]]
    out.write_text("\n".join(filled) + "\n")
    dataset = label_csv(out)
    assert dataset.counts() == {"E46": 3}


# ---------------------------------------------------------------- rules


def test_rules_first_match_wins_and_unmatched_are_reported(bmw_photos: Path) -> None:
    rules = RuleSet.from_toml(EXAMPLES / "bmw-rules.toml")
    photos = sorted((bmw_photos / "BMW M3 Coupe 2012").iterdir())
    titles = [
        ("My E46 M3 at the track", None),
        ("Just picked up my new Z4 M", None),
        ("Sunday drive", "Z4"),
        ("1973 2002tii restored", None),
        ("Look at this car", None),
    ]
    records = [
        ImageRecord(
            post_id=f"t{i}",
            index=0,
            url="https://i.redd.it/x.jpg",
            status=RecordStatus.OK,
            path=photos[i],
            sha256=f"{i:064x}",
            near_duplicate_group="g-shared" if i < 2 else None,
            title=title,
            flair_text=flair,
            subreddit="BMW",
        )
        for i, (title, flair) in enumerate(titles)
    ]
    records.append(attrs.evolve(records[0], post_id="dup", status=RecordStatus.DUPLICATE))
    dataset, report = label_records(records, rules)
    assert [i.original_label for i in dataset.images] == [
        "3-4series",
        "z3-4-8",
        "z3-4-8",
        "classics",
    ]
    assert [r.post_id for r in report.unmatched] == ["t4"]
    assert [r.post_id for r in report.not_ok] == ["dup"]
    assert report.per_rule["roadsters"] == 1
    assert report.per_rule["roadster flair"] == 1
    assert dataset.images[0].group == "g-shared"
    assert dataset.images[2].group == f"{2:064x}"
    assert dataset.images[0].source == "t0:0"


def test_rules_file_with_an_invalid_regex_names_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        '[[rules]]\nlabel = "ok"\ntitle = "M3"\n\n'
        '[[rules]]\nname = "broken one"\nlabel = "bad"\ntitle = "E4(6"\n'
    )
    with pytest.raises(DatasetError, match=r"broken one has an invalid title regex 'E4\(6'"):
        RuleSet.from_toml(path)


def test_rule_without_a_pattern_is_refused() -> None:
    with pytest.raises(DatasetError, match=r"rule 1 \(x\) has no pattern"):
        RuleSet.from_mapping({"rules": [{"label": "x"}]})


# ---------------------------------------------------------------- splits


def _synthetic(counts: dict[str, int], groups: dict[int, str] | None = None) -> LabeledDataset:
    images = []
    n = 0
    for label, count in counts.items():
        for _ in range(count):
            sha = f"{n:064x}"
            group = (groups or {}).get(n, sha)
            images.append(
                LabeledImage(
                    path=Path(f"/x/{n}.jpg"),
                    label=label,
                    original_label=label,
                    sha256=sha,
                    group=group,
                )
            )
            n += 1
    return LabeledDataset(images=tuple(images), label_map={k: k for k in counts})


def _uses(dataset: LabeledDataset) -> dict[str, MLUse | None]:
    return {str(image.path): image.ml_use for image in dataset.images}


def test_split_is_stratified_80_10_10_per_label() -> None:
    split = split_dataset(_synthetic({"a": 10, "b": 50, "c": 100}))
    for label, (train, val, test) in {"a": (8, 1, 1), "b": (40, 5, 5), "c": (80, 10, 10)}.items():
        uses = [i.ml_use for i in split.images if i.label == label]
        assert uses.count(MLUse.TRAINING) == train
        assert uses.count(MLUse.VALIDATION) == val
        assert uses.count(MLUse.TEST) == test


def test_split_is_deterministic_and_independent_of_input_order() -> None:
    dataset = _synthetic({"a": 30, "b": 30})
    shuffled = attrs.evolve(dataset, images=tuple(random.Random(5).sample(dataset.images, 60)))
    assert _uses(split_dataset(dataset, seed=3)) == _uses(split_dataset(shuffled, seed=3))
    assert _uses(split_dataset(dataset, seed=3)) != _uses(split_dataset(dataset, seed=4))


def test_split_keeps_each_near_duplicate_group_on_one_side() -> None:
    groups = {i: f"g{i // 4}" for i in range(40)}  # groups of 4 within label a
    split = split_dataset(_synthetic({"a": 40, "b": 20}, groups), seed=1)
    by_group: dict[str, set[MLUse | None]] = {}
    for image in split.images:
        by_group.setdefault(image.group or "", set()).add(image.ml_use)
    assert all(len(uses) == 1 for uses in by_group.values())
    assert {MLUse.TRAINING, MLUse.VALIDATION, MLUse.TEST} <= set().union(*by_group.values())
    assert "leak" not in {e.code for e in check_dataset(split, target="local").errors}


def test_split_fractions_must_sum_to_one() -> None:
    with pytest.raises(DatasetError, match="sum to 1"):
        split_dataset(_synthetic({"a": 10}), train=0.8, validation=0.3, test=0.1)


def test_near_duplicates_of_real_photos_share_a_group(bmw_photos: Path, tmp_path: Path) -> None:
    original = sorted((bmw_photos / "BMW Z4 Convertible 2012").iterdir())[0]
    resized = tmp_path / "z4" / "resized.jpg"
    resized.parent.mkdir()
    with Image.open(original) as handle:
        handle.resize((handle.width // 2, handle.height // 2)).save(resized, quality=80)
    other = sorted((bmw_photos / "BMW Z4 Convertible 2012").iterdir())[1]
    dataset = LabeledDataset(
        images=tuple(
            LabeledImage(path=p, label="z4", original_label="z4", sha256=None)
            for p in (original, resized, other)
        )
    )
    grouped = group_near_duplicates(dataset)
    assert grouped.images[0].group == grouped.images[1].group
    assert grouped.images[2].group != grouped.images[0].group


# ---------------------------------------------------------------- checks


def test_check_passes_the_real_photos_grouped_and_split(bmw_photos: Path) -> None:
    dataset = label_folders(bmw_photos, label_map=LabelMap.from_toml(EXAMPLES / "bmw-series.toml"))
    report = check_dataset(split_dataset(dataset))
    assert report.ok, report.errors
    assert report.split_counts["unassigned"] == 0
    assert {w.label for w in report.warnings if w.code == "few_images"} == {
        "L_1_2series",
        "L_3_4series",
        "x_suv",
        "z3_4_8",
    }


def test_check_errors_on_a_label_with_three_images(tmp_path: Path) -> None:
    report = check_dataset(split_dataset(_dataset({"big": 12, "tiny": 3}, tmp_path)))
    assert not report.ok
    (error,) = report.errors
    assert error.code == "too_few_images"
    assert error.label == "tiny"
    assert "has 3 image(s); vertex needs at least 10" in error.message
    with pytest.raises(DatasetError, match="tiny has 3 image"):
        report.raise_for_errors()


def test_check_errors_on_an_empty_dataset() -> None:
    report = check_dataset(LabeledDataset(images=()))
    assert [e.code for e in report.errors] == ["empty"]


def test_check_errors_on_webp_for_vertex_and_conversion_fixes_it(tmp_path: Path) -> None:
    dataset = _dataset({"a": 10}, tmp_path)
    webp = _image(tmp_path / "images" / "a" / "w.webp", 99, fmt="WEBP")
    dataset = attrs.evolve(
        dataset,
        images=(*dataset.images, LabeledImage(path=webp, label="a", original_label="a")),
    )
    report = check_dataset(dataset)
    assert [(e.code, e.item) for e in report.errors] == [("format", str(webp))]
    assert check_dataset(dataset, target="automl").ok
    converted = convert_unsupported(dataset, tmp_path / "converted", to="PNG")
    assert check_dataset(converted).ok
    assert converted.images[-1].path.suffix == ".png"


def test_check_errors_on_a_file_over_30_mb(tmp_path: Path) -> None:
    dataset = _dataset({"a": 10}, tmp_path)
    big = dataset.images[0].path
    with big.open("r+b") as handle:
        handle.truncate(31 * 1024 * 1024)  # sparse: trailing zeros after a valid PNG
    report = check_dataset(dataset)
    assert [e.code for e in report.errors] == ["too_large"]
    assert "over the vertex limit of 30 MB" in report.errors[0].message


def test_check_warns_on_imbalance_over_100(tmp_path: Path) -> None:
    one = _image(tmp_path / "one.png", 1)
    images = [LabeledImage(path=one, label="many", original_label="many")] * 1010
    images += [LabeledImage(path=one, label="few", original_label="few")] * 10
    report = check_dataset(LabeledDataset(images=tuple(images)))
    assert "imbalance" in [w.code for w in report.warnings]


def test_check_errors_on_a_near_duplicate_group_across_splits(tmp_path: Path) -> None:
    dataset = split_dataset(_dataset({"a": 10, "b": 10}, tmp_path))
    images = list(dataset.images)
    train = next(i for i, im in enumerate(images) if im.ml_use is MLUse.TRAINING)
    test = next(i for i, im in enumerate(images) if im.ml_use is MLUse.TEST)
    images[test] = attrs.evolve(images[test], group=images[train].group)
    report = check_dataset(attrs.evolve(dataset, images=tuple(images)))
    assert [e.code for e in report.errors] == ["leak"]


def test_check_errors_on_a_missing_file() -> None:
    report = check_dataset(_synthetic({"a": 10}), target="local")
    assert {e.code for e in report.errors} == {"missing"}


# ---------------------------------------------------------------- import files


def _tiny_split() -> LabeledDataset:
    images = (
        LabeledImage(path=Path("/d/1.jpg"), label="a", original_label="a", ml_use=MLUse.TRAINING),
        LabeledImage(path=Path("/d/2.jpg"), label="b", original_label="b", ml_use=MLUse.VALIDATION),
        LabeledImage(path=Path("/d/3.jpg"), label="b", original_label="b", ml_use=MLUse.TEST),
    )
    return LabeledDataset(images=images)


def _uri(image: LabeledImage) -> str:
    return f"gs://b/p/{image.label}/{image.path.name}"


def test_vertex_csv_import_file() -> None:
    assert render_import_file(_tiny_split(), "vertex_csv", uri_for=_uri).splitlines() == [
        "training,gs://b/p/a/1.jpg,a",
        "validation,gs://b/p/b/2.jpg,b",
        "test,gs://b/p/b/3.jpg,b",
    ]


def test_vertex_jsonl_import_file() -> None:
    lines = render_import_file(_tiny_split(), "vertex_jsonl", uri_for=_uri).splitlines()
    assert json.loads(lines[1]) == {
        "imageGcsUri": "gs://b/p/b/2.jpg",
        "classificationAnnotation": {"displayName": "b"},
        "dataItemResourceLabels": {"aiplatform.googleapis.com/ml_use": "validation"},
    }


def test_automl_csv_import_file() -> None:
    assert render_import_file(_tiny_split(), "automl_csv", uri_for=_uri).splitlines() == [
        "TRAIN,gs://b/p/a/1.jpg,a",
        "VALIDATION,gs://b/p/b/2.jpg,b",
        "TEST,gs://b/p/b/3.jpg,b",
    ]


def test_unknown_import_format_is_refused() -> None:
    with pytest.raises(DatasetError, match="unknown import format 'parquet'"):
        render_import_file(_tiny_split(), "parquet", uri_for=_uri)


def test_local_manifest_round_trips(tmp_path: Path) -> None:
    dataset = split_dataset(_dataset({"3-4series": 10, "z4": 10}, tmp_path))
    path = write_local_dataset(dataset, tmp_path / "dataset.jsonl")
    first = json.loads(path.read_text().splitlines()[0])
    assert set(first) >= {"path", "label", "original_label", "ml_use", "sha256", "group"}
    assert not Path(first["path"]).is_absolute()  # images under the file's folder: relative
    for source in (path, path.as_uri(), tmp_path):
        loaded = load_local_dataset(source)
        assert loaded.images == dataset.images
        assert loaded.label_map == dataset.label_map


def test_local_manifest_with_a_bad_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "dataset.jsonl"
    path.write_text('{"path": "a.png", "label": "a"}\n{"label": "b"}\n')
    with pytest.raises(DatasetError, match="line 2"):
        load_local_dataset(path)


def test_grouping_keeps_groups_set_by_the_download_step(tmp_path: Path) -> None:
    a = _image(tmp_path / "a.png", 1)
    b = _image(tmp_path / "b.png", 2)
    images = (
        LabeledImage(path=a, label="x", original_label="x", sha256="a" * 64, group="g1"),
        LabeledImage(path=b, label="x", original_label="x", sha256="b" * 64, group="g1"),
    )
    grouped = group_near_duplicates(LabeledDataset(images=images))
    assert grouped.images[0].group == grouped.images[1].group


# ---------------------------------------------------------------- command line


def _manifest_of(folder: Path, photos: list[Path], titles: list[tuple[str, str | None]]) -> None:
    from redditvision.manifest import ImageManifest

    with ImageManifest.for_folder(folder, create=True) as manifest:
        for i, (photo, (title, flair)) in enumerate(zip(photos, titles, strict=True)):
            copy = folder / "images" / f"{i}.jpg"
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(photo.read_bytes())
            manifest.put(
                ImageRecord(
                    post_id=f"p{i}",
                    index=0,
                    url=f"https://i.redd.it/{i}.jpg",
                    status=RecordStatus.OK,
                    path=copy,
                    sha256=f"{i:064x}",
                    title=title,
                    flair_text=flair,
                    subreddit="BMW",
                )
            )


def test_cli_labels_downloads_by_rules_and_lists_unmatched_images(
    bmw_photos: Path, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from redditvision.cli import main

    photos = sorted(bmw_photos.rglob("*.jpg"))[:8]
    titles = [
        ("E46 M3 daily", None),
        ("F80 M3 at the track", None),
        ("My 330i", None),
        ("Z4 roadster", None),
        ("Top down", "Z4"),
        ("New Z3", None),
        ("Spotted this", None),
        ("Nice wheels", None),
    ]
    _manifest_of(tmp_path / "dl", photos, titles)
    out = tmp_path / "out"
    args = [
        "label",
        "--downloads",
        str(tmp_path / "dl"),
        "--rules",
        str(EXAMPLES / "bmw-rules.toml"),
    ]
    args += ["--out", str(out), "--target", "local", "--json-summary"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["counts"] == {"L_3_4series": 3, "z3_4_8": 3}
    assert summary["unmatched"] == 2
    unmatched = (out / "unmatched.csv").read_text().splitlines()
    assert [line.split(",")[3] for line in unmatched[1:]] == ["Spotted this", "Nice wheels"]
    assert len(load_local_dataset(out).images) == 6


def test_cli_label_reports_a_bad_rules_file_and_a_small_label(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from redditvision.cli import main

    runner = CliRunner()
    (tmp_path / "rules.toml").write_text('[[rules]]\nlabel = "x"\ntitle = "(unclosed"\n')
    _manifest_of(tmp_path / "dl", [], [])
    bad = runner.invoke(
        main,
        ["label", "--downloads", str(tmp_path / "dl"), "--rules", str(tmp_path / "rules.toml")],
    )
    assert bad.exit_code == 2
    assert "rule 1 (x) has an invalid title regex '(unclosed'" in bad.output

    _folders(tmp_path / "images", {"big": 12, "tiny": 3})
    small = runner.invoke(main, ["label", "--images", str(tmp_path / "images")])
    assert small.exit_code == 2
    assert "label tiny has 3 image(s); vertex needs at least 10" in small.output
