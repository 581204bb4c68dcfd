"""``redditvision deploy`` and ``undeploy``: put a cloud model behind an endpoint and take it down.

Also holds what every cloud command shares: :func:`cloud_options` (``--project``,
``--location``, ``--state-dir`` and the hidden ``--api-endpoint``/``--insecure`` used against
local fakes) and :func:`make_cloud_backend`, which builds the Vertex AI or legacy AutoML
backend from them with a progress callback on standard error. ``train``, ``evaluate`` and
``predict`` reuse both for ``--backend vertex|automl``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from redditvision.cli._common import echo_json, err_console, handle_errors, progress
from redditvision.errors import ConfigError
from redditvision.models import TrainedModel

__all__ = ["COMMANDS", "cloud_backend", "cloud_options", "deploy", "make_cloud_backend", "undeploy"]

F = TypeVar("F", bound=Callable[..., Any])

CLOUD_BACKENDS = ("vertex", "automl")


def cloud_options(fn: F) -> F:
    """Add ``--project``, ``--location``, ``--state-dir``, ``--api-endpoint``, ``--insecure``.

    ``--project`` reads ``GOOGLE_CLOUD_PROJECT`` and ``--location`` ``GOOGLE_CLOUD_REGION``
    when not given. ``--api-endpoint`` and ``--insecure`` are hidden: they point the
    clients at a local fake or emulator.
    """
    options = [
        click.option(
            "--project",
            envvar="GOOGLE_CLOUD_PROJECT",
            help="Google Cloud project id [env GOOGLE_CLOUD_PROJECT].",
        ),
        click.option(
            "--location",
            envvar="GOOGLE_CLOUD_REGION",
            default="us-central1",
            show_default=True,
            help="Region of the resources [env GOOGLE_CLOUD_REGION].",
        ),
        click.option(
            "--state-dir",
            type=click.Path(file_okay=False),
            default=None,
            help="Folder of the run state files that let a re-run resume "
            "[default: ./.redditvision/state].",
        ),
        click.option("--api-endpoint", default=None, hidden=True),
        click.option("--insecure", is_flag=True, default=False, hidden=True),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def make_cloud_backend(
    backend: str,
    *,
    project: str | None,
    location: str,
    state_dir: str | None = None,
    api_endpoint: str | None = None,
    insecure: bool = False,
    progress_callback: Callable[[str, str], None] | None = None,
    **kwargs: Any,
) -> Any:
    """Build a cloud backend from the command-line options.

    Args:
        backend: ``"vertex"`` or ``"automl"``.
        project: The project id; required.
        location: The region.
        state_dir: Folder of the run state files, or None for the default.
        api_endpoint: ``host:port`` instead of the service's endpoint (hidden option).
        insecure: Plaintext gRPC to ``api_endpoint`` (hidden option, fakes only).
        progress_callback: ``progress(step, message)`` while waiting.
        **kwargs: Other backend arguments (``model_type``...).

    Returns:
        A ``VertexAutoMLBackend`` or ``LegacyAutoMLBackend``.

    Raises:
        ConfigError: No project, or an unknown backend.
    """
    if not project:
        raise ConfigError("--project is required for a cloud backend (or GOOGLE_CLOUD_PROJECT)")
    common: dict[str, Any] = {
        "api_endpoint": api_endpoint,
        "insecure": insecure,
        "state_dir": state_dir,
        "progress": progress_callback,
        **kwargs,
    }
    if backend == "vertex":
        from redditvision.backends.vertex import VertexAutoMLBackend

        return VertexAutoMLBackend.from_env(project, location, **common)
    if backend == "automl":
        from redditvision.backends.automl import LegacyAutoMLBackend

        return LegacyAutoMLBackend.from_env(project, location, **common)
    raise ConfigError(f"unknown cloud backend {backend!r}; use vertex or automl")


@contextmanager
def cloud_backend(backend: str, **options: Any) -> Iterator[Any]:
    """Open a cloud backend with a spinner on standard error showing what it waits for.

    Args:
        backend: ``"vertex"`` or ``"automl"``.
        **options: The :func:`cloud_options` values and other backend arguments.

    Yields:
        The backend; closed afterwards.
    """
    with progress() as display:
        task = display.add_task(f"{backend}: starting", total=None)

        def report(step: str, message: str) -> None:
            display.update(task, description=f"{backend} {step}: {message}")
            if not err_console.is_terminal:
                err_console.print(f"{backend} {step}: {message}", highlight=False)

        built = make_cloud_backend(backend, progress_callback=report, **options)
        try:
            yield built
        finally:
            built.close()


def _model(backend: str, resource: str) -> TrainedModel:
    return TrainedModel(backend=backend, resource=resource)


@click.command()
@click.option(
    "--backend",
    type=click.Choice(CLOUD_BACKENDS),
    default="vertex",
    show_default=True,
    help="The cloud service.",
)
@click.option("--model", "model", required=True, help="Model resource name to deploy.")
@click.option(
    "--min-replicas",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Vertex AI: replicas always up (each billed per node hour).",
)
@click.option(
    "--max-replicas",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Vertex AI: autoscaling upper bound.",
)
@click.option(
    "--node-count",
    type=click.IntRange(min=1),
    default=None,
    help="Legacy AutoML: nodes to deploy on [default: the backend's].",
)
@cloud_options
@handle_errors
def deploy(
    backend: str,
    model: str,
    min_replicas: int,
    max_replicas: int,
    node_count: int | None,
    **options: Any,
) -> None:
    """Deploy a trained cloud model so that `predict` can use it.

    Vertex AI: creates an endpoint and deploys the model with automatic resources; prints
    {"backend", "model", "endpoint", "deployed_model_id"} as JSON. Running it again resumes
    or returns the same deployment (the state file records it). Legacy AutoML: deploys the
    model in place. A deployed model is billed per node hour until `undeploy`.
    """
    if max_replicas < min_replicas:
        raise ConfigError(f"--max-replicas {max_replicas} is below --min-replicas {min_replicas}")
    with cloud_backend(backend, **options) as cloud:
        if backend == "vertex":
            deployment = cloud.deploy(
                model, min_replica_count=min_replicas, max_replica_count=max_replicas
            )
            result: dict[str, Any] = {
                "backend": backend,
                "model": deployment.model,
                "endpoint": deployment.endpoint,
                "deployed_model_id": deployment.deployed_model_id,
            }
        else:
            deployed = cloud.deploy(_model(backend, model), node_count=node_count)
            result = {"backend": backend, "model": model, "deployed": bool(deployed)}
    echo_json(result)


@click.command()
@click.option(
    "--backend",
    type=click.Choice(CLOUD_BACKENDS),
    default="vertex",
    show_default=True,
    help="The cloud service.",
)
@click.option("--endpoint", default=None, help="Vertex AI: endpoint resource name.")
@click.option(
    "--deployed-model-id",
    default=None,
    help="Vertex AI: the deployed model to take down [default: every one on the endpoint].",
)
@click.option(
    "--delete-endpoint/--keep-endpoint",
    default=None,
    help="Vertex AI: delete the emptied endpoint [default: when `deploy` created it].",
)
@click.option("--model", "model", default=None, help="Legacy AutoML: model resource name.")
@cloud_options
@handle_errors
def undeploy(
    backend: str,
    endpoint: str | None,
    deployed_model_id: str | None,
    delete_endpoint: bool | None,
    model: str | None,
    **options: Any,
) -> None:
    """Undeploy a cloud model so that it stops being billed.

    Vertex AI: --endpoint (and optionally --deployed-model-id); prints the undeployed
    models and whether the endpoint was deleted. Legacy AutoML: --model.
    """
    with cloud_backend(backend, **options) as cloud:
        if backend == "vertex":
            if not endpoint:
                raise ConfigError("undeploy --backend vertex needs --endpoint RESOURCE")
            undeployed, deleted = cloud.undeploy_endpoint(
                endpoint, deployed_model_id=deployed_model_id, delete_endpoint=delete_endpoint
            )
            result: dict[str, Any] = {
                "backend": backend,
                "endpoint": endpoint,
                "undeployed": [d.deployed_model_id for d in undeployed],
                "endpoint_deleted": deleted,
            }
        else:
            if not model:
                raise ConfigError("undeploy --backend automl needs --model RESOURCE")
            cloud.undeploy(_model(backend, model))
            result = {"backend": backend, "model": model, "undeployed": True}
    echo_json(result)


COMMANDS: list[click.Command] = [deploy, undeploy]
