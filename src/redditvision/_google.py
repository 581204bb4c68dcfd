"""The one error boundary of every Google client wrapper: :func:`map_google_errors`.

As httpx maps httpcore's exceptions in one context manager
(``httpx/_transports/default.py``, ``map_httpcore_exceptions``), every call into a Google
client (Cloud Storage, Vertex AI, AutoML, Cloud Vision) runs inside
:func:`map_google_errors`, which translates

* ``google.api_core`` exceptions (gRPC and HTTP) into the caller's error class, with the
  service, the status name or code, ``retry_after`` and transience filled in;
* ``google.auth`` transport errors (the token endpoint could not be reached) the same way,
  as transient;
* ``google.auth`` refresh and credential errors (``RefreshError``,
  ``DefaultCredentialsError``: the credentials were refused or there are none) into
  :class:`~redditvision.errors.ConfigError` naming the fix, never the credentials;
* ``requests`` connection errors and timeouts underneath the HTTP clients, as transient;
* a ``ValueError`` of the client's own request checks into
  :class:`~redditvision.errors.ConfigError` (no plain ``ValueError`` escapes).

Retryable statuses come from the one table in :mod:`redditvision.retry`
(:data:`~redditvision.retry.RETRY_GRPC_STATUSES`, :data:`~redditvision.retry.RETRY_HTTP_STATUSES`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from google.api_core import exceptions as core_exceptions
from google.auth import exceptions as auth_exceptions

from redditvision.errors import ConfigError, RedditVisionError
from redditvision.retry import RETRY_GRPC_STATUSES, RETRY_HTTP_STATUSES

__all__ = [
    "TRANSIENT_GRPC_STATUSES",
    "google_error",
    "google_retry_after",
    "is_transient_google",
    "map_google_errors",
    "translate_google",
]

TRANSIENT_GRPC_STATUSES = RETRY_GRPC_STATUSES
"""gRPC statuses that a retry may cure (the table in :mod:`redditvision.retry`)."""

_TRANSIENT_HTTP = RETRY_HTTP_STATUSES


def _status_of(exc: core_exceptions.GoogleAPICallError) -> int | str | None:
    grpc_status = getattr(exc, "grpc_status_code", None)
    if grpc_status is not None:
        return str(grpc_status.name)
    code = getattr(exc, "code", None)
    return int(code) if isinstance(code, int) else None


def google_retry_after(exc: BaseException) -> float | None:
    """Read a server's requested delay from a ``google.api_core`` exception.

    gRPC errors carry it as ``google.rpc.RetryInfo`` in ``exc.details``; HTTP (JSON) errors
    as a ``Retry-After`` header on ``exc.response``.

    Args:
        exc: The exception.

    Returns:
        Seconds, or None when the server did not say.
    """
    for detail in getattr(exc, "details", None) or []:
        delay = getattr(detail, "retry_delay", None)
        if delay is not None and hasattr(delay, "seconds"):
            return float(delay.seconds) + float(getattr(delay, "nanos", 0)) / 1e9
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is not None:
        from redditvision.retry import parse_retry_after

        value = headers.get("Retry-After")
        if value is not None:
            return parse_retry_after(str(value))
    return None


def is_transient_google(exc: BaseException) -> bool:
    """Tell whether a ``google.api_core`` exception is worth retrying.

    Args:
        exc: Any exception.

    Returns:
        True for UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, ABORTED, HTTP
        408/429/5xx, and for connection errors from ``requests``.
    """
    if isinstance(exc, RedditVisionError):
        return exc.transient
    if isinstance(exc, core_exceptions.GoogleAPICallError):
        status = _status_of(exc)
        if isinstance(status, str):
            return status in TRANSIENT_GRPC_STATUSES
        return status in _TRANSIENT_HTTP
    if isinstance(exc, core_exceptions.RetryError | auth_exceptions.TransportError):
        return True
    try:
        import requests

        return isinstance(exc, requests.ConnectionError | requests.Timeout)
    except ImportError:  # pragma: no cover - requests is a dependency
        return False


def translate_google(
    exc: BaseException,
    error_type: Callable[..., RedditVisionError],
    *,
    service: str,
    action: str,
) -> RedditVisionError:
    """Build the redditvision error for a Google client exception (``raise ... from exc``).

    Args:
        exc: The exception from ``google.api_core`` (or ``requests`` underneath).
        error_type: The redditvision error class to build, e.g. ``StorageError``.
        service: Service name for the error (``"storage"``, ``"vertex"``, ...).
        action: What we were doing, naming the item, e.g. ``"uploading cars/1.jpg"``.

    Returns:
        The error, with service, status, retry-after and transience filled in. The server's
        message is kept; credentials never appear in it.
    """
    status = _status_of(exc) if isinstance(exc, core_exceptions.GoogleAPICallError) else None
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return error_type(
        f"{action} failed: {message}",
        service=service,
        status=status,
        retry_after=google_retry_after(exc),
        transient=is_transient_google(exc),
    )


def google_error(
    exc: BaseException, error: type[RedditVisionError], *, service: str, action: str
) -> RedditVisionError | None:
    """Translate one exception as :func:`map_google_errors` does, or return None.

    For exceptions handed back rather than raised (e.g. the per-object results of
    ``google.cloud.storage.transfer_manager``).

    Args:
        exc: The exception.
        error: The redditvision error class of the call.
        service: Service name of the error.
        action: What the call did, naming the item.

    Returns:
        The translated error (raise it ``from exc``), or None when ``exc`` is neither a
        Google client, credentials nor connection error (a bug to let through).
    """
    if isinstance(exc, RedditVisionError):
        return exc
    if isinstance(exc, core_exceptions.GoogleAPIError | auth_exceptions.TransportError):
        return translate_google(exc, error, service=service, action=action)
    if isinstance(exc, auth_exceptions.RefreshError):
        if getattr(exc, "retryable", False):
            return error(
                f"{action} failed: refreshing the Google credentials failed for now "
                f"({type(exc).__name__}); try again",
                service=service,
                transient=True,
            )
        return ConfigError(
            f"{action} failed: Google credentials were refused ({type(exc).__name__}); run "
            "`gcloud auth application-default login` or check GOOGLE_APPLICATION_CREDENTIALS",
            service=service,
        )
    if isinstance(exc, auth_exceptions.GoogleAuthError):
        return ConfigError(
            f"{action} failed: no usable Google credentials ({type(exc).__name__}); run "
            "`gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS",
            service=service,
        )
    if isinstance(exc, OSError) and is_transient_google(exc):
        return translate_google(exc, error, service=service, action=action)
    if isinstance(exc, ValueError):
        # The clients check requests before sending (e.g. a resource name that matches no
        # HTTP binding of the REST transport): bad input, not a service failure.
        return ConfigError(
            f"{action} failed: the client refused the request ({exc})", service=service
        )
    return None


@contextmanager
def map_google_errors(
    error: type[RedditVisionError], *, service: str, action: str
) -> Iterator[None]:
    """Translate every Google client exception raised inside the block (``raise ... from``).

    Args:
        error: The redditvision error class of this call, e.g.
            :class:`~redditvision.errors.StorageError`, ``TrainingError``.
        service: Service name of the error (``"storage"``, ``"vertex"``, ``"automl"``,
            ``"vision"``).
        action: What the block does, naming the item, e.g. ``"uploading cars/1.jpg"``.

    Yields:
        Nothing; use as ``with map_google_errors(StorageError, service="storage",
        action=...):``.

    Raises:
        RedditVisionError: Of class ``error`` for API, transport and connection errors
            (status, retry-after and transience kept); redditvision errors raised inside
            pass through unchanged.
        ConfigError: The credentials were refused or cannot be found (``RefreshError``,
            ``DefaultCredentialsError`` and other ``google.auth`` errors; a refresh error
            the library marks retryable is of class ``error`` and transient instead), or
            the client refused the request before sending it (a ``ValueError``, e.g. a
            malformed resource name).
    """
    try:
        yield
    except RedditVisionError:
        raise
    except Exception as exc:
        translated = google_error(exc, error, service=service, action=action)
        if translated is None:
            raise
        raise translated from exc
