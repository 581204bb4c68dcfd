"""A trickling server cannot hold a download past its deadline or under the minimum rate.

Issue 12.1: the read timeout is per read, so one byte a second never trips it. These tests
run a real loopback server that trickles the body or the headers; each download must end
``failed`` with a reason naming the deadline or the rate, in bounded real time (the
deadlines here are about a second, so the tests are quick).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from redditvision.download import DownloadLimits, ImageDownloader
from redditvision.models import ImagePost, ImageRecord, MediaItem, RecordStatus

_PNG_HEAD = b"\x89PNG\r\n\x1a\n"
# Generous bound on the wall time of a download that must stop at a ~1 s deadline: it only
# tells a bounded download from one that would run for hours.
_BOUNDED = 30.0


class _Trickle(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits: dict[str, int]
    stop: threading.Event

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _drip(self, data: bytes, pause: float) -> None:
        for index in range(len(data)):
            if self.stop.is_set():
                return
            self.wfile.write(data[index : index + 1])
            self.wfile.flush()
            time.sleep(pause)

    def do_GET(self) -> None:
        self.hits[self.path] = self.hits.get(self.path, 0) + 1
        try:
            if self.path == "/body":  # headers at once, then one byte every 50 ms
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.flush()
                self._drip(_PNG_HEAD + b"\0" * 99_992, 0.05)
            elif self.path == "/headers":  # the header block itself trickles
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                self._drip(b"X-Slow: " + b"a" * 10_000 + b"\r\n\r\n", 0.05)
            elif self.path == "/slow":  # 64 bytes every 50 ms: about 1,300 bytes/s
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", "1000000")
                self.end_headers()
                for _ in range(15_625):
                    if self.stop.is_set():
                        return
                    self.wfile.write(b"\0" * 64)
                    self.wfile.flush()
                    time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            return


@pytest.fixture
def trickle() -> Iterator[Callable[[str], str]]:
    """A loopback server that trickles; yields ``url_for(path)``."""
    handler = type("Handler", (_Trickle,), {"hits": {}, "stop": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    yield lambda path: f"http://127.0.0.1:{port}{path}"
    handler.stop.set()
    server.shutdown()
    server.server_close()
    thread.join()


def fetch_one(tmp_path: Path, url: str, limits: DownloadLimits) -> tuple[ImageRecord, float]:
    post = ImagePost(
        id="p1", subreddit="s", title="t", permalink="/r/s/", media=(MediaItem(url=url),)
    )
    started = time.monotonic()
    with ImageDownloader(tmp_path / "out", limits=limits, allow_private_networks=True) as d:
        (record,) = list(d.fetch([post]))
    return record, time.monotonic() - started


def test_a_trickling_body_fails_at_the_deadline_naming_it(
    tmp_path: Path, trickle: Callable[[str], str]
) -> None:
    limits = DownloadLimits(deadline=1.0, min_bytes_per_second=0)
    record, took = fetch_one(tmp_path, trickle("/body"), limits)
    assert record.status is RecordStatus.FAILED
    assert "within the deadline of 1 s (DownloadLimits.deadline" in (record.reason or "")
    assert took < _BOUNDED
    assert not list((tmp_path / "out" / ".partial").glob("*.part"))


def test_trickling_headers_are_cut_off_at_the_deadline_by_the_watchdog(
    tmp_path: Path, trickle: Callable[[str], str]
) -> None:
    limits = DownloadLimits(deadline=1.0)
    record, took = fetch_one(tmp_path, trickle("/headers"), limits)
    assert record.status is RecordStatus.FAILED
    assert "DownloadLimits.deadline" in (record.reason or "")
    assert took < _BOUNDED


def test_a_tls_handshake_that_trickles_is_cut_off_at_the_deadline(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:  # answers a ClientHello with a TLS record header, byte by byte
        connection, _ = listener.accept()
        with connection:
            connection.recv(4096)
            for byte in b"\x16\x03\x03\x40\x00" + b"\x02" * 16_000:
                if stop.is_set():
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(0.05)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    try:
        record, took = fetch_one(
            tmp_path, f"https://127.0.0.1:{port}/a.png", DownloadLimits(deadline=1.0)
        )
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=30)
    assert record.status is RecordStatus.FAILED
    assert "DownloadLimits.deadline" in (record.reason or "")
    assert took < _BOUNDED


def test_a_body_under_the_minimum_rate_fails_naming_the_rate(
    tmp_path: Path, trickle: Callable[[str], str]
) -> None:
    limits = DownloadLimits(deadline=60.0, min_bytes_per_second=10_000, rate_grace=0.5)
    record, took = fetch_one(tmp_path, trickle("/slow"), limits)
    assert record.status is RecordStatus.FAILED
    reason = record.reason or ""
    assert "slower than the minimum of 10,000 bytes/s" in reason
    assert "DownloadLimits.min_bytes_per_second" in reason
    assert took < _BOUNDED


def test_the_deadline_covers_every_attempt_so_a_late_item_is_not_retried(
    tmp_path: Path, trickle: Callable[[str], str]
) -> None:
    limits = DownloadLimits(deadline=1.0, min_bytes_per_second=0)
    url = trickle("/body")
    record, _ = fetch_one(tmp_path, url, limits)
    assert record.status is RecordStatus.FAILED
    with ImageDownloader(tmp_path / "out", allow_private_networks=True) as downloader:
        stored = downloader.manifest.get("p1:0")
        assert stored is not None
        assert downloader.manifest.attempts("p1:0") == 1


@pytest.mark.parametrize(
    ("field", "value"), [("deadline", 0), ("min_bytes_per_second", -1), ("rate_grace", -1)]
)
def test_limits_refuse_meaningless_deadlines_and_rates(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        DownloadLimits(**{field: value})
