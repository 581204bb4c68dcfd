"""In CI every test runs: a skipped test (or a skipped module) fails the run there.

Registered by ``tests/conftest.py``. CI runs ``.ci/run`` with ``CI=true`` (the variable GitHub
Actions, GitLab CI and most other services set); any non-empty value other than ``0`` or
``false`` turns skips into failures. Locally a skip stays a skip, listed by ``-ra`` with its
reason, so a missing optional tool is visible but does not stop a developer.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

ENV_VAR = "CI"


def in_ci() -> bool:
    """True when the ``CI`` environment variable is set to a true value."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    return value not in ("", "0", "false", "no")


def _reason(longrepr: object) -> str:
    # A skip's longrepr is (path, lineno, reason); keep the reason, or the whole text.
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not (in_ci() and report.skipped) or hasattr(report, "wasxfail"):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"skipped in CI ({ENV_VAR}={os.environ.get(ENV_VAR)!r}), where every test must run: "
        f"{_reason(report.longrepr)}"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Turn a test's skip (in setup, call or teardown) into a failure in CI."""
    report = yield
    _fail_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """Turn a skipped module (a module-level skip or importorskip) into a failure in CI."""
    report = yield
    _fail_skip(report)
    return report
