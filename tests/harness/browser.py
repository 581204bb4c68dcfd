"""Debian's headless Chromium for tests: screenshot a page, or run a probe script in it.

A probe is a ``<script>`` inserted before ``</body>`` that, on load, writes a JSON object
into ``<pre id="probe">``; :func:`probe_page` dumps the DOM and returns that object. Every
run uses its own profile folder, no network features, and Chromium's console on stderr
(:func:`console_lines`), so a page whose own script or policy complains fails the test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

__all__ = ["CHROMIUM_FLAGS", "console_lines", "find_chromium", "probe_page", "run_chromium"]

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--enable-logging=stderr",
    "--v=0",
)


def find_chromium() -> str:
    """Return Chromium's path, or skip (a failure in CI, where every test must run)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return path


def run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with its own ``profile`` folder and ``args``; 120 s at most."""
    return subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def console_lines(stderr: str) -> list[str]:
    """The page's console messages in Chromium's stderr (errors, CSP reports)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def probe_page(chromium: str, page: Path, probe: str, work: Path) -> tuple[dict[str, Any], str]:
    """Open ``page`` with ``probe`` inserted; return (the probe's JSON, the dumped DOM).

    Asserts that Chromium exits 0, that the console stays silent and that the probe ran.
    """
    probed = work / f"probed-{page.name}"
    probed.write_text(
        page.read_text("utf-8").replace("</body>", probe + "</body>"), encoding="utf-8"
    )
    dom = run_chromium(
        chromium, work / f"profile-{page.stem}", "--virtual-time-budget=10000", "--dump-dom",
        probed.as_uri(),
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_lines(dom.stderr) == []
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.DOTALL)
    assert match is not None, dom.stdout[-2000:]
    text = match.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    return json.loads(text.replace("&amp;", "&")), dom.stdout
