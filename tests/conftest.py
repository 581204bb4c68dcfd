"""Shared fixtures: the real data beside the checkout, and the retry testing switch."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from redditvision import retry

# One embedding cache for the whole test session (the local backend's default cache lives
# under $XDG_CACHE_HOME): tests that train on the same real photos extract their features
# once, and nothing is written to the user's own cache.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="redditvision-tests-cache-")

# The loopback HTTP image server (tests/harness) and the Cloud Storage emulator (harness_gcs).
pytest_plugins = ["harness.plugin", "harness_gcs"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


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
