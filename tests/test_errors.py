"""The error tree: one root, misuse errors are ValueErrors, service details are kept."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as core_exceptions

import redditvision
from redditvision import errors
from redditvision._google import is_transient_google, translate_google


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_derives_from_the_root(name: str) -> None:
    assert issubclass(getattr(errors, name), redditvision.RedditVisionError)


def test_misuse_errors_are_value_errors_and_missing_extras_import_errors() -> None:
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.DatasetError, ValueError)
    assert issubclass(errors.MissingDependencyError, ImportError)
    assert issubclass(errors.UnsafeURLError, errors.DownloadError)


def test_service_details_appear_in_the_message() -> None:
    exc = errors.SourceError("listing r/BMW failed", service="reddit", status=429, retry_after=7)
    assert str(exc) == "listing r/BMW failed (service=reddit, status=429, retry_after=7s)"
    assert exc.status == 429 and exc.retry_after == 7


def test_grpc_unavailable_translates_to_a_transient_error_with_its_status() -> None:
    cause = core_exceptions.ServiceUnavailable("backend down")
    err = translate_google(
        cause, errors.TrainingError, service="vertex", action="getting pipeline p1"
    )
    assert isinstance(err, errors.TrainingError)
    assert err.status == "UNAVAILABLE"
    assert err.transient is True
    assert "getting pipeline p1 failed: backend down" in str(err)


def test_invalid_argument_is_permanent() -> None:
    cause = core_exceptions.InvalidArgument("bad label")
    assert is_transient_google(cause) is False
    err = translate_google(cause, errors.TrainingError, service="vertex", action="import")
    assert err.status == "INVALID_ARGUMENT" and not err.transient


def test_http_429_with_retry_after_header_is_read() -> None:
    class _Response:
        headers = {"Retry-After": "12"}

    cause = core_exceptions.TooManyRequests("slow down", response=_Response())
    err = translate_google(cause, errors.StorageError, service="storage", action="upload")
    assert err.retry_after == 12.0 and err.transient and err.status == 429
