"""A Cloud Storage emulator (gcp-storage-emulator) on 127.0.0.1 for tests, as pytest fixtures.

``tests/conftest.py`` registers this module as a plugin, so any test can ask for the
``gcs_emulator`` fixture (import :class:`GcsEmulator` from ``harness_gcs`` for the type). It
starts the emulator (a subprocess) on a free loopback port with its objects on disk under
the test's ``tmp_path`` (so it can be stopped and started again without losing them), sets
``STORAGE_EMULATOR_HOST`` (with the ``http://`` scheme the client needs) and yields a
:class:`GcsEmulator`.

The emulator does not enforce ``if_generation_match`` preconditions: the
``gcs_preconditions`` fixture puts a :class:`PreconditionLayer` (a loopback proxy that does,
as Cloud Storage does, and can lose answers or hold uploads) in front of it. The emulator
does not page object listings (not covered).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import attrs
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


# -- a precondition-enforcing layer in front of the emulator ------------------------------

_PRECONDITION_FAILED = {
    "error": {
        "code": 412,
        "message": "At least one of the pre-conditions you specified did not hold.",
        "errors": [
            {
                "message": "At least one of the pre-conditions you specified did not hold.",
                "domain": "global",
                "reason": "conditionNotMet",
                "locationType": "header",
                "location": "If-Match",
            }
        ],
    }
}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@attrs.frozen
class SeenUpload:
    """One upload request the layer saw.

    Attributes:
        name: Object name.
        if_generation_match: The ``ifGenerationMatch`` query parameter, or None when absent.
        outcome: ``"stored"`` (forwarded and answered), ``"lost"`` (forwarded, stored by
            the emulator, answer replaced by a TCP reset), ``"412"`` (refused: the
            precondition did not hold; nothing forwarded), ``"held"`` (still waiting) or
            ``"failed"`` (the emulator answered an error) or ``"dropped"`` (held, then
            closed unsent: see :meth:`PreconditionLayer.release`).
    """

    name: str
    if_generation_match: int | None
    outcome: str


class PreconditionLayer:
    """A loopback HTTP proxy in front of a :class:`GcsEmulator` that enforces preconditions.

    gcp-storage-emulator ignores ``ifGenerationMatch``, so the path where a retried upload
    must not overwrite (``if_generation_match=0`` answered 412 Precondition Failed) never
    runs against it. This layer forwards every request to the emulator, except that an
    upload (``POST /upload/storage/v1/b/BUCKET/o``, multipart or the start of a resumable
    one) carrying ``ifGenerationMatch=N`` is first checked as Cloud Storage does: the
    object's current generation (0 when it does not exist) must equal N, else the answer
    is 412 with Cloud Storage's ``conditionNotMet`` error body and nothing is stored.
    Uploads of one object name are checked and forwarded one at a time.

    Faults for tests: :meth:`lose_answer` (the upload is stored, the answer is replaced by
    a TCP reset: the client cannot know it succeeded), :meth:`hold_uploads_after` (uploads
    after the first N wait unanswered until :meth:`release`), so a test can kill a client
    at a known moment.

    Args:
        emulator: The started emulator to forward to.
    """

    def __init__(self, emulator: GcsEmulator) -> None:
        self.emulator = emulator
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._name_locks: dict[str, threading.Lock] = {}
        self._lose: dict[str, int] = {}
        self._hold_after: int | None = None
        self._forwarded = 0
        self._held = 0
        self._drop_held = False
        self.uploads: list[SeenUpload] = []
        """Every upload request seen, in order of its outcome."""
        layer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _any(self) -> None:
                layer._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any  # noqa: N815 (http.server names)

            def log_message(self, format: str, *args: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> PreconditionLayer:
        """Start serving in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Release held uploads, stop serving and close the socket (safe twice)."""
        self.release()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    # -- faults ------------------------------------------------------------------------

    def lose_answer(self, name: str, times: int = 1) -> None:
        """Store the next ``times`` uploads of ``name``, then reset instead of answering."""
        with self._lock:
            self._lose[name] = self._lose.get(name, 0) + times

    def hold_uploads_after(self, count: int) -> None:
        """Forward ``count`` more uploads; hold every later one until :meth:`release`."""
        with self._lock:
            self._hold_after = self._forwarded + count

    def release(self, *, drop: bool = False) -> None:
        """Stop holding: held uploads go on to the emulator, or with ``drop`` are closed unsent.

        ``drop`` is for a client killed while its uploads were held: they never reach the
        emulator (outcome ``"dropped"``), as if the connection died on the way.
        """
        with self._changed:
            self._hold_after = None
            self._drop_held = drop
            self._changed.notify_all()

    def wait(self, *, held: int = 0, answered: int = 0, timeout: float = 120.0) -> None:
        """Block until at least ``held`` uploads wait and ``answered`` were answered.

        Raises:
            TimeoutError: Not reached after ``timeout`` seconds.
        """

        def reached() -> bool:
            done = sum(1 for seen in self.uploads if seen.outcome in ("stored", "lost"))
            return self._held >= held and done >= answered

        with self._changed:
            if not self._changed.wait_for(reached, timeout):
                raise TimeoutError(f"held {self._held} (wanted {held}), uploads {self.uploads}")

    def outcomes(self, name: str) -> list[str]:
        """The outcomes of every upload of ``name`` so far, in order."""
        with self._lock:
            return [seen.outcome for seen in self.uploads if seen.name == name]

    # -- the proxy ---------------------------------------------------------------------

    def _generation(self, bucket: str, name: str) -> int:
        path = f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
        status, _, body = self._forward("GET", path, {}, b"")
        if status == 404:
            return 0
        if status != 200:
            raise RuntimeError(f"emulator answered {status} for {path}: {body[:200]!r}")
        return int(json.loads(body)["generation"])

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.emulator.port, timeout=60)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    @staticmethod
    def _upload_target(
        handler: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[str, str, int | None] | None:
        """(bucket, name, ifGenerationMatch) of an upload request, or None for others."""
        parts = urlsplit(handler.path)
        match = re.fullmatch(r"/upload/storage/v1/b/([^/]+)/o", parts.path)
        if handler.command != "POST" or match is None:
            return None
        query = parse_qs(parts.query)
        name = query.get("name", [None])[0]
        content_type = handler.headers.get("Content-Type", "")
        if name is None and content_type.startswith("multipart/related"):
            boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
            first = body.split(b"--" + boundary)[1]
            name = json.loads(first.split(b"\r\n\r\n", 1)[1].strip())["name"]
        elif name is None and body:
            name = json.loads(body)["name"]
        if name is None:
            return None
        generation = query.get("ifGenerationMatch", [None])[0]
        return unquote(match.group(1)), name, None if generation is None else int(generation)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        target = self._upload_target(handler, body)
        if target is None:
            self._reply(handler, *self._forward(handler.command, handler.path, headers, body))
            return
        bucket, name, if_generation_match = target
        with self._changed:
            name_lock = self._name_locks.setdefault(name, threading.Lock())
            hold = self._hold_after
            if hold is not None and self._forwarded >= hold:
                self._held += 1
                self._changed.notify_all()
                self._changed.wait_for(lambda: self._hold_after is None)
                self._held -= 1
                if self._drop_held:
                    self.uploads.append(SeenUpload(name, if_generation_match, "dropped"))
                    self._changed.notify_all()
                    handler.close_connection = True
                    return
            self._forwarded += 1
        with name_lock:
            if if_generation_match is not None:
                current = self._generation(bucket, name)
                if current != if_generation_match:
                    self._record(SeenUpload(name, if_generation_match, "412"))
                    answer = json.dumps(_PRECONDITION_FAILED).encode()
                    headers_out = [("Content-Type", "application/json; charset=UTF-8")]
                    self._reply(handler, 412, headers_out, answer)
                    return
            status, headers_out, answer = self._forward("POST", handler.path, headers, body)
            with self._lock:
                lose = self._lose.get(name, 0) > 0 and status == 200
                if lose:
                    self._lose[name] -= 1
            outcome = "lost" if lose else ("stored" if status == 200 else "failed")
            self._record(SeenUpload(name, if_generation_match, outcome))
        if lose:
            handler.close_connection = True
            connection = handler.connection
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()
            return
        self._reply(handler, status, headers_out, answer)

    def _record(self, seen: SeenUpload) -> None:
        with self._changed:
            self.uploads.append(seen)
            self._changed.notify_all()

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        try:
            handler.send_response(status)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP:
                    handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client went away (killed)


@pytest.fixture
def gcs_preconditions(
    gcs_emulator: GcsEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PreconditionLayer]:
    """A :class:`PreconditionLayer` before ``gcs_emulator``; STORAGE_EMULATOR_HOST points at it."""
    layer = PreconditionLayer(gcs_emulator).start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", layer.url)
    try:
        yield layer
    finally:
        layer.stop()
