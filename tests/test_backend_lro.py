"""Create once, poll, resume: the shared mechanism of the cloud backends (``backends._lro``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from redditvision import retry
from redditvision.backends._lro import DEFAULT_POLL, create_once, poll
from redditvision.backends._state import RunState
from redditvision.errors import ConfigError, TrainingError


def test_poll_waits_the_backoff_between_polls_and_returns_the_result() -> None:
    answers = iter([None, None, "done"])
    policy = DEFAULT_POLL.evolve(jitter=0.0)
    result = poll(
        lambda: next(answers), policy=policy, what="job j", error=TrainingError, service="x"
    )
    assert result == "done"
    assert retry.recorded_sleeps() == [5.0, 7.5]  # 5 s, then x1.5


def test_poll_gives_up_after_its_attempts_with_a_transient_error_saying_to_rerun() -> None:
    calls: list[int] = []

    def never() -> None:
        calls.append(1)

    with pytest.raises(TrainingError, match="job j is still running after 3 polls") as caught:
        poll(
            never,
            policy=DEFAULT_POLL.evolve(attempts=3),
            what="job j",
            error=TrainingError,
            service="x",
        )
    assert caught.value.transient
    assert "re-run the same command" in str(caught.value)
    assert len(calls) == 3
    assert len(retry.recorded_sleeps()) == 2  # no wait after the last poll


def test_poll_gives_up_before_a_wait_that_would_pass_its_timeout() -> None:
    calls: list[int] = []
    policy = DEFAULT_POLL.evolve(timeout=1.0, jitter=0.0)  # the first wait alone is 5 s
    with pytest.raises(TrainingError, match="after 1 polls"):
        poll(lambda: calls.append(1), policy=policy, what="j", error=TrainingError, service="x")
    assert retry.recorded_sleeps() == []


def test_create_once_sends_once_and_a_rerun_resumes_the_recorded_name(tmp_path: Path) -> None:
    state = RunState(tmp_path / "s.json")
    sent: list[str] = []

    def send() -> str:
        sent.append("create")
        return "projects/p/locations/l/operations/1"

    first = create_once(state, "dataset", send, None, error=TrainingError, service="x")
    again = create_once(
        RunState(tmp_path / "s.json"), "dataset", send, None, error=TrainingError, service="x"
    )
    assert first == again == "projects/p/locations/l/operations/1"
    assert sent == ["create"]
    assert "dataset_pending" not in RunState(tmp_path / "s.json")


def test_a_lost_answer_is_looked_up_and_never_sent_twice(tmp_path: Path) -> None:
    state = RunState(tmp_path / "s.json")
    attempts: list[float] = []

    def lost() -> str:
        raise TrainingError("deadline", service="x", status="DEADLINE_EXCEEDED", transient=True)

    def find(sent_at: float) -> str | None:
        attempts.append(sent_at)
        return None

    with pytest.raises(TrainingError, match="it may still happen on the server") as caught:
        create_once(state, "pipeline", lost, find, error=TrainingError, service="x")
    assert caught.value.transient
    assert len(attempts) == 1
    # The re-run looks again (with the time the create was sent) before sending anything.
    found = create_once(
        RunState(tmp_path / "s.json"),
        "pipeline",
        lambda: pytest.fail("a lost create must not be sent again once found"),
        lambda sent_at: (
            "projects/p/locations/l/trainingPipelines/9" if sent_at == attempts[0] else None
        ),
        error=TrainingError,
        service="x",
    )
    assert found == "projects/p/locations/l/trainingPipelines/9"


def test_a_refused_create_is_raised_as_it_is_and_no_longer_pending(tmp_path: Path) -> None:
    state = RunState(tmp_path / "s.json")

    def refused() -> str:
        raise ConfigError("bad budget", status="INVALID_ARGUMENT")

    with pytest.raises(ConfigError, match="bad budget"):
        create_once(state, "pipeline", refused, None, error=TrainingError, service="x")
    assert state.as_dict() == {}
