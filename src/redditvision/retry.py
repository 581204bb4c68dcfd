"""Bounded retries with exponential backoff, jitter and ``Retry-After``.

:class:`RetryPolicy` is a frozen settings object in the manner of stamina's
``retry(on=..., attempts=..., timeout=...)``: it is bounded both in attempts and in total
time, it needs an explicit predicate (tenacity's own defaults retry forever on every
exception), and it honours a server's ``Retry-After`` when the exception carries one (our
:class:`~redditvision.errors.RedditVisionError` exposes it as ``retry_after``).

Every client method that does I/O accepts ``retry=``: a :class:`RetryPolicy`, ``None`` to
disable retries, or :data:`DEFAULT` for the client's own policy. Only idempotent calls are
retried; creates of cloud resources are resumed by name instead (see the backends).

The one table of retryable statuses lives here too, as prawcore keeps ``RETRY_STATUSES``
in ``sessions.py``: :data:`RETRY_HTTP_STATUSES`, :data:`RETRY_GRPC_STATUSES` and, for
creates, :data:`LOST_ANSWER_STATUSES` (the statuses after which a create may or may not
have happened). Every client reads them; none keeps its own list.

Tests never sleep: :func:`set_testing` swaps the sleep for a no-op that records the waits.
"""

from __future__ import annotations

import email.utils
import enum
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import attrs
import tenacity

__all__ = [
    "DEFAULT",
    "LOST_ANSWER_STATUSES",
    "RETRY_GRPC_STATUSES",
    "RETRY_HTTP_STATUSES",
    "DefaultType",
    "RetryArg",
    "RetryPolicy",
    "call_with_retry",
    "is_transient",
    "parse_retry_after",
    "recorded_sleeps",
    "resolve_retry",
    "set_testing",
    "sleep",
]

T = TypeVar("T")
P = ParamSpec("P")

RETRY_HTTP_STATUSES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP statuses worth retrying an idempotent request on: 408 Request Timeout, 429 Too Many
Requests (honour ``Retry-After``) and the 5xx a retry may cure (RFC 9110 section 15;
google-api-core's ``_DEFAULT_RETRY`` for JSON APIs; prawcore's ``RETRY_STATUSES``)."""

RETRY_GRPC_STATUSES: frozenset[str] = frozenset(
    {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "INTERNAL", "ABORTED"}
)
"""gRPC status names worth retrying an idempotent call on (google.aip.dev/194)."""

LOST_ANSWER_STATUSES: frozenset[int | str] = frozenset(
    {
        "DEADLINE_EXCEEDED",
        "UNAVAILABLE",
        "INTERNAL",
        "UNKNOWN",
        "CANCELLED",
        408,
        500,
        502,
        503,
        504,
    }
)
"""Statuses after which a create may or may not have happened on the server: the request
left, the answer did not come back. A create that ends with one is looked up (by name or
label) before anything is sent again; it is never retried blindly."""


class DefaultType(enum.Enum):
    """Type of :data:`DEFAULT`, the marker for "use the client's own retry policy"."""

    DEFAULT = "DEFAULT"

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = DefaultType.DEFAULT
"""Pass as ``retry=`` to use the client's own :class:`RetryPolicy`."""


def is_transient(exc: BaseException) -> bool:
    """Tell whether an exception is worth retrying, by its ``transient`` attribute.

    Args:
        exc: Any exception; redditvision errors carry ``transient``.

    Returns:
        ``True`` when ``exc.transient`` is true, ``False`` otherwise (unknown errors are
        never retried).
    """
    return bool(getattr(exc, "transient", False))


_testing_lock = threading.Lock()
_testing = False
_recorded: list[float] = []


def set_testing(testing: bool) -> None:
    """Turn the testing switch on or off: while on, retries wait without sleeping.

    The waits that would have been slept are appended to :func:`recorded_sleeps`, so a test
    can assert the backoff and ``Retry-After`` it expects.

    Args:
        testing: ``True`` to stop sleeping (and clear the record), ``False`` to sleep again.
    """
    global _testing
    with _testing_lock:
        _testing = testing
        _recorded.clear()


def recorded_sleeps() -> list[float]:
    """Return the waits, in seconds, that retries took while testing was on.

    Returns:
        A copy of the list, oldest first.
    """
    with _testing_lock:
        return list(_recorded)


def sleep(seconds: float) -> None:
    """Sleep ``seconds``, or only record them while :func:`set_testing` is on.

    Every wait of the package (retry backoff, polling of long-running operations) goes
    through here, so tests never sleep.

    Args:
        seconds: How long, in seconds.
    """
    _sleep(seconds)


def _sleep(seconds: float) -> None:
    with _testing_lock:
        testing = _testing
        if testing:
            _recorded.append(seconds)
    if not testing:
        time.sleep(seconds)


def parse_retry_after(
    value: str | float | int | None, *, now: datetime | None = None
) -> float | None:
    """Parse a ``Retry-After`` value into seconds.

    RFC 9110 section 10.2.3 allows either a number of seconds or an HTTP date.

    Args:
        value: The header value (``"120"``, ``"Wed, 21 Oct 2015 07:28:00 GMT"``), a number,
            or ``None``.
        now: The current time for HTTP dates (default: the clock, UTC).

    Returns:
        Seconds to wait, never negative; ``None`` when absent or unparseable.
    """
    if value is None:
        return None
    if isinstance(value, int | float):
        return max(0.0, float(value))
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How to retry a failing idempotent call: bounded in attempts and in total time.

    The wait before attempt *n + 1* is ``min(maximum, initial * multiplier**(n-1))`` plus a
    uniform random jitter in ``[0, jitter]`` seconds. When the exception carries
    ``retry_after`` (seconds, from ``Retry-After`` or gRPC ``RetryInfo``), the wait is at
    least that, capped at ``max_retry_after``; a server asking for more than the cap ends
    the retries at once, since waiting less would only be refused again.

    Attributes:
        on: Predicate telling which exceptions are transient. Required: there is no
            "retry everything" default. :func:`is_transient` suits redditvision errors.
        attempts: Total attempts including the first (default 5); 1 means no retry.
        timeout: Upper bound in seconds on the total time spent, waits included
            (default 60.0); ``None`` for no time bound (attempts still bound it).
        initial: First backoff in seconds (default 0.5).
        maximum: Largest single backoff in seconds (default 30.0).
        multiplier: Backoff growth factor (default 2.0).
        jitter: Largest random addition to each wait in seconds (default 1.0).
        max_retry_after: Largest ``Retry-After`` honoured, in seconds (default 120.0).
    """

    on: Callable[[BaseException], bool]
    attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    timeout: float | None = 60.0
    initial: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    maximum: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    multiplier: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))
    jitter: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    max_retry_after: float = attrs.field(default=120.0, validator=attrs.validators.ge(0))

    def evolve(self, **changes: Any) -> RetryPolicy:
        """Return a copy with some fields changed (``attrs.evolve``).

        Args:
            **changes: Field names and their new values.

        Returns:
            A new policy.
        """
        return attrs.evolve(self, **changes)

    def backoff(self, attempt: int) -> float:
        """Return the backoff (without jitter) after failed attempt number ``attempt``.

        Args:
            attempt: 1 for the first failure.

        Returns:
            Seconds.
        """
        return float(min(self.maximum, self.initial * self.multiplier ** max(0, attempt - 1)))

    def wait(self, attempt: int, exc: BaseException | None = None) -> float:
        """Return the wait after failed attempt ``attempt``: backoff, jitter, ``Retry-After``.

        Args:
            attempt: 1 for the first failure (or the first poll of a running operation).
            exc: The exception of that attempt; its ``retry_after`` (seconds) raises the
                wait to at least that, capped at :attr:`max_retry_after`.

        Returns:
            Seconds: ``backoff(attempt)`` plus a uniform jitter in ``[0, jitter]``.
        """
        wait = self.backoff(attempt)
        if self.jitter:
            wait += random.uniform(0, self.jitter)  # noqa: S311 - jitter, not cryptography
        retry_after = getattr(exc, "retry_after", None) if exc is not None else None
        if isinstance(retry_after, int | float):
            wait = max(wait, min(float(retry_after), self.max_retry_after))
        return wait

    def _wait(self, state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        return self.wait(state.attempt_number, exc)

    def _should_retry(self, state: tenacity.RetryCallState) -> bool:
        outcome = state.outcome
        if outcome is None or not outcome.failed:
            return False
        exc = outcome.exception()
        if exc is None or not self.on(exc):
            return False
        retry_after = getattr(exc, "retry_after", None)
        return not (isinstance(retry_after, int | float) and retry_after > self.max_retry_after)

    def retrying(self) -> tenacity.Retrying:
        """Build the tenacity ``Retrying`` object for this policy.

        Returns:
            A ``tenacity.Retrying`` that re-raises the last exception when it gives up.
        """
        stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(self.attempts)
        if self.timeout is not None:
            stop = stop | tenacity.stop_after_delay(self.timeout)
        return tenacity.Retrying(
            stop=stop,
            wait=self._wait,
            retry=self._should_retry,
            sleep=_sleep,
            reraise=True,
        )

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)``, retrying as this policy says.

        Args:
            fn: The idempotent callable.
            *args: Positional arguments for ``fn``.
            **kwargs: Keyword arguments for ``fn``.

        Returns:
            What ``fn`` returns.

        Raises:
            Exception: The last exception ``fn`` raised, when retries are exhausted or the
                exception is not transient.
        """
        return self.retrying()(fn, *args, **kwargs)


RetryArg = RetryPolicy | None | DefaultType
"""What ``retry=`` accepts: a policy, ``None`` (no retries) or :data:`DEFAULT`."""


def resolve_retry(retry: RetryArg, default: RetryPolicy | None) -> RetryPolicy | None:
    """Resolve a ``retry=`` argument against a client's own policy.

    Args:
        retry: What the caller passed.
        default: The client's policy, used for :data:`DEFAULT`.

    Returns:
        The policy to use, or ``None`` for a single attempt.
    """
    if retry is DEFAULT:
        return default
    assert not isinstance(retry, DefaultType)
    return retry


def call_with_retry(
    policy: RetryPolicy | None, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """Call ``fn`` once when ``policy`` is ``None``, else through ``policy.call``.

    Args:
        policy: The resolved policy or ``None``.
        fn: The idempotent callable.
        *args: Positional arguments for ``fn``.
        **kwargs: Keyword arguments for ``fn``.

    Returns:
        What ``fn`` returns.
    """
    if policy is None:
        return fn(*args, **kwargs)
    return policy.call(fn, *args, **kwargs)
