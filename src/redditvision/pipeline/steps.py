"""The run's steps: one function per step, in the ordered list :data:`STEPS`.

A :class:`Step` is a name, the function that does the work (it takes a
:class:`~redditvision.pipeline.StepContext` and returns its outputs, a JSON-compatible
mapping), a function naming the step's inputs (their fingerprint decides whether an
earlier run's outputs are reused), and a predicate saying whether the step is part of this
run. :func:`redditvision.pipeline.run` walks the list; reuse is decided there, once, for
every step.

Adding a step is one function and one entry in :data:`STEPS`::

    def dedupe(ctx: StepContext) -> Mapping[str, Any]:
        dataset = ctx.labeled()
        ...
        return {"removed": 12, "file": str(ctx.output / "deduped.jsonl")}

    Step("dedupe", dedupe, inputs=lambda ctx: (ctx.outputs["label"], ...))
"""

from __future__ import annotations

import hashlib
import json
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
from redditvision.pipeline._sources import (
    SourceDataset,
    merge_sources,
    posts_file,
    write_lines,
    write_provenance,
)
from redditvision.pipeline.config import SourceConfig
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


def _reddit_sources(ctx: StepContext) -> list[tuple[int, str, SourceConfig]]:
    """The Reddit sources (subreddit, listings, dumps): (number from 1, name, table)."""
    config = ctx.config
    return [
        (number, name, source)
        for number, (name, source) in enumerate(
            zip(config.source_names(), config.sources, strict=True), start=1
        )
        if source.is_reddit
    ]


def _any_reddit_source(ctx: StepContext) -> bool:
    return bool(_reddit_sources(ctx))


def _read_posts(path: Path) -> list[ImagePost]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [post_from_json(json.loads(line)) for line in lines]


# --- collect -------------------------------------------------------------------------


def _posts(ctx: StepContext, source: SourceConfig) -> Iterator[ImagePost]:
    from redditvision.reddit import (
        DumpFileSource,
        ListingFileSource,
        PostFilters,
        RedditImageSource,
    )

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
    """Write each Reddit source's submissions to ``OUTPUT/posts/NN-name.jsonl``.

    Returns:
        ``{"posts": total, "sources": {name: {"posts": count, "file": path}}}``.
    """
    sources: dict[str, Any] = {}
    for number, name, source in _reddit_sources(ctx):
        path = posts_file(ctx.output, number, name)
        count = write_lines(
            path,
            (json.dumps(post_to_json(post), ensure_ascii=False) for post in _posts(ctx, source)),
        )
        sources[name] = {"posts": count, "file": str(path)}
    return {"posts": sum(entry["posts"] for entry in sources.values()), "sources": sources}


def _collect_inputs(ctx: StepContext) -> Any:
    return [(name, attrs.asdict(source)) for _, name, source in _reddit_sources(ctx)]


# --- download ------------------------------------------------------------------------


def download(ctx: StepContext) -> Mapping[str, Any]:
    """Download every Reddit source's images into ``OUTPUT/downloads`` (one manifest).

    A post listed by several sources is fetched once; interrupted downloads resume from
    the manifest.

    Returns:
        ``{"records": {status: count}, "sources": {name: {status: count}}, "folder": path}``.
    """
    from redditvision.download import ImageDownloader

    collected = ctx.outputs["collect"]["sources"]
    per_source = {name: _read_posts(Path(entry["file"])) for name, entry in collected.items()}
    total = sum(len(post.media) for posts in per_source.values() for post in posts)
    counts: dict[str, int] = {}
    sources: dict[str, dict[str, int]] = {}
    done = 0
    with ImageDownloader(
        ctx.downloads,
        session=ctx.clients.session,
        concurrency=ctx.config.download.concurrency,
        allow_private_networks=ctx.config.download.allow_private_networks,
    ) as downloader:
        for name, posts in per_source.items():
            mine = sources.setdefault(name, {})
            for record in downloader.fetch(posts):
                status = record.status.value
                counts[status] = counts.get(status, 0) + 1
                mine[status] = mine.get(status, 0) + 1
                done += 1
                ctx.progress("download", done, total)
    return {"records": counts, "sources": sources, "folder": str(ctx.downloads)}


# --- label and split -----------------------------------------------------------------


def _label_source(ctx: StepContext, name: str, source: SourceConfig) -> SourceDataset:
    from redditvision.labels import LabelMap, RuleSet, label_csv, label_folders, label_records
    from redditvision.manifest import ImageManifest

    config = ctx.config
    labels = config.labels_for(source)
    if labels.csv is not None:
        return SourceDataset(
            name=name, config=source, dataset=label_csv(labels.csv, name=config.name)
        )
    if source.images is not None:
        label_map = LabelMap.from_toml(labels.label_map) if labels.label_map else None
        dataset = label_folders(source.images, label_map=label_map, name=config.name)
        return SourceDataset(name=name, config=source, dataset=dataset)
    assert labels.rules is not None
    rules = RuleSet.from_toml(labels.rules)
    posts_path = Path(ctx.outputs["collect"]["sources"][name]["file"])
    post_ids = {post.id for post in _read_posts(posts_path)}
    with ImageManifest.for_folder(ctx.downloads) as manifest:
        records = [r for r in manifest.records(RecordStatus.OK) if r.post_id in post_ids]
    dataset, report = label_records(records, rules, name=config.name)
    return SourceDataset(name=name, config=source, dataset=dataset, unmatched=len(report.unmatched))


def label(ctx: StepContext) -> Mapping[str, Any]:
    """Label each source, merge them without duplicates, split, check, write ``labeled.jsonl``.

    Each source is labeled by its own labeler (or ``[labels]``); an image already held
    by an earlier source (same SHA-256, or a near-duplicate group that spans sources) is
    dropped (see :func:`~redditvision.pipeline._sources.merge_sources`). Every image's
    source is written to ``OUTPUT/provenance.jsonl``.

    Returns:
        ``{"images": n, "labels": {label: count}, "sources": {name: counts},
        "warnings": [...], "file": path, "provenance": path}``.

    Raises:
        DatasetError: The dataset fails the backend's checks (too few images a label), or
            two label names clash.
    """
    from redditvision.checks import check_dataset
    from redditvision.split import split_dataset
    from redditvision.storage import write_local_dataset

    config = ctx.config
    parts = [
        _label_source(ctx, name, source)
        for name, source in zip(config.source_names(), config.sources, strict=True)
    ]
    group = len(parts) > 1 or any(not source.is_reddit for source in config.sources)
    merged, rows, sources = merge_sources(parts, name=config.name, group=group)
    split = config.split
    labeled = split_dataset(
        merged, train=split.train, validation=split.validation, test=split.test, seed=split.seed
    )
    report = check_dataset(labeled, target=config.backend.kind)
    report.raise_for_errors()
    write_local_dataset(labeled, ctx.labeled_file)
    provenance = write_provenance(ctx.output / "provenance.jsonl", rows)
    return {
        "images": len(labeled.images),
        "labels": labeled.counts(),
        "sources": sources,
        "warnings": [issue.message for issue in report.warnings],
        "file": str(ctx.labeled_file),
        "provenance": str(provenance),
    }


def _label_inputs(ctx: StepContext) -> Any:
    config = ctx.config
    inputs: list[Any] = [ctx.outputs.get("download"), attrs.asdict(config.labels)]
    for name, source in zip(config.source_names(), config.sources, strict=True):
        labels = config.labels_for(source)
        files = [labels.rules, labels.label_map, labels.csv]
        inputs.append(
            (
                name,
                attrs.asdict(source),
                None if source.images is None else _tree_digest(source.images),
                [_file_digest(path) for path in files if path],
            )
        )
    inputs.append(attrs.asdict(config.split))
    return inputs


# --- audit ---------------------------------------------------------------------------


def _audit_tools(ctx: StepContext) -> tuple[Any, Any]:
    """Return the audit's feature extractor and embedding cache.

    The local backend's when the run uses it (so training reuses the audit's
    embeddings), else a fresh EfficientNet-Lite0 extractor and no cache.
    """
    backend = ctx.backend()
    extractor = getattr(backend, "extractor", None)
    if extractor is None:
        from redditvision.backends.local import EfficientNetLite0Extractor

        extractor = EfficientNetLite0Extractor()
    return extractor, getattr(backend, "cache", None)


def audit(ctx: StepContext) -> Mapping[str, Any]:
    """Audit the labeled dataset; writes ``OUTPUT/audit`` (and a cleaned dataset if asked).

    Reports by default: ``audit.html``, ``audit.csv`` and ``audit.jsonl`` rank what to
    review (:func:`~redditvision.audit.audit_dataset`). With ``[audit] exclude`` or
    ``relabel`` the cleaned dataset is written to ``OUTPUT/audit/dataset.jsonl`` and the
    later steps train on it. A dataset the audit cannot score (a label with fewer than
    two images) or a missing ``[local]`` extra is reported and the run goes on, unless
    ``[audit]`` asked something of the audit.

    Returns:
        ``{"images", "flagged", "issues": {kind: n}, "html", "csv", "jsonl"}``, plus
        ``"dataset_file"``, ``"images_kept"`` and ``"changes": {"excluded:<kind>": n,
        "relabeled": n}`` when it cleaned; ``{"not_run": reason}`` when it could not run.

    Raises:
        DatasetError: ``[audit] fail_on`` names an issue the audit found, or the audit
            could not run although ``[audit]`` asked something of it.
    """
    from redditvision.errors import DatasetError, MissingDependencyError
    from redditvision.storage import load_local_dataset, write_local_dataset

    settings = ctx.config.audit
    labeled = load_local_dataset(ctx.labeled_file)
    folder = ctx.output / "audit"
    try:
        from redditvision.audit import audit_dataset, write_audit

        extractor, cache = _audit_tools(ctx)
        report = audit_dataset(
            labeled,
            extractor=extractor,
            target=ctx.config.backend.kind,
            seed=settings.seed,
            cache=cache,
            progress=lambda _stage, done, total: ctx.progress("audit", done, total),
        )
    except (ImportError, DatasetError) as exc:
        problem: Exception = exc
        if isinstance(exc, ImportError) and not isinstance(exc, MissingDependencyError):
            problem = MissingDependencyError(
                f"the audit needs the [local] extra (missing {exc.name or exc}): "
                "pip install 'redditvision[local]'"
            )
        if settings.asked:
            if problem is exc:
                raise
            raise problem from exc
        ctx.say("audit", f"not run: {problem}")
        return {"not_run": str(problem)}
    files = write_audit(report, folder)
    counts = report.counts()
    flagged = len(report.flagged())
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "nothing found"
    ctx.say("audit", f"{flagged} of {len(labeled.images)} image(s) flagged ({summary})")
    outputs: dict[str, Any] = {
        "images": len(labeled.images),
        "flagged": flagged,
        "issues": counts,
        "html": str(files.html),
        "csv": str(files.csv),
        "jsonl": str(files.jsonl),
    }
    blocking = sorted(kind for kind in settings.fail_on if counts.get(kind))
    if blocking:
        found = ", ".join(f"{counts[kind]} {kind}" for kind in blocking)
        raise DatasetError(
            f"the audit found {found} and [audit] fail_on stops the run on them: review "
            f"{files.html}, fix the labels or sources (or exclude them with [audit] exclude), "
            "then run again"
        )
    if settings.changes_data:
        cleaned, changes = report.cleaned(exclude=settings.exclude, relabel=settings.relabel)
        path = write_local_dataset(cleaned, folder / "dataset.jsonl")
        outputs |= {
            "dataset_file": str(path),
            "images_kept": len(cleaned.images),
            "changes": dict(sorted(changes.items())),
        }
        ctx.say(
            "audit",
            f"{len(cleaned.images)} image(s) kept for training ("
            + (", ".join(f"{n} {k}" for k, n in sorted(changes.items())) or "no change")
            + ")",
        )
    return outputs


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
            location = local_writer.write(labeled, progress=progress).location
    else:
        from redditvision.backends import get_backend

        formats = list(get_backend(config.backend.kind).import_formats)
        # JSON Lines where the backend reads it (Vertex AI), else its first format.
        fmt = next((name for name in formats if name.endswith("jsonl")), formats[0])
        bucket = config.writer.bucket or ""
        gcs_writer = (
            GcsDatasetWriter(
                client=clients.storage_client, bucket=bucket, prefix=config.writer.prefix
            )
            if clients.storage_client is not None
            else GcsDatasetWriter.from_env(bucket=bucket, prefix=config.writer.prefix)
        )
        with gcs_writer:
            location = gcs_writer.write(labeled, import_format=fmt, progress=progress).location
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
    from redditvision.backends import get_backend

    reads = get_backend(config.backend.kind).data
    data = ctx.labeled() if reads == "dataset" else ctx.location()
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
        from redditvision.labelers import CloudVisionLabeler

        return CloudVisionLabeler.from_env()
    from redditvision.labelers import ImageNetLabeler

    return ImageNetLabeler()


def compare(ctx: StepContext) -> Mapping[str, Any]:
    """Compare the custom model with generic labels; writes ``OUTPUT/report``.

    Returns:
        ``{"report_html": path, "summary": the comparison's aggregate figures}``.
    """
    from redditvision.classify import Classifier
    from redditvision.compare import VisionComparator
    from redditvision.report import write_report

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
    folders = [
        source.images
        for source in config.sources
        if source.images is not None and config.labels_for(source).label_map is not None
    ]
    aliases: dict[str, set[str]] = {}
    for image in labeled.images:
        if any(image.path.is_relative_to(folder) for folder in folders):
            aliases.setdefault(image.original_label, set()).add(image.path.parent.name)

    model = ctx.model()
    with Classifier(model, backend=ctx.backend()) as classifier:
        comparator = VisionComparator(generic=_generic(ctx), custom=classifier, aliases=aliases)
        report = comparator.compare(
            [str(image.path) for image in images],
            truth=[image.original_label for image in images],
            on_progress=advance,
        )
    files = write_report(
        report,
        ctx.output / "report",
        evaluation=ctx.evaluation(),
        overwrite=True,
        audit=ctx.outputs.get("audit"),
        training=model.metadata.get("training"),
    )
    return {"report_html": str(files.html), "summary": report.summary_dict()}


# --- classify (an existing model) ---------------------------------------------------


def classify(ctx: StepContext) -> Mapping[str, Any]:
    """Predict every downloaded image of the sources' posts with ``[model] path``.

    Writes ``OUTPUT/classify/predictions.jsonl``, ``summary.json`` and ``index.html``
    (:func:`redditvision.predict_posts.classify_posts`); the run's downloader and manifest
    are reused, so nothing is fetched twice and a re-run predicts only new items.

    Returns:
        ``{"predicted": n, "reused": n, "items": n, "folder": path, "summary": {...}}``.
    """
    from redditvision.classify import Classifier
    from redditvision.download import ImageDownloader
    from redditvision.predict_posts import classify_posts

    model = ctx.config.model
    assert model.path is not None  # the step applies only then
    collected = ctx.outputs["collect"]["sources"]
    posts = [post for entry in collected.values() for post in _read_posts(Path(entry["file"]))]
    with (
        ImageDownloader(
            ctx.downloads,
            session=ctx.clients.session,
            concurrency=ctx.config.download.concurrency,
            allow_private_networks=ctx.config.download.allow_private_networks,
        ) as downloader,
        Classifier(model.path, backend=ctx.clients.backend) as classifier,
    ):
        result = classify_posts(
            posts,
            classifier,
            ctx.output / "classify",
            downloader=downloader,
            low_confidence=model.low_confidence,
        )
    ctx.say("classify", f"{result.predicted} predicted, {result.reused} reused")
    return {
        "predicted": result.predicted,
        "reused": result.reused,
        "items": len(result.items),
        "folder": str(result.out_dir),
        "summary": dict(result.summary),
    }


def _training(ctx: StepContext) -> bool:
    return ctx.config.model.path is None


def _classifying(ctx: StepContext) -> bool:
    return ctx.config.model.path is not None


STEPS: tuple[Step, ...] = (
    Step("collect", collect, inputs=_collect_inputs, applies=_any_reddit_source),
    Step(
        "download",
        download,
        inputs=lambda ctx: (ctx.outputs["collect"], attrs.asdict(ctx.config.download)),
        applies=_any_reddit_source,
    ),
    Step(
        "classify",
        classify,
        inputs=lambda ctx: (
            ctx.outputs["download"],
            attrs.asdict(ctx.config.model),
            _tree_digest(ctx.config.model.path) if ctx.config.model.path else None,
        ),
        applies=_classifying,
    ),
    Step("label", label, inputs=_label_inputs, applies=_training),
    Step(
        "audit",
        audit,
        inputs=lambda ctx: (
            ctx.outputs["label"],
            _file_digest(ctx.labeled_file),
            attrs.asdict(ctx.config.audit),
            ctx.config.backend.kind,
        ),
        applies=lambda ctx: _training(ctx) and ctx.config.audit.enabled,
    ),
    Step(
        "write",
        write,
        inputs=lambda ctx: (
            ctx.outputs["label"],
            _file_digest(ctx.dataset_file),
            attrs.asdict(ctx.config.writer),
        ),
        applies=_training,
    ),
    Step(
        "train",
        train,
        # The dataset's bytes too: a relabeling audit changes labels, not the written counts.
        inputs=lambda ctx: (
            ctx.outputs["write"],
            _file_digest(ctx.dataset_file),
            attrs.asdict(ctx.config.backend),
        ),
        applies=_training,
    ),
    Step(
        "evaluate",
        evaluate,
        inputs=lambda ctx: (ctx.outputs["train"],),
        applies=_training,
    ),
    Step(
        "compare",
        compare,
        inputs=lambda ctx: (
            ctx.outputs["evaluate"],
            ctx.outputs.get("audit"),
            attrs.asdict(ctx.config.compare),
        ),
        applies=lambda ctx: _training(ctx) and ctx.config.compare.enabled,
    ),
)
"""The steps of :func:`redditvision.pipeline.run`, in order."""
