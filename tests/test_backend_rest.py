"""The REST prediction backend against our server and a scripted Vertex-shaped peer."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from google.oauth2.credentials import Credentials
from PIL import Image
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from redditvision import retry
from redditvision.backends.rest import RestEndpointBackend, predict_url
from redditvision.classify import Classifier, PredictionBackend
from redditvision.errors import ConfigError, PredictionError
from redditvision.models import TrainedModel
from redditvision.serve import BackgroundServer, create_app
from serve_support import holdout_images, tiny_classifier, tiny_model, wait_ready

KEY = "rest-backend-test-key"
ANSWER = {
    "predictions": [
        {"ids": ["1", "2"], "displayNames": ["bmwz4", "bmwx5"], "confidences": [0.2, 0.8]}
    ],
    "deployedModelId": "42",
}


@pytest.fixture(scope="module")
def model(bmw_photos: Path) -> TrainedModel:
    return tiny_model(bmw_photos)


@pytest.fixture(scope="module")
def images(bmw_photos: Path) -> list[bytes]:
    return holdout_images(bmw_photos, 6)


@pytest.fixture(scope="module")
def local(model: TrainedModel) -> Iterator[Classifier]:
    with tiny_classifier(model) as opened:
        yield opened


@pytest.fixture(scope="module")
def server(local: Classifier) -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(local, api_key=KEY), api_key=KEY) as running:
        wait_ready(running.url)
        yield running


def test_from_endpoint_round_trips_the_in_process_predictions(
    server: BackgroundServer, local: Classifier, images: list[bytes]
) -> None:
    want = local.predict_many(images)
    with Classifier.from_endpoint(server.url, api_key=KEY, batch_size=4) as remote:
        assert isinstance(remote.backend, PredictionBackend)
        got = remote.predict_many(images)
        top = remote.predict(images[0], max_predictions=1)
    assert [[p.label for p in row] for row in got] == [[p.label for p in row] for row in want]
    for got_row, want_row in zip(got, want, strict=True):
        assert [p.score for p in got_row] == pytest.approx([p.score for p in want_row], abs=1e-6)
    assert len(top) == 1
    assert top[0].label == want[0][0].label


def test_the_vertex_route_url_and_a_threshold_work_too(
    server: BackgroundServer, local: Classifier, images: list[bytes]
) -> None:
    url = server.url + "/v1/projects/p/locations/europe-west4/endpoints/7"
    with Classifier.from_endpoint(url, api_key=KEY) as remote:
        got = remote.predict(images[1], confidence_threshold=0.3)
    want = local.predict(images[1], confidence_threshold=0.3)
    assert [p.label for p in got] == [p.label for p in want]


def test_an_image_over_the_online_limit_is_re_encoded_and_answered(
    server: BackgroundServer, local: Classifier
) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (900, 900, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    big = buffer.getvalue()
    assert len(big) > 1_500_000
    with Classifier.from_endpoint(server.url, api_key=KEY) as remote:
        got = remote.predict(big)
    assert len(got) == 3
    assert sum(p.score for p in got) == pytest.approx(1.0, abs=1e-6)


def test_a_wrong_key_is_an_error_with_the_servers_message_and_no_secret(
    server: BackgroundServer, images: list[bytes]
) -> None:
    with Classifier.from_endpoint(server.url, api_key="not-the-key") as remote:
        with pytest.raises(PredictionError, match="not valid") as caught:
            remote.predict(images[0])
        assert caught.value.status == 403
        assert not caught.value.transient
        assert "not-the-key" not in str(caught.value) + repr(remote.backend)


def test_429_and_503_are_retried_honouring_retry_after(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/predict", method="POST").respond_with_json(
        {"error": {"code": 503, "message": "warming up", "status": "UNAVAILABLE"}},
        status=503,
        headers={"Retry-After": "7"},
    )
    httpserver.expect_ordered_request("/predict", method="POST").respond_with_json(
        {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}},
        status=429,
        headers={"Retry-After": "3"},
    )
    httpserver.expect_ordered_request("/predict", method="POST").respond_with_json(ANSWER)
    with Classifier.from_endpoint(httpserver.url_for("/"), label_map={"bmwz4": "z4"}) as remote:
        got = remote.predict(b"\x89PNG-not-checked-client-side")
    assert [(p.label, p.model_label, p.score) for p in got] == [
        ("bmwx5", "bmwx5", 0.8),
        ("z4", "bmwz4", 0.2),
    ]
    waits = retry.recorded_sleeps()
    assert len(waits) == 2
    assert waits[0] >= 7
    assert waits[1] >= 3


def test_a_400_is_not_retried(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/predict", method="POST").respond_with_json(
        {"error": {"code": 400, "message": "instances[0] is bad", "status": "INVALID_ARGUMENT"}},
        status=400,
    )
    with (
        Classifier.from_endpoint(httpserver.url_for("/")) as remote,
        pytest.raises(PredictionError, match=r"instances\[0\] is bad") as caught,
    ):
        remote.predict(b"x")
    assert caught.value.status == 400
    assert len(httpserver.log) == 1
    assert retry.recorded_sleeps() == []


def test_credentials_send_a_bearer_token_that_never_shows(httpserver: HTTPServer) -> None:
    seen: list[str] = []

    def answer(request: Request) -> Response:
        seen.append(request.headers.get("Authorization", ""))
        body = json.loads(request.data)
        assert body["parameters"] == {"confidenceThreshold": 0.0, "maxPredictions": 2}
        assert len(body["instances"]) == 1
        return Response(json.dumps(ANSWER), content_type="application/json")

    httpserver.expect_request(
        "/v1/projects/p/locations/l/endpoints/9:predict"
    ).respond_with_handler(answer)
    token = "ya29.secret-token"
    backend = RestEndpointBackend(credentials=Credentials(token=token))
    url = httpserver.url_for("/v1/projects/p/locations/l/endpoints/9")
    with Classifier(TrainedModel(backend="rest", resource=url), backend=backend) as remote:
        remote.predict(b"x", max_predictions=2)
    backend.close()
    assert seen == [f"Bearer {token}"]
    assert token not in repr(backend)


def test_endpoint_urls_are_resolved_to_their_predict_method() -> None:
    assert predict_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/predict"
    assert predict_url("http://127.0.0.1:8080/predict") == "http://127.0.0.1:8080/predict"
    vertex = "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/endpoints/1"
    assert predict_url(vertex) == vertex + ":predict"
    assert predict_url(vertex + ":predict") == vertex + ":predict"
    with pytest.raises(ConfigError, match="not an endpoint URL"):
        predict_url("ftp://example.com")
    with pytest.raises(ConfigError, match="needs the endpoint URL"):
        RestEndpointBackend().open_predictor(TrainedModel(backend="local", resource="x"))
