"""Two downloads into one folder: the second refuses or waits, never deletes the first's files.

Issue 12.8: the second run's cleanup of leftovers deleted the first run's in-flight
``.part`` files. Two real processes race here; the first holds a response of a loopback
server open (the server waits until the test releases it), so the moment the second
starts is known: the first holds the lock and has a ``.part`` file in flight.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from redditvision.download import ImageDownloader
from redditvision.errors import DownloadError


def _noise_png() -> bytes:
    rng = random.Random(7)
    image = Image.frombytes("RGB", (160, 160), bytes(rng.randrange(256) for _ in range(160 * 480)))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


class _Holding(BaseHTTPRequestHandler):
    """``/held*`` sends headers and 1,000 bytes, then waits for ``release``; others at once."""

    protocol_version = "HTTP/1.1"
    body: bytes
    arrived: threading.Event
    release: threading.Event
    hits: dict[str, int]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.hits[self.path] = self.hits.get(self.path, 0) + 1
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        try:
            if self.path.startswith("/held"):
                self.wfile.write(self.body[:1000])
                self.wfile.flush()
                self.arrived.set()
                self.release.wait(120)
                self.wfile.write(self.body[1000:])
            else:
                self.wfile.write(self.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return


@pytest.fixture
def holding() -> Iterator[type[_Holding]]:
    handler = type(
        "Handler",
        (_Holding,),
        {
            "body": _noise_png(),
            "arrived": threading.Event(),
            "release": threading.Event(),
            "hits": {},
        },
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    handler.port = server.server_address[1]  # type: ignore[attr-defined] # test-only field
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler
    handler.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


def _posts(path: Path, port: int, *names: str) -> Path:
    lines = [
        json.dumps(
            {
                "id": name.strip("/").replace(".", "_"),
                "subreddit": "s",
                "title": "t",
                "permalink": "/r/s/",
                "media": [{"url": f"http://127.0.0.1:{port}{name}"}],
            }
        )
        for name in names
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _download(posts: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-c", "from redditvision.cli import main; main()",
        "download", "--posts", str(posts), "--out", str(out), "--allow-private-networks",
        "--json-summary", *extra,
    ]  # fmt: skip


def _wait_for_part(partial: Path) -> list[Path]:
    give_up = time.monotonic() + 60
    while time.monotonic() < give_up:
        parts = list(partial.glob("*.part"))
        if parts:
            return parts
        time.sleep(0.02)
    raise AssertionError("the first download never had a .part file in flight")


def test_a_second_download_into_the_folder_refuses_and_keeps_the_first_ones_part_files(
    holding: type[_Holding], tmp_path: Path
) -> None:
    port = holding.port  # type: ignore[attr-defined]
    out = tmp_path / "out"
    first = subprocess.Popen(
        _download(_posts(tmp_path / "a.jsonl", port, "/held.png"), out),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holding.arrived.wait(60), "the first download never reached the server"
        in_flight = _wait_for_part(out / ".partial")

        second = subprocess.run(
            _download(_posts(tmp_path / "b.jsonl", port, "/other.png"), out),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert second.returncode == 1, second.stderr
        assert f"another download is running in {out}" in second.stderr
        assert f"(process {first.pid})" in second.stderr
        assert "--wait-for-lock" in second.stderr
        assert holding.hits.get("/other.png", 0) == 0
        assert all(part.is_file() for part in in_flight)  # not deleted
    finally:
        holding.release.set()
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert (summary["ok"], summary["failed"]) == (1, 0)
    assert not list((out / ".partial").glob("*.part"))


def test_a_second_download_told_to_wait_runs_once_the_first_has_finished(
    holding: type[_Holding], tmp_path: Path
) -> None:
    port = holding.port  # type: ignore[attr-defined]
    out = tmp_path / "out"
    first = subprocess.Popen(
        _download(_posts(tmp_path / "a.jsonl", port, "/held.png"), out),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    second: subprocess.Popen[str] | None = None
    try:
        assert holding.arrived.wait(60)
        _wait_for_part(out / ".partial")
        second = subprocess.Popen(
            _download(
                _posts(tmp_path / "b.jsonl", port, "/other.png"), out, "--wait-for-lock", "120"
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert holding.hits.get("/other.png", 0) == 0
    finally:
        holding.release.set()
    first_out, first_err = first.communicate(timeout=120)
    assert first.returncode == 0, first_err
    assert second is not None
    second_out, second_err = second.communicate(timeout=120)
    assert second.returncode == 0, second_err
    assert json.loads(first_out.strip().splitlines()[-1])["ok"] == 1
    later = json.loads(second_out.strip().splitlines()[-1])
    assert (later["duplicates"], later["failed"]) == (1, 0)  # the same picture as the first


def test_two_downloaders_of_one_folder_in_one_process_exclude_each_other(tmp_path: Path) -> None:
    with ImageDownloader(tmp_path / "out"):
        with pytest.raises(DownloadError, match="another download is running") as caught:
            ImageDownloader(tmp_path / "out")
        assert caught.value.transient
    with ImageDownloader(tmp_path / "out"):  # released by close()
        pass


def test_leftover_part_files_of_a_dead_run_are_removed(tmp_path: Path) -> None:
    partial = tmp_path / "out" / ".partial"
    partial.mkdir(parents=True)
    (partial / "999999-0.part").write_bytes(b"left by a killed run")
    with ImageDownloader(tmp_path / "out"):
        assert not list(partial.glob("*.part"))
