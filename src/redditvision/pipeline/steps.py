"""The run's steps: one function per step, in the ordered list :data:`STEPS`.

A :class:`Step` is a name, the function that does the work (it takes a
:class:`~redditvision.pipeline.StepContext` and returns its outputs, a JSON-compatible
mapping), a function naming the step's inputs (their fingerprint decides whether an
earlier run's outputs are reused), and a predicate saying whether the step is part of this
run. :func:`redditvision.pipeline.run` walks the list; reuse is decided there, once, for
every step.

Adding a step is one function and one entry in :data:`STEPS`::

    def audit(ctx: StepContext) -> Mapping[str, Any]:
        dataset = ctx.labeled()
        ...
        return {"flagged": 12, "file": str(ctx.output / "audit" / "audit.html")}

    Step("audit", audit, inputs=lambda ctx: (ctx.outputs["label"], ...))
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from redditvision.errors import ConfigError
from redditvision.metrics import evaluation_to_json
from redditvision.models import (
    DatasetLocation,
    ImagePost,
    LabeledDataset,
    MLUse,
    RecordStatus,
    TrainingBudget,
)
from redditvision.pipeline._context import StepContext, model_to_json
from redditvision.serialize import post_from_json, post_to_json

__all__ = ["STEPS", "Step", "fingerprint"]

StepFunction = Callable[[StepContext], Mapping[str, Any]]
"""A step's work: takes the context, returns the step's JSON-compatible outputs."""


def _always(_ctx: StepContext) -> bool:
    return True


@attrs.frozen
class Step:
    """One step of the run.

    Attributes:
        name: The step's name (its key in ``run-state.json`` and in
            :attr:`StepContext.outputs`).
        run: Does the work; returns the outputs, which later steps read from
            ``ctx.outputs[name]``.
        inputs: Returns what the step's result depends on (earlier steps' outputs,
            config sections, file digests), JSON-compatible; when its
            :func:`fingerprint` matches the one recorded by an earlier run, the recorded
            outputs are reused and ``run`` is not called.
        applies: Whether the step is part of this run (default: always); a step that
            does not apply is recorded ``"skipped"``.
    """

    name: str
    run: StepFunction
    inputs: Callable[[StepContext], Any]
    applies: Callable[[StepContext], bool] = _always


def fingerprint(*parts: Any) -> str:
    """Return a short, stable digest of JSON-compatible ``parts`` (16 hex digits of SHA-256).

    Paths and other non-JSON values are taken by their ``str``.
    """
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    if not path.exists():
        return "missing"
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _tree_digest(root: Path) -> str:
    """A cheap fingerprint of an image folder: names, sizes and modification times."""
    if not root.is_dir():
        raise ConfigError(f"image folder {root} does not exist; pass a folder of label folders")
    entries: list[tuple[str, int, int]] = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            stat = path.stat()
            entries.append((str(path.relative_to(root)), stat.st_size, int(stat.st_mtime)))
    return fingerprint(entries)


def _write_atomic(path: Path, lines: Iterator[str]) -> int:
    tmp = path.with_suffix(path.suffix + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")
            count += 1
    os.replace(tmp, path)
    return count


def _reddit_source(ctx: StepContext) -> bool:
    return ctx.config.source.images is None


# --- collect -------------------------------------------------------------------------


def _posts(ctx: StepContext) -> Iterator[ImagePost]:
    from redditvision.reddit import (
        DumpFileSource,
        ListingFileSource,
        PostFilters,
        RedditImageSource,
    )

    source = ctx.config.source
    filters = PostFilters(include_nsfw=source.include_nsfw, min_score=source.min_score)
    if source.listings:
        yield from ListingFileSource(source.listings, filters=filters).submissions()
    elif source.dumps:
        yield from DumpFileSource(source.dumps, filters=filters).submissions()
    else:
        assert source.subreddit is not None
        reddit_source = (
            RedditImageSource(reddit=ctx.clients.reddit, filters=filters)
            if ctx.clients.reddit is not None
            else RedditImageSource.from_env(filters=filters)
        )
        with reddit_source:
            yield from reddit_source.submissions(
                source.subreddit,
                sort=source.sort,
                time_filter=source.time_filter,
                limit=source.limit,
                query=source.query,
            )


def collect(ctx: StepContext) -> Mapping[str, Any]:
    """Write the source's submissions to ``OUTPUT/posts.jsonl``.

    Returns:
        ``{"posts": count, "file": path}``.
    """
    count = _write_atomic(
        ctx.posts_file,
        (json.dumps(post_to_json(post), ensure_ascii=False) for post in _posts(ctx)),
    )
    return {"posts": count, "file": str(ctx.posts_file)}


# --- download ------------------------------------------------------------------------


def download(ctx: StepContext) -> Mapping[str, Any]:
    """Download the collected posts' images into ``OUTPUT/downloads`` (resumes by manifest).

    Returns:
        ``{"records": {status: count}, "folder": path}``.
    """
    from redditvision.download import ImageDownloader

    lines = [line for line in ctx.posts_file.read_text(encoding="utf-8").splitlines() if line]
    posts = [post_from_json(json.loads(line)) for line in lines]
    total = sum(len(post.media) for post in posts)
    counts: dict[str, int] = {}
    with ImageDownloader(
        ctx.downloads,
        session=ctx.clients.session,
        concurrency=ctx.config.download.concurrency,
        allow_private_networks=ctx.config.download.allow_private_networks,
    ) as downloader:
        for done, record in enumerate(downloader.fetch(posts), start=1):
            counts[record.status.value] = counts.get(record.status.value, 0) + 1
            ctx.progress("download", done, total)
    return {"records": counts, "folder": str(ctx.downloads)}


# --- label and split -----------------------------------------------------------------


def _labeled(ctx: StepContext) -> LabeledDataset:
    from redditvision import dataset as ds
    from redditvision.manifest import ImageManifest

    config = ctx.config
    labels = config.labels
    if config.source.images is not None:
        if labels.csv is not None:
            labeled = ds.label_csv(labels.csv, name=config.name)
        else:
            label_map = ds.LabelMap.from_toml(labels.label_map) if labels.label_map else None
            labeled = ds.label_folders(config.source.images, label_map=label_map, name=config.name)
        labeled = ds.group_near_duplicates(labeled)
    elif labels.csv is not None:
        labeled = ds.label_csv(labels.csv, name=config.name)
    else:
        assert labels.rules is not None
        rules = ds.RuleSet.from_toml(labels.rules)
        with ImageManifest.for_folder(ctx.downloads) as manifest:
            labeled, _report = ds.label_records(
                manifest.records(RecordStatus.OK), rules, name=config.name
            )
    split = config.split
    return ds.split_dataset(
        labeled, train=split.train, validation=split.validation, test=split.test, seed=split.seed
    )


def label(ctx: StepContext) -> Mapping[str, Any]:
    """Label and split the images, check them against the backend, write ``labeled.jsonl``.

    Returns:
        ``{"images": n, "labels": {label: count}, "warnings": [...], "file": path}``.

    Raises:
        DatasetError: The dataset fails the backend's checks (too few images a label).
    """
    from redditvision import dataset as ds

    labeled = _labeled(ctx)
    report = ds.check_dataset(labeled, target=ctx.config.backend.kind)
    report.raise_for_errors()
    ds.write_local_dataset(labeled, ctx.labeled_file)
    return {
        "images": len(labeled.images),
        "labels": labeled.counts(),
        "warnings": [issue.message for issue in report.warnings],
        "file": str(ctx.labeled_file),
    }


def _label_inputs(ctx: StepContext) -> Any:
    config = ctx.config
    images = config.source.images
    source = (
        ctx.outputs["download"]
        if images is None
        else {"images": str(images), "digest": _tree_digest(images)}
    )
    files = [config.labels.rules, config.labels.label_map, config.labels.csv]
    return (
        source,
        attrs.asdict(config.labels),
        [_file_digest(path) for path in files if path],
        attrs.asdict(config.split),
    )


# --- write ---------------------------------------------------------------------------


def write(ctx: StepContext) -> Mapping[str, Any]:
    """Write the dataset with its import file (a local folder or a Cloud Storage bucket).

    Returns:
        The :class:`~redditvision.models.DatasetLocation`'s fields.
    """
    from redditvision.storage import GcsDatasetWriter, LocalDatasetWriter

    config, clients = ctx.config, ctx.clients
    labeled = ctx.labeled()

    def progress(done: int, total: int | None) -> None:
        ctx.progress("write", done, total)

    location: DatasetLocation
    if config.writer.kind == "local":
        with LocalDatasetWriter(ctx.output / "dataset") as local_writer:
            location = local_writer.write(labeled, progress=progress)
    else:
        fmt = "automl_csv" if config.backend.kind == "automl" else "vertex_jsonl"
        bucket = config.writer.bucket or ""
        gcs_writer = (
            GcsDatasetWriter(
                client=clients.storage_client, bucket=bucket, prefix=config.writer.prefix
            )
            if clients.storage_client is not None
            else GcsDatasetWriter.from_env(bucket=bucket, prefix=config.writer.prefix)
        )
        with gcs_writer:
            location = gcs_writer.write(labeled, import_format=fmt, progress=progress)
    return {
        "uri": location.uri,
        "import_file_uri": location.import_file_uri,
        "import_format": location.import_format,
        "images": location.images,
        "labels": list(location.labels),
        "label_map": dict(location.label_map),
    }


# --- train ---------------------------------------------------------------------------


def train(ctx: StepContext) -> Mapping[str, Any]:
    """Train a model on the written dataset with the configured backend and budget.

    Returns:
        ``{"model": the model's JSON form}``.
    """
    config = ctx.config
    budget = TrainingBudget(
        milli_node_hours=config.backend.budget_milli_node_hours,
        time_limit_s=config.backend.time_limit_s,
    )
    data: LabeledDataset | DatasetLocation
    data = ctx.labeled() if config.backend.kind == "local" else ctx.location()
    model = ctx.backend().train(data, budget=budget, display_name=config.name)
    return {"model": model_to_json(model)}


# --- evaluate ------------------------------------------------------------------------


def evaluate(ctx: StepContext) -> Mapping[str, Any]:
    """Evaluate the model; writes ``OUTPUT/evaluation.json``.

    Returns:
        ``{"evaluation": its JSON form, "file": path}``.
    """
    evaluation = ctx.backend().evaluate(ctx.model(), ctx.labeled())
    path = ctx.output / "evaluation.json"
    data = evaluation_to_json(evaluation)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return {"evaluation": data, "file": str(path)}


# --- compare -------------------------------------------------------------------------


def _generic(ctx: StepContext) -> Any:
    if ctx.clients.generic is not None:
        return ctx.clients.generic
    if ctx.config.compare.vision == "cloud":
        from redditvision.vision import CloudVisionLabeler

        return CloudVisionLabeler.from_env()
    from redditvision.backends.local import ImageNetLabeler

    return ImageNetLabeler()


def compare(ctx: StepContext) -> Mapping[str, Any]:
    """Compare the custom model with generic labels; writes ``OUTPUT/report``.

    Returns:
        ``{"report_html": path, "summary": the comparison's aggregate figures}``.
    """
    from redditvision.classify import Classifier
    from redditvision.report import write_report
    from redditvision.vision import VisionComparator

    config = ctx.config
    labeled = ctx.labeled()
    images = (
        labeled.images
        if config.compare.split == "all"
        else labeled.subset(MLUse.TEST) or labeled.images
    )
    compared_so_far = 0

    def advance(count: int) -> None:
        nonlocal compared_so_far
        compared_so_far += count
        ctx.progress("compare", compared_so_far, len(images))

    # With a label map, the folder names a class was built from are its aliases, so a
    # generic label such as "BMW Z4" counts as naming the class "z3-4-8".
    aliases: dict[str, set[str]] = {}
    if config.source.images is not None and config.labels.label_map is not None:
        for image in labeled.images:
            aliases.setdefault(image.original_label, set()).add(image.path.parent.name)

    with Classifier(ctx.model(), backend=ctx.backend()) as classifier:
        comparator = VisionComparator(generic=_generic(ctx), custom=classifier, aliases=aliases)
        report = comparator.compare(
            [str(image.path) for image in images],
            truth=[image.original_label for image in images],
            on_progress=advance,
        )
    files = write_report(report, ctx.output / "report", evaluation=ctx.evaluation(), overwrite=True)
    return {"report_html": str(files.html), "summary": report.summary_dict()}


STEPS: tuple[Step, ...] = (
    Step(
        "collect",
        collect,
        inputs=lambda ctx: attrs.asdict(ctx.config.source),
        applies=_reddit_source,
    ),
    Step(
        "download",
        download,
        inputs=lambda ctx: (ctx.outputs["collect"], attrs.asdict(ctx.config.download)),
        applies=_reddit_source,
    ),
    Step("label", label, inputs=_label_inputs),
    Step(
        "write",
        write,
        inputs=lambda ctx: (ctx.outputs["label"], attrs.asdict(ctx.config.writer)),
    ),
    Step(
        "train",
        train,
        inputs=lambda ctx: (ctx.outputs["write"], attrs.asdict(ctx.config.backend)),
    ),
    Step("evaluate", evaluate, inputs=lambda ctx: (ctx.outputs["train"],)),
    Step(
        "compare",
        compare,
        inputs=lambda ctx: (ctx.outputs["evaluate"], attrs.asdict(ctx.config.compare)),
        applies=lambda ctx: ctx.config.compare.enabled,
    ),
)
"""The steps of :func:`redditvision.pipeline.run`, in order."""
