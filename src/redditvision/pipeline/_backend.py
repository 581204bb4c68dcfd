"""The one place the run builds its backend from ``[backend]``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redditvision.pipeline._context import StepContext

__all__ = ["build_run_backend"]


def build_run_backend(ctx: StepContext) -> Any:
    """Build the backend that ``[backend]`` names (or return ``clients.backend``).

    Args:
        ctx: The run's step context; cloud backends keep their resume state in
            ``OUTPUT/cloud-state``, the local backend its model in ``OUTPUT/model``.

    Returns:
        A training backend that is also a prediction backend.
    """
    if ctx.clients.backend is not None:
        return ctx.clients.backend
    backend = ctx.config.backend
    state_dir = ctx.output / "cloud-state"
    if backend.kind == "local":
        from redditvision.backends.local import LocalBackend

        return LocalBackend(
            model_dir=ctx.output / "model",
            progress=lambda done, total: ctx.progress("train", done, total),
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
            progress=lambda step, message: ctx.say("train", f"{step}: {message}"),
        )
    from redditvision.backends.automl import LegacyAutoMLBackend

    return LegacyAutoMLBackend.from_env(
        project=backend.project or "",
        location=backend.location,
        api_endpoint=backend.api_endpoint,
        insecure=backend.insecure,
        state_dir=state_dir,
        progress=lambda step, message: ctx.say("train", f"{step}: {message}"),
    )
