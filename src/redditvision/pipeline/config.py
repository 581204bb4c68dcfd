"""The run config schema: :class:`RunConfig`, its sections, TOML loading and overrides.

A run config is a TOML file with an ``output`` key and the sections ``[source]``,
``[download]``, ``[labels]``, ``[split]``, ``[audit]``, ``[writer]``, ``[backend]``,
``[compare]`` and ``[model]``;
each section's keys are the attributes of the matching ``*Config`` class below.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from redditvision.errors import ConfigError

__all__ = [
    "AuditConfig",
    "BackendConfig",
    "CompareConfig",
    "DownloadConfig",
    "LabelConfig",
    "RunConfig",
    "SourceConfig",
    "SplitConfig",
    "WriterConfig",
]


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
        name: The source's name in counts, provenance and reports (default: ``r/NAME``,
            the first listing's or dump's file stem, or the image folder's name; made
            unique with ``-2``, ``-3`` ... when two sources would share one).
        rules: This source's title/flair rules file (Reddit sources), or None.
        label_map: This source's folder label map (image folders), or None.
        csv: This source's hand labels, a CSV of ``path,label`` rows, or None.

    A source that sets none of ``rules``, ``label_map`` and ``csv`` is labeled by the
    ``[labels]`` section.
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
    name: str | None = None
    rules: Path | None = None
    label_map: Path | None = None
    csv: Path | None = None

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

    @property
    def is_reddit(self) -> bool:
        """True for submissions (subreddit, listings, dumps), False for an image folder."""
        return self.kind != "images"

    def default_name(self) -> str:
        """The name used when :attr:`name` is None (see the class docstring)."""
        if self.name:
            return self.name
        kind = self.kind
        if kind == "subreddit":
            return f"r/{self.subreddit}"
        if kind == "images":
            assert self.images is not None
            return self.images.name or "images"
        files = self.listings if kind == "listings" else self.dumps
        return files[0].name.split(".")[0] or kind

    def own_labels(self) -> LabelConfig | None:
        """This source's labeler, or None when it sets none (``[labels]`` applies)."""
        if self.rules is None and self.label_map is None and self.csv is None:
            return None
        return LabelConfig(rules=self.rules, label_map=self.label_map, csv=self.csv)


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


def _registered_backend(_instance: object, _attribute: object, value: str) -> None:
    from redditvision.backends import backend_names

    names = backend_names()
    if value not in names:
        raise ConfigError(
            f"[backend] kind = {value!r} is not a backend; choose from {', '.join(names)}"
        )


@attrs.frozen(kw_only=True)
class BackendConfig:
    """Which backend trains the model.

    Attributes:
        kind: ``"local"`` (default), ``"vertex"`` or ``"automl"``.
        project: Google Cloud project for the cloud backends.
        location: Region (default ``us-central1``).
        budget_milli_node_hours: Cloud budget (default 8,000, the Vertex AI CLOUD minimum).
        model_type: Vertex AI model type (default ``CLOUD``).
        time_limit_s: Local training time limit in seconds, or None.
        quality: Local backend preset (``fast``, ``medium``, ``high``, ``best``), or None
            for the backend's default (``medium``, or ``$REDDITVISION_QUALITY``).
        api_endpoint: Override the service endpoint (emulators and tests), or None.
        insecure: Talk plaintext gRPC to ``api_endpoint`` (loopback fakes only).
    """

    kind: str = attrs.field(default="local", validator=_registered_backend)
    project: str | None = None
    location: str = "us-central1"
    budget_milli_node_hours: int = 8_000
    quality: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(
            attrs.validators.in_(("fast", "medium", "high", "best"))
        ),
    )
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


def _issue_kinds(
    _instance: object, attribute: attrs.Attribute[Any], value: tuple[str, ...]
) -> None:
    from redditvision.audit._types import ISSUE_KINDS

    unknown = sorted(set(value) - set(ISSUE_KINDS))
    if unknown:
        raise ValueError(
            f"{attribute.name}: unknown audit issue(s) {', '.join(unknown)}; "
            f"choose from {', '.join(ISSUE_KINDS)}"
        )


@attrs.frozen(kw_only=True)
class AuditConfig:
    """The audit step, between labeling and writing the dataset (see :mod:`redditvision.audit`).

    By default it reports and changes nothing: ``OUTPUT/audit/audit.html`` ranks the
    images to review, and the run's report links it. It never blocks the run unless
    ``fail_on`` asks.

    Attributes:
        enabled: Run the audit (default True). It needs the ``[local]`` extra (torch for
            the embeddings, cleanlab); without it, and with nothing asked of it
            (``exclude``, ``relabel``, ``fail_on``), the step says so and the run goes on.
        exclude: Issue kinds whose images the later steps leave out (e.g.
            ``["off_domain", "duplicate"]``; see
            :data:`~redditvision.audit.ISSUE_KINDS`). Default none.
        relabel: Give images flagged as confident label errors their suggested label
            (default False).
        fail_on: Issue kinds that stop the run (:class:`~redditvision.errors.DatasetError`)
            when the audit finds any, e.g. ``["split_leak"]``. Default none.
        seed: Seed of the audit's cross-validation (default 0).
    """

    enabled: bool = True
    exclude: tuple[str, ...] = attrs.field(default=(), converter=tuple, validator=_issue_kinds)
    relabel: bool = False
    fail_on: tuple[str, ...] = attrs.field(default=(), converter=tuple, validator=_issue_kinds)
    seed: int = 0

    @property
    def changes_data(self) -> bool:
        """Whether the audit changes what the later steps train on (exclude or relabel)."""
        return bool(self.exclude) or self.relabel

    @property
    def asked(self) -> bool:
        """Whether the run depends on the audit (exclude, relabel or fail_on set)."""
        return self.changes_data or bool(self.fail_on)


@attrs.frozen(kw_only=True)
class ModelConfig:
    """An existing model: with ``path`` set the run classifies new posts instead of training.

    Attributes:
        path: A local model folder (what ``redditvision train --out`` wrote), or None to
            train one (default).
        low_confidence: Predictions whose top score is under this go to the summary's
            low-confidence bucket (default 0.5), in ``[0, 1]``.
    """

    path: Path | None = None
    low_confidence: float = attrs.field(
        default=0.5, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)]
    )


_SECTIONS: dict[str, type] = {
    "source": SourceConfig,
    "download": DownloadConfig,
    "labels": LabelConfig,
    "split": SplitConfig,
    "writer": WriterConfig,
    "backend": BackendConfig,
    "compare": CompareConfig,
    "audit": AuditConfig,
    "model": ModelConfig,
}
_PATH_FIELDS = {
    ("source", "listings"): "many",
    ("source", "dumps"): "many",
    ("source", "images"): "one",
    ("source", "rules"): "one",
    ("source", "label_map"): "one",
    ("source", "csv"): "one",
    ("labels", "rules"): "one",
    ("labels", "label_map"): "one",
    ("labels", "csv"): "one",
    ("model", "path"): "one",
}


_SOURCE_KINDS = ("subreddit", "listings", "dumps", "images")


def _source(values: Mapping[str, Any], base: Path, where: str) -> SourceConfig:
    known = {field.name for field in attrs.fields(SourceConfig)}
    bad = set(values) - known
    if bad:
        raise ConfigError(
            f"unknown keys in {where}: {', '.join(sorted(bad))}; known: {', '.join(sorted(known))}"
        )
    source: SourceConfig = _section(SourceConfig, "source", dict(values), base, where)
    return source


def _section(cls: type, section: str, values: dict[str, Any], base: Path, where: str) -> Any:
    for key in list(values):
        shape = _PATH_FIELDS.get((section, key))
        if shape == "many":
            values[key] = _paths(values[key], base)
        elif shape == "one" and values[key] is not None:
            values[key] = _path(values[key], base)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad value in {where}: {exc}") from exc


@attrs.frozen(kw_only=True)
class RunConfig:
    """Everything :func:`run` needs; read from TOML with :meth:`from_toml`.

    The TOML file has an ``output`` key, one ``[source]`` table or several
    ``[[source]]`` tables (any mix of subreddits, listings, dumps and image folders, each
    optionally with its own labeler), and the sections ``[download]``, ``[labels]``,
    ``[split]``, ``[audit]``, ``[writer]``, ``[backend]``, ``[compare]`` and ``[model]``,
    whose keys are the attributes of the matching classes. Relative paths are relative to
    the config file's folder.

    Attributes:
        output: The run's folder (posts, downloads, dataset, model, report, state).
        name: Display name of the dataset and model (default ``"redditvision"``).
        sources: The sources, in order (see :class:`SourceConfig`); an image found in
            several is kept from the first. Names are unique (defaults made unique).
        download: See :class:`DownloadConfig`.
        labels: The labeler of every source that names none of its own (see
            :class:`LabelConfig`).
        split: See :class:`SplitConfig`.
        writer: See :class:`WriterConfig`.
        backend: See :class:`BackendConfig`.
        compare: See :class:`CompareConfig`.
        audit: See :class:`AuditConfig`: the data audit after labeling (on by default,
            reporting only).
        model: See :class:`ModelConfig`: an existing model makes the run classify the
            sources' new posts (collect, download, classify) instead of training.
    """

    output: Path
    name: str = "redditvision"
    sources: tuple[SourceConfig, ...] = ()
    download: DownloadConfig = DownloadConfig()
    labels: LabelConfig = LabelConfig()
    split: SplitConfig = SplitConfig()
    writer: WriterConfig = WriterConfig()
    backend: BackendConfig = BackendConfig()
    compare: CompareConfig = CompareConfig()
    audit: AuditConfig = AuditConfig()
    model: ModelConfig = ModelConfig()

    @property
    def source(self) -> SourceConfig:
        """The only source (an empty :class:`SourceConfig` when none is set yet).

        Raises:
            ConfigError: The config has several sources (use :attr:`sources`).
        """
        if not self.sources:
            return SourceConfig()
        if len(self.sources) > 1:
            raise ConfigError(
                f"this config has {len(self.sources)} sources; read RunConfig.sources"
            )
        return self.sources[0]

    def source_names(self) -> tuple[str, ...]:
        """Each source's name, in order: its ``name``, else a default made unique."""
        names: list[str] = []
        for source in self.sources:
            base = source.default_name()
            name, number = base, 1
            while name in names:
                number += 1
                name = f"{base}-{number}"
            names.append(name)
        return tuple(names)

    def labels_for(self, source: SourceConfig) -> LabelConfig:
        """The labeler of ``source``: its own rules/label_map/csv, else ``[labels]``.

        From ``[labels]``, a Reddit source takes ``rules`` and ``csv``, an image folder
        ``label_map`` and ``csv`` (so one ``[labels]`` can serve a mix).
        """
        own = source.own_labels()
        if own is not None:
            return own
        if source.is_reddit:
            return attrs.evolve(self.labels, label_map=None)
        return attrs.evolve(self.labels, rules=None)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, base_dir: str | Path = ".") -> RunConfig:
        """Build a config from a TOML-shaped mapping.

        Args:
            data: ``{"output": ..., "source": {...} or [{...}, ...], ...}``.
            base_dir: Folder that relative paths are relative to.

        Returns:
            The config.

        Raises:
            ConfigError: An unknown section or key, a missing ``output``, or a bad value;
                the message names it (``[[source]] #2`` for the second source table).
        """
        base = Path(base_dir)
        unknown = set(data) - {"output", "name", *_SECTIONS}
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(sorted(unknown))}")
        if "output" not in data:
            raise ConfigError("the config needs `output`, the run's folder")
        raw_sources = data.get("source") or {}
        sources: tuple[SourceConfig, ...]
        if isinstance(raw_sources, Mapping):
            sources = (_source(raw_sources, base, "[source]"),) if raw_sources else ()
        elif isinstance(raw_sources, list) and all(isinstance(t, Mapping) for t in raw_sources):
            sources = tuple(
                _source(table, base, f"[[source]] #{number}")
                for number, table in enumerate(raw_sources, start=1)
            )
        else:
            raise ConfigError("`source` must be a [source] table or [[source]] tables")
        sections: dict[str, Any] = {}
        for section, section_cls in _SECTIONS.items():
            if section == "source":
                continue
            values = dict(data.get(section) or {})
            known = {field.name for field in attrs.fields(section_cls)}
            bad = set(values) - known
            if bad:
                raise ConfigError(
                    f"unknown keys in [{section}]: {', '.join(sorted(bad))}; "
                    f"known: {', '.join(sorted(known))}"
                )
            sections[section] = _section(section_cls, section, values, base, f"[{section}]")
        config = cls(
            output=_path(data["output"], base),
            name=str(data.get("name", "redditvision")),
            sources=sources,
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

        ``source__subreddit``, ``source__listings``, ``source__dumps`` and
        ``source__images`` replace every source with one new source; other ``source__``
        fields change the only source.

        Args:
            **overrides: The fields; None values and empty tuples are ignored.

        Returns:
            The new config.

        Raises:
            ConfigError: An unknown section or field, or a ``source__`` field other than
                the four above on a config with several sources.
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
            if section == "source":
                if field not in {f.name for f in attrs.fields(SourceConfig)}:
                    raise ConfigError(f"unknown key {field!r} in [source]")
                if field in _SOURCE_KINDS:
                    # A new source replaces the old ones rather than adding another.
                    kept = config.sources[0] if len(config.sources) == 1 else SourceConfig()
                    current = attrs.evolve(
                        kept, subreddit=None, listings=(), dumps=(), images=None, name=None
                    )
                elif len(config.sources) > 1:
                    raise ConfigError(
                        f"{field!r} cannot be overridden on a config with "
                        f"{len(config.sources)} [[source]] tables: set it in the table"
                    )
                else:
                    current = config.source
                config = attrs.evolve(config, sources=(attrs.evolve(current, **{field: value}),))
                continue
            current = getattr(config, section)
            if field not in {f.name for f in attrs.fields(type(current))}:
                raise ConfigError(f"unknown key {field!r} in [{section}]")
            config = attrs.evolve(config, **{section: attrs.evolve(current, **{field: value})})
        config.validate()
        return config

    def validate(self) -> None:
        """Check the sections fit together.

        Raises:
            ConfigError: No source, a source with none or several of subreddit/listings/
                dumps/images, a Reddit source without rules or CSV, an image folder with
                rules, two sources with one explicit name, a GCS writer without a bucket,
                a cloud backend without a project or with the local writer.
        """
        if not self.sources:
            raise ConfigError(
                "[source] needs exactly one of subreddit, listings, dumps or images; got none"
            )
        explicit = [source.name for source in self.sources if source.name]
        for name in {n for n in explicit if explicit.count(n) > 1}:
            raise ConfigError(f"two sources are named {name!r}; give each its own name")
        several = len(self.sources) > 1
        for number, source in enumerate(self.sources, start=1):
            try:
                kind = source.kind
            except ConfigError as exc:
                table = f"[[source]] #{number}" if several else "[source]"
                raise ConfigError(str(exc).replace("[source]", table)) from None
            where = f"[[source]] #{number} ({source.default_name()})" if several else "[source]"
            own = source.own_labels() is not None
            labels = self.labels_for(source) if own or several else self.labels
            if kind == "images" and labels.rules is not None:
                raise ConfigError(
                    f"{where}: rules label Reddit posts; an image folder takes a label_map"
                )
            classifying = self.model.path is not None
            if not classifying and kind != "images" and labels.rules is None and labels.csv is None:
                raise ConfigError(
                    f"{where}: a Reddit source needs rules (title/flair rules) or csv (hand "
                    + ("labels) in its table" if own else "labels) in [labels] or its table")
                )
        if self.model.path is not None:
            # Classifying: Reddit sources only; no labels, writer or training backend.
            folders = [s.default_name() for s in self.sources if s.kind == "images"]
            if folders:
                raise ConfigError(
                    f"[model] path classifies new Reddit posts; source {folders[0]!r} is an "
                    "image folder: use `redditvision predict --model DIR IMAGE...` for files"
                )
            if not self.model.path.is_dir():
                raise ConfigError(
                    f"[model] path {self.model.path} is not a model folder; train one with "
                    "`redditvision train --out DIR` or `redditvision run`"
                )
            return
        if self.writer.kind == "gcs" and not self.writer.bucket:
            raise ConfigError("[writer] kind = 'gcs' needs a bucket")
        from redditvision.backends import get_backend

        spec = get_backend(self.backend.kind)
        if spec.data == "location":
            if spec.needs_options and not self.backend.project:
                raise ConfigError(f"[backend] kind = {self.backend.kind!r} needs a project")
            if self.writer.kind != "gcs":
                raise ConfigError(
                    f"the {self.backend.kind} backend reads images from Cloud Storage: "
                    "set [writer] kind = 'gcs' and a bucket"
                )
