"""``CloudVisionLabeler``: generic labels from Google Cloud Vision (label and web detection)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redditvision._closing import Closeable
from redditvision._google import map_google_errors
from redditvision._imaging import fit_image_bytes
from redditvision.errors import ComparisonError, ConfigError
from redditvision.labelers._base import ImageLabels
from redditvision.models import GenericLabel
from redditvision.retry import (
    DEFAULT,
    RetryArg,
    RetryPolicy,
    call_with_retry,
    is_transient,
    resolve_retry,
)

if TYPE_CHECKING:
    from google.cloud import vision_v1

__all__ = ["VISION_MAX_IMAGES_PER_REQUEST", "VISION_MAX_REQUEST_BYTES", "CloudVisionLabeler"]

logger = logging.getLogger(__name__)


VISION_MAX_IMAGES_PER_REQUEST = 16
"""Images per ``batch_annotate_images`` request (Cloud Vision content limits: 16)."""

VISION_MAX_REQUEST_BYTES = 7_500_000
"""Encoded image bytes sent in one request by default.

Cloud Vision limits the request object to 10 MB and base64 makes the bytes about 4/3 as
large (Cloud Vision content limits: "JSON request object size 10 MB"; "Image file size
20 MB"), so 7.5 MB of image bytes per request stays under both. Larger images are shrunk.
"""

_GS_URI = re.compile(r"^gs://[a-z0-9][a-z0-9._-]{1,220}/.+", re.IGNORECASE)


def _clamp01(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


class CloudVisionLabeler(Closeable):
    """Generic labels from Google Cloud Vision (label detection and web detection).

    Images go to ``ImageAnnotator.BatchAnnotateImages`` in requests of at most
    :data:`VISION_MAX_IMAGES_PER_REQUEST` images and :data:`VISION_MAX_REQUEST_BYTES` bytes.
    Encoded bytes are sent as ``image.content``, shrunk (JPEG, longest side from 2048 px
    down) when one image alone is over the byte budget; ``gs://`` URIs are sent as
    ``image.source.image_uri`` so the service reads them from Cloud Storage itself.

    Label detection gives scored labels ("Car", "Vehicle", "Bmw"); web detection gives web
    entities, which often name the exact model ("BMW Z4"), and a best-guess label. Web
    entity scores are relevance scores that may exceed 1; they are clamped to ``[0, 1]``.

    A per-image failure comes back in ``response.error`` and is recorded in that image's
    :attr:`ImageLabels.error`; it never fails the batch. The batch call is retried with
    :class:`~redditvision.retry.RetryPolicy` (UNAVAILABLE, DEADLINE_EXCEEDED,
    RESOURCE_EXHAUSTED, ...); the GAPIC call itself gets ``retry=None`` so there is one
    retry layer (the ``label_detection`` helper would not retry at all).

    Args:
        client: Keyword-only. A ``google.cloud.vision_v1.ImageAnnotatorClient``.
        features: Feature type names (``Feature.Type``) to request, default
            ``("LABEL_DETECTION", "WEB_DETECTION")``.
        retry: The policy for the batch call; :data:`~redditvision.retry.DEFAULT` is 5
            attempts within 120 s on transient errors; None for one attempt.
        timeout: Seconds per ``batch_annotate_images`` call (default 60.0).
        max_request_bytes: Encoded image bytes per request (default
            :data:`VISION_MAX_REQUEST_BYTES`).
        owns_client: Close the client's transport in :meth:`close` (default False for an
            injected client; :meth:`from_env` sets True).

    Raises:
        ConfigError: An unknown feature name, or a byte budget below 1 KiB.

    Example:
        >>> with CloudVisionLabeler.from_env() as labeler:  # doctest: +SKIP
        ...     labels = labeler.label([open("z4.jpg", "rb").read()])
    """

    name = "cloud_vision"

    def __init__(
        self,
        *,
        client: vision_v1.ImageAnnotatorClient,
        features: Sequence[str] = ("LABEL_DETECTION", "WEB_DETECTION"),
        retry: RetryArg = DEFAULT,
        timeout: float | None = 60.0,
        max_request_bytes: int = VISION_MAX_REQUEST_BYTES,
        owns_client: bool = False,
    ) -> None:
        from google.cloud import vision_v1

        feature_type: Any = vision_v1.Feature.Type
        types: list[Any] = []
        for feature in features:
            try:
                types.append(feature_type[feature])
            except KeyError as exc:
                known = ", ".join(t.name for t in feature_type if t.value)
                raise ConfigError(
                    f"unknown Cloud Vision feature {feature!r}; use one of: {known}"
                ) from exc
        if max_request_bytes < 1024:
            raise ConfigError(f"max_request_bytes must be at least 1024, got {max_request_bytes}")
        self._client = client
        self._features = tuple(types)
        self._default_retry = RetryPolicy(on=is_transient, attempts=5, timeout=120.0)
        self._retry = resolve_retry(retry, self._default_retry)
        self._timeout = timeout
        self._max_request_bytes = max_request_bytes
        self._owns_client = owns_client
        self._closed = False

    @classmethod
    def from_env(cls, *, api_endpoint: str | None = None, **kwargs: Any) -> CloudVisionLabeler:
        """Build a labeler with an ``ImageAnnotatorClient`` from Application Default Credentials.

        Args:
            api_endpoint: Another service endpoint, e.g. ``"eu-vision.googleapis.com"`` to
                keep images in the EU (Cloud Vision's regional endpoints); default the
                global ``vision.googleapis.com``.
            **kwargs: Passed to the constructor (``features``, ``retry``, ``timeout``, ...).

        Returns:
            A labeler that owns (and closes) its client.

        Raises:
            ConfigError: No credentials were found (run ``gcloud auth application-default
                login`` or set ``GOOGLE_APPLICATION_CREDENTIALS``).
        """
        import google.auth.exceptions
        from google.cloud import vision_v1

        try:
            client = vision_v1.ImageAnnotatorClient(
                client_options={"api_endpoint": api_endpoint} if api_endpoint else None
            )
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise ConfigError(
                "no Google Cloud credentials for Cloud Vision: run `gcloud auth "
                "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
            ) from exc
        return cls(client=client, owns_client=True, **kwargs)

    def __repr__(self) -> str:
        names = ",".join(feature.name for feature in self._features)
        return f"CloudVisionLabeler(features={names})"

    def label(self, images: Sequence[bytes | str], *, max_results: int = 10) -> list[ImageLabels]:
        """Label images with Cloud Vision.

        Args:
            images: Encoded image bytes, or ``gs://bucket/object`` URIs of images already
                in Cloud Storage.
            max_results: Labels kept per image after merging label detection and web
                entities, best first (default 10); also sent as each feature's
                ``max_results``.

        Returns:
            One :class:`ImageLabels` per image, in input order. A per-image error from the
            service, a string that is not a ``gs://`` URI, or an oversized image that
            cannot be shrunk is recorded in that image's ``error``.

        Raises:
            ConfigError: ``max_results`` is below 1.
            ComparisonError: The batch call itself failed after retries (credentials,
                permission, quota), with the gRPC status in ``status``.
        """
        if max_results < 1:
            raise ConfigError(f"max_results must be at least 1, got {max_results}")
        if self._closed:
            raise ComparisonError("this CloudVisionLabeler is closed")
        from google.cloud import vision_v1

        results: list[ImageLabels | None] = [None] * len(images)
        features = [vision_v1.Feature(type_=t, max_results=max_results) for t in self._features]
        batch: list[tuple[int, Any]] = []
        batch_bytes = 0
        for index, item in enumerate(images):
            request_image, size, error = self._request_image(item)
            if error is not None:
                results[index] = ImageLabels(error=error)
                continue
            if batch and (
                len(batch) >= VISION_MAX_IMAGES_PER_REQUEST
                or batch_bytes + size > self._max_request_bytes
            ):
                self._annotate(batch, features, results, max_results)
                batch, batch_bytes = [], 0
            batch.append(
                (index, vision_v1.AnnotateImageRequest(image=request_image, features=features))
            )
            batch_bytes += size
        if batch:
            self._annotate(batch, features, results, max_results)
        return [
            result if result is not None else ImageLabels(error="no answer") for result in results
        ]

    def _request_image(self, item: bytes | str) -> tuple[Any, int, str | None]:
        from google.cloud import vision_v1

        if isinstance(item, str):
            if not _GS_URI.match(item):
                return None, 0, f"{item!r} is not a gs://bucket/object URI; pass the image bytes"
            return vision_v1.Image(source=vision_v1.ImageSource(image_uri=item)), 0, None
        data = item
        if len(data) > self._max_request_bytes:
            try:
                data = fit_image_bytes(
                    data, limit=self._max_request_bytes, max_side=2048, error=ComparisonError
                )
            except ComparisonError as exc:
                return None, 0, exc.message
            logger.debug("shrunk an image from %d to %d bytes", len(item), len(data))
        return vision_v1.Image(content=data), len(data), None

    def _annotate(
        self,
        batch: list[tuple[int, Any]],
        features: list[Any],
        results: list[ImageLabels | None],
        max_results: int,
    ) -> None:
        requests = [request for _, request in batch]

        def call() -> Any:
            with map_google_errors(
                ComparisonError,
                service="vision",
                action=f"Cloud Vision batch_annotate_images of {len(requests)} images",
            ):
                return self._client.batch_annotate_images(
                    requests=requests, retry=None, timeout=self._timeout
                )

        response = call_with_retry(self._retry, call)
        if len(response.responses) != len(batch):
            raise ComparisonError(
                f"Cloud Vision answered {len(response.responses)} responses for "
                f"{len(batch)} images",
                service="vision",
            )
        for (index, _), answer in zip(batch, response.responses, strict=True):
            results[index] = self._parse(answer, max_results)

    @staticmethod
    def _parse(answer: Any, max_results: int) -> ImageLabels:
        if answer.error.code:
            from google.rpc import code_pb2

            try:
                code = code_pb2.Code.Name(answer.error.code)
            except ValueError:
                code = str(answer.error.code)
            return ImageLabels(error=f"{code}: {answer.error.message or 'no message'}")
        best: dict[str, GenericLabel] = {}

        def keep(label: GenericLabel) -> None:
            key = label.label.casefold()
            old = best.get(key)
            if old is None or (label.score or 0.0) > (old.score or 0.0):
                best[key] = label

        for annotation in answer.label_annotations:
            if annotation.description:
                keep(
                    GenericLabel(
                        label=annotation.description,
                        score=_clamp01(annotation.score),
                        source="label_detection",
                        mid=annotation.mid or None,
                    )
                )
        web = answer.web_detection
        for entity in web.web_entities:
            if entity.description:
                keep(
                    GenericLabel(
                        label=entity.description,
                        score=_clamp01(entity.score),
                        source="web_entity",
                        mid=entity.entity_id or None,
                    )
                )
        best_guess = next((g.label for g in web.best_guess_labels if g.label), None)
        ordered = sorted(best.values(), key=lambda g: -(g.score or 0.0))[:max_results]
        if best_guess is not None and best_guess.casefold() not in best:
            ordered.append(GenericLabel(label=best_guess, score=None, source="best_guess"))
        return ImageLabels(labels=tuple(ordered), best_guess=best_guess)

    def close(self) -> None:
        """Close the client's transport when this labeler built it; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            transport: Any = self._client.transport
            transport.close()
