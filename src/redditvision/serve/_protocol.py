"""Vertex AI online prediction shapes: parsing a predict request, building answers and errors.

Nothing here imports the web framework: :func:`parse_predict_request` takes the raw body
bytes and either returns a :class:`PredictRequest` or raises :class:`ApiError`, which
:func:`error_body` turns into Google's JSON error shape. The property test feeds it arbitrary
bytes.

Shapes (Vertex AI REST reference, ``projects.locations.endpoints.predict``; AutoML image
classification instance and parameter schemata)::

    request  {"instances": [{"content": "<base64>", "mimeType": "image/jpeg"}],
              "parameters": {"confidenceThreshold": 0.5, "maxPredictions": 5}}
    answer   {"predictions": [{"ids": ["0"], "displayNames": ["z4"], "confidences": [0.99]}],
              "deployedModelId": "...", "model": "...", "modelDisplayName": "..."}
    error    {"error": {"code": 400, "message": "...", "status": "INVALID_ARGUMENT"}}
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from PIL import Image

from redditvision.errors import PredictionError
from redditvision.models import Prediction

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_INSTANCES",
    "GOOGLE_STATUS",
    "MAX_IMAGE_PIXELS",
    "ONLINE_INSTANCE_LIMIT_BYTES",
    "ApiError",
    "PredictRequest",
    "error_body",
    "filter_predictions",
    "parse_predict_request",
    "prediction_body",
]

ONLINE_INSTANCE_LIMIT_BYTES = 1_500_000
"""Largest base64 ``content`` of one instance: Vertex AI's online prediction limit (1.5 MB
for AutoML image models). A client that fits it here fits it on Vertex AI."""

DEFAULT_MAX_INSTANCES = 64
"""Instances accepted in one request by default (Vertex AI AutoML image endpoints take 1)."""

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
"""Largest request body by default, in bytes (32 MiB: 16 instances at the 1.5 MB limit plus
room; larger bodies are refused before they are read whole)."""

MAX_IMAGE_PIXELS = 40_000_000
"""Largest image accepted, in pixels (width x height): a 1.5 MB PNG can declare a huge canvas
(a decompression bomb); 40 megapixels is a large phone photo."""

GOOGLE_STATUS: Mapping[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
"""HTTP status -> the ``google.rpc.Code`` name sent in an error's ``status`` (the HTTP mapping
of ``google/rpc/code.proto``; 405 and 415 have none there and get the nearest)."""


class ApiError(PredictionError):
    """A predict request refused, with the HTTP status and Google status to answer.

    Args:
        code: HTTP status, e.g. 400.
        message: What is wrong, naming the instance at fault and the fix.
        status: The ``google.rpc.Code`` name (default from :data:`GOOGLE_STATUS`).
        retry_after: Seconds to send in ``Retry-After`` (e.g. while the model loads).
    """

    def __init__(
        self,
        code: int,
        message: str,
        *,
        status: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        google_status = status or GOOGLE_STATUS.get(code, "UNKNOWN")
        super().__init__(
            message,
            service="serve",
            status=google_status,
            retry_after=retry_after,
            transient=code in (429, 503, 504),
        )
        self.code = code
        self.google_status = google_status


@attrs.frozen(kw_only=True)
class PredictRequest:
    """A parsed, checked predict request.

    Attributes:
        images: The decoded ``content`` of each instance, in request order.
        confidence_threshold: ``parameters.confidenceThreshold`` (default 0.0), in ``[0, 1]``.
        max_predictions: ``parameters.maxPredictions`` (default None: every label).
    """

    images: tuple[bytes, ...]
    confidence_threshold: float = 0.0
    max_predictions: int | None = None


def error_body(code: int, message: str, status: str | None = None) -> dict[str, Any]:
    """Google's JSON error shape.

    Args:
        code: HTTP status.
        message: The message.
        status: ``google.rpc.Code`` name (default from :data:`GOOGLE_STATUS`).

    Returns:
        ``{"error": {"code": code, "message": message, "status": status}}``.
    """
    return {
        "error": {
            "code": code,
            "message": message,
            "status": status or GOOGLE_STATUS.get(code, "UNKNOWN"),
        }
    }


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _check_content_type(content_type: str | None) -> None:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(
            400,
            f"the request's Content-Type is {content_type or 'missing'!r}; send the JSON body "
            "with Content-Type: application/json",
        )


def _check_image(data: bytes, where: str) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as opened:
                width, height = opened.size
                opened.verify()
    except Exception as exc:  # Pillow raises many types on hostile bytes
        raise ApiError(
            400,
            f"{where} is not an image that can be read ({type(exc).__name__}); send the "
            "base64 of JPEG, PNG, GIF, BMP or WebP bytes",
        ) from exc
    if width * height > MAX_IMAGE_PIXELS:
        raise ApiError(
            400,
            f"{where} is {width}x{height} pixels, over the {MAX_IMAGE_PIXELS:,}-pixel limit; "
            "send a smaller image",
        )


def _parameters(raw: Any) -> tuple[float, int | None]:
    if raw is None:
        return 0.0, None
    if not isinstance(raw, dict):
        raise ApiError(400, '"parameters" must be a JSON object, e.g. {"maxPredictions": 5}')
    threshold: Any = raw.get("confidenceThreshold", 0.0)
    if threshold is None:
        threshold = 0.0
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not 0.0 <= threshold <= 1.0
    ):
        raise ApiError(
            400, f"parameters.confidenceThreshold must be a number in [0, 1], got {threshold!r}"
        )
    limit: Any = raw.get("maxPredictions")
    if limit is not None:
        integral = isinstance(limit, int) or (
            isinstance(limit, float) and math.isfinite(limit) and limit.is_integer()
        )
        if isinstance(limit, bool) or not integral or limit < 1:
            raise ApiError(
                400, f"parameters.maxPredictions must be a whole number >= 1, got {limit!r}"
            )
        limit = int(limit)
    return float(threshold), limit


def parse_predict_request(
    body: bytes,
    content_type: str | None,
    *,
    max_instances: int = DEFAULT_MAX_INSTANCES,
    max_instance_bytes: int = ONLINE_INSTANCE_LIMIT_BYTES,
    check_images: bool = True,
) -> PredictRequest:
    """Parse and check the body of a predict request.

    Args:
        body: The raw request body.
        content_type: The ``Content-Type`` header (must be ``application/json``).
        max_instances: Most instances accepted (default :data:`DEFAULT_MAX_INSTANCES`).
        max_instance_bytes: Longest base64 ``content`` of one instance (default 1,500,000,
            Vertex AI's limit).
        check_images: Open each image with Pillow (header and structure, not the pixels)
            and refuse what is not an image or is over :data:`MAX_IMAGE_PIXELS`.

    Returns:
        The request.

    Raises:
        ApiError: 400 naming what is wrong (``instances[3].content is not base64`` ...).
    """
    _check_content_type(content_type)
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(
            400, f'the body is not valid JSON ({exc}); send a JSON object with "instances"'
        ) from exc
    if not isinstance(document, dict):
        raise ApiError(400, 'the body must be a JSON object {"instances": [...]}')
    instances = document.get("instances")
    if instances is None:
        raise ApiError(
            400, 'the body has no "instances": send {"instances": [{"content": "<base64>"}]}'
        )
    if not isinstance(instances, list) or not instances:
        raise ApiError(400, '"instances" must be a non-empty list of {"content": "<base64>"}')
    if len(instances) > max_instances:
        raise ApiError(
            400,
            f"{len(instances)} instances in one request, over this endpoint's limit of "
            f"{max_instances}; send them in smaller requests",
        )
    images: list[bytes] = []
    for index, instance in enumerate(instances):
        where = f"instances[{index}]"
        if not isinstance(instance, dict):
            raise ApiError(400, f'{where} must be an object {{"content": "<base64>"}}')
        content = instance.get("content")
        if content is None:
            raise ApiError(400, f'{where} has no "content" (the base64 of the image bytes)')
        if not isinstance(content, str):
            raise ApiError(400, f"{where}.content must be a base64 string")
        if len(content) > max_instance_bytes:
            raise ApiError(
                400,
                f"{where}.content is {len(content):,} bytes of base64, over the "
                f"{max_instance_bytes:,}-byte limit per instance (Vertex AI online "
                "prediction: 1.5 MB); shrink or re-encode the image as JPEG",
            )
        try:
            data = base64.b64decode(content.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
            raise ApiError(400, f"{where}.content is not valid base64 ({exc})") from exc
        if not data:
            raise ApiError(400, f"{where}.content is empty")
        if check_images:
            _check_image(data, where)
        images.append(data)
    threshold, limit = _parameters(document.get("parameters"))
    return PredictRequest(
        images=tuple(images), confidence_threshold=threshold, max_predictions=limit
    )


def filter_predictions(
    predictions: Sequence[Prediction], *, confidence_threshold: float, max_predictions: int | None
) -> list[Prediction]:
    """Apply a request's parameters to one image's full, best-first predictions.

    Args:
        predictions: Every label's prediction, best first.
        confidence_threshold: Drop those scored below this.
        max_predictions: Keep at most this many, or None for all.

    Returns:
        The kept predictions, best first.
    """
    kept = [p for p in predictions if p.score >= confidence_threshold]
    return kept[:max_predictions] if max_predictions else kept


def prediction_body(
    predictions: Sequence[Sequence[Prediction]], *, label_ids: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The ``predictions`` list of a predict answer.

    Args:
        predictions: One best-first list per instance.
        label_ids: Model label -> its id (Vertex AI's annotation spec id; here the label's
            position in the model's label list, as a string).

    Returns:
        One ``{"ids", "displayNames", "confidences"}`` object per instance; display names
        are the user's own label names.
    """
    return [
        {
            "ids": [label_ids.get(p.model_label, p.model_label) for p in ranked],
            "displayNames": [p.label for p in ranked],
            "confidences": [p.score for p in ranked],
        }
        for ranked in predictions
    ]
