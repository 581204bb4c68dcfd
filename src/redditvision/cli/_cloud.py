"""``redditvision deploy`` and ``undeploy``: put a cloud model behind an endpoint and take it down.

Also holds what every cloud command shares: :func:`cloud_options` (``--project``,
``--location``, ``--state-dir`` and the hidden ``--api-endpoint``/``--insecure`` used against
local fakes) and :func:`make_cloud_backend`, which builds the Vertex AI or legacy AutoML
backend from them with a progress callback on standard error. ``train``, ``evaluate`` and
``predict`` reuse both for ``--backend vertex|automl``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from redditvision.cli._common import (
    apply_options,
    backend_option,
    echo_json,
    err_console,
    handle_errors,
    progress,
    trained_model_json,
)
from redditvision.errors import ConfigError
from redditvision.models import DatasetLocation, TrainedModel, TrainingBudget

__all__ = [
    "COMMANDS",
    "DATASET_OR_URI",
    "cloud_backend",
    "cloud_options",
    "cloud_training_options",
    "dataset_location_from_uri",
    "deploy",
    "make_cloud_backend",
    "train_on_cloud",
    "undeploy",
]

F = TypeVar("F", bound=Callable[..., Any])

CLOUD_BACKENDS = ("vertex", "automl")

_backend_option = backend_option(CLOUD_BACKENDS, default="vertex", help_text="The cloud service.")


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
    return apply_options(fn, options)


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
                err_console.print(f"{backend} {step}: {message}", highlight=False, soft_wrap=True)

        with closing(make_cloud_backend(backend, progress_callback=report, **options)) as built:
            yield built


class _DatasetOrURI(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """An existing local path, or a ``gs://`` URI kept as a string (cloud import files)."""

    name = "PATH|gs://URI"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.startswith("gs://"):
            return value
        return click.Path(exists=True, path_type=Path).convert(value, param, ctx)


DATASET_OR_URI = _DatasetOrURI()
"""Click type of ``--dataset``: a local dataset file (``Path``) or a ``gs://`` import file
(``str``) for the cloud backends."""


def dataset_location_from_uri(uri: str, backend: str) -> DatasetLocation:
    """Describe a written cloud dataset by its import file's URI.

    Args:
        uri: ``gs://bucket/prefix/import.csv`` (or ``.jsonl`` for Vertex AI).
        backend: ``"vertex"`` or ``"automl"``.

    Returns:
        The location; its labels are left empty (the service reads them from the file).

    Raises:
        ConfigError: Not a ``gs://`` URI, or a format the backend does not read.
    """
    if not uri.startswith("gs://") or uri.rstrip("/") == "gs:":
        raise ConfigError(f"a cloud dataset is a gs:// import file, got {uri!r}")
    if backend == "automl":
        if not uri.endswith(".csv"):
            raise ConfigError(f"legacy AutoML imports a CSV file, got {uri}")
        import_format = "automl_csv"
    elif uri.endswith(".jsonl"):
        import_format = "vertex_jsonl"
    elif uri.endswith(".csv"):
        import_format = "vertex_csv"
    else:
        raise ConfigError(f"Vertex AI imports a .csv or .jsonl file, got {uri}")
    return DatasetLocation(
        uri=uri.rsplit("/", 1)[0],
        import_file_uri=uri,
        import_format=import_format,
        images=0,
        labels=(),
    )


def cloud_training_options(fn: F) -> F:
    """Add ``--budget``, ``--model-type``, ``--display-name`` and :func:`cloud_options`."""
    options = [
        click.option(
            "--budget",
            type=click.IntRange(min=1),
            default=8_000,
            show_default=True,
            help="Cloud: milli node hours (1,000 = one node hour; Vertex AI CLOUD 8,000-800,000).",
        ),
        click.option(
            "--model-type",
            default="CLOUD",
            show_default=True,
            help="Cloud: CLOUD or MOBILE_TF_LOW_LATENCY_1 / _VERSATILE_1 / _HIGH_ACCURACY_1.",
        ),
        click.option(
            "--display-name",
            default=None,
            help="Cloud: name of the created dataset, pipeline and model.",
        ),
    ]
    return apply_options(cloud_options(fn), options)


def train_on_cloud(
    backend: str,
    dataset: str | None,
    *,
    budget: int,
    model_type: str,
    display_name: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Run ``train --backend vertex|automl``: train from a ``gs://`` import file and print.

    Prints the model resource name on stdout (with ``--json`` one object with the model,
    labels, dataset, pipeline, model type, budget and cost); progress goes to stderr.

    Args:
        backend: ``"vertex"`` or ``"automl"``.
        dataset: The ``gs://`` import file.
        budget: Milli node hours.
        model_type: The model type (Vertex AI or legacy AutoML spelling).
        display_name: Name of the created resources, or None.
        as_json: Print one JSON object.
        **options: The :func:`cloud_options` values.

    Raises:
        ConfigError: No or a non-``gs://`` dataset, or bad budget or model type.
        TrainingError: Training failed (re-running resumes; see the backend docs).
    """
    if not isinstance(dataset, str):
        raise ConfigError(
            f"train --backend {backend} needs --dataset gs://BUCKET/PREFIX/import.csv "
            "(write it with `redditvision upload`)"
        )
    location = dataset_location_from_uri(dataset, backend)
    with cloud_backend(backend, model_type=model_type, **options) as cloud:
        model: TrainedModel = cloud.train(
            location, budget=TrainingBudget(milli_node_hours=budget), display_name=display_name
        )
    meta = dict(model.metadata)
    if as_json:
        echo_json({**trained_model_json(model), "display_name": model.display_name, **meta})
        return
    err_console.print(f"trained {model.resource} ({backend})", highlight=False)
    click.echo(model.resource)


def _model(backend: str, resource: str) -> TrainedModel:
    return TrainedModel(backend=backend, resource=resource)


@click.command()
@_backend_option
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
@_backend_option
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
