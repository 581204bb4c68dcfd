"""Translation of ``google.api_core`` exceptions into the redditvision error tree.

Shared by every Google client wrapper (Cloud Storage, Vertex AI, AutoML, Cloud Vision), so
that status names, retry-after and transience are read one way.
"""

from __future__ import annotations

from collections.abc import Callable

from google.api_core import exceptions as core_exceptions

from redditvision.errors import RedditVisionError

__all__ = [
    "TRANSIENT_GRPC_STATUSES",
    "google_retry_after",
    "is_transient_google",
    "translate_google",
]

TRANSIENT_GRPC_STATUSES = frozenset(
    {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "INTERNAL", "ABORTED"}
)
"""gRPC statuses that a retry may cure (google.aip.dev/194), for idempotent calls only."""

_TRANSIENT_HTTP = frozenset({408, 429, 500, 502, 503, 504})


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
    if isinstance(exc, core_exceptions.RetryError):
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
