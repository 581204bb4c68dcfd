"""Collection speed: media resolution and the offline sources on the real r/popular listing."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import zstandard

from redditvision.reddit import DumpFileSource, ListingFileSource, resolve_media

LISTING = (
    Path(__file__).resolve().parent.parent.parent
    / "shared/data/reddit/listings/TestSubmission.test_hide_multiple_in_batches.0.json"
)


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def run() -> list[dict[str, Any]]:
    if not LISTING.is_file():
        return []
    children = [c["data"] for c in json.loads(LISTING.read_text("utf-8"))["data"]["children"]]
    rows: list[dict[str, Any]] = []

    rounds = 50
    start = time.perf_counter()
    for _ in range(rounds):
        for data in children:
            resolve_media(data)
    rows.append(
        {
            "benchmark": "collect",
            "metric": "resolve_media",
            "value": _rate(rounds * len(children), time.perf_counter() - start),
            "unit": "submissions/s",
            "note": "r/popular hot listing, 100 submissions x 50",
        }
    )

    start = time.perf_counter()
    for _ in range(10):
        list(ListingFileSource([LISTING]).submissions())
    rows.append(
        {
            "benchmark": "collect",
            "metric": "ListingFileSource",
            "value": _rate(10 * len(children), time.perf_counter() - start),
            "unit": "submissions/s",
            "note": "644 kB listing file read and parsed 10 times",
        }
    )

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "RS.ndjson.zst"
        lines = "".join(json.dumps(d) + "\n" for d in children * 20).encode("utf-8")
        path.write_bytes(zstandard.ZstdCompressor().compress(lines))
        start = time.perf_counter()
        source = DumpFileSource([path])
        for _ in source.submissions():
            pass
        rows.append(
            {
                "benchmark": "collect",
                "metric": "DumpFileSource (.zst)",
                "value": _rate(source.stats.posts_seen, time.perf_counter() - start),
                "unit": "submissions/s",
                "note": "2,000 real submissions, zstandard NDJSON, streamed",
            }
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
