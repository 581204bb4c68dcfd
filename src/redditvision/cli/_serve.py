"""``redditvision serve``: a local model folder over HTTP in Vertex AI's prediction shapes."""

from __future__ import annotations

import os
from pathlib import Path

import click

from redditvision.cli._common import err_console, handle_errors
from redditvision.errors import ConfigError

__all__ = ["COMMANDS", "serve"]


@click.command(
    "serve",
    epilog="Example: redditvision serve --model models/bmw --port 8080; then POST "
    '{"instances": [{"content": "<base64>"}]} to http://127.0.0.1:8080/predict',
)
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The local model folder (from `redditvision train`).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0: any free one).",
)
@click.option(
    "--api-key-env",
    metavar="VAR",
    help="Environment variable holding the API key requests must send (x-goog-api-key or "
    "Authorization: Bearer); required to bind anything but loopback.",
)
@click.option(
    "--max-instances",
    default=64,
    show_default=True,
    type=click.IntRange(1),
    help="Instances per request.",
)
@click.option(
    "--max-batch-size",
    default=32,
    show_default=True,
    type=click.IntRange(1),
    help="Images per forward pass across concurrent requests.",
)
@click.option(
    "--max-wait-ms",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Milliseconds a request waits for others to share its forward pass.",
)
@click.option(
    "--workers",
    default=0,
    show_default="one per core, at most 4",
    type=click.IntRange(0),
    help="Batches predicted at once, each on its own thread with cores/workers torch "
    "threads (0: one per core, at most 4).",
)
@click.option(
    "--request-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Seconds a request may take before 504 DEADLINE_EXCEEDED.",
)
@handle_errors
def serve(
    model_dir: Path,
    host: str,
    port: int,
    api_key_env: str | None,
    max_instances: int,
    max_batch_size: int,
    max_wait_ms: float,
    workers: int,
    request_timeout: float,
) -> None:
    """Serve a model folder over HTTP, speaking Vertex AI's online prediction shapes.

    POST /v1/projects/P/locations/L/endpoints/E:predict (any P, L, E) or POST /predict;
    GET /health, /metadata and /docs. Binds 127.0.0.1 unless --host says otherwise, which
    needs --api-key-env. SIGTERM or Ctrl-C stops it gracefully: requests in flight finish.
    """
    from redditvision.backends.local import (
        EfficientNetLite0Extractor,
        LocalBackend,
        default_num_threads,
    )
    from redditvision.classify import Classifier
    from redditvision.serve import serve as run_server

    api_key: str | None = None
    if api_key_env is not None:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise ConfigError(f"--api-key-env {api_key_env}: that variable is not set or is empty")
    cores = default_num_threads()
    workers = workers or min(cores, 4)
    # Small batches run faster one per core than spread over all cores (DynamicBatcher).
    backend = LocalBackend(
        extractor=EfficientNetLite0Extractor(num_threads=max(1, cores // workers))
    )
    with Classifier(model_dir, backend=backend, batch_size=max_batch_size) as classifier:
        # Load now: a bad folder fails here, before listening.
        labels = getattr(classifier.predictor, "labels", ())

        def ready(url: str) -> None:
            err_console.print(
                f"serving {model_dir} ({len(labels)} labels) at {url}/predict "
                f"(docs {url}/docs; Ctrl-C or SIGTERM stops)",
                highlight=False,
                markup=False,
                soft_wrap=True,  # one line, whatever the width: scripts read the URL from it
            )

        run_server(
            classifier,
            host=host,
            port=port,
            api_key=api_key,
            on_ready=ready,
            max_instances=max_instances,
            max_batch_size=max_batch_size,
            max_wait=max_wait_ms / 1000,
            workers=workers,
            request_timeout=request_timeout,
        )
    err_console.print("stopped", highlight=False)


COMMANDS: list[click.Command] = [serve]
