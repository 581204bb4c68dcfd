"""The test setup itself: no probe leaves the machine, and in CI no test is skipped."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import google.auth.transport.requests
import pytest
from google.auth.compute_engine import _metadata

from conftest import CLOSED_METADATA_ADDRESS, PROJECT_ROOT

_connects: list[Any] | None = None


def _record_connect(event: str, args: tuple[Any, ...]) -> None:
    # An audit hook cannot be removed; it records only while a test has set _connects.
    if event == "socket.connect" and _connects is not None:
        _connects.append(args[1])


sys.addaudithook(_record_connect)


def test_google_auth_reads_the_closed_loopback_metadata_address() -> None:
    # google-auth reads both variables when _metadata is imported: conftest set them first.
    assert CLOSED_METADATA_ADDRESS == "127.0.0.1:9"
    assert _metadata._GCE_METADATA_HOST == CLOSED_METADATA_ADDRESS
    assert _metadata._get_metadata_root(False) == "http://127.0.0.1:9/computeMetadata/v1/"
    assert _metadata._get_metadata_ip_root(False) == "http://127.0.0.1:9"


def test_the_metadata_probe_is_refused_on_loopback_and_never_leaves_the_machine() -> None:
    global _connects
    _connects = []
    try:
        found = _metadata.ping(google.auth.transport.requests.Request(), timeout=1, retry_count=1)
    finally:
        seen, _connects = _connects, None
    assert found is False
    # The probe really tried, and only the closed loopback port (no link-local address).
    assert seen, "the probe made no connection at all"
    assert {(str(host), int(port)) for host, port, *_ in seen} == {("127.0.0.1", 9)}


def test_ci_script_sets_the_same_closed_metadata_address() -> None:
    script = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    exports = {
        word.split("=", 1)[0]: word.split("=", 1)[1]
        for line in script.splitlines()
        if line.startswith("export ")
        for word in line.split()[1:]
        if "=" in word
    }
    assert exports["GCE_METADATA_HOST"] == CLOSED_METADATA_ADDRESS
    assert exports["GCE_METADATA_IP"] == CLOSED_METADATA_ADDRESS
    assert exports["CI"] == "true"


SKIPPING_TESTS = """
import pytest

def test_skipped_in_the_body():
    pytest.skip("no chromium here")

@pytest.mark.skipif(True, reason="marked to skip")
def test_skipped_by_a_mark():
    pass

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_expected_to_fail():
    assert False

def test_runs():
    pass
"""

SKIPPED_MODULE = """
import pytest

pytest.importorskip("a_module_that_is_not_installed")

def test_hidden():
    pass
"""


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.RunResult:
    # Installed plugins (hypothesis, httpserver, ...) are not needed and take seconds to load.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_skipping=SKIPPING_TESTS, test_module_skip=SKIPPED_MODULE)
    return pytester.runpytest(
        "-p", "harness.ci", "-p", "no:cacheprovider", "-q", "--continue-on-collection-errors"
    )


def test_outside_ci_a_skip_stays_a_listed_skip(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    result = _run(pytester, monkeypatch)
    result.assert_outcomes(passed=1, skipped=3, xfailed=1)
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.parametrize("value", ["true"])
def test_in_ci_every_skip_fails_the_run_and_says_why(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    result = _run(pytester, monkeypatch)
    # The skip in the body fails; the skip mark (decided in setup) and the skipped module
    # (decided at collection) are errors; xfail is untouched.
    result.assert_outcomes(passed=1, failed=1, errors=2, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "every test must run: no chromium here" in out
    assert "every test must run: marked to skip" in out
    assert "a_module_that_is_not_installed" in out


@pytest.mark.parametrize("value", ["false"])
def test_a_false_ci_value_is_not_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    _run(pytester, monkeypatch).assert_outcomes(passed=1, skipped=3, xfailed=1)


def test_the_ci_plugin_is_loaded_by_the_project_conftest() -> None:
    assert "harness.ci" in sys.modules
    assert Path(sys.modules["harness.ci"].__file__ or "").parent.name == "harness"
