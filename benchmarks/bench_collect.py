"""Collection speed: media resolution and the offline sources on the real r/popular listing."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import zstandard

from benchmarks import measured, rate_runs, repeat, skipped
from redditvision.reddit import DumpFileSource, ListingFileSource, resolve_media

LISTING = (
    Path(__file__).resolve().parent.parent.parent
    / "shared/data/reddit/listings/TestSubmission.test_hide_multiple_in_batches.0.json"
)


RUNS = 7  # each measurement is repeated; the table shows the median and the spread


def run() -> list[dict[str, Any]]:
    if not LISTING.is_file():
        return [skipped("collect", "all", f"{LISTING} is absent")]
    children = [c["data"] for c in json.loads(LISTING.read_text("utf-8"))["data"]["children"]]
    rows: list[dict[str, Any]] = []

    rounds = 10

    def resolve_all() -> None:
        for _ in range(rounds):
            for data in children:
                resolve_media(data)

    rows.append(
        measured(
            "collect",
            "resolve_media",
            rate_runs(rounds * len(children), repeat(resolve_all, RUNS)),
            "submissions/s",
            f"r/popular hot listing, {len(children)} submissions x {rounds} per run",
        )
    )

    def read_listing() -> None:
        for _ in range(2):
            list(ListingFileSource([LISTING]).submissions())

    rows.append(
        measured(
            "collect",
            "ListingFileSource",
            rate_runs(2 * len(children), repeat(read_listing, RUNS)),
            "submissions/s",
            "644 kB listing file read and parsed twice per run",
        )
    )

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "RS.ndjson.zst"
        lines = "".join(json.dumps(d) + "\n" for d in children * 20).encode("utf-8")
        path.write_bytes(zstandard.ZstdCompressor().compress(lines))
        seen: list[int] = []

        def read_dump() -> None:
            source = DumpFileSource([path])
            for _ in source.submissions():
                pass
            seen.append(source.stats.posts_seen)

        seconds = repeat(read_dump, RUNS)
        rows.append(
            measured(
                "collect",
                "DumpFileSource (.zst)",
                rate_runs(seen[0], seconds),
                "submissions/s",
                f"{seen[0]:,} real submissions, zstandard NDJSON, streamed",
            )
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
