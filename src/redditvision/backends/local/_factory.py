"""Build a :class:`~redditvision.backends.local.LocalBackend` from the shared backend options."""

from __future__ import annotations

from redditvision.backends._protocol import BackendOptions
from redditvision.backends.local._backend import LocalBackend
from redditvision.errors import ConfigError

__all__ = ["from_options"]


def from_options(options: BackendOptions) -> LocalBackend:
    """Build the local backend (the registry's factory of ``"local"``).

    Reads ``model_dir``, ``cache_dir``, ``use_cache``, ``num_threads`` (torch threads of
    the default EfficientNet-Lite0 extractor) and ``on_count``; the cloud options are
    ignored.

    Args:
        options: The shared options.

    Returns:
        The backend.

    Raises:
        ConfigError: ``options.extra`` holds a key the local backend does not take.
        MissingDependencyError: The ``[local]`` extra is not installed.
    """
    extra = dict(options.extra)
    allowed = {"candidates", "extractor", "quality", "time_limit", "backbone", "seed"}
    unknown = sorted(set(extra) - allowed)
    if unknown:
        raise ConfigError(f"the local backend takes no option {', '.join(unknown)}")
    if "extractor" not in extra and options.num_threads is not None:
        from redditvision.backends.local._extractor import EfficientNetLite0Extractor

        extra["extractor"] = EfficientNetLite0Extractor(num_threads=options.num_threads)
    return LocalBackend(
        model_dir=options.model_dir,
        cache_dir=options.cache_dir,
        use_cache=options.use_cache,
        progress=options.on_count,
        **extra,
    )
