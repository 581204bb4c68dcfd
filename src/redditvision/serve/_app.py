"""The ASGI app: a :class:`~redditvision.classify.Classifier` behind Vertex AI's predict routes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from redditvision.classify import Classifier
from redditvision.errors import ConfigError, MissingDependencyError, PredictionError
from redditvision.serve._batching import DynamicBatcher
from redditvision.serve._protocol import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_INSTANCES,
    ONLINE_INSTANCE_LIMIT_BYTES,
    ApiError,
    error_body,
    filter_predictions,
    parse_predict_request,
    prediction_body,
)

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect
except ImportError as exc:  # pragma: no cover - the [serve] extra is missing
    raise MissingDependencyError(
        "serving needs the [serve] extra: pip install 'redditvision[serve]'"
    ) from exc

__all__ = ["create_app", "model_fingerprint"]

logger = logging.getLogger(__name__)

PREDICT_ROUTE = "/v1/projects/{project}/locations/{location}/endpoints/{endpoint}:predict"
"""Vertex AI's REST predict method (``projects.locations.endpoints.predict``)."""

_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["instances"],
    "properties": {
        "instances": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["content"],
                "properties": {
                    "content": {"type": "string", "format": "byte"},
                    "mimeType": {"type": "string", "example": "image/jpeg"},
                },
            },
        },
        "parameters": {
            "type": "object",
            "properties": {
                "confidenceThreshold": {"type": "number", "minimum": 0, "maximum": 1},
                "maxPredictions": {"type": "integer", "minimum": 1},
            },
        },
    },
}

_ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "predictions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "ids": {"type": "array", "items": {"type": "string"}},
                    "displayNames": {"type": "array", "items": {"type": "string"}},
                    "confidences": {"type": "array", "items": {"type": "number"}},
                },
            },
        },
        "deployedModelId": {"type": "string"},
        "model": {"type": "string"},
        "modelDisplayName": {"type": "string"},
    },
}

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "status": {"type": "string"},
            },
        }
    },
}


def model_fingerprint(folder: str | Path) -> str | None:
    """SHA-256 over a model folder's file names and contents, or None when not a folder.

    Args:
        folder: The model folder (a cloud resource name gives None).

    Returns:
        64 hex digits: the digest of one ``name TAB sha256 NEWLINE`` line per file, sorted by name.
    """
    path = Path(folder)
    if not path.is_dir():
        return None
    digest = hashlib.sha256()
    for item in sorted(p for p in path.iterdir() if p.is_file()):
        digest.update(f"{item.name}\t{hashlib.sha256(item.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def _google_error(exc: ApiError) -> JSONResponse:
    headers = {"Retry-After": f"{exc.retry_after:g}"} if exc.retry_after is not None else None
    return JSONResponse(
        error_body(exc.code, exc.message, exc.google_status), status_code=exc.code, headers=headers
    )


class _State:
    """What the routes share: the classifier, its labels, the batcher, readiness."""

    def __init__(self, classifier: Classifier, *, batcher: DynamicBatcher) -> None:
        self.classifier = classifier
        self.batcher = batcher
        self.ready = False
        self.load_error: str | None = None
        self.labels: tuple[str, ...] = tuple(classifier.model.labels)
        self.label_map: dict[str, str] = dict(classifier.model.label_map)
        self.manifest: Mapping[str, Any] = {}
        self.fingerprint: str | None = None
        self.metrics: dict[str, Any] | None = None

    def load(self) -> None:
        predictor = self.classifier.predictor
        self.labels = tuple(getattr(predictor, "labels", None) or self.labels)
        self.label_map = dict(getattr(predictor, "label_map", None) or self.label_map)
        self.manifest = dict(getattr(predictor, "manifest", None) or {})
        if self.classifier.model.backend == "local":
            folder = Path(self.classifier.model.resource)
            self.fingerprint = model_fingerprint(folder)
            evaluation = folder / "evaluation.json"
            if evaluation.is_file():
                try:
                    self.metrics = _metrics_summary(json.loads(evaluation.read_text("utf-8")))
                except (OSError, ValueError):
                    self.metrics = None

    @property
    def label_ids(self) -> dict[str, str]:
        return {label: str(index) for index, label in enumerate(self.labels)}


def _metrics_summary(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, dict):
        return None
    keys = (
        "accuracy",
        "macro_precision",
        "macro_recall",
        "micro_precision",
        "micro_recall",
        "au_prc",
        "log_loss",
        "evaluated_items",
        "source",
    )
    summary = {key: data[key] for key in keys if key in data}
    per_label = data.get("per_label")
    if isinstance(per_label, list):
        summary["per_label"] = [
            {k: row.get(k) for k in ("label", "precision", "recall", "f1", "support", "au_prc")}
            for row in per_label
            if isinstance(row, dict)
        ]
    return summary


def create_app(
    classifier: Classifier,
    *,
    max_instances: int = DEFAULT_MAX_INSTANCES,
    max_instance_bytes: int = ONLINE_INSTANCE_LIMIT_BYTES,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    request_timeout: float = 30.0,
    max_batch_size: int | None = None,
    max_wait: float = 0.005,
    workers: int = 1,
    api_key: str | None = None,
    deployed_model_id: str | None = None,
) -> FastAPI:
    """Build the ASGI app serving ``classifier`` in Vertex AI's online prediction shapes.

    Routes: ``POST /v1/projects/{p}/locations/{l}/endpoints/{e}:predict`` (any values) and
    its alias ``POST /predict``; ``GET /health`` (200 once the model is loaded, 503 before);
    ``GET /metadata`` (labels, backbone, metrics, model folder fingerprint, limits, batching
    counters); ``GET /docs`` and ``GET /openapi.json`` from FastAPI. Every error answers in
    Google's JSON error shape. The model is loaded in the background when the app starts
    (its lifespan), so ``/health`` can say when it is ready; the app does not close the
    classifier.

    Args:
        classifier: The model to serve.
        max_instances: Most instances in one request (default 64; Vertex AI AutoML image
            endpoints take 1).
        max_instance_bytes: Longest base64 ``content`` of one instance (default 1,500,000,
            Vertex AI's online prediction limit).
        max_body_bytes: Largest request body in bytes (default 32 MiB); larger ones are
            refused before being read whole.
        request_timeout: Seconds a request may take from its headers to its answer
            (default 30): a body still arriving then gets 408, a prediction not answered
            yet 504, both ``DEADLINE_EXCEEDED``.
        max_batch_size: Most images in one forward pass (default the classifier's
            ``batch_size``).
        max_wait: Seconds the first request of a batch waits for more (default 0.005),
            only while other requests are on their way.
        workers: Batches predicted at once, each on its own thread (default 1; see
            :class:`DynamicBatcher`). ``redditvision serve`` runs one per core, each
            with one torch thread; in your own code give the classifier's local backend
            that many threads, ``LocalBackend(extractor=EfficientNetLite0Extractor(
            num_threads=cores // workers))`` (torch's thread count is per process).
        api_key: When set, the predict and metadata routes need it in the ``x-goog-api-key``
            header or as ``Authorization: Bearer KEY``; compared in constant time, never
            logged.
        deployed_model_id: ``deployedModelId`` in answers (default the first 16 hex digits
            of the model folder fingerprint, or ``"local"``).

    Returns:
        The FastAPI app; run it with any ASGI server (:func:`serve` uses uvicorn).

    Raises:
        ConfigError: A limit is below 1 (or a timeout not positive), or ``api_key`` is empty.
    """
    for name, value in (
        ("max_instances", max_instances),
        ("max_instance_bytes", max_instance_bytes),
        ("max_body_bytes", max_body_bytes),
    ):
        if value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    if request_timeout <= 0:
        raise ConfigError(f"request_timeout must be positive seconds, got {request_timeout}")
    if api_key is not None and not api_key:
        raise ConfigError("api_key is empty: set the variable to a secret, or leave it unset")
    batcher = DynamicBatcher(
        lambda images: classifier.predict_many(images),
        max_batch_size=max_batch_size or classifier.batch_size,
        max_wait=max_wait,
        workers=workers,
    )
    state = _State(classifier, batcher=batcher)
    key_bytes = api_key.encode("utf-8") if api_key is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()

        async def load() -> None:
            try:
                await asyncio.to_thread(state.load)
            except Exception as exc:  # noqa: BLE001 - reported on /health, not raised
                state.load_error = str(exc)
                logger.error("the model could not be loaded: %s", exc)
            else:
                state.ready = True
                logger.info("model %s loaded", classifier.model.resource)

        loader = asyncio.create_task(load())
        try:
            yield
        finally:
            loader.cancel()
            await batcher.stop()

    app = FastAPI(
        title="redditvision prediction endpoint",
        description=(
            "A redditvision model behind Vertex AI's online prediction shapes: the same "
            "client code works against this server and a Vertex AI endpoint."
        ),
        version="1",
        lifespan=lifespan,
    )
    app.state.redditvision = state

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _google_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = exc.status_code
        if code == 404:
            message = f"{request.url.path} is not a route of this endpoint; see /docs"
        elif code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; " + (
                "send POST with a JSON body"
                if request.url.path.endswith("predict")
                else "see /docs"
            )
        else:
            message = str(exc.detail)
        return JSONResponse(
            error_body(code, message), status_code=code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(400, f"invalid request: {exc.errors()}"), status_code=400)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        logger.error("internal error on %s: %s", request.url.path, type(exc).__name__)
        return JSONResponse(
            error_body(500, "internal error; the server log has the details"), status_code=500
        )

    def check_key(request: Request) -> None:
        if key_bytes is None:
            return
        given = request.headers.get("x-goog-api-key")
        if given is None:
            authorization = request.headers.get("authorization", "")
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer" and token:
                given = token.strip()
        if given is None:
            raise ApiError(
                401,
                "this endpoint needs an API key: send it in the x-goog-api-key header "
                "(or Authorization: Bearer KEY)",
            )
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), key_bytes):
            raise ApiError(403, "the API key is not valid for this endpoint")

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            raise ApiError(
                400,
                f"the request body is {int(declared):,} bytes, over this endpoint's "
                f"{max_body_bytes:,}-byte limit; send fewer instances per request",
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise ApiError(
                    400,
                    f"the request body is over this endpoint's {max_body_bytes:,}-byte "
                    "limit; send fewer instances per request",
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def predict(request: Request) -> Response:
        check_key(request)
        deadline = asyncio.get_running_loop().time() + request_timeout
        with batcher.incoming():
            try:
                body = await asyncio.wait_for(read_body(request), timeout=request_timeout)
            except TimeoutError as exc:
                raise ApiError(
                    408,
                    f"the request body did not arrive within the {request_timeout:g}-second "
                    "request timeout",
                ) from exc
            except ClientDisconnect:
                logger.info("a client disconnected before sending its whole request")
                return Response(status_code=499)
            parsed = parse_predict_request(
                body,
                request.headers.get("content-type"),
                max_instances=max_instances,
                max_instance_bytes=max_instance_bytes,
            )
        if not state.ready:
            if state.load_error is not None:
                raise ApiError(503, f"the model could not be loaded: {state.load_error}")
            raise ApiError(503, "the model is still loading; retry shortly", retry_after=1)
        try:
            left = max(0.0, deadline - asyncio.get_running_loop().time())
            ranked = await asyncio.wait_for(batcher.predict(parsed.images), timeout=left)
        except TimeoutError as exc:
            raise ApiError(
                504, f"no answer within the {request_timeout:g}-second request timeout"
            ) from exc
        except ApiError:
            raise
        except PredictionError as exc:
            raise ApiError(400, f"the model refused the request: {exc.message}") from exc
        kept = [
            filter_predictions(
                row,
                confidence_threshold=parsed.confidence_threshold,
                max_predictions=parsed.max_predictions,
            )
            for row in ranked
        ]
        return JSONResponse(
            {
                "predictions": prediction_body(kept, label_ids=state.label_ids),
                "deployedModelId": deployed_model_id
                or (state.fingerprint[:16] if state.fingerprint else "local"),
                "model": classifier.model.resource,
                "modelDisplayName": classifier.model.display_name
                or str(state.manifest.get("name") or Path(classifier.model.resource).name),
            }
        )

    openapi = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _REQUEST_SCHEMA}},
        }
    }
    responses: dict[int | str, dict[str, Any]] = {
        200: {
            "description": "Predictions",
            "content": {"application/json": {"schema": _ANSWER_SCHEMA}},
        },
        400: {
            "description": "Bad request",
            "content": {"application/json": {"schema": _ERROR_SCHEMA}},
        },
    }

    @app.post(
        PREDICT_ROUTE,
        summary="Predict (Vertex AI projects.locations.endpoints.predict)",
        openapi_extra=openapi,
        responses=responses,
        response_class=JSONResponse,
    )
    async def vertex_predict(
        request: Request, project: str, location: str, endpoint: str
    ) -> Response:
        return await predict(request)

    @app.post(
        "/predict",
        summary="Predict (short alias)",
        openapi_extra=openapi,
        responses=responses,
        response_class=JSONResponse,
    )
    async def short_predict(request: Request) -> Response:
        return await predict(request)

    @app.get("/health", summary="Ready once the model is loaded")
    async def health() -> JSONResponse:
        if state.ready:
            return JSONResponse({"status": "ready"})
        if state.load_error is not None:
            return JSONResponse({"status": "failed", "error": state.load_error}, status_code=503)
        return JSONResponse({"status": "loading"}, status_code=503)

    @app.get("/metadata", summary="Labels, backbone, metrics, fingerprint, limits")
    async def metadata(request: Request) -> JSONResponse:
        check_key(request)
        extractor = state.manifest.get("extractor") if state.manifest else None
        stats = batcher.stats
        return JSONResponse(
            {
                "ready": state.ready,
                "model": classifier.model.resource,
                "backend": classifier.backend.name,
                "displayName": classifier.model.display_name or state.manifest.get("name"),
                "labels": [state.label_map.get(label, label) for label in state.labels],
                "modelLabels": list(state.labels),
                "backbone": (
                    {"id": extractor.get("id"), "version": extractor.get("version")}
                    if isinstance(extractor, dict)
                    else None
                ),
                "metrics": state.metrics,
                "fingerprint": state.fingerprint,
                "limits": {
                    "maxInstances": max_instances,
                    "maxInstanceBytes": max_instance_bytes,
                    "maxBodyBytes": max_body_bytes,
                    "requestTimeoutSeconds": request_timeout,
                    "maxBatchSize": batcher.max_batch_size,
                    "maxWaitSeconds": batcher.max_wait,
                    "workers": batcher.workers,
                },
                "batching": {
                    "requests": stats.requests,
                    "images": stats.images,
                    "batches": stats.batches,
                    "largestBatch": stats.largest_batch,
                    "incoming": batcher.incoming_requests,
                },
            }
        )

    return app
