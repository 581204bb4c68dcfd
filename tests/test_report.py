"""Reports of comparisons and evaluations: files, escaping, plots, folders that exist."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import attrs
import numpy as np
import pytest
from PIL import Image

from redditvision.compare import (
    ClassComparison,
    ComparisonReport,
    ComparisonSummary,
    ImageComparison,
)
from redditvision.errors import ConfigError
from redditvision.labelers import ImageLabels
from redditvision.metrics import compute_evaluation
from redditvision.models import Evaluation, GenericLabel, LabelMetrics, Prediction, ThresholdMetrics
from redditvision.report import (
    PLOT_DPI,
    PR_CURVE_INCHES,
    ReportFiles,
    bar_chart_inches,
    confusion_matrix_inches,
    evaluate_comparison,
    plot_confusion_matrix,
    plot_label_metrics,
    plot_pr_curves,
    render_html,
    render_markdown,
    write_evaluation_report,
    write_report,
)

EVIL = '<script>alert("x")</script> & | *bold*'


def thumbnail(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def predictions(top: str, labels: tuple[str, ...]) -> tuple[Prediction, ...]:
    rest = [label for label in labels if label != top]
    scores = [0.7] + [0.3 / len(rest)] * len(rest)
    return tuple(
        Prediction(label=label, score=score, model_label=label.replace(" ", "_"))
        for label, score in zip([top, *rest], scores, strict=True)
    )


def make_report(n_images: int = 4) -> ComparisonReport:
    """A small comparison over three classes, one named with HTML special characters."""
    labels = ("3 Series", "Z4", EVIL)
    images = []
    for i in range(n_images):
        truth = labels[i % 3]
        top = labels[(i + (i % 2)) % 3]
        images.append(
            ImageComparison(
                name=f"photos/{truth}/{i}.jpg",
                truth=truth,
                generic=ImageLabels(
                    labels=(
                        GenericLabel(label="BMW Z4", score=0.9, source="web_entity"),
                        GenericLabel(label=f"Car {EVIL}", score=0.8, source="label_detection"),
                    ),
                    best_guess="bmw z4",
                ),
                custom=predictions(top, labels),
                generic_classes=("Z4",),
                generic_match="class" if truth == "Z4" else "other_class",
                thumbnail=thumbnail((40 * i % 256, 90, 160)),
            )
        )
    images.append(
        ImageComparison(
            name="broken.jpg",
            truth="Z4",
            generic=ImageLabels(error="INVALID_ARGUMENT: Bad image data."),
            custom=(),
            custom_error="cannot decode broken.jpg",
        )
    )
    classes = tuple(
        ClassComparison(
            label=label,
            support=1,
            predicted=1,
            known_to_model=True,
            precision=0.5,
            recall=0.5,
            f1=0.5,
            generic_names_class=1.0 if label == "Z4" else 0.0,
            generic_only_generic=0.0,
            agreement=0.5,
        )
        for label in labels
    )
    return ComparisonReport(
        generic_name="cloud_vision",
        custom_name="models/bmw",
        labels=labels,
        confusion_matrix=((1, 1, 0), (0, 1, 0), (0, 0, 1)),
        images=tuple(images),
        classes=classes,
        summary=ComparisonSummary(
            images=len(images),
            with_truth=len(images),
            generic_errors=1,
            custom_errors=1,
            custom_accuracy=0.75,
            custom_macro_f1=0.7,
            generic_names_truth=0.25,
            generic_names_other_class=0.75,
            generic_only_generic=0.0,
            generic_none=0.0,
            agreement=0.5,
        ),
        make_terms=("bmw",),
    )


def make_evaluation(labels: tuple[str, ...] = ("3 Series", "Z4", EVIL)) -> Evaluation:
    rng = np.random.default_rng(0)
    truth = [labels[i % len(labels)] for i in range(30)]
    proba = rng.dirichlet(np.ones(len(labels)), size=30)
    for i, label in enumerate(truth):
        # Every fifth item is wrong: its score goes to the next label.
        proba[i, (labels.index(label) + (i % 5 == 0)) % len(labels)] += 0.8
    proba = proba / proba.sum(axis=1, keepdims=True)
    return compute_evaluation(truth, proba, list(labels), source="local:test split")


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    """One evaluation computed by scikit-learn (about 3 s on a loaded machine), shared."""
    return make_evaluation()


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, evaluation: Evaluation) -> ReportFiles:
    """One report with an evaluation, written once for the tests that only read it."""
    return write_report(
        make_report(), tmp_path_factory.mktemp("report") / "out", evaluation=evaluation
    )


def png_size(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.verify()
    return image.size


def test_write_report_writes_every_file_and_returns_their_paths(written: ReportFiles) -> None:
    files = written
    names = {path.name for path in files.folder.iterdir()}
    assert files.html == files.folder / "report.html"
    # With an evaluation, the custom model's confusion matrix and bars are drawn once, in
    # its section (evaluation_*), not a second time from the comparison.
    assert names == {
        "report.html",
        "report.md",
        "comparison.csv",
        "comparison.jsonl",
        "summary.json",
        "headline.png",
        "generic_naming.png",
        "generic_labels.png",
        "evaluation_confusion_matrix.png",
        "evaluation_label_metrics.png",
        "evaluation_pr_curves.png",
    }
    assert set(files.plots) == {
        "headline",
        "generic_naming",
        "generic_labels",
        "evaluation_confusion_matrix",
        "evaluation_label_metrics",
        "evaluation_pr_curves",
    }
    assert all(path.is_file() for path in files.plots.values())


def test_without_an_evaluation_the_comparison_draws_the_confusion_matrix_once(
    tmp_path: Path,
) -> None:
    files = write_report(make_report(), tmp_path / "out")

    assert {"confusion_matrix", "label_metrics"} <= set(files.plots)
    assert not any(key.startswith("evaluation_") for key in files.plots)
    page = files.html.read_text("utf-8")
    assert page.count('<img alt="Confusion matrix') == 1
    assert page.count('id="plot-confusion_matrix"') == 1


def test_csv_and_json_lines_hold_one_row_per_image(written: ReportFiles) -> None:
    report = make_report()
    files = written

    rows = list(csv.DictReader(files.csv.open(encoding="utf-8")))
    assert len(rows) == len(report.images)
    assert rows[0]["custom_label"] == "3 Series"
    assert rows[0]["custom_correct"] == "true"
    assert rows[-1]["generic_error"] == "INVALID_ARGUMENT: Bad image data."
    records = [json.loads(line) for line in files.jsonl.read_text("utf-8").splitlines()]  # type: ignore[union-attr]
    assert len(records) == len(report.images)
    assert records[1]["generic"]["labels"][0] == {
        "label": "BMW Z4",
        "score": 0.9,
        "source": "web_entity",
        "mid": None,
    }
    assert len(records[1]["custom"]) == 3
    summary = json.loads(files.summary.read_text("utf-8"))
    assert summary["overall"]["custom_accuracy"] == 0.75
    assert summary["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_html_escapes_every_label_with_special_characters(written: ReportFiles) -> None:
    page = written.html.read_text("utf-8")

    assert "<script>alert" not in page
    # Jinja2's autoescaping (MarkupSafe) writes a double quote as &#34;.
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; | *bold*" in page
    # The only scripts are the page's own sorting script.
    assert page.count("<script>") == 1


def test_markdown_escapes_html_and_table_pipes() -> None:
    text = render_markdown(make_report())

    assert "<script>" not in text
    assert "&lt;script&gt;" in text
    row = next(line for line in text.splitlines() if line.startswith("| &lt;script"))
    assert row.count(" | ") == 8  # nine cells: the label's own pipe is escaped
    assert "\\|" in row


def test_html_is_self_contained() -> None:
    page = render_html(make_report())

    assert "http://" not in page
    assert "https://" not in page
    assert 'src="data:image/jpeg;base64,' in page
    assert 'src="data:image/png;base64,' not in page  # no plots passed
    assert "Content-Security-Policy" in page


def test_plots_are_valid_pngs_of_the_expected_size(evaluation: Evaluation) -> None:
    report = make_report()

    matrix = plot_confusion_matrix(report.labels, report.confusion_matrix)
    bars = plot_label_metrics(evaluation.per_label)
    curves = plot_pr_curves(evaluation.thresholds)

    width, height = confusion_matrix_inches(3)
    assert png_size(matrix) == (round(width * PLOT_DPI), round(height * PLOT_DPI)) == (500, 500)
    width, height = bar_chart_inches(3)
    assert png_size(bars) == (round(width * PLOT_DPI), round(height * PLOT_DPI)) == (800, 300)
    assert png_size(curves) == (800, 600) == tuple(round(v * PLOT_DPI) for v in PR_CURVE_INCHES)


def test_plot_files_are_pngs_and_the_size_grows_with_labels(written: ReportFiles) -> None:
    assert png_size(written.plots["evaluation_confusion_matrix"].read_bytes()) == (500, 500)
    assert png_size(written.plots["generic_naming"].read_bytes()) == (800, 300)
    many = [f"label {i}" for i in range(20)]
    matrix = [[int(i == j) for j in range(20)] for i in range(20)]
    assert png_size(plot_confusion_matrix(many, matrix)) == (1450, 1450)


def test_labels_that_look_like_matplotlib_math_still_plot() -> None:
    labels = ["$5 car", "price $a^$ b", "{}\\"]  # "$a^$" alone makes matplotlib raise
    matrix = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert png_size(plot_confusion_matrix(labels, matrix)) == (500, 500)
    metrics = [
        LabelMetrics(label=label, precision=1, recall=1, f1=1, support=1) for label in labels
    ]
    assert png_size(plot_label_metrics(metrics)) == (800, 300)


def test_a_confusion_matrix_of_the_wrong_shape_is_refused() -> None:
    from redditvision.errors import ComparisonError

    with pytest.raises(ComparisonError, match="shape"):
        plot_confusion_matrix(["a", "b"], [[1, 0]])


def test_an_existing_folder_is_not_overwritten_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = write_report(make_report(), out)
    before = first.html.read_bytes()
    (out / "notes.txt").write_text("mine", encoding="utf-8")

    with pytest.raises(ConfigError, match="overwrite"):
        write_report(make_report(n_images=2), out)
    assert first.html.read_bytes() == before

    second = write_report(make_report(n_images=2), out, overwrite=True)
    assert second.html.read_bytes() != before
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_an_empty_existing_folder_is_used_and_a_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_report(make_report(), empty).html.is_file()
    a_file = tmp_path / "file"
    a_file.write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a folder"):
        write_report(make_report(), a_file, overwrite=True)


def test_a_comparison_of_no_images_still_writes_a_report(tmp_path: Path) -> None:
    report = ComparisonReport(
        generic_name="imagenet",
        custom_name="m",
        labels=(),
        confusion_matrix=(),
        images=(),
        classes=(),
        summary=ComparisonSummary(
            images=0,
            with_truth=0,
            generic_errors=0,
            custom_errors=0,
            custom_accuracy=None,
            custom_macro_f1=None,
            generic_names_truth=None,
            generic_names_other_class=None,
            generic_only_generic=None,
            generic_none=None,
            agreement=None,
        ),
    )
    files = write_report(report, tmp_path / "out")
    assert files.plots == {}
    assert "n/a" in files.markdown.read_text("utf-8")
    assert files.jsonl is not None and files.jsonl.read_text("utf-8") == ""


def test_an_evaluation_from_any_backend_renders_the_same_way(
    tmp_path: Path, evaluation: Evaluation
) -> None:
    local = evaluation
    # What a cloud backend returns: no log loss, no misclassified items, its own source.
    cloud = Evaluation(
        labels=local.labels,
        per_label=tuple(
            LabelMetrics(
                label=m.label,
                precision=m.precision,
                recall=m.recall,
                f1=m.f1,
                support=m.support,
                au_prc=m.au_prc,
            )
            for m in local.per_label
        ),
        confusion_matrix=local.confusion_matrix,
        accuracy=None,
        macro_precision=local.macro_precision,
        macro_recall=local.macro_recall,
        macro_f1=local.macro_f1,
        micro_precision=local.micro_precision,
        micro_recall=local.micro_recall,
        micro_f1=local.micro_f1,
        au_prc=local.au_prc,
        thresholds=tuple(
            ThresholdMetrics(
                confidence_threshold=t.confidence_threshold,
                precision=t.precision,
                recall=t.recall,
                f1=t.f1,
                label=t.label,
            )
            for t in local.thresholds
        ),
        evaluated_items=30,
        source="projects/p/locations/us-central1/models/1/evaluations/2",
    )
    written = {
        name: write_evaluation_report(evaluation, tmp_path / name)
        for name, evaluation in (("local", local), ("cloud", cloud))
    }
    for files in written.values():
        assert set(files.plots) == {"confusion_matrix", "label_metrics", "pr_curves"}
        assert png_size(files.plots["pr_curves"].read_bytes()) == (800, 600)
        page = files.html.read_text("utf-8")
        assert 'id="evaluation-labels"' in page
        assert "<script>alert" not in page
        rows = list(csv.DictReader(files.csv.open(encoding="utf-8")))
        assert [row["label"] for row in rows] == list(local.labels)
    assert written["local"].plots["confusion_matrix"].read_bytes() == (
        written["cloud"].plots["confusion_matrix"].read_bytes()
    )
    assert "Misclassified" in written["local"].html.read_text("utf-8")
    assert "Misclassified" not in written["cloud"].html.read_text("utf-8")


def test_write_report_with_an_evaluation_adds_its_section_and_plots(written: ReportFiles) -> None:
    files = written
    assert {"evaluation_confusion_matrix", "evaluation_pr_curves"} <= set(files.plots)
    assert 'id="evaluation"' in files.html.read_text("utf-8")
    assert "evaluation_pr_curves.png" in files.markdown.read_text("utf-8")


def test_evaluate_comparison_uses_the_custom_scores_and_skips_errors() -> None:
    evaluation = evaluate_comparison(make_report())
    assert evaluation is not None
    assert evaluation.evaluated_items == 4  # the broken image has no scores
    assert set(evaluation.labels) == {"3 Series", "Z4", EVIL}
    assert evaluation.accuracy == pytest.approx(0.5)
    assert evaluation.thresholds


def _one_image_report(name: str, truth: str, generic: str, custom: str) -> ComparisonReport:
    report = make_report(n_images=1)
    image = ImageComparison(
        name=name,
        truth=truth,
        generic=ImageLabels(
            labels=(GenericLabel(label=generic, score=0.9, source="web_entity"),),
            best_guess=generic,
        ),
        custom=(Prediction(label=custom, score=0.75, model_label="m"),),
        generic_match="none",
    )
    return ComparisonReport(
        generic_name="cloud_vision",
        custom_name="m",
        labels=(truth, custom),
        confusion_matrix=((0, 1), (0, 0)),
        images=(image,),
        classes=report.classes[:0],
        summary=report.summary,
    )


def test_comparison_csv_neutralizes_a_reddit_title_that_is_a_formula(tmp_path: Path) -> None:
    formula = '=HYPERLINK("http://x")'
    report = _one_image_report(f"-{formula}.jpg", formula, f"+{formula}", f"@{formula}")

    files = write_report(report, tmp_path / "out")

    rows = list(csv.reader(files.csv.open(encoding="utf-8", newline="")))
    cells = dict(zip(rows[0], rows[1], strict=True))
    assert cells["image"] == f"'-{formula}.jpg"
    assert cells["truth"] == f"'{formula}"
    assert cells["custom_label"] == f"'@{formula}"
    assert cells["generic_best_guess"] == f"'+{formula}"
    assert cells["custom_score"] == "0.75"  # a number stays a readable number
    assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "-", "@")]


def test_evaluation_labels_csv_neutralizes_label_names(tmp_path: Path) -> None:
    evaluation = make_evaluation(("=cmd|' /C calc'!A0", "Z4"))
    files = write_evaluation_report(evaluation, tmp_path / "out")
    rows = list(csv.DictReader(files.csv.open(encoding="utf-8", newline="")))
    assert rows[0]["label"] == "'=cmd|' /C calc'!A0"


def test_the_page_opens_with_a_headline_sentence_and_figure(written: ReportFiles) -> None:
    page = written.html.read_text("utf-8")
    headline = page.index('<section id="headline">')
    assert headline < page.index('<section id="overall">')
    assert (
        "On 5 images with a known class, the custom model names the right class for 75% of "
        "them; the Google Cloud Vision labels name it for 25%."
    ) in page
    assert 'id="plot-headline"' in page
    assert png_size(written.plots["headline"].read_bytes()) == (800, 200)
    markdown = written.markdown.read_text("utf-8")
    assert "the custom model names the right class for 75%" in markdown


def test_the_title_names_the_model_and_the_labeler(written: ReportFiles) -> None:
    page = written.html.read_text("utf-8")
    assert "<title>Custom model “models/bmw” against Google Cloud Vision labels</title>" in page
    assert "labels vs custom model" not in page


def test_every_column_of_every_table_is_explained(written: ReportFiles) -> None:
    page = written.html.read_text("utf-8")
    notes = set(re.findall(r"<dt>([^<]+)</dt>", page))
    image_header = re.search(r'id="image-table">\s*<thead><tr>(.*?)</tr>', page, re.S)
    assert image_header is not None
    columns = re.findall(r'<th scope="col">([^<]+)</th>', image_header.group(1))
    assert columns[0] == "thumbnail"
    assert set(columns[1:]) <= notes  # "best guess" and "generic labels name" among them
    assert {"best guess", "generic labels name"} <= notes
    class_header = re.search(r'id="class-table">\s*<thead><tr>(.*?)</tr>', page, re.S)
    assert class_header is not None
    class_columns = re.findall(r'<th scope="col">([^<]+)</th>', class_header.group(1))
    assert set(class_columns) - {"class"} <= notes


def test_image_paths_are_shown_relative_to_the_image_folder(tmp_path: Path) -> None:
    report = make_report()
    absolute = attrs.evolve(
        report,
        images=tuple(
            attrs.evolve(image, name=f"/data/cars/{image.name}") for image in report.images
        ),
    )
    files = write_report(absolute, tmp_path / "out", image_root="/data/cars/photos")
    page = files.html.read_text("utf-8")
    assert "Image paths are relative to <code>/data/cars/photos</code>" in page
    assert '<td data-sort="Z4/1.jpg">Z4/1.jpg</td>' in page
    assert "/data/cars/photos/Z4/1.jpg</td>" not in page
    # The CSV keeps the path as given, to find the file again.
    rows = list(csv.DictReader(files.csv.open(encoding="utf-8")))
    assert rows[1]["image"] == "/data/cars/photos/Z4/1.jpg"


def test_without_an_image_root_paths_are_relative_to_the_deepest_common_folder() -> None:
    from redditvision.report.tables import ImageNames

    names = ImageNames(["/r/run/a/1.jpg", "/r/run/b/2.jpg"])
    assert str(names.root) == "/r/run"
    assert [names.show(n) for n in ("/r/run/a/1.jpg", "/elsewhere/3.jpg")] == [
        "a/1.jpg",
        "/elsewhere/3.jpg",
    ]
    assert ImageNames(["image 1", "image 2"]).root is None


def test_pr_curves_are_steps_of_interpolated_precision() -> None:
    from redditvision.report.plots import _interpolated

    points = [
        ThresholdMetrics(confidence_threshold=t, precision=p, recall=r, f1=0.0, label="a")
        for t, p, r in ((0.9, 1.0, 0.5), (0.5, 0.8, 0.8), (0.3, 0.9, 1.0), (0.0, 0.5, 1.0))
    ]
    recall, precision = _interpolated(points)
    # The curve stops at the first point of full recall: threshold 0.0 (everything predicted,
    # precision 0.5) adds no recall, only false positives.
    assert recall == [0.0, 0.5, 0.8, 1.0]
    # At each recall, the best precision at that recall or higher: never rising to the right.
    assert precision == [1.0, 1.0, 0.9, 0.9]


def test_every_page_extends_the_one_base_layout() -> None:
    from redditvision.report.html import environment

    env = environment()
    assert env.autoescape is True
    for name in ("comparison.html", "evaluation.html"):
        source, _, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
        assert source.lstrip().startswith('{% extends "base.html" %}'), name
    base, _, _ = env.loader.get_source(env, "base.html")  # type: ignore[union-attr]
    assert "{% block content %}" in base and "{% block headline %}" in base
    page = render_html(make_report())
    assert page.count("<!DOCTYPE html>") == 1 and "Written by redditvision" in page


def test_a_run_report_links_the_audit_and_shows_what_each_issue_removed(
    tmp_path: Path,
) -> None:
    audit_page = tmp_path / "run" / "audit" / "audit.html"
    audit_page.parent.mkdir(parents=True)
    audit_page.write_text("<html></html>", encoding="utf-8")
    audit = {
        "images": 40,
        "flagged": 7,
        "issues": {"off_domain": 3, "label_error": 4},
        "html": str(audit_page),
        "changes": {"excluded:off_domain": 3, "relabeled": 2},
    }
    files = write_report(make_report(), tmp_path / "run" / "report", audit=audit)
    page = files.html.read_text(encoding="utf-8")
    assert 'href="../audit/audit.html"' in page
    assert "flagged 7 of 40 labeled images" in page
    table = page[page.index('id="audit-table"') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.DOTALL)
    cells = [re.findall(r">([^<>]*)</td>", row) for row in rows if "<td" in row]
    assert cells == [["off_domain", "3", "3", "0"], ["label_error", "4", "0", "2"]]
    summary = json.loads(files.summary.read_text(encoding="utf-8"))
    assert summary["audit"]["changes"] == audit["changes"]


def test_an_audit_that_could_not_run_says_why() -> None:
    page = render_html(make_report(), audit={"not_run": "a label has 1 image"})
    assert "The audit did not run: a label has 1 image" in page


def test_a_fine_tuned_model_s_training_curve_is_drawn_in_the_report(tmp_path: Path) -> None:
    curve = [
        {"epoch": 0, "loss": None, "val_macro_f1": 0.70},
        {"epoch": 1, "loss": 0.9, "val_macro_f1": 0.75},
        {"epoch": 2, "loss": 0.6, "val_macro_f1": 0.82},
    ]
    training = {"curve": curve, "best_epoch": 2, "epochs_run": 2, "stopped": "completed"}
    files = write_report(make_report(), tmp_path / "report", training=training)
    png = files.plots["training_curve"]
    with Image.open(png) as image:
        assert image.size == (640, 400)
    page = files.html.read_text(encoding="utf-8")
    assert 'id="plot-training-curve"' in page
    assert "the epoch kept (2)" in page
    # The fast preset trains no epoch: no curve to draw.
    frozen = write_report(
        make_report(), tmp_path / "frozen", training={"curve": [], "best_epoch": 0}
    )
    assert "training_curve" not in frozen.plots
    assert "plot-training-curve" not in frozen.html.read_text(encoding="utf-8")
