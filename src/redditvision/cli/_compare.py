"""``redditvision compare``: a generic labeler beside the custom model, written as a report."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from redditvision.classify import Classifier
from redditvision.cli._common import echo_json, err_console, handle_errors, progress
from redditvision.compare import DEFAULT_VOCABULARY, VisionComparator, Vocabulary
from redditvision.errors import ConfigError, MissingDependencyError
from redditvision.labelers import GenericLabeler
from redditvision.models import TrainedModel

__all__ = ["COMMANDS", "compare"]


def _images_and_truth(
    images: Path, label_map_file: Path | None
) -> tuple[list[Path], list[str | None], dict[str, list[str]], dict[str, str]]:
    """Read the images: label folders give truth, aliases and the service label map."""
    from redditvision.labels import IMAGE_SUFFIXES, LabelMap, label_folders

    if not images.is_dir():
        raise ConfigError(f"--images {images} is not a folder")
    subfolders = [p for p in images.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if not subfolders:
        if label_map_file is not None:
            raise ConfigError(
                f"--label-map needs label folders, but {images} holds no subfolders; "
                "drop --label-map or point --images at the folder of label folders"
            )
        paths = sorted(
            p
            for p in images.iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        )
        if not paths:
            raise ConfigError(f"no images in {images} ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return paths, [None] * len(paths), {}, {}
    label_map = LabelMap.from_toml(label_map_file) if label_map_file is not None else None
    dataset = label_folders(images, label_map=label_map)
    aliases: dict[str, list[str]] = {}
    for image in dataset.images:
        folder = Path(image.source).parts[0] if image.source else image.path.parent.name
        names = aliases.setdefault(image.original_label, [])
        if folder not in names and folder != image.original_label:
            names.append(folder)
    if label_map is not None:
        # The patterns name the models too: "BMW Z3 *" -> "BMW Z3".
        for target, patterns in label_map.targets:
            names = aliases.setdefault(target, [])
            for pattern in patterns:
                text = " ".join(re.sub(r"[*?\[\]]", " ", pattern).split())
                if text and text not in names:
                    names.append(text)
    return (
        [image.path for image in dataset.images],
        [image.original_label for image in dataset.images],
        aliases,
        dict(dataset.label_map),
    )


def _generic(vision: str, classifier: Classifier) -> GenericLabeler:
    if vision == "cloud":
        from redditvision.labelers import CloudVisionLabeler

        return CloudVisionLabeler.from_env()
    try:
        from redditvision.labelers import ImageNetLabeler
    except ImportError as exc:
        raise MissingDependencyError(
            "--vision offline needs the local backend: run pip install 'redditvision[local]'"
        ) from exc
    # Share the local model's network, so its weights load once.
    extractor = getattr(classifier.backend, "extractor", None)
    labeler: GenericLabeler = (
        ImageNetLabeler(extractor=extractor)
        if type(extractor).__name__ == "EfficientNetLite0Extractor"
        else ImageNetLabeler()
    )
    return labeler


def _endpoint_parts(endpoint: str) -> tuple[str, str]:
    """Return (project, location) of a Vertex AI endpoint or model resource name."""
    match = re.match(r"^projects/([^/]+)/locations/([^/]+)/(endpoints|models)/[^/]+$", endpoint)
    if match is None:
        raise ConfigError(
            f"--endpoint {endpoint!r} is not a Vertex AI resource name; give "
            "projects/PROJECT/locations/LOCATION/endpoints/ID (or .../models/ID)"
        )
    return match.group(1), match.group(2)


def _classifier(model: Path | None, endpoint: str | None, label_map: dict[str, str]) -> Classifier:
    if (model is None) == (endpoint is None):
        raise ConfigError("give exactly one of --model MODEL_DIR or --endpoint RESOURCE")
    if model is not None:
        if not model.is_dir():
            raise ConfigError(f"--model {model} is not a model folder")
        return Classifier(model)
    assert endpoint is not None
    try:
        from redditvision.backends.vertex import VertexAutoMLBackend
    except ImportError as exc:  # pragma: no cover - the Vertex AI client is a dependency
        raise MissingDependencyError(
            "--endpoint needs google-cloud-aiplatform: run pip install redditvision"
        ) from exc
    project, location = _endpoint_parts(endpoint)
    backend: Any = VertexAutoMLBackend.from_env(project, location)
    # Vertex AI answers with the service labels ("L_1_2series"); the label map built from the
    # label folders names them back as the truth is named ("1-2series").
    return Classifier(
        TrainedModel(backend="vertex", resource=endpoint, label_map=label_map), backend=backend
    )


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"{summary['generic']} labels vs custom model")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary["overall"].items():
        if isinstance(value, float):
            text = f"{value:.3f}"
        elif isinstance(value, list):
            text = ", ".join(value) or "none"
        else:
            text = "n/a" if value is None else str(value)
        table.add_row(key.replace("_", " "), text)
    err_console.print(table)


@click.command()
@click.option(
    "--model",
    "model",
    type=click.Path(path_type=Path, file_okay=False),
    help="A local model folder (from `redditvision train --backend local`).",
)
@click.option(
    "--endpoint",
    "endpoint",
    metavar="RESOURCE",
    help="A Vertex AI model or endpoint resource name (projects/.../endpoints/...).",
)
@click.option(
    "--vision",
    type=click.Choice(["offline", "cloud"]),
    default="offline",
    show_default=True,
    help="Generic labeler: the offline ImageNet model, or Google Cloud Vision (needs ADC).",
)
@click.option(
    "--images",
    "images",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="A folder of label folders (truth from the folder names) or a flat folder of images.",
)
@click.option(
    "--label-map",
    "label_map",
    type=click.Path(path_type=Path, dir_okay=False),
    help=(
        "TOML file: a [labels] table grouping folder names into the model's labels, and an "
        "optional [vocabulary] table of generic words (default: words for cars)."
    ),
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Report folder: report.html, report.md, comparison.csv, plots.",
)
@click.option("--overwrite", is_flag=True, help="Replace a report in a folder that is not empty.")
@click.option("--top-k", default=5, show_default=True, help="Generic labels kept per image.")
@click.option(
    "--json-summary", is_flag=True, help="Print the aggregates as one JSON object on stdout."
)
@handle_errors
def compare(
    model: Path | None,
    endpoint: str | None,
    vision: str,
    images: Path,
    label_map: Path | None,
    out: Path,
    overwrite: bool,
    top_k: int,
    json_summary: bool,
) -> None:
    """Compare generic labels with the custom model on a folder of images.

    Writes report.html (self-contained), report.md, comparison.csv, comparison.jsonl,
    summary.json and the plots into --out. With label folders, the truth is each image's
    folder (grouped by --label-map), and generic labels count as naming a class when they
    hold the words of its name or of its folders' names ("Z4", "3 Series"). Which words
    are only generic ("car", "convertible") comes from the label map's [vocabulary] table
    (generic_terms, extra_generic_terms, make_terms); without one, words for cars.
    """
    from redditvision.metrics import evaluate_comparison
    from redditvision.report import prepare_folder, write_report

    if (model is None) == (endpoint is None):
        raise ConfigError("give exactly one of --model MODEL_DIR or --endpoint RESOURCE")
    if endpoint is not None:
        _endpoint_parts(endpoint)
    if model is not None and not model.is_dir():
        raise ConfigError(f"--model {model} is not a model folder")
    vocabulary = Vocabulary.from_toml(label_map) if label_map is not None else DEFAULT_VOCABULARY
    prepare_folder(out, overwrite)  # refuse a used folder before the slow part
    paths, truth, aliases, service_names = _images_and_truth(images, label_map)
    classifier = _classifier(model, endpoint, service_names)
    generic = _generic(vision, classifier)
    comparator = VisionComparator(
        generic=generic, custom=classifier, top_k=top_k, aliases=aliases, vocabulary=vocabulary
    )
    with comparator, progress(disable=json_summary) as bar:
        task = bar.add_task(f"comparing with {generic.name}", total=len(paths))
        report = comparator.compare(paths, truth, on_progress=lambda done: bar.advance(task, done))
    evaluation = evaluate_comparison(report)
    files = write_report(report, out, evaluation=evaluation, overwrite=True, image_root=images)
    summary = report.summary_dict()
    summary["files"] = {
        "html": str(files.html),
        "markdown": str(files.markdown),
        "csv": str(files.csv),
        "plots": {name: str(path) for name, path in files.plots.items()},
    }
    if json_summary:
        echo_json(summary)
        return
    _print_summary(summary)
    err_console.print(f"report: {files.html}")


COMMANDS: Sequence[click.Command] = [compare]
