"""Serve a model over HTTP in Vertex AI's online prediction shapes (the ``[serve]`` extra).

The same client code works against a local model and a Vertex AI endpoint:
``POST /v1/projects/{p}/locations/{l}/endpoints/{e}:predict`` (and ``POST /predict``) take
``{"instances": [{"content": "<base64>"}], "parameters": {...}}`` and answer
``{"predictions": [{"ids", "displayNames", "confidences"}], ...}``; errors come in Google's
JSON error shape. Concurrent requests are batched into one forward pass.

Public names:

* :func:`create_app` - the FastAPI app over a :class:`~redditvision.classify.Classifier`.
* :func:`serve` - build the app and run it on uvicorn until SIGTERM (``redditvision serve``).
* :func:`serve_app` - run any such app on uvicorn in the foreground.
* :class:`BackgroundServer` - run it on a thread (notebooks, tests, benchmarks).
* :func:`parse_predict_request`, :class:`PredictRequest`, :class:`ApiError`,
  :func:`error_body` - the protocol, without the web framework.
* :class:`DynamicBatcher` - the batching behind the predict routes.
* :func:`create_image_app` - a folder's images over HTTP for Label Studio tasks
  (``redditvision label-studio serve-images``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redditvision.classify import Classifier
from redditvision.serve._app import PREDICT_ROUTE, create_app, model_fingerprint
from redditvision.serve._batching import BatchStats, DynamicBatcher
from redditvision.serve._files import IMAGE_SUFFIXES, create_image_app
from redditvision.serve._protocol import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_INSTANCES,
    MAX_IMAGE_PIXELS,
    ONLINE_INSTANCE_LIMIT_BYTES,
    ApiError,
    PredictRequest,
    error_body,
    parse_predict_request,
)
from redditvision.serve._server import (
    GRACEFUL_SHUTDOWN_SECONDS,
    BackgroundServer,
    is_loopback,
    serve_app,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_INSTANCES",
    "GRACEFUL_SHUTDOWN_SECONDS",
    "IMAGE_SUFFIXES",
    "MAX_IMAGE_PIXELS",
    "ONLINE_INSTANCE_LIMIT_BYTES",
    "PREDICT_ROUTE",
    "ApiError",
    "BackgroundServer",
    "BatchStats",
    "DynamicBatcher",
    "PredictRequest",
    "create_app",
    "create_image_app",
    "error_body",
    "is_loopback",
    "model_fingerprint",
    "parse_predict_request",
    "serve",
    "serve_app",
]


def serve(
    classifier: Classifier,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    api_key: str | None = None,
    on_ready: Callable[[str], None] | None = None,
    **app_options: Any,
) -> None:
    """Serve ``classifier`` on uvicorn until SIGTERM or SIGINT (graceful: in-flight finish).

    Args:
        classifier: The model to serve (not closed here).
        host: Address to bind (default ``127.0.0.1``); any other needs ``api_key``.
        port: Port (default 8080; 0 for a free one, told to ``on_ready``).
        api_key: The key requests must carry (see :func:`create_app`).
        on_ready: Called with the base URL once the server listens.
        **app_options: More :func:`create_app` options (``max_instances``, ...).

    Raises:
        ConfigError: A non-loopback ``host`` without ``api_key``, a bad option, or the
            port is taken.
    """
    app = create_app(classifier, api_key=api_key, **app_options)
    serve_app(app, host=host, port=port, api_key=api_key, on_ready=on_ready)
