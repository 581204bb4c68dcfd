"""``redditvision train``, ``evaluate``, ``predict`` and ``labels``: models on any backend.

The backend is chosen with ``--backend`` among the registered ones
(:func:`redditvision.backends.backend_names`), and :func:`make_backend` builds it with
:func:`redditvision.backends.build_backend` from the command's options (the cloud ones come
from ``cli._cloud.cloud_options``). What a backend trains from (a local dataset or a
``gs://`` import file) and what ``--model`` names (a folder or a resource) come from its
registration, so a new backend needs no change here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from redditvision.backends import Backend, backend_names, build_backend, get_backend
from redditvision.backends.local import DEFAULT_QUALITY, PRESETS, QUALITIES, QUALITY_ENV
from redditvision.cli._cloud import (
    DATASET_OR_URI,
    cloud_options,
    cloud_training_options,
    train_on_cloud,
)
from redditvision.cli._common import (
    apply_options,
    backend_option,
    echo_json,
    err_console,
    handle_errors,
    json_option,
    parse_split,
    progress,
    trained_model_json,
)
from redditvision.errors import ConfigError, PredictionError
from redditvision.models import LabeledDataset, TrainedModel, TrainingBudget

__all__ = ["BACKENDS", "COMMANDS", "evaluate", "labels", "make_backend", "predict", "train"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

BACKENDS: tuple[str, ...] = backend_names()
"""The ``--backend`` choices of ``train``, ``evaluate`` and ``predict`` (the registry's)."""

_model_backend_option = backend_option(help_text="The model's backend.")
_cache_dir_option = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Local: embedding cache [default: ~/.cache/redditvision/embeddings].",
)
_image_paths_argument = click.argument(
    "image_paths",
    metavar="IMAGE...",
    nargs=-1,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
)


def make_backend(
    name: str,
    *,
    model_dir: Path | None = None,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
    quality: str | None = None,
    **options: Any,
) -> Backend:
    """Build the backend named by ``--backend`` from the command's options.

    Args:
        name: A registered backend name.
        model_dir: Local backend: folder for model folders.
        cache_dir: Local backend: embedding cache folder (default the user cache).
        use_cache: Local backend: use the embedding cache.
        on_progress: ``progress(done, total)`` during feature extraction.
        quality: Local backend: the preset (``fast``, ``medium``, ``high``, ``best``;
            None: the backend's default, ``medium`` or ``$REDDITVISION_QUALITY``).
        **options: The :func:`~redditvision.cli._cloud.cloud_options` values (``project``,
            ``location``, ``state_dir``, ``api_endpoint``, ``insecure``) and
            ``model_type``.

    Returns:
        The backend.

    Raises:
        ConfigError: Unknown backend, or no ``--project`` for a cloud backend.
        MissingDependencyError: The backend's extra is not installed.
    """
    spec = get_backend(name)
    if spec.needs_options:
        from redditvision.cli._cloud import make_cloud_backend

        return make_cloud_backend(name, **options)
    return build_backend(
        name,
        model_dir=model_dir,
        cache_dir=cache_dir,
        use_cache=use_cache,
        on_count=on_progress,
        extra={"quality": quality} if quality else {},
    )


@contextmanager
def _open_backend(name: str, *, disable_progress: bool, **options: Any) -> Iterator[Backend]:
    """:func:`make_backend` with a "features" progress bar fed by ``on_progress``; closed after."""
    with progress(disable=disable_progress) as display:
        task = display.add_task("features", total=None)

        def advance(done: int, total: int) -> None:
            display.update(task, completed=done, total=total)

        with closing(make_backend(name, on_progress=advance, **options)) as built:
            yield built


def _echo_image_error(path: Path, message: str | None, *, as_json: bool) -> None:
    """Report one image that failed: a JSON line on stdout, or a line on stderr naming it."""
    if as_json:
        echo_json({"image": str(path), "error": message})
    else:
        line = message if message and str(path) in message else f"{path}: {message}"
        err_console.print(line, highlight=False)


def _echo_image_scores(
    path: Path,
    key: str,
    scores: Sequence[tuple[str, float]],
    *,
    as_json: bool,
    shown: int | None = None,
) -> None:
    """Print one image's scored labels, best first.

    With ``as_json`` one line ``{"image": path, key: [{"label", "score"}, ...]}`` (scores
    rounded to 6 places); otherwise ``path<TAB>label score, ...`` with the first ``shown``
    labels (all when None) at 3 places.
    """
    if as_json:
        echo_json(
            {
                "image": str(path),
                key: [{"label": label, "score": round(score, 6)} for label, score in scores],
            }
        )
    else:
        text = ", ".join(f"{label} {score:.3f}" for label, score in scores[:shown])
        click.echo(f"{path}\t{text}")


def _dataset(
    images: Path | None, label_map: Path | None, dataset: Path | str | None
) -> LabeledDataset:
    from redditvision.labels import LabelMap, label_folders
    from redditvision.storage import load_local_dataset

    if isinstance(dataset, str):
        cloud = ", ".join(n for n in backend_names() if get_backend(n).data == "location")
        raise ConfigError(f"--dataset {dataset} is a cloud import file: use --backend {cloud}")
    if (images is None) == (dataset is None):
        raise ConfigError("give exactly one of --images DIR or --dataset FILE")
    if dataset is not None:
        if label_map is not None:
            raise ConfigError("--label-map applies to --images; a --dataset file is labeled")
        return load_local_dataset(dataset)
    assert images is not None
    mapping = LabelMap.from_toml(label_map) if label_map is not None else None
    return label_folders(images, label_map=mapping)


def _round(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _data_options(fn: F) -> F:
    """Add ``--images``, ``--label-map`` and ``--dataset`` (train and evaluate)."""
    options = [
        click.option(
            "--images",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            default=None,
            help="Folder with one subfolder of images per label.",
        ),
        click.option(
            "--label-map",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="TOML [labels] table grouping --images folders into labels.",
        ),
        click.option(
            "--dataset",
            type=DATASET_OR_URI,
            default=None,
            help="A labeled dataset file (dataset.jsonl from `redditvision label --out`); "
            "cloud backends: the gs:// import file.",
        ),
    ]
    return apply_options(fn, options)


@click.command()
@backend_option(help_text="Where to train.")
@_data_options
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Local: the model folder to write (replaced if it is a model folder).",
)
@click.option(
    "--split",
    default="0.8,0.1,0.1",
    show_default=True,
    help="Training,validation,test fractions for data not split yet (1,0,0: all training).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option(
    "--quality",
    type=click.Choice(QUALITIES),
    default=None,
    help=f"Local preset [default: {DEFAULT_QUALITY}, or ${QUALITY_ENV}]: "
    + "; ".join(f"{name} = {preset.description}" for name, preset in PRESETS.items())
    + ".",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0),
    default=None,
    help="Local: seconds training may take; it stops there with the best model so far "
    "[default: no limit].",
)
@_cache_dir_option
@click.option("--no-cache", is_flag=True, help="Local: do not read or write the embedding cache.")
@json_option("Print the result as one JSON object.")
@cloud_training_options
@handle_errors
def train(
    backend: str,
    images: Path | None,
    label_map: Path | None,
    dataset: Path | str | None,
    out: Path | None,
    split: str,
    seed: int,
    quality: str,
    time_limit: float | None,
    cache_dir: Path | None,
    no_cache: bool,
    as_json: bool,
    budget: int,
    model_type: str,
    display_name: str | None,
    **cloud: Any,
) -> None:
    """Train a classifier on labeled images.

    Locally (the default), --quality picks the preset: medium (the default), high and best
    fine-tune the network (a killed run resumes from its last epoch); with fast, features of
    every image are extracted with EfficientNet-Lite0 (cached) and a few scikit-learn heads
    are compared by cross-validated macro-F1 on the training split (seconds). The model is saved
    with its metrics and training curve to --out. Prints the model folder (or, with --json,
    the model and its scores).
    """
    from redditvision.split import split_dataset

    spec = get_backend(backend)
    if spec.data == "location":
        train_on_cloud(
            backend,
            dataset if isinstance(dataset, str) else None,
            budget=budget,
            model_type=model_type,
            display_name=display_name,
            as_json=as_json,
            **cloud,
        )
        return
    fractions = parse_split(split)
    data = _dataset(images, label_map, dataset)
    if all(image.ml_use is None for image in data.images):
        data = split_dataset(
            data, train=fractions[0], validation=fractions[1], test=fractions[2], seed=seed
        )
    if spec.model_kind == "folder" and out is None:
        raise ConfigError(f"train --backend {backend} needs --out MODEL_DIR")
    with _open_backend(
        backend,
        disable_progress=as_json,
        cache_dir=cache_dir,
        use_cache=not no_cache,
        quality=quality,
    ) as built:
        model: TrainedModel = built.train(  # type: ignore[call-arg]  # the folder backends take out=
            data, budget=TrainingBudget(time_limit_s=time_limit), out=out
        )
    meta = dict(model.metadata)
    if as_json:
        echo_json(
            {
                **trained_model_json(model),
                **{
                    key: meta.get(key)
                    for key in (
                        "candidate",
                        "tta",
                        "cv_macro_f1",
                        "cv_accuracy",
                        "cv_folds",
                        "validation",
                        "test",
                        "counts",
                        "skipped",
                    )
                },
            }
        )
        return
    _print_training(model)
    click.echo(model.resource)


def _print_training(model: TrainedModel) -> None:
    from rich.table import Table

    meta = dict(model.metadata)
    table = Table(title="head search (cross-validated on the training split)")
    for column in ("candidate", "TTA", "macro-F1", "accuracy", "seconds"):
        table.add_column(column)
    for row in meta.get("search", []):
        table.add_row(
            str(row["name"]),
            "yes" if row["tta"] else "no",
            _round(row["cv_macro_f1"]),
            _round(row["cv_accuracy"]),
            f"{row['seconds']:.1f}",
        )
    err_console.print(table)
    candidate = meta.get("candidate", {}).get("name")
    err_console.print(
        f"chosen: {candidate} (TTA {'on' if meta.get('tta') else 'off'}), cross-validated "
        f"macro-F1 {_round(meta.get('cv_macro_f1'))}, accuracy {_round(meta.get('cv_accuracy'))} "
        f"over {meta.get('cv_folds')} folds",
        highlight=False,
    )
    for split in ("validation", "test"):
        scores = meta.get(split)
        if scores:
            err_console.print(
                f"{split}: macro-F1 {_round(scores['macro_f1'])}, accuracy "
                f"{_round(scores['accuracy'])} on {scores['images']} images",
                highlight=False,
            )
    for item in meta.get("skipped", []):
        err_console.print(f"skipped {item['path']}: {item['reason']}", highlight=False)


def _print_evaluation(evaluation: Any) -> None:
    from rich.table import Table

    table = Table(title=f"evaluation on {evaluation.evaluated_items} images ({evaluation.source})")
    for column in ("label", "precision", "recall", "F1", "support", "auPRC"):
        table.add_column(column)
    for row in evaluation.per_label:
        table.add_row(
            row.label,
            _round(row.precision),
            _round(row.recall),
            _round(row.f1),
            str(row.support),
            _round(row.au_prc),
        )
    table.add_row(
        "macro",
        _round(evaluation.macro_precision),
        _round(evaluation.macro_recall),
        _round(evaluation.macro_f1),
        "",
        "",
    )
    table.add_row(
        "micro",
        _round(evaluation.micro_precision),
        _round(evaluation.micro_recall),
        _round(evaluation.micro_f1),
        "",
        _round(evaluation.au_prc),
    )
    err_console.print(table)
    err_console.print(
        f"accuracy {_round(evaluation.accuracy)}, log loss {_round(evaluation.log_loss)}, "
        f"{len(evaluation.misclassified)} misclassified",
        highlight=False,
    )
    matrix = Table(title="confusion matrix (rows: true, columns: predicted)")
    matrix.add_column("")
    for label in evaluation.labels:
        matrix.add_column(label)
    for label, row in zip(evaluation.labels, evaluation.confusion_matrix, strict=True):
        matrix.add_row(label, *(str(value) for value in row))
    err_console.print(matrix)


@click.command()
@_model_backend_option
@click.option(
    "--model", "model_ref", required=True, help="Local: the model folder; cloud: the model name."
)
@_data_options
@_cache_dir_option
@json_option("Print the evaluation as one JSON object.")
@cloud_options
@handle_errors
def evaluate(
    backend: str,
    model_ref: str,
    images: Path | None,
    label_map: Path | None,
    dataset: Path | str | None,
    cache_dir: Path | None,
    as_json: bool,
    **cloud: Any,
) -> None:
    """Evaluate a model: per-label precision, recall, F1, auPRC, confusion matrix.

    With --images (and the --label-map used in training) or --dataset, every image is
    evaluated (a dataset's test split when it has one); without them, the evaluation saved
    at training time on the test split is shown.
    """
    from redditvision.metrics import evaluation_to_json

    data = None if images is None and dataset is None else _dataset(images, label_map, dataset)
    with _open_backend(backend, disable_progress=as_json, cache_dir=cache_dir, **cloud) as built:
        evaluation = built.evaluate(built.load(model_ref), data)
    if as_json:
        echo_json(evaluation_to_json(evaluation))
    else:
        _print_evaluation(evaluation)


@click.command()
@_model_backend_option
@click.option(
    "--model",
    "--endpoint",
    "model_ref",
    required=True,
    help="Local: the model folder; cloud: the model or (Vertex AI) endpoint resource name.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Drop labels scored below this (Vertex AI's confidenceThreshold).",
)
@click.option(
    "--max-predictions",
    type=click.IntRange(min=1),
    default=None,
    help="Labels per image (Vertex AI's maxPredictions) [default: all].",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Images per prediction request.",
)
@json_option("One JSON object per image on stdout.")
@cloud_options
@_image_paths_argument
@handle_errors
def predict(
    backend: str,
    model_ref: str,
    threshold: float,
    max_predictions: int | None,
    batch_size: int,
    as_json: bool,
    image_paths: tuple[Path, ...],
    **cloud: Any,
) -> None:
    """Predict the labels of images with a trained model.

    With --json, one line per image: {"image": path, "predictions": [{"label", "score"},
    ...]} best first, labels in your original names; an image that cannot be read or
    decoded gets {"image": path, "error": why} and the others still run (exit status 1).
    """
    from redditvision.classify import Classifier, read_image_bytes

    built = make_backend(backend, **cloud)
    model = built.load(model_ref)
    failures = 0
    with Classifier(model, backend=built, batch_size=batch_size) as classifier:
        for start in range(0, len(image_paths), batch_size):
            chunk = list(image_paths[start : start + batch_size])
            blobs: list[bytes | None] = []
            errors: dict[int, str] = {}
            for index, path in enumerate(chunk):
                try:
                    blobs.append(read_image_bytes(path))
                except PredictionError as exc:
                    blobs.append(None)
                    errors[index] = str(exc)
            good = [blob for blob in blobs if blob is not None]
            try:
                answers = classifier.predict_many(
                    good, confidence_threshold=threshold, max_predictions=max_predictions
                )
            except PredictionError:
                # One undecodable image fails the batch: retry image by image.
                answers = []
                for index, blob in enumerate(blobs):
                    if blob is None:
                        continue
                    try:
                        answers.extend(
                            classifier.predict_many(
                                [chunk[index]],  # the path, so an error names the file
                                confidence_threshold=threshold,
                                max_predictions=max_predictions,
                            )
                        )
                    except PredictionError as exc:
                        errors[index] = str(exc)
                        blobs[index] = None
            results = iter(answers)
            for index, path in enumerate(chunk):
                if blobs[index] is None:
                    failures += 1
                    message = errors.get(index, "cannot read the image")
                    _echo_image_error(path, message, as_json=as_json)
                    continue
                predictions = next(results)
                _echo_image_scores(
                    path,
                    "predictions",
                    [(p.label, p.score) for p in predictions],
                    as_json=as_json,
                    shown=3,
                )
    built.close()
    if failures:
        raise SystemExit(1)


@click.command()
@click.option(
    "--max-results",
    type=click.IntRange(1, 1000),
    default=5,
    show_default=True,
    help="Labels per image.",
)
@json_option("One JSON object per image on stdout.")
@_image_paths_argument
@handle_errors
def labels(max_results: int, as_json: bool, image_paths: tuple[Path, ...]) -> None:
    """Generic labels offline: the top ImageNet-1k classes (EfficientNet-Lite0).

    With --json, one line per image: {"image": path, "labels": [{"label", "score"}, ...]},
    or {"image": path, "error": why} for an image that cannot be read or decoded.
    """
    from redditvision.backends.local import ImageNetLabeler

    labeler = ImageNetLabeler()
    failures = 0
    for start in range(0, len(image_paths), 32):
        chunk = image_paths[start : start + 32]
        blobs: dict[int, bytes] = {}
        errors: dict[int, str] = {}
        for index, path in enumerate(chunk):
            try:
                blobs[index] = path.read_bytes()
            except OSError as exc:
                errors[index] = f"cannot read {path}: {exc.strerror or exc}"
        found = dict(
            zip(blobs, labeler.label(list(blobs.values()), max_results=max_results), strict=True)
        )
        for index, path in enumerate(chunk):
            result = found.get(index)
            error = errors.get(index) or (result.error if result is not None else None)
            if error is not None or result is None:
                failures += 1
                _echo_image_error(path, error, as_json=as_json)
                continue
            _echo_image_scores(
                path,
                "labels",
                [(item.label, item.score or 0.0) for item in result.labels],
                as_json=as_json,
            )
    labeler.close()
    if failures:
        raise SystemExit(1)


COMMANDS: list[click.Command] = [train, evaluate, predict, labels]
