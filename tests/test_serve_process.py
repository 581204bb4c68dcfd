"""The server as a real process: SIGTERM lets in-flight requests finish and refuses new ones."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from redditvision.models import TrainedModel
from serve_support import holdout_images, serve_command, tiny_classifier, tiny_model, wait_ready

SRC = Path(__file__).resolve().parent.parent / "src"


def read_ready(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("READY "):
            return line.split()[1]
    raise AssertionError(f"the server exited before listening: {process.wait()}")


def refused(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return False
    except OSError:
        return True


@pytest.fixture(scope="module")
def model(bmw_photos: Path) -> TrainedModel:
    return tiny_model(bmw_photos)


def test_sigterm_finishes_requests_in_flight_refuses_new_ones_and_exits_cleanly(
    model: TrainedModel, bmw_photos: Path
) -> None:
    image = holdout_images(bmw_photos, 1)[0]
    payload = json.dumps({"instances": [{"content": base64.b64encode(image).decode()}]}).encode()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(
        serve_command(Path(model.resource)),
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = read_ready(process)
        wait_ready(url)
        host, port_text = url.removeprefix("http://").split(":")
        port = int(port_text)
        # A request in flight: headers and half the body sent, the rest still to come.
        in_flight = socket.create_connection((host, port))
        in_flight.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload[: len(payload) // 2]
        )
        # A full round trip on another connection: the server has read the first one.
        assert httpx.get(url + "/health").status_code == 200

        process.send_signal(signal.SIGTERM)
        for _ in range(400):
            if refused(host, port):
                break
            time.sleep(0.025)
        assert refused(host, port), "new connections are still accepted after SIGTERM"
        assert process.poll() is None, "the server quit with a request in flight"

        in_flight.sendall(payload[len(payload) // 2 :])
        answer = b""
        while chunk := in_flight.recv(65536):
            answer += chunk
        in_flight.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        data = json.loads(body)
        with tiny_classifier(model) as classifier:
            want = classifier.predict(image)
        assert data["predictions"][0]["displayNames"] == [p.label for p in want]
        assert process.wait(timeout=60) == 0
        assert process.stdout is not None
        assert "STOPPED" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
