"""The main job as one function, from a subreddit (or saved data) to a model and a report.

The steps: collect → download → label → split → write → train → evaluate → compare.

:func:`run` composes the public clients from a frozen :class:`RunConfig` (read from a TOML
file with :meth:`RunConfig.from_toml`). Every step writes its result into the output folder
and records a fingerprint of its inputs in ``run-state.json``; a re-run skips each step
whose fingerprint is unchanged and whose outputs exist, so it redoes nothing finished and
changes nothing. Steps that are interrupted resume by themselves: downloads from the
manifest, uploads by checksum, cloud training from its state file.

Defaults need no cloud account: the local dataset writer, the local backend and the offline
ImageNet labeler.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from redditvision.errors import ConfigError, RedditVisionError
from redditvision.metrics import evaluation_from_json, evaluation_to_json
from redditvision.models import (
    DatasetLocation,
    Evaluation,
    ImagePost,
    LabeledDataset,
    MLUse,
    RecordStatus,
    TrainedModel,
    TrainingBudget,
)
from redditvision.serialize import post_from_json, post_to_json

__all__ = [
    "BackendConfig",
    "CompareConfig",
    "DownloadConfig",
    "LabelConfig",
    "ProgressCallback",
    "RunClients",
    "RunConfig",
    "RunResult",
    "SourceConfig",
    "SplitConfig",
    "StepCallback",
    "StepResult",
    "WriterConfig",
    "run",
]

STEPS = ("collect", "download", "label", "write", "train", "evaluate", "compare")
"""The steps of :func:`run`, in order."""


def _path(value: Any, base: Path) -> Path:
    path = Path(os.path.expanduser(str(value)))
    return path if path.is_absolute() else (base / path)


def _paths(value: Any, base: Path) -> tuple[Path, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str | os.PathLike) else list(value)
    return tuple(_path(item, base) for item in items)


@attrs.frozen(kw_only=True)
class SourceConfig:
    """Where the images come from: exactly one of subreddit, listings, dumps or images.

    Attributes:
        subreddit: Subreddit name (without ``r/``) read through praw, or None.
        sort: Listing sort: ``top``, ``hot``, ``new``, ``rising``, ``controversial`` or
            ``search`` (default ``top``).
        time_filter: ``hour``, ``day``, ``week``, ``month``, ``year`` or ``all`` (default).
        limit: Submissions to list (default 100; Reddit returns at most about 1,000).
        query: Search query, with ``sort = "search"``.
        listings: Saved Reddit Listing JSON files.
        dumps: NDJSON submission dumps (plain or ``.zst``).
        images: A folder of label folders (skips collect and download).
        include_nsfw: Keep NSFW submissions (default False).
        min_score: Drop submissions scored below this, or None.
    """

    subreddit: str | None = None
    sort: str = "top"
    time_filter: str = "all"
    limit: int | None = 100
    query: str | None = None
    listings: tuple[Path, ...] = ()
    dumps: tuple[Path, ...] = ()
    images: Path | None = None
    include_nsfw: bool = False
    min_score: int | None = None

    @property
    def kind(self) -> str:
        """``"subreddit"``, ``"listings"``, ``"dumps"`` or ``"images"``."""
        given = [
            name
            for name, present in (
                ("subreddit", self.subreddit is not None),
                ("listings", bool(self.listings)),
                ("dumps", bool(self.dumps)),
                ("images", self.images is not None),
            )
            if present
        ]
        if len(given) != 1:
            raise ConfigError(
                "[source] needs exactly one of subreddit, listings, dumps or images; "
                f"got {', '.join(given) or 'none'}"
            )
        return given[0]


@attrs.frozen(kw_only=True)
class DownloadConfig:
    """Download settings.

    Attributes:
        concurrency: Worker threads (default 16).
        allow_private_networks: Allow image URLs that resolve to loopback or private
            addresses (default False; for tests and intranet hosts only).
    """

    concurrency: int = 16
    allow_private_networks: bool = False


@attrs.frozen(kw_only=True)
class LabelConfig:
    """How images get labels: rules over title and flair, a folder label map, or a CSV.

    Attributes:
        rules: TOML rules file (for Reddit sources), or None.
        label_map: TOML label map grouping folder names (for an image folder), or None.
        csv: CSV of ``path,label`` rows, or None.
    """

    rules: Path | None = None
    label_map: Path | None = None
    csv: Path | None = None


@attrs.frozen(kw_only=True)
class SplitConfig:
    """Train/validation/test fractions and the seed (default 80/10/10, seed 0)."""

    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1
    seed: int = 0


@attrs.frozen(kw_only=True)
class WriterConfig:
    """Where the dataset is written.

    Attributes:
        kind: ``"local"`` (default: ``OUTPUT/dataset``) or ``"gcs"``.
        bucket: Cloud Storage bucket, with ``kind = "gcs"``.
        prefix: Object name prefix (default ``"redditvision"``).
    """

    kind: str = attrs.field(default="local", validator=attrs.validators.in_(("local", "gcs")))
    bucket: str | None = None
    prefix: str = "redditvision"


@attrs.frozen(kw_only=True)
class BackendConfig:
    """Which backend trains the model.

    Attributes:
        kind: ``"local"`` (default), ``"vertex"`` or ``"automl"``.
        project: Google Cloud project for the cloud backends.
        location: Region (default ``us-central1``).
        budget_milli_node_hours: Cloud budget (default 8,000, the Vertex AI CLOUD minimum).
        model_type: Vertex AI model type (default ``CLOUD``).
        time_limit_s: Local model search time limit in seconds, or None.
        api_endpoint: Override the service endpoint (emulators and tests), or None.
        insecure: Talk plaintext gRPC to ``api_endpoint`` (loopback fakes only).
    """

    kind: str = attrs.field(
        default="local", validator=attrs.validators.in_(("local", "vertex", "automl"))
    )
    project: str | None = None
    location: str = "us-central1"
    budget_milli_node_hours: int = 8_000
    model_type: str = "CLOUD"
    time_limit_s: float | None = None
    api_endpoint: str | None = None
    insecure: bool = False


@attrs.frozen(kw_only=True)
class CompareConfig:
    """The comparison step.

    Attributes:
        enabled: Run it (default True).
        vision: ``"offline"`` (ImageNet labels from the local network, default) or
            ``"cloud"`` (Cloud Vision).
        split: Which images to compare (default ``test``; ``all`` for every image).
    """

    enabled: bool = True
    vision: str = attrs.field(
        default="offline", validator=attrs.validators.in_(("offline", "cloud"))
    )
    split: str = attrs.field(default="test", validator=attrs.validators.in_(("test", "all")))


_SECTIONS: dict[str, type] = {
    "source": SourceConfig,
    "download": DownloadConfig,
    "labels": LabelConfig,
    "split": SplitConfig,
    "writer": WriterConfig,
    "backend": BackendConfig,
    "compare": CompareConfig,
}
_PATH_FIELDS = {
    ("source", "listings"): "many",
    ("source", "dumps"): "many",
    ("source", "images"): "one",
    ("labels", "rules"): "one",
    ("labels", "label_map"): "one",
    ("labels", "csv"): "one",
}


@attrs.frozen(kw_only=True)
class RunConfig:
    """Everything :func:`run` needs; read from TOML with :meth:`from_toml`.

    The TOML file has an ``output`` key and the sections ``[source]``, ``[download]``,
    ``[labels]``, ``[split]``, ``[writer]``, ``[backend]`` and ``[compare]``, whose keys
    are the attributes of the matching classes. Relative paths are relative to the
    config file's folder.

    Attributes:
        output: The run's folder (posts, downloads, dataset, model, report, state).
        name: Display name of the dataset and model (default ``"redditvision"``).
        source: See :class:`SourceConfig`.
        download: See :class:`DownloadConfig`.
        labels: See :class:`LabelConfig`.
        split: See :class:`SplitConfig`.
        writer: See :class:`WriterConfig`.
        backend: See :class:`BackendConfig`.
        compare: See :class:`CompareConfig`.
    """

    output: Path
    name: str = "redditvision"
    source: SourceConfig = SourceConfig()
    download: DownloadConfig = DownloadConfig()
    labels: LabelConfig = LabelConfig()
    split: SplitConfig = SplitConfig()
    writer: WriterConfig = WriterConfig()
    backend: BackendConfig = BackendConfig()
    compare: CompareConfig = CompareConfig()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, base_dir: str | Path = ".") -> RunConfig:
        """Build a config from a TOML-shaped mapping.

        Args:
            data: ``{"output": ..., "source": {...}, ...}``.
            base_dir: Folder that relative paths are relative to.

        Returns:
            The config.

        Raises:
            ConfigError: An unknown section or key, a missing ``output``, or a bad value;
                the message names it.
        """
        base = Path(base_dir)
        unknown = set(data) - {"output", "name", *_SECTIONS}
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(sorted(unknown))}")
        if "output" not in data:
            raise ConfigError("the config needs `output`, the run's folder")
        sections: dict[str, Any] = {}
        for section, section_cls in _SECTIONS.items():
            values = dict(data.get(section) or {})
            known = {field.name for field in attrs.fields(section_cls)}
            bad = set(values) - known
            if bad:
                raise ConfigError(
                    f"unknown keys in [{section}]: {', '.join(sorted(bad))}; "
                    f"known: {', '.join(sorted(known))}"
                )
            for key in list(values):
                shape = _PATH_FIELDS.get((section, key))
                if shape == "many":
                    values[key] = _paths(values[key], base)
                elif shape == "one" and values[key] is not None:
                    values[key] = _path(values[key], base)
            try:
                sections[section] = section_cls(**values)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"bad value in [{section}]: {exc}") from exc
        config = cls(
            output=_path(data["output"], base),
            name=str(data.get("name", "redditvision")),
            **sections,
        )
        config.validate()
        return config

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> RunConfig:
        """Read a config file; ``overrides`` replace sections' fields after reading.

        Args:
            path: The TOML file.
            **overrides: ``section__field=value`` (e.g. ``backend__kind="vertex"``) or
                ``output=...``; paths in overrides are taken as given (relative to the
                current folder).

        Returns:
            The config.

        Raises:
            ConfigError: The file cannot be read or parsed, or a value is bad.
        """
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config {file}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {file} is not valid TOML: {exc}") from exc
        return cls.from_mapping(data, base_dir=file.parent).with_overrides(**overrides)

    def with_overrides(self, **overrides: Any) -> RunConfig:
        """Return a copy with fields replaced: ``output=...`` or ``section__field=value``.

        Args:
            **overrides: The fields; None values are ignored.

        Returns:
            The new config.

        Raises:
            ConfigError: An unknown section or field.
        """
        config = self
        for key, value in overrides.items():
            if value is None or value == ():
                continue
            if "__" not in key:
                config = attrs.evolve(config, **{key: value})
                continue
            section, field = key.split("__", 1)
            if section not in _SECTIONS:
                raise ConfigError(f"unknown config section {section!r}")
            current = getattr(config, section)
            if field not in {f.name for f in attrs.fields(type(current))}:
                raise ConfigError(f"unknown key {field!r} in [{section}]")
            if section == "source" and field in {"subreddit", "listings", "dumps", "images"}:
                # A new source replaces the old one rather than adding a second.
                current = attrs.evolve(current, subreddit=None, listings=(), dumps=(), images=None)
            config = attrs.evolve(config, **{section: attrs.evolve(current, **{field: value})})
        config.validate()
        return config

    def validate(self) -> None:
        """Check the sections fit together.

        Raises:
            ConfigError: No or several sources, a Reddit source without rules or CSV, an
                image folder with rules, a GCS writer without a bucket, a cloud backend
                without a project or with the local writer.
        """
        kind = self.source.kind
        if kind == "images" and self.labels.rules is not None:
            raise ConfigError("rules label Reddit posts; an image folder takes a label_map")
        if kind != "images" and self.labels.rules is None and self.labels.csv is None:
            raise ConfigError(
                "a Reddit source needs [labels] rules (title/flair rules) or csv (hand labels)"
            )
        if self.writer.kind == "gcs" and not self.writer.bucket:
            raise ConfigError("[writer] kind = 'gcs' needs a bucket")
        if self.backend.kind != "local":
            if not self.backend.project:
                raise ConfigError(f"[backend] kind = {self.backend.kind!r} needs a project")
            if self.writer.kind != "gcs":
                raise ConfigError(
                    f"the {self.backend.kind} backend reads images from Cloud Storage: "
                    "set [writer] kind = 'gcs' and a bucket"
                )


@attrs.frozen(kw_only=True)
class StepResult:
    """What one step did.

    Attributes:
        name: One of :data:`STEPS`.
        status: ``"ran"``, ``"reused"`` (finished by an earlier run, nothing redone) or
            ``"skipped"`` (not part of this run, e.g. collect for an image folder).
        seconds: Wall time of the step.
        detail: Counts and paths, JSON-compatible.
    """

    name: str
    status: str
    seconds: float
    detail: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen(kw_only=True)
class RunResult:
    """The outcome of :func:`run`.

    Attributes:
        output: The run's folder.
        steps: One :class:`StepResult` per step, in order.
        dataset: Where the dataset was written.
        model: The trained model.
        evaluation: The model's evaluation.
        report_html: The comparison report page, or None when comparison is disabled.
        comparison: The comparison's aggregate figures, or None.
    """

    output: Path
    steps: tuple[StepResult, ...]
    dataset: DatasetLocation
    model: TrainedModel
    evaluation: Evaluation
    report_html: Path | None
    comparison: Mapping[str, Any] | None = attrs.field(default=None, hash=False)


@attrs.define(kw_only=True)
class RunClients:
    """Collaborators for :func:`run`, built from the environment when left None.

    Attributes:
        reddit: A ``praw.Reddit`` for a subreddit source.
        session: A ``requests.Session`` for downloads.
        storage_client: A ``google.cloud.storage.Client`` for the GCS writer.
        backend: A training backend that is also a prediction backend.
        generic: The generic labeler for the comparison.
    """

    reddit: Any = None
    session: Any = None
    storage_client: Any = None
    backend: Any = None
    generic: Any = None


StepCallback = Callable[[str, str], None]
"""``on_step(step, message)``: called when a step starts and ends (for progress output)."""

ProgressCallback = Callable[[str, int, int | None], None]
"""``on_progress(step, done, total)``: items done in a long step (downloads, uploads,
feature extraction, comparison); ``total`` is None when unknown."""


class _State:
    """``run-state.json``: per step, the fingerprint of its inputs and its outputs."""

    def __init__(self, output: Path) -> None:
        self.path = output / "run-state.json"
        self.data: dict[str, Any] = {}
        if self.path.exists():
            try:
                self.data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self.data = {}

    def done(self, step: str, fingerprint: str) -> Mapping[str, Any] | None:
        entry = self.data.get(step)
        if isinstance(entry, dict) and entry.get("fingerprint") == fingerprint:
            outputs = entry.get("outputs")
            return outputs if isinstance(outputs, dict) else {}
        return None

    def record(self, step: str, fingerprint: str, outputs: Mapping[str, Any]) -> None:
        # Each step's fingerprint includes the outputs of the step before, so a changed
        # step makes every later one rerun without bookkeeping here.
        self.data[step] = {"fingerprint": fingerprint, "outputs": dict(outputs)}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, self.path)


def _fingerprint(*parts: Any) -> str:
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


def _write_atomic(path: Path, lines: Iterator[str]) -> int:
    tmp = path.with_suffix(path.suffix + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")
            count += 1
    os.replace(tmp, path)
    return count


def _posts(config: RunConfig, clients: RunClients) -> Iterator[ImagePost]:
    from redditvision.reddit import (
        DumpFileSource,
        ListingFileSource,
        PostFilters,
        RedditImageSource,
    )

    source = config.source
    filters = PostFilters(include_nsfw=source.include_nsfw, min_score=source.min_score)
    if source.listings:
        yield from ListingFileSource(source.listings, filters=filters).submissions()
    elif source.dumps:
        yield from DumpFileSource(source.dumps, filters=filters).submissions()
    else:
        assert source.subreddit is not None
        reddit_source = (
            RedditImageSource(reddit=clients.reddit, filters=filters)
            if clients.reddit is not None
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


def _label(config: RunConfig, downloads: Path | None) -> LabeledDataset:
    import redditvision as ds
    from redditvision.manifest import ImageManifest

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
        assert downloads is not None
        assert labels.rules is not None
        rules = ds.RuleSet.from_toml(labels.rules)
        with ImageManifest.for_folder(downloads) as manifest:
            labeled, _report = ds.label_records(
                manifest.records(RecordStatus.OK), rules, name=config.name
            )
    split = config.split
    return ds.split_dataset(
        labeled, train=split.train, validation=split.validation, test=split.test, seed=split.seed
    )


def _backend(
    config: RunConfig,
    output: Path,
    clients: RunClients,
    progress: ProgressCallback,
    say: StepCallback,
) -> Any:
    if clients.backend is not None:
        return clients.backend
    backend = config.backend
    state_dir = output / "cloud-state"
    if backend.kind == "local":
        from redditvision.backends.local import LocalBackend

        return LocalBackend(
            model_dir=output / "model",
            progress=lambda done, total: progress("train", done, total),
        )
    if backend.kind == "vertex":
        from redditvision.backends.vertex import VertexAutoMLBackend

        return VertexAutoMLBackend.from_env(
            project=backend.project or "",
            location=backend.location,
            api_endpoint=backend.api_endpoint,
            insecure=backend.insecure,
            state_dir=state_dir,
            model_type=backend.model_type,
            progress=lambda step, message: say("train", f"{step}: {message}"),
        )
    from redditvision.backends.automl import LegacyAutoMLBackend

    return LegacyAutoMLBackend.from_env(
        project=backend.project or "",
        location=backend.location,
        api_endpoint=backend.api_endpoint,
        insecure=backend.insecure,
        state_dir=state_dir,
        progress=lambda step, message: say("train", f"{step}: {message}"),
    )


def _generic(config: RunConfig, clients: RunClients) -> Any:
    if clients.generic is not None:
        return clients.generic
    if config.compare.vision == "cloud":
        from redditvision.labelers import CloudVisionLabeler

        return CloudVisionLabeler.from_env()
    from redditvision.backends.local import ImageNetLabeler

    return ImageNetLabeler()


def _model_to_json(model: TrainedModel) -> dict[str, Any]:
    return {
        "backend": model.backend,
        "resource": model.resource,
        "labels": list(model.labels),
        "label_map": dict(model.label_map),
        "display_name": model.display_name,
        "metadata": dict(model.metadata),
    }


def _model_from_json(data: Mapping[str, Any]) -> TrainedModel:
    return TrainedModel(
        backend=data["backend"],
        resource=data["resource"],
        labels=tuple(data["labels"]),
        label_map=dict(data["label_map"]),
        display_name=data.get("display_name"),
        metadata=dict(data.get("metadata") or {}),
    )


def run(
    config: RunConfig,
    *,
    clients: RunClients | None = None,
    on_step: StepCallback | None = None,
    on_progress: ProgressCallback | None = None,
) -> RunResult:
    """Run the main job; a re-run resumes and redoes nothing finished.

    Args:
        config: What to run.
        clients: Pre-built collaborators (tests, notebooks); None builds them from the
            environment (praw.ini, Application Default Credentials).
        on_step: Called with ``(step, message)`` as steps start and finish.
        on_progress: Called with ``(step, done, total)`` during long steps.

    Returns:
        The steps' results, the dataset location, the model, its evaluation and the report.

    Raises:
        RedditVisionError: A step failed (its subclass says which kind); what finished
            before stays in the output folder for the re-run.
    """
    clients = clients or RunClients()
    output = config.output
    output.mkdir(parents=True, exist_ok=True)
    state = _State(output)
    results: list[StepResult] = []
    say = on_step or (lambda _step, _message: None)
    progress: ProgressCallback = on_progress or (lambda _step, _done, _total: None)

    def step(
        name: str, fingerprint: str, work: Callable[[], Mapping[str, Any]]
    ) -> Mapping[str, Any]:
        started = time.perf_counter()
        outputs = state.done(name, fingerprint)
        if outputs is not None:
            say(name, "reused (finished by an earlier run)")
            results.append(StepResult(name=name, status="reused", seconds=0.0, detail=outputs))
            return outputs
        say(name, "started")
        outputs = work()
        state.record(name, fingerprint, outputs)
        seconds = time.perf_counter() - started
        say(name, f"done in {seconds:.1f} s")
        results.append(StepResult(name=name, status="ran", seconds=seconds, detail=outputs))
        return outputs

    def skip(name: str) -> None:
        results.append(StepResult(name=name, status="skipped", seconds=0.0))

    # 1. collect
    posts_file = output / "posts.jsonl"
    downloads = output / "downloads"
    if config.source.images is None:
        source_fp = _fingerprint(attrs.asdict(config.source))

        def collect() -> Mapping[str, Any]:
            count = _write_atomic(
                posts_file,
                (json.dumps(post_to_json(p), ensure_ascii=False) for p in _posts(config, clients)),
            )
            return {"posts": count, "file": str(posts_file)}

        collected = step("collect", source_fp, collect)

        # 2. download
        def download() -> Mapping[str, Any]:
            from redditvision.download import ImageDownloader

            lines = [line for line in posts_file.read_text(encoding="utf-8").splitlines() if line]
            posts = [post_from_json(json.loads(line)) for line in lines]
            total = sum(len(post.media) for post in posts)
            counts: dict[str, int] = {}
            with ImageDownloader(
                downloads,
                session=clients.session,
                concurrency=config.download.concurrency,
                allow_private_networks=config.download.allow_private_networks,
            ) as downloader:
                for done, record in enumerate(downloader.fetch(posts), start=1):
                    counts[record.status.value] = counts.get(record.status.value, 0) + 1
                    progress("download", done, total)
            return {"records": counts, "folder": str(downloads)}

        download_fp = _fingerprint(collected, attrs.asdict(config.download))
        downloaded = step("download", download_fp, download)
    else:
        skip("collect")
        skip("download")
        downloaded = {
            "images": str(config.source.images),
            "digest": _tree_digest(config.source.images),
        }

    # 3. label and split
    labeled_file = output / "labeled.jsonl"

    def label() -> Mapping[str, Any]:
        import redditvision as ds

        labeled = _label(config, downloads if config.source.images is None else None)
        target = "local" if config.backend.kind == "local" else config.backend.kind
        report = ds.check_dataset(labeled, target=target)
        report.raise_for_errors()
        ds.write_local_dataset(labeled, labeled_file)
        return {
            "images": len(labeled.images),
            "labels": labeled.counts(),
            "warnings": [issue.message for issue in report.warnings],
            "file": str(labeled_file),
        }

    label_fp = _fingerprint(
        downloaded,
        attrs.asdict(config.labels),
        [
            _file_digest(p)
            for p in (config.labels.rules, config.labels.label_map, config.labels.csv)
            if p
        ],
        attrs.asdict(config.split),
    )
    labeled_out = step("label", label_fp, label)

    # 4. write the dataset
    def write() -> Mapping[str, Any]:
        import redditvision as ds
        from redditvision.storage import GcsDatasetWriter, LocalDatasetWriter

        labeled = ds.load_local_dataset(labeled_file)
        if config.writer.kind == "local":
            with LocalDatasetWriter(output / "dataset") as local_writer:
                location = local_writer.write(
                    labeled, progress=lambda done, total: progress("write", done, total)
                ).location
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
                location = gcs_writer.write(
                    labeled,
                    import_format=fmt,
                    progress=lambda done, total: progress("write", done, total),
                ).location
        return {
            "uri": location.uri,
            "import_file_uri": location.import_file_uri,
            "import_format": location.import_format,
            "images": location.images,
            "labels": list(location.labels),
            "label_map": dict(location.label_map),
        }

    written = step("write", _fingerprint(labeled_out, attrs.asdict(config.writer)), write)
    location = DatasetLocation(
        uri=written["uri"],
        import_file_uri=written["import_file_uri"],
        import_format=written["import_format"],
        images=written["images"],
        labels=tuple(written["labels"]),
        label_map=dict(written["label_map"]),
    )

    # 5. train
    import redditvision as ds

    backend = _backend(config, output, clients, progress, say)
    budget = TrainingBudget(
        milli_node_hours=config.backend.budget_milli_node_hours,
        time_limit_s=config.backend.time_limit_s,
    )

    def train() -> Mapping[str, Any]:
        data: LabeledDataset | DatasetLocation
        data = ds.load_local_dataset(labeled_file) if config.backend.kind == "local" else location
        model = backend.train(data, budget=budget, display_name=config.name)
        return {"model": _model_to_json(model)}

    trained = step("train", _fingerprint(written, attrs.asdict(config.backend)), train)
    model = _model_from_json(trained["model"])

    # 6. evaluate
    def evaluate() -> Mapping[str, Any]:
        labeled = ds.load_local_dataset(labeled_file)
        evaluation = backend.evaluate(model, labeled)
        path = output / "evaluation.json"
        data = evaluation_to_json(evaluation)
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")
        return {"evaluation": data, "file": str(path)}

    evaluated = step("evaluate", _fingerprint(trained), evaluate)
    evaluation = evaluation_from_json(evaluated["evaluation"])

    # 7. compare
    report_html: Path | None = None
    comparison: Mapping[str, Any] | None = None
    if config.compare.enabled:

        def compare() -> Mapping[str, Any]:
            from redditvision.classify import Classifier
            from redditvision.compare import VisionComparator
            from redditvision.report import write_report

            labeled = ds.load_local_dataset(labeled_file)
            images = (
                labeled.images
                if config.compare.split == "all"
                else labeled.subset(MLUse.TEST) or labeled.images
            )
            generic = _generic(config, clients)
            compared_so_far = 0

            def advance(count: int) -> None:
                nonlocal compared_so_far
                compared_so_far += count
                progress("compare", compared_so_far, len(images))

            # With a label map, the folder names a class was built from are its aliases,
            # so a generic label such as "BMW Z4" counts as naming the class "z3-4-8".
            aliases: dict[str, set[str]] = {}
            if config.source.images is not None and config.labels.label_map is not None:
                for image in labeled.images:
                    aliases.setdefault(image.original_label, set()).add(image.path.parent.name)

            with Classifier(model, backend=backend) as classifier:
                comparator = VisionComparator(generic=generic, custom=classifier, aliases=aliases)
                report = comparator.compare(
                    [str(image.path) for image in images],
                    truth=[image.original_label for image in images],
                    on_progress=advance,
                )
            files = write_report(report, output / "report", evaluation=evaluation, overwrite=True)
            return {"report_html": str(files.html), "summary": report.summary_dict()}

        compared = step("compare", _fingerprint(evaluated, attrs.asdict(config.compare)), compare)
        report_html = Path(compared["report_html"])
        comparison = compared["summary"]
    else:
        skip("compare")

    return RunResult(
        output=output,
        steps=tuple(results),
        dataset=location,
        model=model,
        evaluation=evaluation,
        report_html=report_html,
        comparison=comparison,
    )


def _tree_digest(root: Path) -> str:
    """A cheap fingerprint of an image folder: names, sizes and modification times."""
    if not root.is_dir():
        raise ConfigError(f"image folder {root} does not exist; pass a folder of label folders")
    entries: list[tuple[str, int, int]] = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            stat = path.stat()
            entries.append((str(path.relative_to(root)), stat.st_size, int(stat.st_mtime)))
    return _fingerprint(entries)


def describe_failure(exc: RedditVisionError) -> str:
    """One line for a failed run: the error and how to resume.

    Args:
        exc: The error.

    Returns:
        The message.
    """
    return f"{exc}. Fix the cause and run the same command again: finished steps are kept."


def step_names() -> Sequence[str]:
    """Return the step names in order (:data:`STEPS`)."""
    return STEPS
