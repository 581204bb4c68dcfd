"""RetryPolicy: bounded, predicate-driven, honours Retry-After, never sleeps in tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from redditvision import retry
from redditvision.errors import DownloadError
from redditvision.retry import RetryPolicy, call_with_retry, parse_retry_after, resolve_retry


class Flaky:
    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def transient(retry_after: float | None = None) -> DownloadError:
    return DownloadError("503", service="http", status=503, transient=True, retry_after=retry_after)


def test_transient_errors_are_retried_until_success() -> None:
    fn = Flaky([transient(), transient()])
    policy = RetryPolicy(on=retry.is_transient, jitter=0)
    assert policy.call(fn) == "ok"
    assert fn.calls == 3
    assert retry.recorded_sleeps() == [0.5, 1.0]


def test_permanent_errors_are_raised_at_once() -> None:
    fn = Flaky([DownloadError("404", status=404)])
    with pytest.raises(DownloadError):
        RetryPolicy(on=retry.is_transient).call(fn)
    assert fn.calls == 1


def test_attempts_bound_the_retries() -> None:
    fn = Flaky([transient()] * 10)
    with pytest.raises(DownloadError):
        RetryPolicy(on=retry.is_transient, attempts=3).call(fn)
    assert fn.calls == 3


def test_retry_after_sets_the_wait() -> None:
    fn = Flaky([transient(retry_after=7)])
    RetryPolicy(on=retry.is_transient, jitter=0).call(fn)
    assert retry.recorded_sleeps() == [7.0]


def test_retry_after_beyond_the_cap_stops_retrying() -> None:
    fn = Flaky([transient(retry_after=3600)])
    with pytest.raises(DownloadError):
        RetryPolicy(on=retry.is_transient, max_retry_after=60).call(fn)
    assert fn.calls == 1


def test_backoff_grows_exponentially_up_to_the_maximum() -> None:
    policy = RetryPolicy(on=retry.is_transient, initial=1, multiplier=2, maximum=5)
    assert [policy.backoff(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]


def test_jitter_stays_within_its_bound() -> None:
    fn = Flaky([transient()] * 4)
    RetryPolicy(on=retry.is_transient, jitter=0.25, initial=1, multiplier=1).call(fn)
    assert all(1.0 <= wait <= 1.25 for wait in retry.recorded_sleeps())


def test_none_means_a_single_attempt_and_default_means_the_clients_policy() -> None:
    policy = RetryPolicy(on=retry.is_transient)
    assert resolve_retry(retry.DEFAULT, policy) is policy
    assert resolve_retry(None, policy) is None
    fn = Flaky([transient()])
    with pytest.raises(DownloadError):
        call_with_retry(None, fn)
    assert fn.calls == 1


def test_policy_is_frozen_and_evolves() -> None:
    policy = RetryPolicy(on=retry.is_transient)
    with pytest.raises(AttributeError):
        policy.attempts = 2  # type: ignore[misc]
    assert policy.evolve(attempts=2).attempts == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), (" 3 ", 3.0), (5, 5.0), ("-4", 0.0), ("", None), (None, None), ("soon", None)],
)
def test_parse_retry_after_seconds(value: str | int | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    now = datetime(2015, 10, 21, 7, 27, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 60.0
