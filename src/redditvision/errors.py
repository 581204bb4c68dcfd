"""The exception tree of redditvision.

Every error this library raises on purpose derives from :class:`RedditVisionError`.
Errors from the libraries underneath (prawcore, requests, google.api_core, Pillow,
scikit-learn) are translated at each client's boundary with ``raise ... from exc``, so
the original stays available as ``__cause__``::

    RedditVisionError
    ├── ConfigError (ValueError)           bad settings, missing credentials or user agent
    │   └── MissingDependencyError (ImportError)   an optional extra is not installed
    ├── SourceError                        Reddit listings, saved listings, dumps
    │   └── ListingFormatError (ValueError)        a file that is not a listing or dump
    ├── DownloadError                      fetching one image
    │   └── UnsafeURLError (ValueError)            scheme or address refused (SSRF guard)
    ├── DatasetError (ValueError)          labels, splits, checks against service limits
    ├── StorageError                       Cloud Storage or the local dataset folder
    ├── TrainingError                      dataset import, training pipeline, evaluation
    │   └── ModelFormatError (ValueError)          a model folder that cannot be trusted
    ├── PredictionError                    online prediction, deploy, undeploy
    └── ComparisonError                    generic labeling and comparison reports

Every error may carry what the service said: :attr:`~RedditVisionError.service` (for
example ``"reddit"``, ``"storage"``, ``"vertex"``), :attr:`~RedditVisionError.status` (an
HTTP status code or a gRPC status name), :attr:`~RedditVisionError.retry_after` (seconds,
from a ``Retry-After`` header or gRPC ``RetryInfo``) and whether the failure is
:attr:`~RedditVisionError.transient` (worth retrying).

Messages never contain secrets: client secrets, tokens and credential paths are left out.
"""

from __future__ import annotations

__all__ = [
    "ComparisonError",
    "ConfigError",
    "DatasetError",
    "DownloadError",
    "ListingFormatError",
    "MissingDependencyError",
    "ModelFormatError",
    "PredictionError",
    "RedditVisionError",
    "SourceError",
    "StorageError",
    "TrainingError",
    "UnsafeURLError",
]


class RedditVisionError(Exception):
    """Root of every error raised by redditvision.

    Args:
        message: What went wrong, naming the item and, where there is one, the fix.
        service: The remote service involved, e.g. ``"reddit"``, ``"http"``,
            ``"storage"``, ``"vertex"``, ``"automl"``, ``"vision"``; ``None`` for local
            failures.
        status: The HTTP status code (``int``) or gRPC status name (``str``, e.g.
            ``"UNAVAILABLE"``) the service answered with, when known.
        retry_after: Seconds the service asked us to wait before trying again
            (``Retry-After`` header or gRPC ``RetryInfo``), when it said so.
        transient: ``True`` when the same call may succeed later (timeouts, 429, 5xx,
            ``UNAVAILABLE``); retry predicates read this.
    """

    def __init__(
        self,
        message: str,
        *,
        service: str | None = None,
        status: int | str | None = None,
        retry_after: float | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.service = service
        self.status = status
        self.retry_after = retry_after
        self.transient = transient

    def __str__(self) -> str:
        parts = [self.message]
        details = []
        if self.service is not None:
            details.append(f"service={self.service}")
        if self.status is not None:
            details.append(f"status={self.status}")
        if self.retry_after is not None:
            details.append(f"retry_after={self.retry_after:g}s")
        if details:
            parts.append(f"({', '.join(details)})")
        return " ".join(parts)

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}({self.message!r}, service={self.service!r}, status={self.status!r})"


class ConfigError(RedditVisionError, ValueError):
    """Settings are missing or invalid: credentials, user agent, a config file field."""


class MissingDependencyError(ConfigError, ImportError):
    """An optional extra is not installed; the message names the ``pip install`` command."""


class SourceError(RedditVisionError):
    """Reading submissions failed: the Reddit API, a saved listing, or a dump."""


class ListingFormatError(SourceError, ValueError):
    """A file is not a Reddit listing or an NDJSON submission dump."""


class DownloadError(RedditVisionError):
    """Fetching or verifying one image failed."""


class UnsafeURLError(DownloadError, ValueError):
    """A URL was refused: scheme other than http(s), or an address that is not public."""


class DatasetError(RedditVisionError, ValueError):
    """Labels, splits or the dataset checks failed (e.g. fewer than 10 images for a label)."""


class StorageError(RedditVisionError):
    """Writing the dataset failed: Cloud Storage bucket, object, or the local folder."""


class TrainingError(RedditVisionError):
    """Creating a dataset, importing, training or evaluating a model failed."""


class ModelFormatError(TrainingError, ValueError):
    """A saved model cannot be loaded safely: wrong version, tampered or missing files."""


class PredictionError(RedditVisionError):
    """Deploying, undeploying or asking a model for predictions failed."""


class ComparisonError(RedditVisionError):
    """Generic labeling or building a comparison report failed."""
