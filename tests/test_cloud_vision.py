"""CloudVisionLabeler against an in-process ImageAnnotator gRPC fake, through the real client."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator

import grpc
import pytest
from google.cloud import vision_v1
from google.rpc import code_pb2
from PIL import Image

from fakes.vision import FakeVision, annotation, error, key_of
from redditvision import retry
from redditvision.errors import ComparisonError, ConfigError
from redditvision.labelers import CloudVisionLabeler, GenericLabeler


def jpeg(seed: int, size: tuple[int, int] = (32, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (seed % 256, (seed * 7) % 256, (seed * 13) % 256)).save(
        buffer, format="JPEG"
    )
    return buffer.getvalue()


def noisy_png(side: int) -> bytes:
    rng = random.Random(side)
    image = Image.frombytes(
        "RGB", (side, side), bytes(rng.getrandbits(8) for _ in range(side * side * 3))
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def vision() -> Iterator[FakeVision]:
    with FakeVision() as fake:
        yield fake


@pytest.fixture
def labeler(vision: FakeVision) -> Iterator[CloudVisionLabeler]:
    client = vision.client()
    with CloudVisionLabeler(client=client) as labeler:
        yield labeler
    client.transport.close()


def test_labeler_is_a_generic_labeler(labeler: CloudVisionLabeler) -> None:
    assert isinstance(labeler, GenericLabeler)
    assert labeler.name == "cloud_vision"


def test_labels_web_entities_and_best_guess_come_back_per_image(
    vision: FakeVision, labeler: CloudVisionLabeler
) -> None:
    z4, m3 = jpeg(1), jpeg(2)
    vision.script[key_of(z4)] = annotation(
        labels=[("Car", 0.98), ("Bmw", 0.93), ("Vehicle", 0.9)],
        web=[("BMW Z4", 1.42), ("Car", 0.6), ("", 0.5)],
        best_guess="bmw z4 2012",
    )
    vision.script[key_of(m3)] = annotation(labels=[("Sports car", 0.8)], web=[("BMW M3", 0.7)])

    first, second = labeler.label([z4, m3], max_results=3)

    assert first.error is None
    # Merged and deduplicated (the higher "Car" kept), best first, web scores clamped to 1.
    assert [(g.label, g.score, g.source) for g in first.labels[:3]] == [
        ("BMW Z4", 1.0, "web_entity"),
        ("Car", pytest.approx(0.98), "label_detection"),
        ("Bmw", pytest.approx(0.93), "label_detection"),
    ]
    assert first.best_guess == "bmw z4 2012"
    assert first.labels[-1].label == "bmw z4 2012"
    assert first.labels[-1].score is None
    assert first.labels[0].mid == "/g/0"
    assert [g.label for g in second.labels] == ["Sports car", "BMW M3"]
    assert second.best_guess is None
    request = vision.server.calls_to("BatchAnnotateImages")[0].request.requests[0]
    assert {f.type_ for f in request.features} == {
        vision_v1.Feature.Type.LABEL_DETECTION,
        vision_v1.Feature.Type.WEB_DETECTION,
    }
    assert {f.max_results for f in request.features} == {3}
    assert request.image.content == z4


def test_an_error_for_one_image_in_a_batch_of_20_is_recorded_for_it_only(
    vision: FakeVision, labeler: CloudVisionLabeler
) -> None:
    images = [jpeg(i) for i in range(20)]
    vision.script[key_of(images[7])] = error(code_pb2.INVALID_ARGUMENT, "Bad image data.")

    results = labeler.label(images)

    assert len(results) == 20
    assert results[7].error == "INVALID_ARGUMENT: Bad image data."
    assert results[7].labels == ()
    assert all(r.error is None and r.labels for i, r in enumerate(results) if i != 7)
    assert vision.batch_sizes() == [16, 4]


def test_unavailable_once_is_retried_by_our_policy_alone(
    vision: FakeVision, labeler: CloudVisionLabeler
) -> None:
    vision.server.fail("BatchAnnotateImages", grpc.StatusCode.UNAVAILABLE, times=1)

    results = labeler.label([jpeg(1), jpeg(2)])

    assert [r.error for r in results] == [None, None]
    assert [call.status for call in vision.server.calls_to("BatchAnnotateImages")] == [
        "UNAVAILABLE",
        "OK",
    ]
    # One wait, ours: the GAPIC method got retry=None, so it did not retry on its own.
    assert len(retry.recorded_sleeps()) == 1


def test_unavailable_with_retries_off_raises_a_transient_error_after_one_call(
    vision: FakeVision,
) -> None:
    vision.server.fail("BatchAnnotateImages", grpc.StatusCode.UNAVAILABLE, times=1)
    client = vision.client()
    with CloudVisionLabeler(client=client, retry=None) as labeler:
        with pytest.raises(ComparisonError) as caught:
            labeler.label([jpeg(1)])
    client.transport.close()
    assert caught.value.status == "UNAVAILABLE"
    assert caught.value.service == "vision"
    assert caught.value.transient
    assert len(vision.server.calls_to("BatchAnnotateImages")) == 1


def test_retry_after_from_the_server_is_honoured(
    vision: FakeVision, labeler: CloudVisionLabeler
) -> None:
    vision.server.fail(
        "BatchAnnotateImages", grpc.StatusCode.RESOURCE_EXHAUSTED, times=1, retry_after=7.0
    )
    assert labeler.label([jpeg(1)])[0].error is None
    assert retry.recorded_sleeps()[0] >= 7.0


def test_permission_denied_is_not_retried_and_raises(
    vision: FakeVision, labeler: CloudVisionLabeler
) -> None:
    vision.server.fail("BatchAnnotateImages", grpc.StatusCode.PERMISSION_DENIED, times=None)
    with pytest.raises(ComparisonError) as caught:
        labeler.label([jpeg(1)])
    assert caught.value.status == "PERMISSION_DENIED"
    assert not caught.value.transient
    assert len(vision.server.calls_to("BatchAnnotateImages")) == 1


def test_17_images_go_in_two_batches(vision: FakeVision, labeler: CloudVisionLabeler) -> None:
    results = labeler.label([jpeg(i) for i in range(17)])
    assert len(results) == 17
    assert vision.batch_sizes() == [16, 1]


def test_a_batch_of_0_images_makes_no_call(vision: FakeVision, labeler: CloudVisionLabeler) -> None:
    assert labeler.label([]) == []
    assert vision.server.calls == []


def test_gs_uris_go_as_image_source_and_bytes_as_content(
    vision: FakeVision, labeler: CloudVisionLabeler
) -> None:
    uri = "gs://my-bucket/cars/z4.jpg"
    vision.script[uri] = annotation(web=[("BMW Z4", 0.9)])
    data = jpeg(3)

    from_uri, from_bytes, not_uri = labeler.label([uri, data, "/tmp/z4.jpg"])

    assert [g.label for g in from_uri.labels] == ["BMW Z4"]
    assert from_bytes.error is None
    assert not_uri.error is not None and "not a gs://" in not_uri.error
    sent = vision.server.calls_to("BatchAnnotateImages")[0].request.requests
    assert sent[0].image.source.image_uri == uri
    assert sent[0].image.content == b""
    assert sent[1].image.content == data
    assert len(sent) == 2


def test_an_image_over_the_request_limit_is_shrunk_to_a_jpeg_under_it(
    vision: FakeVision,
) -> None:
    big = noisy_png(400)
    limit = 60_000
    assert len(big) > limit
    client = vision.client()
    with CloudVisionLabeler(client=client, max_request_bytes=limit) as labeler:
        results = labeler.label([big, jpeg(1), jpeg(2)])
    client.transport.close()
    assert all(r.error is None for r in results)
    sent = [
        request.image.content
        for call in vision.server.calls_to("BatchAnnotateImages")
        for request in call.request.requests
    ]
    assert len(sent[0]) <= limit
    assert Image.open(io.BytesIO(sent[0])).format == "JPEG"
    for call in vision.server.calls_to("BatchAnnotateImages"):
        assert sum(len(r.image.content) for r in call.request.requests) <= limit


def test_an_oversized_image_that_cannot_be_decoded_is_an_error_for_that_image(
    vision: FakeVision,
) -> None:
    client = vision.client()
    with CloudVisionLabeler(client=client, max_request_bytes=2048) as labeler:
        broken, fine = labeler.label([b"\x00" * 5000, jpeg(1)])
    client.transport.close()
    assert broken.error is not None and "re-encoded" in broken.error
    assert fine.error is None


def test_unknown_feature_and_bad_max_results_are_config_errors(vision: FakeVision) -> None:
    client = vision.client()
    with pytest.raises(ConfigError, match="LABEL_DETECTION"):
        CloudVisionLabeler(client=client, features=["LABELS"])
    with CloudVisionLabeler(client=client) as labeler, pytest.raises(ConfigError):
        labeler.label([jpeg(1)], max_results=0)
    client.transport.close()


def test_close_is_idempotent_and_a_closed_labeler_refuses_work(vision: FakeVision) -> None:
    client = vision.client()
    labeler = CloudVisionLabeler(client=client, owns_client=True)
    labeler.close()
    labeler.close()
    with pytest.raises(ComparisonError, match="closed"):
        labeler.label([jpeg(1)])


def test_from_env_without_credentials_is_a_config_error_without_the_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    missing = f"{tmp_path}/secret-key-file.json"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", missing)
    with pytest.raises(ConfigError) as caught:
        CloudVisionLabeler.from_env()
    assert "secret-key-file" not in str(caught.value)
    assert "application-default" in str(caught.value)
