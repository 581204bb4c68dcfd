"""A Cloud Storage emulator (gcp-storage-emulator) on 127.0.0.1 for tests, as pytest fixtures.

``tests/conftest.py`` registers this module as a plugin, so any test can ask for the
``gcs_emulator`` fixture (import :class:`GcsEmulator` from ``harness_gcs`` for the type). It
starts the emulator (a subprocess) on a free loopback port with its objects on disk under
the test's ``tmp_path`` (so it can be stopped and started again without losing them), sets
``STORAGE_EMULATOR_HOST`` (with the ``http://`` scheme the client needs) and yields a
:class:`GcsEmulator`.

What the emulator does not do (checked elsewhere or not covered): it does not enforce
``if_generation_match`` preconditions and does not page object listings.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GcsEmulator:
    """A gcp-storage-emulator in a subprocess; stop and start it to simulate an outage.

    A subprocess (not a thread of the test process) so that the emulator and the client
    do not share one interpreter lock: 383 uploads take about half the time.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start (or restart) the emulator on the same port with the same objects on disk."""
        if self._process is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "STORAGE_BASE": str(self.data_dir), "STORAGE_DIR": "store"}
        env.pop("STORAGE_EMULATOR_HOST", None)
        command = [sys.executable, "-m", "gcp_storage_emulator", "start", "--quiet"]
        self._process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            cwd=self.data_dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"gcp-storage-emulator exited with {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gcp-storage-emulator did not listen on {self.url} in {timeout}s")

    def stop(self) -> None:
        """Stop the emulator: further requests get connection refused."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def client(self) -> storage.Client:
        """A storage client talking to this emulator with anonymous credentials."""
        return storage.Client(
            project="test",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.url},
        )

    def create_bucket(self, name: str) -> None:
        """Create a bucket (no-op when it exists)."""
        client = self.client()
        try:
            if client.lookup_bucket(name) is None:
                client.create_bucket(name)
        finally:
            client.close()


@pytest.fixture
def gcs_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GcsEmulator]:
    """A gcp-storage-emulator on 127.0.0.1 with STORAGE_EMULATOR_HOST pointing at it."""
    emulator = GcsEmulator(tmp_path / "gcs-emulator")
    emulator.start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    try:
        yield emulator
    finally:
        emulator.stop()
