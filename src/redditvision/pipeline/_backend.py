"""The one place the run builds its backend from ``[backend]``, through the registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redditvision.pipeline._context import StepContext

__all__ = ["build_run_backend"]


def build_run_backend(ctx: StepContext) -> Any:
    """Build the backend that ``[backend]`` names (or return ``clients.backend``).

    The backend comes from :func:`redditvision.backends.build_backend`, so a backend
    registered with :func:`~redditvision.backends.register_backend` runs here unchanged.

    Args:
        ctx: The run's step context; cloud backends keep their resume state in
            ``OUTPUT/cloud-state``, the local backend its model in ``OUTPUT/model``.

    Returns:
        A training backend that is also a prediction backend.

    Raises:
        ConfigError: Unknown backend or options it refuses (e.g. no project).
        MissingDependencyError: The backend's extra is not installed.
    """
    if ctx.clients.backend is not None:
        return ctx.clients.backend
    from redditvision.backends import build_backend

    backend = ctx.config.backend
    fields: dict[str, Any] = {
        "project": backend.project,
        "api_endpoint": backend.api_endpoint,
        "insecure": backend.insecure,
        "model_type": backend.model_type,
        "state_dir": ctx.output / "cloud-state",
        "model_dir": ctx.output / "model",
        "on_count": lambda done, total: ctx.progress("train", done, total),
        "on_step": lambda step, message: ctx.say("train", f"{step}: {message}"),
    }
    if backend.quality is not None:
        fields["extra"] = {"quality": backend.quality}
    if backend.location:
        fields["location"] = backend.location
    return build_backend(backend.kind, **fields)
