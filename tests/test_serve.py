"""The prediction server on loopback, asked by real HTTP clients: answers, limits and errors."""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from redditvision.classify import Classifier
from redditvision.errors import ConfigError
from redditvision.models import Prediction, TrainedModel
from redditvision.serve import BackgroundServer, create_app
from serve_support import holdout_images, tiny_classifier, tiny_model, wait_ready

VERTEX_ROUTE = "/v1/projects/my-project/locations/us-central1/endpoints/123:predict"


@pytest.fixture(scope="module")
def model(bmw_photos: Path) -> TrainedModel:
    return tiny_model(bmw_photos)


@pytest.fixture(scope="module")
def images(bmw_photos: Path) -> list[bytes]:
    return holdout_images(bmw_photos, 12)


@pytest.fixture(scope="module")
def classifier(model: TrainedModel) -> Iterator[Classifier]:
    with tiny_classifier(model) as opened:
        yield opened


@pytest.fixture(scope="module")
def server(classifier: Classifier) -> Iterator[BackgroundServer]:
    app = create_app(classifier, max_instances=16, max_batch_size=8, max_wait=0.05)
    with BackgroundServer(app) as running:
        wait_ready(running.url)
        yield running


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def body_for(*images: bytes, **parameters: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "instances": [{"content": b64(i), "mimeType": "image/jpeg"} for i in images]
    }
    if parameters:
        body["parameters"] = parameters
    return body


def as_pairs(answer: dict[str, Any]) -> list[list[tuple[str, float]]]:
    return [
        list(zip(p["displayNames"], p["confidences"], strict=True)) for p in answer["predictions"]
    ]


def expected(
    classifier: Classifier, images: list[bytes], **kwargs: Any
) -> list[list[tuple[str, float]]]:
    ranked: list[list[Prediction]] = classifier.predict_many(images, **kwargs)
    return [[(p.label, p.score) for p in row] for row in ranked]


def assert_close(got: list[list[tuple[str, float]]], want: list[list[tuple[str, float]]]) -> None:
    assert [[label for label, _ in row] for row in got] == [
        [label for label, _ in row] for row in want
    ]
    for got_row, want_row in zip(got, want, strict=True):
        assert [s for _, s in got_row] == pytest.approx([s for _, s in want_row], abs=1e-6)


def assert_google_error(response: httpx.Response, code: int, *words: str) -> dict[str, Any]:
    assert response.status_code == code, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["status"], str) and error["status"].isupper()
    for word in words:
        assert word in error["message"], error["message"]
    return dict(error)


def assert_still_serving(server: BackgroundServer, image: bytes) -> None:
    answer = httpx.post(server.url + "/predict", json=body_for(image), timeout=30)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 1


# -- answers ---------------------------------------------------------------------------


def test_vertex_route_answers_like_the_classifier_in_process(
    server: BackgroundServer, classifier: Classifier, images: list[bytes]
) -> None:
    answer = httpx.post(server.url + VERTEX_ROUTE, json=body_for(*images[:3]), timeout=30)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert_close(as_pairs(data), expected(classifier, images[:3]))
    assert data["model"] == classifier.model.resource
    assert data["modelDisplayName"] == "bmw-thumbnails"
    assert len(data["deployedModelId"]) == 16
    # ids are the labels' positions in the model, displayNames the user's own names.
    first = data["predictions"][0]
    assert set(first["displayNames"]) == {"z3-4-8", "x-suv", "3-4series"}
    assert sorted(first["ids"]) == ["0", "1", "2"]


def test_parameters_threshold_and_max_predictions_are_applied(
    server: BackgroundServer, classifier: Classifier, images: list[bytes]
) -> None:
    answer = httpx.post(
        server.url + "/predict",
        json=body_for(*images[:4], confidenceThreshold=0.2, maxPredictions=1),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert_close(
        as_pairs(answer.json()),
        expected(classifier, images[:4], confidence_threshold=0.2, max_predictions=1),
    )
    assert all(len(p["confidences"]) <= 1 for p in answer.json()["predictions"])


def test_concurrent_clients_get_their_own_unmixed_answers_in_shared_batches(
    server: BackgroundServer, classifier: Classifier, images: list[bytes]
) -> None:
    want = expected(classifier, images)
    before = httpx.get(server.url + "/metadata").json()["batching"]

    def ask(index: int) -> tuple[int, list[list[tuple[str, float]]]]:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            answer = client.post("/predict", json=body_for(images[index % len(images)]))
            assert answer.status_code == 200, answer.text
            return index, as_pairs(answer.json())

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(ask, range(48)))
    for index, got in results:
        assert_close(got, [want[index % len(images)]])
    after = httpx.get(server.url + "/metadata").json()["batching"]
    assert after["requests"] - before["requests"] == 48
    # 48 requests in fewer forward passes: concurrent requests shared batches.
    assert after["batches"] - before["batches"] < 48
    assert after["largestBatch"] > 1


def test_health_and_metadata_describe_the_loaded_model(
    server: BackgroundServer, model: TrainedModel
) -> None:
    assert httpx.get(server.url + "/health").json() == {"status": "ready"}
    meta = httpx.get(server.url + "/metadata").json()
    assert meta["labels"] == ["3-4series", "x-suv", "z3-4-8"]
    assert meta["modelLabels"] == list(model.labels)
    assert meta["backbone"] == {"id": "test-thumbnail-8", "version": "1"}
    assert len(meta["fingerprint"]) == 64
    assert meta["metrics"]["evaluated_items"] > 0
    assert meta["limits"]["maxInstances"] == 16
    assert meta["limits"]["maxInstanceBytes"] == 1_500_000


def test_openapi_documents_the_predict_routes(server: BackgroundServer) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    assert "/predict" in spec["paths"]
    route = "/v1/projects/{project}/locations/{location}/endpoints/{endpoint}:predict"
    assert "post" in spec["paths"][route]
    schema = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert schema["schema"]["required"] == ["instances"]
    assert httpx.get(server.url + "/docs").status_code == 200


# -- bad input: a clear error, and the server keeps serving ---------------------------------


def test_a_body_that_is_not_json_is_refused(server: BackgroundServer, images: list[bytes]) -> None:
    answer = httpx.post(
        server.url + "/predict", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_google_error(answer, 400, "not valid JSON")
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert_still_serving(server, images[0])


def test_a_body_without_instances_is_refused(server: BackgroundServer, images: list[bytes]) -> None:
    answer = httpx.post(server.url + "/predict", json={"parameters": {}})
    assert_google_error(answer, 400, '"instances"')
    assert_still_serving(server, images[0])


def test_an_instance_without_content_is_named(
    server: BackgroundServer, images: list[bytes]
) -> None:
    body = body_for(images[0])
    body["instances"].append({"mimeType": "image/jpeg"})
    answer = httpx.post(server.url + "/predict", json=body)
    assert_google_error(answer, 400, "instances[1]", '"content"')
    assert_still_serving(server, images[0])


def test_content_that_is_not_base64_is_named(server: BackgroundServer, images: list[bytes]) -> None:
    answer = httpx.post(
        server.url + "/predict", json={"instances": [{"content": "@@not base64@@"}]}
    )
    assert_google_error(answer, 400, "instances[0].content", "base64")
    assert_still_serving(server, images[0])


def test_content_that_is_not_an_image_is_named(
    server: BackgroundServer, images: list[bytes]
) -> None:
    body = body_for(images[0], images[1], b"<html>this is a web page</html>")
    answer = httpx.post(server.url + "/predict", json=body)
    assert_google_error(answer, 400, "instances[2]", "not an image")
    assert_still_serving(server, images[0])


def test_a_two_megabyte_instance_is_over_the_vertex_limit(
    server: BackgroundServer, images: list[bytes]
) -> None:
    big = images[0] + b"\0" * (2_000_000 - len(images[0]))
    answer = httpx.post(server.url + "/predict", json=body_for(big), timeout=30)
    assert_google_error(answer, 400, "instances[0].content", "1,500,000", "1.5 MB")
    assert_still_serving(server, images[0])


def test_a_thousand_instances_are_over_the_instance_limit(
    server: BackgroundServer, images: list[bytes]
) -> None:
    body = {"instances": [{"content": b64(b"x")}] * 1000}
    answer = httpx.post(server.url + "/predict", json=body, timeout=30)
    assert_google_error(answer, 400, "1000 instances", "limit of 16")
    assert_still_serving(server, images[0])


def test_a_wrong_content_type_is_refused(server: BackgroundServer, images: list[bytes]) -> None:
    answer = httpx.post(
        server.url + "/predict",
        content=json.dumps(body_for(images[0])).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_google_error(answer, 400, "Content-Type", "application/json")
    assert_still_serving(server, images[0])


def test_get_on_the_predict_route_is_not_allowed(
    server: BackgroundServer, images: list[bytes]
) -> None:
    for path in ("/predict", VERTEX_ROUTE):
        answer = httpx.get(server.url + path)
        assert_google_error(answer, 405, "GET", "POST")
    assert_google_error(httpx.get(server.url + "/nowhere"), 404, "/nowhere")
    assert_still_serving(server, images[0])


def test_a_body_over_the_size_cap_is_refused_before_it_is_read(
    classifier: Classifier, images: list[bytes]
) -> None:
    with BackgroundServer(create_app(classifier, max_body_bytes=10_000)) as small:
        wait_ready(small.url)
        answer = httpx.post(small.url + "/predict", json=body_for(images[0]))
        assert_google_error(answer, 400, "10,000-byte limit")
        tiny = httpx.post(small.url + "/predict", json=body_for(images[0][:10]))
        assert_google_error(tiny, 400, "not an image")


def test_a_request_past_its_timeout_gets_deadline_exceeded(
    classifier: Classifier, images: list[bytes]
) -> None:
    # A second client sends its headers and part of its body, then stalls: the batch
    # waits up to 5 s for it (a request is on its way), longer than the 1 s timeout.
    app = create_app(classifier, request_timeout=1.0, max_wait=5.0, max_batch_size=64)
    with BackgroundServer(app) as slow:
        wait_ready(slow.url)
        host, port = slow.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as stalled:
            stalled.sendall(
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100000\r\n\r\n{"instances": ['
            )
            # Until the server has taken the stalled request's headers.
            assert any(
                httpx.get(slow.url + "/metadata").json()["batching"]["incoming"] == 1
                for _ in range(3000)
            )
            answer = httpx.post(slow.url + "/predict", json=body_for(images[0]), timeout=30)
        assert_google_error(answer, 504, "timeout")
        assert answer.json()["error"]["status"] == "DEADLINE_EXCEEDED"
        assert httpx.get(slow.url + "/health").status_code == 200


def test_a_lone_request_does_not_wait_for_company(
    classifier: Classifier, images: list[bytes]
) -> None:
    # max_wait is spent only while other requests are on their way: with none, a request
    # is answered at once, not after the 30 s a batch may wait.
    app = create_app(classifier, request_timeout=60.0, max_wait=30.0, max_batch_size=64)
    with BackgroundServer(app) as lone:
        wait_ready(lone.url)
        started = time.monotonic()
        answer = httpx.post(lone.url + "/predict", json=body_for(images[0]), timeout=60)
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - started < 15


def read_response(raw: socket.socket) -> bytes:
    """Read one HTTP/1.1 response whole: the head, then as many body bytes as it declares.

    One ``recv`` may return the head alone (the body arrives in a second segment), so
    the test reads until the declared ``Content-Length`` is in or the peer closes.
    """
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = raw.recv(65536)
        if not chunk:
            return answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    expected = int(match.group(1)) if match else None
    while expected is None or len(body) < expected:
        chunk = raw.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_a_body_that_never_arrives_gets_a_timeout_and_the_server_keeps_serving(
    classifier: Classifier, images: list[bytes]
) -> None:
    with BackgroundServer(create_app(classifier, request_timeout=0.5)) as slow:
        wait_ready(slow.url)
        host, port = slow.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as raw:
            raw.sendall(
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"instances": ['
            )
            answer = read_response(raw)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), head
        assert json.loads(body)["error"]["status"] == "DEADLINE_EXCEEDED"
        assert_still_serving(slow, images[0])


def test_a_client_that_disconnects_mid_request_does_not_stop_the_server(
    server: BackgroundServer, images: list[bytes]
) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    payload = json.dumps(body_for(images[0])).encode()
    for sent in (0, 100, len(payload)):
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                + payload[:sent]
            )
    assert_still_serving(server, images[0])
    assert_still_serving(server, images[1])


# -- API key --------------------------------------------------------------------------


def test_an_api_key_is_required_checked_and_never_echoed(
    classifier: Classifier, images: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    key = "s3cret-key-for-the-test"
    caplog.set_level(logging.DEBUG)
    with BackgroundServer(create_app(classifier, api_key=key), api_key=key) as guarded:
        wait_ready(guarded.url)
        missing = httpx.post(guarded.url + "/predict", json=body_for(images[0]))
        assert_google_error(missing, 401, "x-goog-api-key")
        assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
        wrong = httpx.post(
            guarded.url + "/predict", json=body_for(images[0]), headers={"x-goog-api-key": "nope"}
        )
        assert_google_error(wrong, 403, "not valid")
        assert "nope" not in wrong.text
        assert_google_error(httpx.get(guarded.url + "/metadata"), 401)
        for headers in ({"x-goog-api-key": key}, {"Authorization": f"Bearer {key}"}):
            ok = httpx.post(guarded.url + "/predict", json=body_for(images[0]), headers=headers)
            assert ok.status_code == 200, ok.text
            assert key not in ok.text
        assert httpx.get(guarded.url + "/health").status_code == 200
    assert key not in caplog.text


def test_binding_beyond_loopback_needs_an_api_key(classifier: Classifier) -> None:
    with pytest.raises(ConfigError, match="API key"):
        BackgroundServer(create_app(classifier), host="0.0.0.0")
    with pytest.raises(ConfigError, match="empty"):
        create_app(classifier, api_key="")


# -- the official client and arbitrary input --------------------------------------------


def test_the_official_vertex_rest_client_gets_the_in_process_predictions(
    server: BackgroundServer, classifier: Classifier, images: list[bytes]
) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1
    from google.protobuf import json_format

    client = aiplatform_v1.PredictionServiceClient(
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        transport="rest",
        client_options={"api_endpoint": server.url},
    )
    endpoint = client.endpoint_path("my-project", "us-central1", "123")
    for image in images[:4]:
        response = client.predict(
            endpoint=endpoint,
            instances=[json_format.ParseDict({"content": b64(image)}, struct_value())],
            parameters=json_format.ParseDict({"maxPredictions": 3}, struct_value()),
        )
        got = [
            list(zip(p["displayNames"], p["confidences"], strict=True))
            for p in (
                json_format.MessageToDict(v)
                for v in aiplatform_v1.PredictResponse.pb(response).predictions
            )
        ]
        assert_close(got, expected(classifier, [image]))
        assert response.model == classifier.model.resource
        assert response.deployed_model_id
    client.transport.close()


def struct_value() -> Any:
    from google.protobuf import struct_pb2

    return struct_pb2.Value()
