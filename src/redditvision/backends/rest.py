"""A Vertex-shaped REST endpoint as a prediction backend: ``redditvision serve`` or Vertex AI.

:class:`RestEndpointBackend` speaks the online prediction protocol over HTTP(S) with
``requests``: ``POST {url}`` with ``{"instances": [{"content": "<base64>"}], "parameters":
{...}}``, answered by ``{"predictions": [{"displayNames", "confidences"}]}``. It works
against our own server (``redditvision serve``, any base URL: ``/predict`` is added) and a
real Vertex AI endpoint's REST URL
(``https://REGION-aiplatform.googleapis.com/v1/projects/P/locations/L/endpoints/E``:
``:predict`` is added), where the bearer token comes from Application Default Credentials
(google-auth). Tokens and API keys are never logged, and never appear in reprs or errors.

Images over Vertex AI's 1.5 MB online limit are re-encoded first, with the one image
shrinker the Vertex AI backend uses too (``redditvision._imaging.fit_image_bytes``).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests

from redditvision._closing import Closeable
from redditvision._imaging import fit_image_bytes
from redditvision.backends.vertex._limits import ONLINE_PREDICTION_LIMIT_BYTES
from redditvision.errors import ConfigError, PredictionError
from redditvision.models import Prediction, TrainedModel
from redditvision.retry import (
    DEFAULT,
    RetryArg,
    RetryPolicy,
    call_with_retry,
    is_transient,
    parse_retry_after,
    resolve_retry,
)

__all__ = [
    "DEFAULT_REST_RETRY",
    "RestEndpointBackend",
    "RestPredictor",
    "predict_url",
]

logger = logging.getLogger(__name__)

DEFAULT_REST_RETRY = RetryPolicy(on=is_transient, attempts=5, timeout=120.0)
"""Retries of a predict call: 429 and 503 answers (honouring ``Retry-After``), 5 attempts
within 120 s. Prediction is read-only, so repeating it is safe."""

_RETRIED_STATUSES = frozenset({429, 503})
_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


def predict_url(url: str) -> str:
    """The predict method's URL for an endpoint URL.

    Args:
        url: ``http://127.0.0.1:8080`` (our server: ``/predict`` is added), a URL ending in
            ``:predict`` (used as is), or a Vertex AI endpoint URL ending in
            ``/endpoints/E`` (``:predict`` is added).

    Returns:
        The URL to POST to.

    Raises:
        ConfigError: Not an ``http`` or ``https`` URL with a host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{url!r} is not an endpoint URL: give http://HOST:PORT (redditvision serve) or "
            "https://REGION-aiplatform.googleapis.com/v1/projects/P/locations/L/endpoints/E"
        )
    stripped = url.rstrip("/")
    if stripped.endswith(":predict") or stripped.endswith("/predict"):
        return stripped
    if "/endpoints/" in parts.path:
        return stripped + ":predict"
    return stripped + "/predict"


def _is_google(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "googleapis.com" or host.endswith(".googleapis.com")


class RestEndpointBackend(Closeable):
    """Predictions from a Vertex-shaped REST endpoint (a :class:`PredictionBackend`).

    Args:
        url: Default endpoint URL for models without one (see :func:`predict_url`).
        api_key: Sent as ``x-goog-api-key`` (``redditvision serve --api-key-env``).
        credentials: ``google.auth`` credentials for a bearer token. Default: Application
            Default Credentials for ``*.googleapis.com`` URLs, none for others.
        session: A ``requests.Session`` to use (default one built here, closed by
            :meth:`close`).
        instances_per_request: Images per request (default 1 for Vertex AI, whose AutoML
            image endpoints take one; 32 otherwise).
        retry: Retry policy (default :data:`DEFAULT_REST_RETRY`; None for one attempt).
        timeout: Seconds per request, connect and read (default 60).
        close_with_predictor: Close this backend when its predictor closes (what
            :meth:`Classifier.from_endpoint <redditvision.classify.Classifier.from_endpoint>`
            asks, so closing the classifier closes the session).

    Raises:
        ConfigError: ``url`` is not an http(s) URL, ``instances_per_request`` is below 1,
            or Application Default Credentials are not configured for a Google URL.
    """

    name = "rest"

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        credentials: Any = None,
        session: requests.Session | None = None,
        instances_per_request: int | None = None,
        retry: RetryArg = DEFAULT,
        timeout: float = 60.0,
        close_with_predictor: bool = False,
    ) -> None:
        self.close_with_predictor = close_with_predictor
        self.url = predict_url(url) if url is not None else None
        if instances_per_request is not None and instances_per_request < 1:
            raise ConfigError(
                f"instances_per_request must be at least 1, got {instances_per_request}"
            )
        self.instances_per_request = instances_per_request
        self._api_key = api_key
        self._credentials = credentials
        self._own_session = session is None
        if session is None:
            session = requests.Session()
            session.trust_env = False
        self._session = session
        self.retry = resolve_retry(retry, DEFAULT_REST_RETRY)
        self.timeout = timeout
        self._closed = False

    def __repr__(self) -> str:
        auth = "api-key" if self._api_key else "credentials" if self._credentials else "none"
        return f"RestEndpointBackend(url={self.url!r}, auth={auth})"

    def _auth_headers(self, url: str) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self._api_key:
            headers["x-goog-api-key"] = self._api_key
        credentials = self._credentials
        if credentials is None and _is_google(url) and not self._api_key:
            import google.auth
            from google.auth import exceptions as auth_exceptions

            try:
                credentials, _ = google.auth.default(scopes=_SCOPES)
            except auth_exceptions.DefaultCredentialsError as exc:
                raise ConfigError(
                    "no Application Default Credentials for the Vertex AI endpoint: run "
                    "`gcloud auth application-default login` or set "
                    "GOOGLE_APPLICATION_CREDENTIALS"
                ) from exc
            self._credentials = credentials
        if credentials is not None:
            import google.auth.transport.requests
            from google.auth import exceptions as auth_exceptions

            try:
                credentials.before_request(
                    google.auth.transport.requests.Request(self._session), "POST", url, headers
                )
            except auth_exceptions.GoogleAuthError as exc:
                raise PredictionError(
                    f"cannot get an access token for {url}: {type(exc).__name__}",
                    service="rest",
                    transient=isinstance(exc, auth_exceptions.TransportError),
                ) from exc
        return headers

    def open_predictor(self, model: TrainedModel, *, deploy: bool = True) -> RestPredictor:
        """Open a predictor for an endpoint.

        Args:
            model: A ``"rest"`` model whose ``resource`` is the endpoint URL (or any model
                when this backend has a default ``url``); ``label_map`` maps the
                endpoint's display names to the user's (optional).
            deploy: Ignored: the endpoint is already serving.

        Returns:
            The predictor.

        Raises:
            ConfigError: No URL in the model nor the backend.
        """
        resource = model.resource if model.backend == self.name else None
        url = predict_url(resource) if resource else self.url
        if url is None:
            raise ConfigError(
                "the REST backend needs the endpoint URL: Classifier.from_endpoint(URL) or "
                "RestEndpointBackend(URL)"
            )
        return RestPredictor(self, url=url, label_map=dict(model.label_map))

    def predict_once(
        self,
        url: str,
        images: Sequence[bytes],
        *,
        confidence_threshold: float = 0.0,
        max_predictions: int | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Send one predict request (retried on 429 and 503).

        Args:
            url: The predict URL.
            images: Encoded images; each re-encoded when over the 1.5 MB online limit.
            confidence_threshold: ``parameters.confidenceThreshold``.
            max_predictions: ``parameters.maxPredictions``, or None to leave it out.

        Returns:
            ``(display name, confidence)`` pairs per image, as the endpoint ranked them.

        Raises:
            PredictionError: The endpoint refused (its message, HTTP status, retry-after),
                could not be reached, or answered something that is not a prediction.
        """
        if self._closed:
            raise PredictionError("this RestEndpointBackend is closed")
        instances = []
        for index, image in enumerate(images):
            try:
                fitted = fit_image_bytes(image, limit=ONLINE_PREDICTION_LIMIT_BYTES, base64=True)
            except PredictionError as exc:
                raise PredictionError(f"image {index}: {exc.message}") from exc
            instances.append({"content": base64.b64encode(fitted).decode("ascii")})
        parameters: dict[str, Any] = {"confidenceThreshold": confidence_threshold}
        if max_predictions is not None:
            parameters["maxPredictions"] = max_predictions
        body = json.dumps({"instances": instances, "parameters": parameters}).encode("utf-8")
        data = call_with_retry(self.retry, self._post, url, body)
        predictions = data.get("predictions") if isinstance(data, dict) else None
        if not isinstance(predictions, list) or len(predictions) != len(images):
            count = len(predictions) if isinstance(predictions, list) else "no"
            raise PredictionError(
                f"{_safe(url)} answered {count} predictions for {len(images)} instances",
                service="rest",
            )
        results: list[list[tuple[str, float]]] = []
        for prediction in predictions:
            if not isinstance(prediction, dict):
                raise PredictionError(f"{_safe(url)} answered a prediction that is not an object")
            names = prediction.get("displayNames", [])
            scores = prediction.get("confidences", [])
            results.append([(str(n), float(s)) for n, s in zip(names, scores, strict=False)])
        return results

    def _post(self, url: str, body: bytes) -> Any:
        headers = {"Content-Type": "application/json", **self._auth_headers(url)}
        try:
            response = self._session.post(url, data=body, headers=headers, timeout=self.timeout)
        except requests.Timeout as exc:
            raise PredictionError(
                f"{_safe(url)} did not answer within {self.timeout:g} s", service="rest"
            ) from exc
        except requests.RequestException as exc:
            raise PredictionError(
                f"cannot reach {_safe(url)}: {type(exc).__name__}", service="rest"
            ) from exc
        if response.status_code != 200:
            raise _http_error(url, response)
        try:
            return response.json()
        except ValueError as exc:
            raise PredictionError(
                f"{_safe(url)} answered HTTP 200 with a body that is not JSON", service="rest"
            ) from exc

    def close(self) -> None:
        """Close the session when this backend built it; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._own_session:
            self._session.close()


def _safe(url: str) -> str:
    """The URL without query or credentials, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _http_error(url: str, response: requests.Response) -> PredictionError:
    message = response.reason or "error"
    status_name: str | None = None
    try:
        error = response.json().get("error")
        if isinstance(error, Mapping):
            message = str(error.get("message") or message)
            status_name = str(error.get("status")) if error.get("status") else None
    except (ValueError, AttributeError):
        pass
    code = response.status_code
    return PredictionError(
        f"{_safe(url)} refused the prediction: HTTP {code}"
        + (f" {status_name}" if status_name else "")
        + f": {message}",
        service="rest",
        status=code,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        transient=code in _RETRIED_STATUSES,
    )


class RestPredictor:
    """A REST endpoint answering predictions (a :class:`~redditvision.classify.Predictor`).

    Built by :meth:`RestEndpointBackend.open_predictor`.

    Args:
        backend: The backend whose session, credentials and retries to use.
        url: The predict URL.
        label_map: Endpoint display name -> the user's label name (optional).
    """

    def __init__(
        self, backend: RestEndpointBackend, *, url: str, label_map: Mapping[str, str]
    ) -> None:
        self.backend = backend
        self.url = url
        self.label_map = dict(label_map)
        self._closed = False

    def __repr__(self) -> str:
        return f"RestPredictor({_safe(self.url)!r})"

    def predict(
        self,
        images: Sequence[bytes],
        *,
        confidence_threshold: float = 0.0,
        max_predictions: int | None = None,
    ) -> list[list[Prediction]]:
        """Predict labels for encoded images, ``instances_per_request`` per request.

        Args:
            images: Encoded image bytes.
            confidence_threshold: Drop predictions below this (also sent).
            max_predictions: Keep at most this many (also sent; default every label the
                endpoint returns).

        Returns:
            One list per image, best first.

        Raises:
            PredictionError: The predictor is closed, an image is unreadable and too
                large to send, or the endpoint failed.
        """
        if self._closed:
            raise PredictionError("this REST predictor is closed")
        per_request = self.backend.instances_per_request or (1 if _is_google(self.url) else 32)
        results: list[list[Prediction]] = []
        for start in range(0, len(images), per_request):
            answered = self.backend.predict_once(
                self.url,
                images[start : start + per_request],
                confidence_threshold=confidence_threshold,
                max_predictions=max_predictions,
            )
            for pairs in answered:
                ranked = sorted(
                    (
                        Prediction(
                            label=self.label_map.get(name, name), score=score, model_label=name
                        )
                        for name, score in pairs
                        if score >= confidence_threshold
                    ),
                    key=lambda p: p.score,
                    reverse=True,
                )
                results.append(ranked[:max_predictions] if max_predictions else ranked)
        return results

    def close(self) -> None:
        """Mark closed; close the backend too when it asked so; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self.backend.close_with_predictor:
            self.backend.close()
