"""One error boundary for Google calls: ``map_google_errors`` translates the same way everywhere."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from google.api_core import exceptions as core_exceptions
from google.auth import credentials as auth_credentials
from google.auth import exceptions as auth_exceptions

from redditvision._google import map_google_errors
from redditvision.errors import ConfigError, PredictionError, StorageError, TrainingError
from redditvision.models import TrainedModel
from redditvision.retry import LOST_ANSWER_STATUSES, RETRY_GRPC_STATUSES, RETRY_HTTP_STATUSES


class RefusedCredentials(auth_credentials.Credentials):  # type: ignore[misc]  # untyped base
    """Credentials whose token refresh is refused, as a revoked refresh token is."""

    def __init__(self) -> None:
        super().__init__()
        self.refreshes = 0

    def refresh(self, request: Any) -> None:
        self.refreshes += 1
        raise auth_exceptions.RefreshError("invalid_grant: Token has been expired or revoked.")


def test_an_api_error_keeps_its_status_and_transience() -> None:
    with pytest.raises(StorageError, match=r"uploading a\.jpg failed: slow down") as caught:
        with map_google_errors(StorageError, service="storage", action="uploading a.jpg"):
            raise core_exceptions.TooManyRequests("slow down")
    assert caught.value.status == 429
    assert caught.value.transient
    assert caught.value.service == "storage"
    assert isinstance(caught.value.__cause__, core_exceptions.TooManyRequests)


def test_a_refused_refresh_is_a_config_error_naming_the_fix_not_the_token() -> None:
    with pytest.raises(ConfigError, match="application-default login") as caught:
        with map_google_errors(TrainingError, service="vertex", action="reading model m"):
            raise auth_exceptions.RefreshError("invalid_grant", {"refresh_token": "1//secret"})
    assert "secret" not in str(caught.value)
    assert caught.value.service == "vertex"


def test_a_retryable_refresh_error_is_transient_of_the_callers_class() -> None:
    error = auth_exceptions.RefreshError("the token endpoint is busy", retryable=True)
    with pytest.raises(PredictionError) as caught:
        with map_google_errors(PredictionError, service="vision", action="labeling"):
            raise error
    assert caught.value.transient


def test_missing_default_credentials_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no usable Google credentials"):
        with map_google_errors(StorageError, service="storage", action="listing"):
            raise auth_exceptions.DefaultCredentialsError("no ADC")


def test_an_unreachable_token_endpoint_is_transient() -> None:
    with pytest.raises(StorageError) as caught:
        with map_google_errors(StorageError, service="storage", action="listing"):
            raise auth_exceptions.TransportError("connection refused")
    assert caught.value.transient


def test_our_own_errors_pass_through_unchanged() -> None:
    original = TrainingError("already translated", status="NOT_FOUND")
    with pytest.raises(TrainingError) as caught:
        with map_google_errors(StorageError, service="storage", action="x"):
            raise original
    assert caught.value is original


def test_the_status_table_is_the_one_the_google_boundary_reads() -> None:
    from redditvision import _google

    assert _google.TRANSIENT_GRPC_STATUSES is RETRY_GRPC_STATUSES
    assert {429, 503} <= RETRY_HTTP_STATUSES
    assert "DEADLINE_EXCEEDED" in LOST_ANSWER_STATUSES
    assert "RESOURCE_EXHAUSTED" not in LOST_ANSWER_STATUSES  # refused: nothing was created


def test_vertex_translates_a_refused_refresh(tmp_path: Any) -> None:
    from google.cloud import aiplatform_v1 as aip

    from redditvision.backends.vertex import VertexAutoMLBackend

    credentials = RefusedCredentials()
    options = {"api_endpoint": "127.0.0.1:9"}

    def client(cls: Any) -> Any:
        return cls(credentials=credentials, transport="rest", client_options=options)

    with VertexAutoMLBackend(
        dataset_client=client(aip.DatasetServiceClient),
        pipeline_client=client(aip.PipelineServiceClient),
        model_client=client(aip.ModelServiceClient),
        endpoint_client=client(aip.EndpointServiceClient),
        prediction_client=client(aip.PredictionServiceClient),
        project="p",
        location="us-central1",
        state_dir=tmp_path,
        retry=None,
    ) as backend:
        with pytest.raises(ConfigError, match="credentials were refused") as caught:
            backend.evaluate(
                TrainedModel(backend="vertex", resource="projects/p/locations/us-central1/models/1")
            )
    assert credentials.refreshes >= 1
    assert caught.value.service == "vertex"
    assert isinstance(caught.value.__cause__, auth_exceptions.RefreshError)


def test_legacy_automl_translates_a_refused_refresh(tmp_path: Any) -> None:
    from google.cloud import automl_v1

    from redditvision.backends.automl import AutoMLShutdownWarning, LegacyAutoMLBackend

    credentials = RefusedCredentials()
    options = {"api_endpoint": "127.0.0.1:9"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutoMLShutdownWarning)
        backend = LegacyAutoMLBackend(
            client=automl_v1.AutoMlClient(
                credentials=credentials, transport="rest", client_options=options
            ),
            prediction_client=automl_v1.PredictionServiceClient(
                credentials=credentials, transport="rest", client_options=options
            ),
            project="p",
            state_dir=tmp_path,
            retry=None,
        )
    with backend, pytest.raises(ConfigError, match="credentials were refused") as caught:
        backend.evaluate(
            TrainedModel(backend="automl", resource="projects/p/locations/us-central1/models/1")
        )
    assert credentials.refreshes >= 1
    assert caught.value.service == "automl"


def test_a_request_the_client_refuses_is_a_config_error_not_a_plain_value_error() -> None:
    with pytest.raises(ConfigError, match="the client refused the request"):
        with map_google_errors(TrainingError, service="vertex", action="listing evaluations"):
            raise ValueError("Invalid request: field parent does not match projects/*")


def test_cloud_storage_translates_a_refused_refresh(tmp_path: Any) -> None:
    from google.cloud import storage
    from PIL import Image

    from redditvision.models import LabeledDataset, LabeledImage, MLUse
    from redditvision.storage import GcsDatasetWriter

    path = tmp_path / "z4.png"
    Image.new("RGB", (4, 4)).save(path, format="PNG")
    dataset = LabeledDataset(
        images=(LabeledImage(path=path, label="z4", original_label="Z4", ml_use=MLUse.TRAINING),),
    )
    credentials = RefusedCredentials()
    client = storage.Client(
        project="p",
        credentials=credentials,
        client_options={"api_endpoint": "http://127.0.0.1:9"},
    )
    with GcsDatasetWriter(client=client, bucket="cars", retry=None) as writer:
        with pytest.raises(ConfigError, match="credentials were refused") as caught:
            writer.write(dataset)
    assert credentials.refreshes >= 1
    assert caught.value.service == "storage"
