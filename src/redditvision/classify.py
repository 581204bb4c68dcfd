"""``Classifier``: predictions from a trained model on any backend, in one result type.

A backend's :class:`~redditvision.backends.PredictionBackend` opens a
:class:`~redditvision.backends.Predictor` for a
:class:`~redditvision.models.TrainedModel` (loading a model folder, or deploying a cloud model
to an endpoint). ``Classifier`` turns every accepted image input into encoded bytes, batches
them, and returns :class:`~redditvision.models.Prediction` lists sorted best first, with labels
in the user's original names.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Union

from PIL import Image

from redditvision._closing import Closeable
from redditvision.backends._protocol import PredictionBackend, Predictor
from redditvision.backends._registry import build_backend, folder_backend, get_backend
from redditvision.errors import ConfigError, PredictionError
from redditvision.models import Prediction, TrainedModel

__all__ = ["Classifier", "ImageInput", "PredictionBackend", "Predictor", "read_image_bytes"]

ImageInput = Union[str, "os.PathLike[str]", bytes, Image.Image]
"""An image given as a file path, encoded bytes (JPEG, PNG, ...), or a Pillow image."""


def read_image_bytes(image: ImageInput) -> bytes:
    """Return the encoded bytes of an image input.

    Args:
        image: A path (``str`` or ``os.PathLike``), encoded bytes, or a Pillow image (encoded
            as PNG).

    Returns:
        The bytes.

    Raises:
        PredictionError: The path does not exist or cannot be read.
    """
    if isinstance(image, bytes):
        return image
    if isinstance(image, Image.Image):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    path = Path(image)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PredictionError(f"cannot read image {path}: {exc.strerror or exc}") from exc


def _image_name(image: ImageInput, position: int) -> str:
    """How an error names an input: its path, else ``image N`` (0-based position)."""
    return str(image) if isinstance(image, (str, os.PathLike)) else f"image {position}"


class Classifier(Closeable):
    """Classify images with a trained model from any backend.

    Args:
        model: The model handle, or for the local backend the model folder's path.
        backend: Keyword-only. The backend that opens the model; default: the registered
            backend named by ``model.backend``, built without options (the local backend
            for a model folder). Backends that need options (the cloud ones) must be
            passed, e.g. ``VertexAutoMLBackend.from_env(...)``.
        deploy: Cloud backends: deploy the model if needed (and undeploy on close).
        batch_size: Images per request in :meth:`predict_many` (default 32).

    Raises:
        ConfigError: No backend was given for a model whose backend needs options, or
            ``model.backend`` is not registered.

    Example:
        >>> with Classifier("models/bmw") as classifier:  # doctest: +SKIP
        ...     print(classifier.predict("z4.jpg")[0].label)
    """

    def __init__(
        self,
        model: TrainedModel | str | os.PathLike[str],
        *,
        backend: PredictionBackend | None = None,
        deploy: bool = True,
        batch_size: int = 32,
    ) -> None:
        if not isinstance(model, TrainedModel):
            model = TrainedModel(backend=folder_backend(), resource=str(Path(model)))
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if backend is None:
            if get_backend(model.backend).needs_options:
                raise ConfigError(
                    f"a {model.backend!r} model needs its backend: pass "
                    "Classifier(model, backend=...) built with from_env()"
                )
            backend = build_backend(model.backend)
        self.model = model
        self.backend = backend
        self.batch_size = batch_size
        self._predictor: Predictor | None = None
        self._deploy = deploy
        self._closed = False

    @classmethod
    def from_endpoint(
        cls,
        url: str,
        *,
        api_key: str | None = None,
        credentials: Any = None,
        label_map: Mapping[str, str] | None = None,
        batch_size: int = 32,
        **options: Any,
    ) -> Classifier:
        """Classify with a Vertex-shaped REST endpoint: ``redditvision serve`` or Vertex AI.

        Args:
            url: ``http://HOST:PORT`` of ``redditvision serve``, or a Vertex AI endpoint's
                REST URL (``https://REGION-aiplatform.googleapis.com/v1/projects/P/
                locations/L/endpoints/E``); see :func:`redditvision.backends.rest.predict_url`.
            api_key: Sent as ``x-goog-api-key`` (the server's ``--api-key-env`` key).
            credentials: ``google.auth`` credentials (default: Application Default
                Credentials for Google URLs).
            label_map: Endpoint display name -> your label name (optional).
            batch_size: Images per :meth:`predict_many` step (default 32).
            **options: More :class:`~redditvision.backends.rest.RestEndpointBackend`
                options (``instances_per_request``, ``retry``, ``timeout``, ``session``).

        Returns:
            The classifier; closing it closes the HTTP session.

        Raises:
            ConfigError: ``url`` is not an http(s) URL.
        """
        from redditvision.backends.rest import RestEndpointBackend

        backend = RestEndpointBackend(
            url, api_key=api_key, credentials=credentials, close_with_predictor=True, **options
        )
        model = TrainedModel(backend=backend.name, resource=url, label_map=dict(label_map or {}))
        return cls(model, backend=backend, batch_size=batch_size)

    def __repr__(self) -> str:
        return f"Classifier(model={self.model.resource!r}, backend={self.backend.name!r})"

    @property
    def predictor(self) -> Predictor:
        """The open predictor (opened on first use)."""
        if self._closed:
            raise PredictionError("this Classifier is closed")
        if self._predictor is None:
            self._predictor = self.backend.open_predictor(self.model, deploy=self._deploy)
        return self._predictor

    def predict(
        self,
        image: ImageInput,
        *,
        confidence_threshold: float = 0.0,
        max_predictions: int | None = None,
    ) -> list[Prediction]:
        """Predict the labels of one image.

        Args:
            image: A path, encoded bytes or a Pillow image.
            confidence_threshold: Drop predictions scored below this (default 0.0, like
                Vertex AI's ``confidenceThreshold``).
            max_predictions: Keep at most this many (default all; Vertex AI's
                ``maxPredictions``).

        Returns:
            Predictions sorted by score, best first, labels in the user's names.

        Raises:
            PredictionError: The image cannot be read or the model cannot answer.
        """
        return self.predict_many(
            [image], confidence_threshold=confidence_threshold, max_predictions=max_predictions
        )[0]

    def predict_many(
        self,
        images: Iterable[ImageInput],
        *,
        confidence_threshold: float = 0.0,
        max_predictions: int | None = None,
    ) -> list[list[Prediction]]:
        """Predict the labels of many images, ``batch_size`` at a time.

        Args:
            images: Paths, encoded bytes or Pillow images.
            confidence_threshold: Drop predictions scored below this (default 0.0).
            max_predictions: Keep at most this many per image (default all).

        Returns:
            One list per image, in input order; an empty input gives an empty list.

        Raises:
            PredictionError: An image cannot be read or the model cannot answer.
            ConfigError: ``confidence_threshold`` is outside ``[0, 1]`` or
                ``max_predictions`` is below 1.
        """
        if not 0.0 <= confidence_threshold <= 1.0:
            raise ConfigError(f"confidence_threshold must be in [0, 1], got {confidence_threshold}")
        if max_predictions is not None and max_predictions < 1:
            raise ConfigError(f"max_predictions must be at least 1, got {max_predictions}")
        results: list[list[Prediction]] = []
        batch: list[bytes] = []
        names: list[str] = []
        for position, image in enumerate(images):
            batch.append(read_image_bytes(image))
            names.append(_image_name(image, position))
            if len(batch) == self.batch_size:
                results.extend(
                    self._predict_batch(batch, names, confidence_threshold, max_predictions)
                )
                batch, names = [], []
        if batch:
            results.extend(self._predict_batch(batch, names, confidence_threshold, max_predictions))
        return results

    def _predict_batch(
        self,
        batch: list[bytes],
        names: list[str],
        confidence_threshold: float,
        max_predictions: int | None,
    ) -> list[list[Prediction]]:
        """Ask the predictor for one batch; an undecodable image's error names its file."""
        try:
            return self.predictor.predict(
                batch, confidence_threshold=confidence_threshold, max_predictions=max_predictions
            )
        except PredictionError as exc:
            index = getattr(exc.__cause__, "index", None)  # the local backend's ImageDecodeError
            if not isinstance(index, int) or not 0 <= index < len(names):
                raise
            text, prefix = str(exc), f"image {index} "
            named = (
                f"{names[index]} {text[len(prefix) :]}"
                if text.startswith(prefix)
                else f"{names[index]}: {text}"
            )
            raise PredictionError(named) from exc

    def close(self) -> None:
        """Close the predictor (undeploying what it deployed); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._predictor is not None:
            self._predictor.close()
            self._predictor = None
