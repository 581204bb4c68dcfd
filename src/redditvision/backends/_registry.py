"""The one registry of backends: names, declared limits and factories.

The command line (``--backend``), :mod:`redditvision.pipeline` (``[backend] kind``),
:mod:`redditvision.beam` and :class:`~redditvision.Classifier` look backends up here and
build them with :func:`build_backend`; none of them switches on a backend's name.

Adding a backend is one module (implementing :class:`~redditvision.backends.Backend` with a
``from_options(options)`` factory and declaring its :class:`TargetLimits`) plus one line::

    register_backend("mine", "my_package.my_backend:MyBackend.from_options", limits=LIMITS)

A factory given as a ``"module:attribute"`` string is imported on first use, so a
registered cloud backend costs nothing until it is built (``import redditvision`` loads no
cloud client).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

from redditvision.backends._protocol import Backend, BackendOptions, ImportFileFormat, TargetLimits
from redditvision.errors import ConfigError

__all__ = [
    "BackendFactory",
    "BackendSpec",
    "backend_names",
    "build_backend",
    "folder_backend",
    "get_backend",
    "import_format",
    "import_format_names",
    "register_backend",
    "unregister_backend",
]

BackendFactory = Callable[[BackendOptions], Backend]
"""Builds a backend from the shared options (e.g. ``VertexAutoMLBackend.from_options``)."""


@attrs.frozen(kw_only=True)
class BackendSpec:
    """One registered backend: what it declares, and how to build it.

    Attributes:
        name: The registry name (``--backend NAME``, ``TrainedModel.backend``).
        factory: The factory, or ``"module:attribute"`` imported on first use.
        limits: What its training accepts (checked by
            :func:`~redditvision.check_dataset` before training).
        import_formats: Dataset import formats it trains from, by name (each with its file
            name and renderer, declared in the backend's module).
        data: What ``train`` reads: ``"dataset"`` (a
            :class:`~redditvision.models.LabeledDataset` on this machine) or ``"location"``
            (a :class:`~redditvision.models.DatasetLocation` written to the cloud).
        model_kind: What a model reference is: ``"folder"`` (a local model folder) or
            ``"resource"`` (a service resource name).
        deploys: Its backends implement :class:`~redditvision.backends.Deployer`.
        needs_options: True when it cannot be built without options (a cloud project):
            :class:`~redditvision.Classifier` then needs the backend passed in.
        summary: One line for ``--help`` and the docs.
    """

    name: str
    factory: BackendFactory | str = attrs.field(repr=False)
    limits: TargetLimits
    import_formats: Mapping[str, ImportFileFormat] = attrs.field(factory=dict)
    data: Literal["dataset", "location"] = "dataset"
    model_kind: Literal["folder", "resource"] = "folder"
    deploys: bool = False
    needs_options: bool = False
    summary: str = ""

    def resolve(self) -> BackendFactory:
        """Return the factory, importing it when it was registered as a string.

        Returns:
            The callable.

        Raises:
            MissingDependencyError: Propagated from the backend's module when its extra is
                not installed.
            ConfigError: The string does not name an attribute of an importable module.
        """
        if not isinstance(self.factory, str):
            return self.factory
        module_name, _, attribute = self.factory.partition(":")
        target: Any = importlib.import_module(module_name)
        try:
            for part in attribute.split("."):
                target = getattr(target, part)
        except AttributeError as exc:
            raise ConfigError(
                f"backend {self.name!r} is registered with factory {self.factory!r}, which "
                f"does not exist"
            ) from exc
        return target  # type: ignore[no-any-return]  # checked by the protocol when built


_lock = threading.RLock()
_registry: dict[str, BackendSpec] = {}
_builtins_loaded = False


def _ensure_builtins() -> None:
    """Register the built-in backends (:mod:`redditvision.backends._builtin`) once."""
    global _builtins_loaded
    with _lock:
        if _builtins_loaded:
            return
        _builtins_loaded = True
        importlib.import_module("redditvision.backends._builtin")


def register_backend(
    name: str,
    factory: BackendFactory | str,
    *,
    limits: TargetLimits,
    import_formats: Mapping[str, ImportFileFormat] | None = None,
    data: Literal["dataset", "location"] = "dataset",
    model_kind: Literal["folder", "resource"] = "folder",
    deploys: bool = False,
    needs_options: bool = False,
    summary: str = "",
    replace: bool = False,
) -> BackendSpec:
    """Register a backend under ``name`` (see :class:`BackendSpec` for the arguments).

    Args:
        name: The registry name: lowercase letters, digits, ``-`` and ``_``.
        factory: ``factory(options) -> Backend``, or ``"module:attribute"``.
        limits: Its training limits (``limits.name`` must be ``name``).
        import_formats: Import formats it reads, by name.
        data: ``"dataset"`` or ``"location"``.
        model_kind: ``"folder"`` or ``"resource"``.
        deploys: It implements :class:`~redditvision.backends.Deployer`.
        needs_options: It cannot be built without options.
        summary: One line of description.
        replace: Replace an existing registration instead of refusing it.

    Returns:
        The registered spec.

    Raises:
        ConfigError: The name is taken (and ``replace`` is False), malformed, or differs
            from ``limits.name``.
    """
    if not name or not all(c.islower() or c.isdigit() or c in "-_" for c in name):
        raise ConfigError(f"a backend name is lowercase letters, digits, - and _; got {name!r}")
    if limits.name != name:
        raise ConfigError(f"backend {name!r} declares limits named {limits.name!r}")
    _ensure_builtins()
    spec = BackendSpec(
        name=name,
        factory=factory,
        limits=limits,
        import_formats=dict(import_formats or {}),
        data=data,
        model_kind=model_kind,
        deploys=deploys,
        needs_options=needs_options,
        summary=summary,
    )
    with _lock:
        if name in _registry and not replace:
            raise ConfigError(f"a backend named {name!r} is registered already")
        _registry[name] = spec
    return spec


def unregister_backend(name: str) -> None:
    """Remove a registration (tests and plugins); a missing name is ignored.

    Args:
        name: The registry name.
    """
    _ensure_builtins()
    with _lock:
        _registry.pop(name, None)


def get_backend(name: str) -> BackendSpec:
    """Return the registration of backend ``name``.

    Args:
        name: A name from :func:`backend_names`.

    Returns:
        Its spec (limits, import formats, factory).

    Raises:
        ConfigError: No backend of that name (the message lists the registered ones).
    """
    _ensure_builtins()
    with _lock:
        spec = _registry.get(name)
    if spec is None:
        raise ConfigError(f"unknown backend {name!r}; choose one of {', '.join(backend_names())}")
    return spec


def backend_names(*, deploys: bool | None = None) -> tuple[str, ...]:
    """Return the registered backend names, in registration order.

    Args:
        deploys: Only those that are (True) or are not (False) deployers; None for all.

    Returns:
        The names (``("local", "vertex", "automl", ...)``).
    """
    _ensure_builtins()
    with _lock:
        specs = list(_registry.values())
    return tuple(s.name for s in specs if deploys is None or s.deploys == deploys)


def import_format(name: str) -> ImportFileFormat:
    """Return the import file format ``name`` from the backend that declares it.

    Args:
        name: A format name, e.g. ``"vertex_csv"``.

    Returns:
        The format (file name and renderer).

    Raises:
        KeyError: No registered backend declares it.
    """
    for backend in backend_names():
        found = get_backend(backend).import_formats.get(name)
        if found is not None:
            return found
    raise KeyError(name)


def import_format_names() -> tuple[str, ...]:
    """Return every registered import format name, backend by backend.

    Returns:
        ``("local_jsonl", "vertex_csv", "vertex_jsonl", "automl_csv", ...)``.
    """
    return tuple(fmt for backend in backend_names() for fmt in get_backend(backend).import_formats)


def folder_backend() -> str:
    """Return the backend of models given as a folder path: the first registered folder one.

    Returns:
        Its name (``"local"`` with the built-in backends).

    Raises:
        ConfigError: No registered backend keeps its models in folders.
    """
    for name in backend_names():
        if get_backend(name).model_kind == "folder":
            return name
    raise ConfigError("no registered backend keeps its models in folders")


def build_backend(name: str, options: BackendOptions | None = None, /, **fields: Any) -> Backend:
    """Build backend ``name`` from the shared options.

    Args:
        name: A registered name.
        options: The options, or None to build them from ``fields``.
        **fields: :class:`BackendOptions` fields (``project=...``, ``state_dir=...``,
            ``on_step=...``), applied on top of ``options``.

    Returns:
        The backend (a context manager; close it when done).

    Raises:
        ConfigError: Unknown backend or option, or options the backend refuses (e.g. no
            project for a cloud backend).
        MissingDependencyError: The backend's extra is not installed.
    """
    spec = get_backend(name)
    try:
        built = attrs.evolve(options or BackendOptions(), **fields)
    except TypeError as exc:
        known = ", ".join(a.name for a in attrs.fields(BackendOptions))
        raise ConfigError(f"unknown backend option ({exc}); the options are {known}") from exc
    return spec.resolve()(built)
