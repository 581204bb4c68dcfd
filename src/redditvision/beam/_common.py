# mypy: disable-error-code="no-untyped-call"
# (Apache Beam ships py.typed, but most of its transforms are untyped functions.)
"""What every Beam transform here shares: the dead-letter tag, metrics, dead letters."""

from __future__ import annotations

from typing import Any

from redditvision.beam._compat import require_beam
from redditvision.beam.elements import DeadLetter

require_beam()

from apache_beam import pvalue  # noqa: E402  (after the guard, which names the extra)
from apache_beam.metrics.metric import Metrics  # noqa: E402

__all__ = ["DEAD_LETTER", "MAIN", "METRICS_NAMESPACE", "count", "letter"]

DEAD_LETTER = "dead_letter"
"""Tag of the dead-letter output of every DoFn here."""

MAIN = "main"
"""Tag of the main output."""


METRICS_NAMESPACE = "redditvision"
"""Namespace of the Beam metrics: counters ``urls_fetched`` (downloader records, one per
distinct URL), ``images_stored``, ``images_classified``, ``images_labeled``, and the distribution
``classify_batch_size``."""


def count(name: str, n: int = 1) -> None:
    """Add ``n`` to the counter ``name`` of :data:`METRICS_NAMESPACE`."""
    Metrics.counter(METRICS_NAMESPACE, name).inc(n)


def letter(step: str, key: str, exc: BaseException) -> Any:
    """Return a tagged dead letter for an exception (its class name is the reason)."""
    return pvalue.TaggedOutput(
        DEAD_LETTER, DeadLetter(step=step, key=key, reason=type(exc).__name__, detail=str(exc))
    )
