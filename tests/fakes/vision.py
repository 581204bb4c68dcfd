"""A fake ``google.cloud.vision.v1.ImageAnnotator`` on loopback, scripted per image.

Built on :mod:`tests.fakes.grpcbase`: the real request and response types, decoded and
encoded by the server, so the real ``ImageAnnotatorClient`` talks to it over gRPC.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from google.cloud import vision_v1
from google.rpc import status_pb2

from fakes.grpcbase import FakeGrpcServer, insecure_client

SERVICE = "google.cloud.vision.v1.ImageAnnotator"


def image_key(image: vision_v1.Image) -> str:
    """The script key of a request image: its gs:// URI or the SHA-256 of its content."""
    if image.source.image_uri:
        return image.source.image_uri
    return hashlib.sha256(image.content).hexdigest()


def key_of(data: bytes | str) -> str:
    """The script key for bytes or a URI, as :func:`image_key` computes it on the server."""
    return data if isinstance(data, str) else hashlib.sha256(data).hexdigest()


def annotation(
    *,
    labels: list[tuple[str, float]] = (),  # type: ignore[assignment]
    web: list[tuple[str, float]] = (),  # type: ignore[assignment]
    best_guess: str | None = None,
) -> vision_v1.AnnotateImageResponse:
    """Build the answer for one image: label annotations, web entities, best guess."""
    return vision_v1.AnnotateImageResponse(
        label_annotations=[
            vision_v1.EntityAnnotation(mid=f"/m/{i}", description=text, score=score)
            for i, (text, score) in enumerate(labels)
        ],
        web_detection=vision_v1.WebDetection(
            web_entities=[
                vision_v1.WebDetection.WebEntity(entity_id=f"/g/{i}", description=text, score=score)
                for i, (text, score) in enumerate(web)
            ],
            best_guess_labels=(
                [vision_v1.WebDetection.WebLabel(label=best_guess)] if best_guess else []
            ),
        ),
    )


def error(code: int, message: str) -> vision_v1.AnnotateImageResponse:
    """Build a per-image error answer (``response.error``)."""
    return vision_v1.AnnotateImageResponse(error=status_pb2.Status(code=code, message=message))


class FakeVision:
    """The ImageAnnotator service: answers each image from :attr:`script` by key.

    Images without a script entry get "Car" (0.97) and "Vehicle" (0.9). Every request
    seen is kept in ``server.calls`` (see :class:`FakeGrpcServer`).
    """

    def __init__(self) -> None:
        self.server = FakeGrpcServer()
        self.script: dict[str, vision_v1.AnnotateImageResponse] = {}
        self._lock = threading.Lock()
        self.server.add_method(
            SERVICE,
            "BatchAnnotateImages",
            vision_v1.BatchAnnotateImagesRequest,
            vision_v1.BatchAnnotateImagesResponse,
            self._batch,
        )

    def _batch(self, request: Any, _context: Any) -> vision_v1.BatchAnnotateImagesResponse:
        answers = []
        for item in request.requests:
            with self._lock:
                scripted = self.script.get(image_key(item.image))
            answers.append(
                scripted
                if scripted is not None
                else annotation(labels=[("Car", 0.97), ("Vehicle", 0.9)])
            )
        return vision_v1.BatchAnnotateImagesResponse(responses=answers)

    def batch_sizes(self) -> list[int]:
        """Images per BatchAnnotateImages call that got an answer or a fault, in order."""
        return [len(call.request.requests) for call in self.server.calls_to("BatchAnnotateImages")]

    def client(self) -> vision_v1.ImageAnnotatorClient:
        """A real ImageAnnotatorClient over an insecure channel to this fake."""
        return insecure_client(vision_v1.ImageAnnotatorClient, self.server.address)

    def __enter__(self) -> FakeVision:
        self.server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.stop()
