"""The prediction server on loopback against in-process ``Classifier.predict_many``.

A real EfficientNet-Lite0 model (trained on 24 BMW photos) is served by ``redditvision
serve`` in its own process; an async httpx load generator sends one image per request (as
Vertex AI AutoML image endpoints take) at concurrency 1, 8 and 32 and records requests/s and
p50/p99 latency, best of 3 rounds. The baseline is the same model in this process,
``predict_many`` over the same 64 images in batches of 32 (best of 3 too). Goal (issue 15):
at concurrency 8 the server reaches at least 0.8 of in-process throughput, thanks to dynamic
batching.

Run alone (prints the rows, writes benchmarks/results/serve.json)::

    PYTHONPATH=src python benchmarks/bench_serve.py

The 2 cores are shared with other work: the load average is reported with the rows.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "cars" / "stanford-bmw"
FOLDERS = {
    "z3-4-8": "BMW Z4 Convertible 2012",
    "x-suv": "BMW X5 SUV 2007",
    "3-4series": "BMW 3 Series Sedan 2012",
}
LEVELS = (1, 8, 32)
REQUESTS = {1: 32, 8: 128, 32: 128}
ROUNDS = 3  # best of 3 rounds, as the in-process baseline: the 2 cores are noisy


def _row(metric: str, value: Any, unit: str, note: str = "") -> dict[str, Any]:
    return {"benchmark": "serve", "metric": metric, "value": value, "unit": unit, "note": note}


def _train(root: Path) -> Path:
    """Train the benchmark's model into ``root/model`` (reused when ``BENCH_SERVE_MODEL`` names
    an existing folder)."""
    given = os.environ.get("BENCH_SERVE_MODEL")
    if given and (Path(given) / "model.json").is_file():
        return Path(given)
    from redditvision.backends.local import Candidate, LocalBackend
    from redditvision.models import LabeledDataset, LabeledImage, MLUse

    uses = [MLUse.TRAINING] * 6 + [MLUse.VALIDATION, MLUse.TEST]
    images = [
        LabeledImage(path=path, label=label.replace("-", "_"), original_label=label, ml_use=use)
        for label, folder in FOLDERS.items()
        for path, use in zip(sorted((DATA / folder).iterdir())[:8], uses, strict=True)
    ]
    dataset = LabeledDataset(
        images=tuple(images),
        label_map={label.replace("-", "_"): label for label in FOLDERS},
        name="bench-serve",
    )
    out = Path(given) if given else root / "model"
    with LocalBackend(
        quality="fast",  # a frozen-feature model: the figures measure serving, not a preset
        cache_dir=root / "cache",
        model_dir=out.parent,
        candidates=[Candidate(name="logreg", head="logreg", c=1.0, train_flip=False)],
    ) as backend:
        backend.train(dataset, out=out)
    return out


def _images(count: int = 64) -> list[bytes]:
    paths = sorted(p for folder in FOLDERS.values() for p in (DATA / folder).iterdir())
    held_out = [p for i, p in enumerate(paths) if i % 3 == 2] + paths
    return [p.read_bytes() for p in held_out[:count]]


def _in_process(model: Path, images: list[bytes]) -> float:
    from redditvision.classify import Classifier

    with Classifier(model, batch_size=32) as classifier:
        classifier.predict_many(images[:4])
        best = 0.0
        for _ in range(3):
            started = time.perf_counter()
            classifier.predict_many(images)
            best = max(best, len(images) / (time.perf_counter() - started))
    return best


async def _load(url: str, images: list[bytes], concurrency: int, total: int) -> dict[str, float]:
    import httpx

    bodies = [
        json.dumps({"instances": [{"content": base64.b64encode(i).decode()}]}).encode()
        for i in images
    ]
    latencies: list[float] = []
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def worker() -> None:
            for n in counter:
                started = time.perf_counter()
                answer = await client.post(
                    "/predict",
                    content=bodies[n % len(bodies)],
                    headers={"Content-Type": "application/json"},
                )
                answer.raise_for_status()
                latencies.append(time.perf_counter() - started)

        await worker_warmup(client, bodies[0])
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": total / wall,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000,
    }


async def worker_warmup(client: Any, body: bytes) -> None:
    for _ in range(3):
        await client.post("/predict", content=body, headers={"Content-Type": "application/json"})


def _start_server(model: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from redditvision.cli import main; main()",
            "serve",
            "--model",
            str(model),
            "--port",
            "0",
            # The load generator measures latency; a shared, busy machine must not time out.
            "--request-timeout",
            "600",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if " at http://" in line and "/predict" in line:
            url = line.split(" at ", 1)[1].split("/predict", 1)[0]
            # Keep reading its log, or a full pipe would block the server.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, url
    raise RuntimeError(f"the server exited: {process.wait()}")


def run() -> list[dict[str, Any]]:
    import httpx

    if not DATA.is_dir():
        from benchmarks import skipped

        return [skipped("serve", "serve", f"{DATA} is absent")]
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        model = _train(Path(tmp))
        images = _images()
        baseline = _in_process(model, images)
        rows.append(
            _row(
                "in-process predict_many, batch 32",
                round(baseline, 1),
                "images/s",
                "best of 3, 64 photos, decode included",
            )
        )
        process, url = _start_server(model)
        try:
            for _ in range(600):
                if httpx.get(url + "/health").status_code == 200:
                    break
                time.sleep(0.05)
            for level in LEVELS:
                before = httpx.get(url + "/metadata").json()["batching"]
                rounds = [
                    asyncio.run(_load(url, images, level, REQUESTS[level])) for _ in range(ROUNDS)
                ]
                measured = max(rounds, key=lambda r: r["rps"])
                after = httpx.get(url + "/metadata").json()["batching"]
                batches = after["batches"] - before["batches"]
                mean_batch = (after["images"] - before["images"]) / max(1, batches)
                ratio = measured["rps"] / baseline
                goal = "; goal >= 0.8" if level == 8 else ""
                rows += [
                    _row(
                        f"server, concurrency {level}",
                        round(measured["rps"], 1),
                        "requests/s",
                        f"{ratio:.2f}x in-process{goal}; best of {ROUNDS}; mean batch "
                        f"{mean_batch:.1f} images",
                    ),
                    _row(
                        f"server, concurrency {level}: p50 latency",
                        round(measured["p50"]),
                        "ms",
                        f"{REQUESTS[level]} requests of 1 image, in the best round",
                    ),
                    _row(
                        f"server, concurrency {level}: p99 latency",
                        round(measured["p99"]),
                        "ms",
                        f"{REQUESTS[level]} requests of 1 image, in the best round",
                    ),
                ]
        finally:
            process.terminate()
            process.wait(timeout=60)
    load_after = os.getloadavg()
    rows.append(
        _row(
            "load average after",
            round(load_after[0], 1),
            "",
            f"{load_before[0]:.1f} before; {os.cpu_count()} cores, the load generator on them too",
        )
    )
    return rows


if __name__ == "__main__":
    results = run()
    for row in results:
        print(f"{row['metric']:<45} {row['value']!s:>14} {row['unit']:<11} {row['note']}")
    out = HERE / "results" / "serve.json"
    out.write_text(
        json.dumps(
            {
                "rows": results,
                "date": time.strftime("%Y-%m-%d"),
                "machine": f"{os.cpu_count()} cores, Python {sys.version.split()[0]}",
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
