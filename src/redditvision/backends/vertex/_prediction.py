"""Online prediction on Vertex AI: ``PredictionService.Predict`` and :class:`VertexPredictor`.

One instance per request (as AutoML image allows) with base64 ``content``, re-encoded
under the 1.5 MB online limit by :func:`~redditvision._imaging.fit_image_bytes`, and the
``confidenceThreshold`` and ``maxPredictions`` parameters.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from google.cloud import aiplatform_v1 as aip
from google.protobuf import json_format

from redditvision._imaging import fit_image_bytes
from redditvision.backends._protocol import Deployment
from redditvision.backends.vertex._deployment import DeploymentMixin
from redditvision.backends.vertex._limits import ONLINE_PREDICTION_LIMIT_BYTES, SERVICE
from redditvision.backends.vertex._training import value
from redditvision.errors import PredictionError
from redditvision.models import Prediction, TrainedModel
from redditvision.retry import DEFAULT, RetryArg, resolve_retry

__all__ = ["PredictionMixin", "VertexPredictor", "fit_online_limit"]


def fit_online_limit(image: bytes, *, limit: int = ONLINE_PREDICTION_LIMIT_BYTES) -> bytes:
    """Return ``image`` or a JPEG re-encoding whose base64 form fits the online limit.

    :func:`~redditvision._imaging.fit_image_bytes` with ``base64=True``: images already
    under the limit are sent unchanged; larger ones are re-encoded as JPEG at quality 85,
    scaled so that they fit after one to three encodes.

    Args:
        image: Encoded image bytes.
        limit: Largest base64 length in bytes (default 1,500,000, Vertex AI's 1.5 MB).

    Returns:
        Encoded bytes whose base64 length is at most ``limit``.

    Raises:
        PredictionError: The bytes are not an image Pillow can read, or it cannot be made
            small enough.
    """
    return fit_image_bytes(image, limit=limit, base64=True)


class PredictionMixin(DeploymentMixin):
    """Prediction methods of :class:`~redditvision.backends.vertex.VertexAutoMLBackend`."""

    def open_predictor(self, model: TrainedModel, *, deploy: bool = True) -> VertexPredictor:
        """Open a predictor for a model or an endpoint.

        ``model.resource`` may be an endpoint name (``.../endpoints/E``): predictions go
        there and nothing is deployed. For a model name, an existing deployment of the model
        is used when there is one; otherwise, with ``deploy=True``, the model is deployed to
        a new endpoint that the predictor undeploys and deletes on close.

        Args:
            model: A ``"vertex"`` model handle.
            deploy: Deploy when the model is not deployed yet (default True).

        Returns:
            The predictor.

        Raises:
            PredictionError: The model does not exist, or is not deployed and
                ``deploy=False`` (run ``redditvision deploy``).
        """
        if "/endpoints/" in model.resource:
            return VertexPredictor(self, endpoint=model.resource, model=model, deployment=None)
        found = self._rpc(
            self.model_client.get_model,
            f"opening model {model.resource}",
            error=PredictionError,
            retry=self.retry,
            request={"name": model.resource},
        )
        if found.deployed_models:
            ref = found.deployed_models[0]
            return VertexPredictor(self, endpoint=ref.endpoint, model=model, deployment=None)
        if not deploy:
            raise PredictionError(
                f"model {model.resource} is not deployed; pass deploy=True or run "
                "`redditvision deploy --model ...` first",
                service=SERVICE,
            )
        deployment = self.deploy(model)
        assert deployment.endpoint is not None  # Vertex AI deployments have an endpoint
        return VertexPredictor(
            self, endpoint=deployment.endpoint, model=model, deployment=deployment
        )

    def predict_endpoint(
        self,
        endpoint: str,
        image: bytes,
        *,
        confidence_threshold: float = 0.0,
        max_predictions: int | None = None,
        retry: RetryArg = DEFAULT,
        timeout: float | None = None,
    ) -> list[tuple[str, float]]:
        """Ask an endpoint about one image (one instance per request, as AutoML image allows).

        Args:
            endpoint: ``projects/P/locations/L/endpoints/E``.
            image: Encoded bytes; re-encoded when over the 1.5 MB online limit.
            confidence_threshold: ``confidenceThreshold`` parameter, in ``[0, 1]``.
            max_predictions: ``maxPredictions`` parameter, or None for the service default
                (10).
            retry: RPC retry (default the backend's; RESOURCE_EXHAUSTED and UNAVAILABLE
                are retried with backoff, then raised).
            timeout: Seconds (default ``predict_timeout``).

        Returns:
            ``(service label, confidence)`` pairs as the service ranked them.

        Raises:
            PredictionError: The image is unreadable, or the service refused (message,
                gRPC status and retry-after kept).
        """
        content = base64.b64encode(fit_online_limit(image)).decode("ascii")
        request = aip.PredictRequest(endpoint=endpoint)
        # proto-plus quirk: repeated Value fields must be filled with extend.
        request.instances.extend([{"content": content}])
        parameters: dict[str, Any] = {"confidenceThreshold": confidence_threshold}
        if max_predictions is not None:
            parameters["maxPredictions"] = max_predictions
        request.parameters = value(parameters)
        response = self._rpc(
            self.prediction_client.predict,
            f"predicting with {endpoint}",
            error=PredictionError,
            retry=resolve_retry(retry, self.retry),
            timeout=timeout or self.predict_timeout,
            request=request,
        )
        pb = aip.PredictResponse.pb(response)
        results: list[tuple[str, float]] = []
        for prediction in pb.predictions:
            body = json_format.MessageToDict(prediction)
            names = body.get("displayNames", [])
            scores = body.get("confidences", [])
            results.extend((str(n), float(s)) for n, s in zip(names, scores, strict=False))
        return results


class VertexPredictor:
    """Online predictions from a Vertex AI endpoint; undeploys on close what it deployed.

    Built by :meth:`VertexAutoMLBackend.open_predictor`.

    Args:
        backend: The backend whose prediction client to use.
        endpoint: The endpoint name.
        model: The model handle (its ``label_map`` names the labels).
        deployment: The deployment this predictor made, undone on :meth:`close`; None when
            it uses an existing one.
    """

    def __init__(
        self,
        backend: PredictionMixin,
        *,
        endpoint: str,
        model: TrainedModel,
        deployment: Deployment | None,
    ) -> None:
        self.backend = backend
        self.endpoint = endpoint
        self.model = model
        self.deployment = deployment
        self._closed = False

    def __repr__(self) -> str:
        return f"VertexPredictor(endpoint={self.endpoint!r}, owns={self.deployment is not None})"

    def predict(
        self,
        images: Sequence[bytes],
        *,
        confidence_threshold: float = 0.0,
        max_predictions: int | None = None,
    ) -> list[list[Prediction]]:
        """Predict labels for encoded images, one request per image.

        Args:
            images: Encoded image bytes.
            confidence_threshold: Drop predictions below this (sent as
                ``confidenceThreshold``).
            max_predictions: Keep at most this many (``maxPredictions``; default: every
                label the model knows, or the service's 10).

        Returns:
            One list per image, best first, labels in the user's names.

        Raises:
            PredictionError: The predictor is closed, an image is unreadable, or the
                endpoint failed.
        """
        if self._closed:
            raise PredictionError("this Vertex AI predictor is closed")
        limit = max_predictions or (len(self.model.labels) or None)
        results: list[list[Prediction]] = []
        for image in images:
            pairs = self.backend.predict_endpoint(
                self.endpoint,
                image,
                confidence_threshold=confidence_threshold,
                max_predictions=limit,
            )
            predictions = [
                Prediction(
                    label=self.model.label_map.get(name, name), score=score, model_label=name
                )
                for name, score in pairs
                if score >= confidence_threshold
            ]
            predictions.sort(key=lambda p: p.score, reverse=True)
            results.append(predictions[:limit] if limit else predictions)
        return results

    def close(self) -> None:
        """Undeploy and delete what this predictor deployed; safe to call twice.

        Raises:
            PredictionError: Undeploying failed: the endpoint named in the message may
                still be billed; run ``redditvision undeploy``.
        """
        if self._closed:
            return
        self._closed = True
        if self.deployment is not None:
            self.backend.undeploy(self.deployment)
