"""``redditvision deploy`` and ``undeploy``: put a cloud model behind an endpoint and take it down.

Also holds what every cloud command shares: :func:`cloud_options` (``--project``,
``--location``, ``--state-dir`` and the hidden ``--api-endpoint``/``--insecure`` used against
local fakes) and :func:`make_cloud_backend`, which builds a registered backend
(:func:`redditvision.backends.build_backend`) from them with a progress callback on standard
error. ``train``, ``evaluate`` and ``predict`` reuse both for backends that train from a
written dataset. ``deploy`` and ``undeploy`` offer every registered
:class:`~redditvision.backends.Deployer`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from redditvision.backends import Backend, Deployer, build_backend, get_backend
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
from redditvision.models import DatasetLocation, TrainingBudget

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

_backend_option = backend_option(deploys=True, help_text="The cloud service.")


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
    model_type: str | None = None,
) -> Backend:
    """Build a registered backend from the cloud command-line options.

    Args:
        backend: A registered backend name (``--backend``).
        project: The project id (``--project``); required by the cloud backends.
        location: The region.
        state_dir: Folder of the run state files, or None for the default.
        api_endpoint: ``host:port`` instead of the service's endpoint (hidden option).
        insecure: Plaintext gRPC to ``api_endpoint`` (hidden option, fakes only).
        progress_callback: ``progress(step, message)`` while waiting.
        model_type: ``--model-type``, or None for the backend's default.

    Returns:
        The backend.

    Raises:
        ConfigError: No project for a backend that needs one, or an unknown backend.
    """
    if not project and get_backend(backend).needs_options:
        raise ConfigError("--project is required for a cloud backend (or GOOGLE_CLOUD_PROJECT)")
    return build_backend(
        backend,
        project=project,
        location=location,
        state_dir=state_dir,
        api_endpoint=api_endpoint,
        insecure=insecure,
        on_step=progress_callback,
        model_type=model_type,
    )


@contextmanager
def cloud_backend(backend: str, **options: Any) -> Iterator[Backend]:
    """Open a cloud backend with a spinner on standard error showing what it waits for.

    Args:
        backend: A registered backend name.
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

    The import format is the one of the backend's declared formats
    (:attr:`~redditvision.backends.BackendSpec.import_formats`) whose file suffix the URI
    has (Vertex AI: ``.csv`` or ``.jsonl``; legacy AutoML: ``.csv``).

    Args:
        uri: ``gs://bucket/prefix/import.csv`` (or ``.jsonl`` for Vertex AI).
        backend: A registered backend name.

    Returns:
        The location; its labels are left empty (the service reads them from the file).

    Raises:
        ConfigError: Not a ``gs://`` URI, or a format the backend does not read.
    """
    if not uri.startswith("gs://") or uri.rstrip("/") == "gs:":
        raise ConfigError(f"a cloud dataset is a gs:// import file, got {uri!r}")
    spec = get_backend(backend)
    formats = [fmt for fmt, kind in spec.import_formats.items() if uri.endswith(kind.suffix)]
    if not formats:
        suffixes = " or ".join(sorted({kind.suffix for kind in spec.import_formats.values()}))
        raise ConfigError(
            f"the {spec.summary or backend} backend imports a {suffixes} file, got {uri}"
        )
    return DatasetLocation(
        uri=uri.rsplit("/", 1)[0],
        import_file_uri=uri,
        import_format=formats[0],
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
    """Run ``train`` on a backend that trains from a ``gs://`` import file, and print.

    Prints the model resource name on stdout (with ``--json`` one object with the model,
    labels, dataset, pipeline, model type, budget and cost); progress goes to stderr.

    Args:
        backend: A registered backend name.
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
        model = cloud.train(
            location, budget=TrainingBudget(milli_node_hours=budget), display_name=display_name
        )
    meta = dict(model.metadata)
    if as_json:
        echo_json({**trained_model_json(model), "display_name": model.display_name, **meta})
        return
    err_console.print(f"trained {model.resource} ({backend})", highlight=False)
    click.echo(model.resource)


def _deployer(backend: str, built: Backend) -> Deployer:
    if not isinstance(built, Deployer):
        raise ConfigError(f"the {backend} backend has nothing to deploy")
    return built


@click.command()
@_backend_option
@click.option("--model", "model", required=True, help="Model resource name to deploy.")
@click.option(
    "--min-replicas",
    "--node-count",
    "min_replicas",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Replicas always up, each billed per node hour (legacy AutoML: nodes).",
)
@click.option(
    "--max-replicas",
    type=click.IntRange(min=1),
    default=None,
    help="Autoscaling upper bound (Vertex AI) [default: --min-replicas].",
)
@cloud_options
@handle_errors
def deploy(
    backend: str,
    model: str,
    min_replicas: int,
    max_replicas: int | None,
    **options: Any,
) -> None:
    """Deploy a trained cloud model so that `predict` can use it.

    Vertex AI creates an endpoint and deploys the model with automatic resources; legacy
    AutoML deploys the model in place. Prints {"backend", "model", "endpoint",
    "deployed_model_id", "deployed"} as JSON (deployed: false when it was deployed
    already). Running it again resumes or returns the same deployment (the state file
    records it). A deployed model is billed per node hour until `undeploy`.
    """
    if max_replicas is not None and max_replicas < min_replicas:
        raise ConfigError(f"--max-replicas {max_replicas} is below --min-replicas {min_replicas}")
    with cloud_backend(backend, **options) as cloud:
        deployment = _deployer(backend, cloud).deploy(
            model, min_replicas=min_replicas, max_replicas=max_replicas
        )
    echo_json(deployment.to_json())


@click.command()
@_backend_option
@click.option(
    "--endpoint",
    "--model",
    "target",
    default=None,
    help="What to take down: the endpoint (Vertex AI) or model (legacy AutoML) resource name.",
)
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
@cloud_options
@handle_errors
def undeploy(
    backend: str,
    target: str | None,
    deployed_model_id: str | None,
    delete_endpoint: bool | None,
    **options: Any,
) -> None:
    """Undeploy a cloud model so that it stops being billed.

    Vertex AI: --endpoint (and optionally --deployed-model-id); legacy AutoML: --model.
    Prints {"backend", "target", "undeployed": [...], "endpoint_deleted"} as JSON.
    """
    if not target:
        raise ConfigError(
            f"undeploy --backend {backend} needs --endpoint RESOURCE (Vertex AI) or --model "
            "RESOURCE (legacy AutoML)"
        )
    with cloud_backend(backend, **options) as cloud:
        result = _deployer(backend, cloud).undeploy_target(
            target, deployed_model_id=deployed_model_id, delete_endpoint=delete_endpoint
        )
    echo_json(result.to_json())


COMMANDS: list[click.Command] = [deploy, undeploy]
