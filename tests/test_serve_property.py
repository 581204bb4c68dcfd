"""Property: any predict body gets predictions or Google's error shape, never a 500."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from redditvision.serve import (
    ApiError,
    BackgroundServer,
    PredictRequest,
    create_app,
    parse_predict_request,
)
from serve_support import tiny_classifier, tiny_model, wait_ready


def png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
images = st.builds(
    png,
    st.integers(1, 16),
    st.integers(1, 16),
    st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
)
contents = st.one_of(
    images.map(lambda data: base64.b64encode(data).decode()),
    st.binary(max_size=64).map(lambda data: base64.b64encode(data).decode()),
    st.text(max_size=40),
    json_values,
)
instances = st.one_of(
    st.fixed_dictionaries({"content": contents}, optional={"mimeType": st.text(max_size=10)}),
    json_values,
)
parameters = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "confidenceThreshold": st.one_of(st.floats(-1, 2), json_values),
            "maxPredictions": st.one_of(st.integers(-3, 10), st.floats(-1, 10), json_values),
        },
    ),
    json_values,
)
documents = st.one_of(
    st.fixed_dictionaries(
        {"instances": st.lists(instances, max_size=4)}, optional={"parameters": parameters}
    ),
    json_values,
)
bodies = st.one_of(documents.map(lambda d: json.dumps(d).encode()), st.binary(max_size=200))


@given(body=bodies)
@settings(max_examples=300, deadline=None)
def test_parsing_returns_a_request_or_a_400_api_error(body: bytes) -> None:
    outcome: PredictRequest | ApiError
    try:
        outcome = parse_predict_request(body, "application/json", max_instances=3)
    except ApiError as exc:
        outcome = exc
    if isinstance(outcome, ApiError):
        assert outcome.code == 400
        assert outcome.google_status == "INVALID_ARGUMENT"
        assert outcome.message
    else:
        parsed = outcome
        assert 1 <= len(parsed.images) <= 3
        assert 0.0 <= parsed.confidence_threshold <= 1.0
        assert parsed.max_predictions is None or parsed.max_predictions >= 1


@pytest.fixture(scope="module")
def server(bmw_photos: Path) -> Iterator[BackgroundServer]:
    with (
        tiny_classifier(tiny_model(bmw_photos)) as classifier,
        BackgroundServer(create_app(classifier, max_instances=3)) as running,
    ):
        wait_ready(running.url)
        yield running


@given(body=bodies, content_type=st.sampled_from(["application/json", "text/plain", ""]))
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_the_server_answers_any_body_with_predictions_or_the_google_error_shape(
    server: BackgroundServer, body: bytes, content_type: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    answer = httpx.post(server.url + "/predict", content=body, headers=headers, timeout=30)
    data: Any = answer.json()
    if answer.status_code == 200:
        assert len(data["predictions"]) >= 1
        for prediction in data["predictions"]:
            assert (
                len(prediction["ids"])
                == len(prediction["displayNames"])
                == len(prediction["confidences"])
            )
    else:
        assert answer.status_code == 400, answer.text
        assert set(data) == {"error"}
        assert set(data["error"]) == {"code", "message", "status"}
        assert data["error"]["code"] == 400
