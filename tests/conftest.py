"""Shared fixtures: the real data beside the checkout, the retry testing switch, the preset.

Also, before anything imports google-auth: no probe leaves the machine. google-auth, finding
no credentials, probes the GCE metadata server (``metadata.google.internal`` and
169.254.169.254); it reads ``GCE_METADATA_HOST`` and ``GCE_METADATA_IP`` once, when
``google.auth.compute_engine._metadata`` is imported, so they are set here at import time
(``.ci/run`` sets them too) to a closed loopback port (127.0.0.1:9, the discard port, where
nothing listens on a test machine): the probe is refused at once instead of leaving the machine.
"""

from __future__ import annotations

import os
import tempfile

CLOSED_METADATA_ADDRESS = "127.0.0.1:9"
os.environ["GCE_METADATA_HOST"] = CLOSED_METADATA_ADDRESS
os.environ["GCE_METADATA_IP"] = CLOSED_METADATA_ADDRESS

from collections.abc import Iterator  # noqa: E402  (after the environment above)
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from redditvision import retry  # noqa: E402

# One embedding cache for the whole test session (the local backend's default cache lives
# under $XDG_CACHE_HOME): tests that train on the same real photos extract their features
# once, and nothing is written to the user's own cache.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="redditvision-tests-cache-")

# The local backend's default preset fine-tunes a network (minutes per training); tests that
# train without naming a preset use the frozen-feature ``fast`` one (seconds), subprocesses
# (CLI, examples) included. Tests of the default itself clear the variable; tests of the
# fine-tuning presets name theirs.
os.environ["REDDITVISION_QUALITY"] = "fast"

# The loopback HTTP image server (tests/harness) and the Cloud Storage emulator (harness_gcs).
# harness.ci: in CI (CI=true) a skipped test fails the run.
pytest_plugins = ["harness.plugin", "harness_gcs", "harness.ci", "pytester"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _metadata_server_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees the closed metadata address, even after one changed the environment."""
    monkeypatch.setenv("GCE_METADATA_HOST", CLOSED_METADATA_ADDRESS)
    monkeypatch.setenv("GCE_METADATA_IP", CLOSED_METADATA_ADDRESS)


@pytest.fixture(autouse=True)
def _no_sleep() -> Iterator[None]:
    """Tests never really sleep: retries record their waits instead."""
    retry.set_testing(True)
    yield
    retry.set_testing(False)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public material in ../shared/data; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present beside the checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def reddit_data(shared_data: Path) -> Path:
    """../shared/data/reddit: recorded listings and cassettes."""
    path = shared_data / "reddit"
    if not path.is_dir():
        pytest.skip("../shared/data/reddit is not present")
    return path


@pytest.fixture(scope="session")
def bmw_photos(shared_data: Path) -> Path:
    """../shared/data/cars/stanford-bmw: 383 real photos in 13 model folders."""
    path = shared_data / "cars" / "stanford-bmw"
    if not path.is_dir():
        pytest.skip("../shared/data/cars/stanford-bmw is not present")
    return path
