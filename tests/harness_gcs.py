"""A Cloud Storage emulator (gcp-storage-emulator) on 127.0.0.1 for tests, as pytest fixtures.

Use it from any test module with ``from harness_gcs import GcsEmulator, gcs_emulator``
(or ``pytest_plugins``): the ``gcs_emulator`` fixture starts an in-process emulator on a free
loopback port with its objects on disk under the test's ``tmp_path`` (so it can be stopped
and started again without losing them), sets ``STORAGE_EMULATOR_HOST`` (with the
``http://`` scheme the client needs) and yields a :class:`GcsEmulator`.

What the emulator does not do (checked elsewhere or not covered): it does not enforce
``if_generation_match`` preconditions and does not page object listings.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gcp_storage_emulator.server import create_server
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GcsEmulator:
    """A running gcp-storage-emulator; stop and start it to simulate an outage."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None

    def start(self) -> None:
        """Start (or restart) the server on the same port with the same objects."""
        if self._server is not None:
            return
        self._server = create_server(
            "127.0.0.1", self.port, in_memory=False, data_dir=str(self.data_dir)
        )
        self._server.start()

    def stop(self) -> None:
        """Stop the server: further requests get connection refused."""
        if self._server is not None:
            self._server.stop()
            self._server = None

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
    logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
    emulator = GcsEmulator(tmp_path / "gcs-emulator")
    emulator.start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    try:
        yield emulator
    finally:
        emulator.stop()
