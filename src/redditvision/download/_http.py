"""HTTP answers and failures of an image fetch, as :class:`~redditvision.errors.DownloadError`.

Transient failures (the statuses of :data:`redditvision.retry.RETRY_HTTP_STATUSES`, timeouts,
cut-off bodies, refused connections) are marked ``transient`` so the downloader retries them;
everything else is final for that item.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from redditvision.errors import DownloadError, UnsafeURLError
from redditvision.retry import RETRY_HTTP_STATUSES, parse_retry_after

__all__ = ["check_status", "translate", "translate_raw"]


def check_status(response: requests.Response, url: str) -> None:
    """Raise a DownloadError for any status but 200 (transient for the retried statuses)."""
    status = response.status_code
    if status == 200:
        return
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    reason = response.reason or ""
    if status in RETRY_HTTP_STATUSES:  # the one table of redditvision.retry
        raise DownloadError(
            f"HTTP {status} {reason} from {url}".rstrip(),
            service="http",
            status=status,
            retry_after=retry_after,
            transient=True,
        )
    raise DownloadError(
        f"HTTP {status} {reason} from {url}".replace("  ", " "),
        service="http",
        status=status,
    )


def translate_raw(exc: Exception, url: str) -> DownloadError:
    """Map a urllib3 or socket error while reading the body to a DownloadError."""
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return DownloadError(f"timed out reading the body of {url}", service="http", transient=True)
    if isinstance(exc, urllib3.exceptions.DecodeError):
        return DownloadError(f"cannot decode the body of {url}: {exc}", service="http")
    return DownloadError(
        f"the body of {url} was cut off: {type(exc).__name__}", service="http", transient=True
    )


def translate(exc: requests.RequestException, url: str) -> DownloadError:
    """Map a requests exception to a DownloadError (transient for network trouble)."""
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema):
        return UnsafeURLError(f"{url!r} is not a URL the downloader fetches: {exc}")
    if isinstance(exc, requests.exceptions.Timeout):
        return DownloadError(f"timed out fetching {url}", service="http", transient=True)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return DownloadError(
            f"the body of {url} was cut off: {exc}", service="http", transient=True
        )
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return DownloadError(f"cannot decode the body of {url}: {exc}", service="http")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return DownloadError(
            f"connection to {urlsplit(url).netloc} failed: {type(exc).__name__}",
            service="http",
            transient=True,
        )
    return DownloadError(f"request for {url} failed: {exc}", service="http")
