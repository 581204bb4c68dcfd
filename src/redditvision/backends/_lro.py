"""Create once, poll, resume: the one mechanism for long-running cloud work.

Creating a dataset, an import, a training pipeline, an endpoint or a deployment costs money
and is not idempotent, so a create is never retried blindly. Every cloud backend does it
the same way:

1. :func:`create_once` returns the name recorded in the run's
   :class:`~redditvision.backends._state.RunState` when there is one (a re-run resumes);
   otherwise it marks the create as pending (with the time it was sent), sends it exactly
   once and records the answer (an operation or resource name) before anyone waits on it.
   When the answer was lost (a status in :data:`~redditvision.retry.LOST_ANSWER_STATUSES`)
   or the process died while sending, the backend's ``find`` looks the resource up (by
   label, by display name, among recent operations) before anything is sent again.
2. :func:`poll` waits for it: an explicit loop that calls ``check`` until it reports a
   result, sleeping the :class:`~redditvision.retry.RetryPolicy` backoff between calls,
   bounded by the policy's attempts and total time (:data:`DEFAULT_POLL`: from 5 s up to
   every 2 minutes, for at most 7 days). Giving up is a transient error that says to
   re-run: the work keeps going on the service and the re-run resumes polling it.
3. :func:`forget` drops the record of a create whose operation ended with an error, so a
   re-run (after the cause is fixed) creates it afresh instead of polling the failure.

:func:`check_budget` is the one check of a training budget against a backend's table of
model types and milli node hour ranges.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from redditvision.backends._protocol import StepCallback
from redditvision.backends._state import RunState
from redditvision.errors import ConfigError, RedditVisionError
from redditvision.retry import LOST_ANSWER_STATUSES, RetryPolicy, is_transient, sleep

__all__ = [
    "DEFAULT_POLL",
    "check_budget",
    "create_once",
    "forget",
    "is_lost_answer",
    "is_operation",
    "poll",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_POLL = RetryPolicy(
    on=is_transient,
    attempts=6_000,
    timeout=7 * 24 * 3600.0,
    initial=5.0,
    maximum=120.0,
    multiplier=1.5,
    jitter=1.0,
    max_retry_after=0.0,
)
"""Polling of long-running operations, pipelines and jobs (separate from the RPC retry;
each poll is itself a retried read): first wait 5 s, then x1.5 up to 120 s per wait, at
most 6,000 polls and 7 days (training with the largest budget, 800,000 milli node hours on
many nodes, ends well within it). ``on`` is unused by :func:`poll`."""


def is_operation(name: str) -> bool:
    """Tell whether a recorded name is a long-running operation (not yet the resource).

    Args:
        name: ``projects/P/locations/L/operations/O`` or a resource name.

    Returns:
        True for an operation name.
    """
    return "/operations/" in name


def is_lost_answer(error: RedditVisionError) -> bool:
    """Tell whether a create's outcome is unknown: the server may or may not have done it.

    Args:
        error: The translated error of the create.

    Returns:
        True when its status is in :data:`~redditvision.retry.LOST_ANSWER_STATUSES`.
    """
    return error.status in LOST_ANSWER_STATUSES


def _report(report: StepCallback | None, service: str, step: str, message: str) -> None:
    logger.info("%s %s: %s", service, step, message)
    if report is not None:
        report(step, message)


def create_once(
    state: RunState,
    record: str,
    send: Callable[[], str],
    find: Callable[[float], str | None] | None,
    *,
    error: type[RedditVisionError],
    service: str,
    step: str | None = None,
    pending: str | None = None,
    report: StepCallback | None = None,
) -> str:
    """Return the recorded name of a create, or send the create exactly once and record it.

    Args:
        state: The run's state file.
        record: The state key of the created name (operation or resource), e.g.
            ``"pipeline"``.
        send: Sends the create (one attempt, never retried) and returns the operation or
            resource name; raises a translated :class:`~redditvision.errors.RedditVisionError`.
        find: Looks the resource (or its operation) up after an answer was lost, given the
            time (``time.time()``) the create was sent; None when it cannot be looked up.
        error: The error class of this step (``TrainingError``, ``PredictionError``).
        service: The service name for messages and errors (``"vertex"``, ``"automl"``).
        step: The step name for progress reports (default ``record``).
        pending: The state key marking a create sent but not answered (default
            ``"{record}_pending"``); it holds the time it was sent.
        report: ``progress(step, message)`` callback.

    Returns:
        The recorded, found or created name.

    Raises:
        RedditVisionError: Of class ``error``, transient: the create's answer was lost and
            ``find`` found nothing, so it was not sent again (re-run to look again). Any
            other error of ``send`` is raised as it is, and the create is no longer
            pending.
    """
    step = step or record
    pending = pending or f"{record}_pending"
    recorded = state.get(record)
    if isinstance(recorded, str) and recorded:
        _report(report, service, step, f"resuming {recorded}")
        return recorded
    sent_at = state.get(pending)
    if sent_at and find is not None:
        found = find(float(sent_at))
        if found is not None:
            _report(report, service, step, f"found {found} from an earlier run")
            state.set(record, found)
            state.discard([pending])
            return found
    sent_at = time.time()
    state.set(pending, sent_at)
    try:
        name = send()
    except RedditVisionError as exc:
        if not is_lost_answer(exc):
            state.discard([pending])
            raise
        logger.warning("%s %s: the create answered %s; looking it up", service, step, exc.status)
        found = find(sent_at) if find is not None else None
        if found is not None:
            _report(report, service, step, f"create answered {exc.status} but {found} exists")
            state.set(record, found)
            state.discard([pending])
            return found
        raise error(
            f"creating the {step} answered {exc.status}; it may still happen on the server, "
            f"so it was not sent again. Re-run the same command to resume: it looks the "
            f"{step} up before creating it (state file {state.path})",
            service=service,
            status=exc.status,
            transient=True,
        ) from exc
    state.set(record, name)
    state.discard([pending])
    _report(report, service, step, f"created {name}")
    return name


def forget(state: RunState, keys: Iterable[str]) -> None:
    """Drop the records of a create whose work ended with an error (a re-run creates anew).

    Args:
        state: The run's state file.
        keys: The record and pending keys to drop.
    """
    state.discard(list(keys))


def poll(
    check: Callable[[], T | None],
    *,
    policy: RetryPolicy,
    what: str,
    error: type[RedditVisionError],
    service: str,
) -> T:
    """Call ``check`` until it returns a result, waiting the policy's backoff in between.

    An explicit loop: poll *n* that finds the work still running is followed by a wait of
    ``policy.wait(n)`` (backoff plus jitter; slept through :func:`redditvision.retry.sleep`,
    so tests never sleep), until ``policy.attempts`` polls were made or the next wait
    would pass ``policy.timeout`` seconds since the first poll.

    Args:
        check: One poll: returns the finished result, or None while the work runs. Its
            own errors (an unreadable operation) are raised as they are.
        policy: Attempts, total time and backoff (e.g. :data:`DEFAULT_POLL`).
        what: What is polled, for the message, e.g. ``"training pipeline P"``.
        error: The error class raised when polling gives up.
        service: The service name of that error.

    Returns:
        What ``check`` returned.

    Raises:
        RedditVisionError: Of class ``error``, transient, when the polling limit is reached:
            the work keeps running on the service; a re-run resumes polling it.
    """
    started = time.monotonic()
    polls = 0
    while True:
        polls += 1
        result = check()
        if result is not None:
            return result
        elapsed = time.monotonic() - started
        wait = policy.wait(polls)
        out_of_time = policy.timeout is not None and elapsed + wait > policy.timeout
        if polls >= policy.attempts or out_of_time:
            raise error(
                f"{what} is still running after {polls} polls in {elapsed:.0f} s (the polling "
                "limit); it keeps running on the service: re-run the same command to resume "
                "polling it",
                service=service,
                transient=True,
            )
        sleep(wait)


def check_budget(
    milli_node_hours: int,
    *,
    model_type: str,
    budgets: Mapping[str, tuple[int, int]],
    service: str,
    field: str,
) -> None:
    """Check a training budget against a backend's table of model types and ranges.

    Args:
        milli_node_hours: The budget (1,000 = one node hour).
        model_type: The model type, a key of ``budgets``.
        budgets: Model type -> inclusive ``(low, high)`` range in milli node hours, from the
            service's API reference.
        service: The service name for the message, e.g. ``"Vertex AI"``.
        field: The API field that carries the budget, for the message.

    Raises:
        ConfigError: Unknown model type, or the budget is outside its range.
    """
    if model_type not in budgets:
        raise ConfigError(
            f"unknown {service} model type {model_type!r}; use one of {', '.join(budgets)}"
        )
    low, high = budgets[model_type]
    if not low <= milli_node_hours <= high:
        raise ConfigError(
            f"budget of {milli_node_hours} milli node hours is outside {low:,}-{high:,} for "
            f"{service} model type {model_type} ({field}; 1,000 = one node hour)"
        )
