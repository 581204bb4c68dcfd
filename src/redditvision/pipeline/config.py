"""The run config schema: :class:`RunConfig`, its sections, TOML loading and overrides.

A run config is a TOML file with an ``output`` key and the sections ``[source]``,
``[download]``, ``[labels]``, ``[split]``, ``[writer]``, ``[backend]`` and ``[compare]``;
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
