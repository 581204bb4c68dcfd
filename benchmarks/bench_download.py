"""Images/s of ImageDownloader against a serial urlretrieve loop and a bare thread pool.

500 distinct real photos (the 383 BMW photos of shared/data plus 117 mirrored, re-encoded
copies) are spread over 8 loopback HTTP servers on 127.0.0.1 to 127.0.0.8 (tests/harness
``ImageHost``, run in a separate process) that each sleep 50 ms before every answer, to
model distant hosts. Three clients fetch the same 500 URLs, each into a fresh folder:

* serial: the seed's loop, ``urllib.request.urlretrieve`` one URL after the other;
* bare: a ``ThreadPoolExecutor`` of 32 workers sharing one ``requests.Session`` that only
  writes the bytes to disk (no guard, no checks, no hashes, no manifest);
* ImageDownloader: 32 workers, 4 per host, every check on (the guard resolves and checks
  each connection, ``allowed_networks=["127.0.0.0/8"]``), SHA-256, Pillow verification,
  perceptual hash, manifest commit per image.

The parallel clients run twice and the faster run counts (the machine is shared). Peak RSS
is measured in a child process that streams 1,000 and then 10,000 posts (the 500 URLs
repeated, so most records are exact duplicates that still travel the whole path) through
``ImageDownloader.fetch``; ``ru_maxrss`` of the child is reported.

Goals (issue 3): at least 25 times the serial loop; within 1.2 times the bare fetch's time.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT.parent / "shared" / "data" / "cars" / "stanford-bmw"
N_IMAGES = 500
HOSTS = [f"127.0.0.{i}" for i in range(1, 9)]
LATENCY = 0.05
WORKERS = 32


def _images() -> list[bytes]:
    from PIL import Image, ImageOps

    paths = sorted(PHOTOS.rglob("*.jpg"))
    images = [p.read_bytes() for p in paths]
    for path in paths[: N_IMAGES - len(images)]:
        with Image.open(path) as image:
            buffer = io.BytesIO()
            ImageOps.mirror(image.convert("RGB")).save(buffer, format="JPEG", quality=90)
            images.append(buffer.getvalue())
    return images[:N_IMAGES]


def _serve(ready: Any, stop: Any) -> None:
    """Child process: 8 latency-adding servers, image i on host i % 8 at /i.jpg."""
    sys.path.insert(0, str(ROOT / "tests"))
    from harness import ImageHost

    images = _images()
    hosts = [ImageHost(address, latency=LATENCY).start() for address in HOSTS]
    for number, body in enumerate(images):
        hosts[number % len(hosts)].serve(f"/{number}.jpg", body)
    ready.put([host.port for host in hosts])
    stop.wait()
    for host in hosts:
        host.stop()


def _urls(ports: list[int]) -> list[str]:
    return [
        f"http://{HOSTS[n % len(HOSTS)]}:{ports[n % len(HOSTS)]}/{n}.jpg" for n in range(N_IMAGES)
    ]


def _serial(urls: list[str], out: Path) -> float:
    started = time.perf_counter()
    for number, url in enumerate(urls):
        urllib.request.urlretrieve(url, out / f"{number}.jpg")
    return time.perf_counter() - started


def _bare(urls: list[str], out: Path) -> float:
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.trust_env = False
    adapter = HTTPAdapter(pool_connections=16, pool_maxsize=WORKERS)
    session.mount("http://", adapter)

    def fetch(item: tuple[int, str]) -> None:
        number, url = item
        response = session.get(url, timeout=30)
        response.raise_for_status()
        (out / f"{number}.jpg").write_bytes(response.content)

    started = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(fetch, enumerate(urls)))
    elapsed = time.perf_counter() - started
    session.close()
    return elapsed


def _posts(urls: list[str], count: int) -> Any:
    from redditvision.models import ImagePost, MediaItem

    for number in range(count):
        yield ImagePost(
            id=f"b{number}",
            subreddit="BMW",
            title=f"photo {number}",
            permalink=f"/r/BMW/comments/b{number}/",
            media=(MediaItem(url=urls[number % len(urls)]),),
        )


def _downloader(urls: list[str], out: Path, count: int | None = None) -> tuple[float, int]:
    from redditvision.download import ImageDownloader
    from redditvision.models import RecordStatus

    ok = 0
    started = time.perf_counter()
    with ImageDownloader(
        out, concurrency=WORKERS, per_host=4, allowed_networks=["127.0.0.0/8"]
    ) as downloader:
        for record in downloader.fetch(_posts(urls, count or len(urls))):
            ok += record.status in (RecordStatus.OK, RecordStatus.DUPLICATE)
    return time.perf_counter() - started, ok


def _rss_child(urls_file: str, count: int) -> None:
    urls = json.loads(Path(urls_file).read_text())
    with tempfile.TemporaryDirectory() as folder:
        elapsed, ok = _downloader(urls, Path(folder) / "out", count)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": elapsed, "ok": ok, "peak_kib": peak_kib}))


def _rss(urls: list[str], count: int, folder: Path) -> dict[str, Any]:
    urls_file = folder / "urls.json"
    urls_file.write_text(json.dumps(urls))
    result = subprocess.run(
        [sys.executable, __file__, "--rss", str(urls_file), str(count)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def _fresh(folder: Path, name: str) -> Path:
    path = folder / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def run() -> list[dict[str, Any]]:
    """Measure and return the rows for docs/performance.rst."""
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    server = context.Process(target=_serve, args=(ready, stop), daemon=True)
    server.start()
    try:
        urls = _urls(ready.get(timeout=120))
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            _bare(urls[:64], _fresh(folder, "warm"))  # connections, page cache
            serial = _serial(urls, _fresh(folder, "serial"))
            bare = min(_bare(urls, _fresh(folder, f"bare{i}")) for i in range(2))
            runs = [_downloader(urls, _fresh(folder, f"dl{i}")) for i in range(2)]
            ours, ok = min(runs)
            rss_small = _rss(urls, 1_000, folder)
            rss_large = _rss(urls, 10_000, folder)
    finally:
        stop.set()
        server.join(timeout=30)
    n = len(urls)
    setup = f"{n} photos, 8 loopback hosts, +{LATENCY * 1000:.0f} ms per request"
    return [
        row("serial urlretrieve", n / serial, "images/s", f"{setup}; {serial:.1f} s"),
        row(f"bare thread pool ({WORKERS})", n / bare, "images/s", f"no checks; {bare:.2f} s"),
        row(
            f"ImageDownloader ({WORKERS})",
            n / ours,
            "images/s",
            f"all checks; {ours:.2f} s; {ok}/{n} ok",
        ),
        row("speed-up over serial", serial / ours, "x", "goal >= 25"),
        row("time vs bare fetch", ours / bare, "x", "goal <= 1.2"),
        row(
            "peak RSS, 1,000 items",
            rss_small["peak_kib"] / 1024,
            "MiB",
            f"child process; {rss_small['seconds']:.1f} s",
        ),
        row(
            "peak RSS, 10,000 items",
            rss_large["peak_kib"] / 1024,
            "MiB",
            f"child process; {rss_large['seconds']:.1f} s; {rss_large['ok']} ok or duplicate",
        ),
    ]


def row(metric: str, value: float, unit: str, note: str) -> dict[str, Any]:
    """One result row."""
    return {
        "benchmark": "download",
        "metric": metric,
        "value": round(value, 3),
        "unit": unit,
        "note": note,
    }


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--rss":
        _rss_child(sys.argv[2], int(sys.argv[3]))
    else:
        for result in run():
            print(result)
