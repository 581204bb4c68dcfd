"""``redditvision download``: fetch the images of collected posts into a folder."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from redditvision.cli._common import (
    EXIT_FAILED,
    echo_json,
    err_console,
    handle_errors,
    progress,
)
from redditvision.download import DownloadLimits, ImageDownloader
from redditvision.errors import ListingFormatError
from redditvision.models import ImagePost, RecordStatus
from redditvision.serialize import post_from_json

__all__ = ["COMMANDS", "download"]

logger = logging.getLogger(__name__)

_COUNT_NAMES = {
    RecordStatus.OK: "ok",
    RecordStatus.DUPLICATE: "duplicates",
    RecordStatus.MISSING: "missing",
    RecordStatus.SKIPPED: "skipped",
    RecordStatus.FAILED: "failed",
}


class _PostReader:
    """Reads JSON Lines posts lazily; a bad line is reported and skipped."""

    def __init__(self, stream: IO[str], name: str) -> None:
        self.stream = stream
        self.name = name
        self.lines = 0
        self.bad = 0

    def __iter__(self) -> Iterator[ImagePost]:
        try:
            yield from self._posts()
        except UnicodeDecodeError as exc:
            raise ListingFormatError(
                f"{self.name} is not UTF-8 text ({exc.reason} after line {self.lines}); "
                "pass the JSON Lines that `redditvision collect` writes"
            ) from exc

    def _posts(self) -> Iterator[ImagePost]:
        for number, line in enumerate(self.stream, start=1):
            if not line.strip():
                continue
            self.lines += 1
            try:
                data = _loads(line)
                if not isinstance(data, dict):
                    raise ListingFormatError("not a JSON object")
                yield post_from_json(data)
            except ListingFormatError as exc:
                self.bad += 1
                logger.warning("%s line %d skipped: %s", self.name, number, exc)
                err_console.print(f"[yellow]{self.name} line {number} skipped:[/] {exc}")


def _loads(line: str) -> Any:
    """Parse one line of outside JSON; every parser failure is a ListingFormatError."""
    try:
        return json.loads(line)
    except RecursionError as exc:
        raise ListingFormatError("JSON nested too deeply (past Python's recursion limit)") from exc
    except ValueError as exc:  # JSONDecodeError, an integer over the 4,300-digit limit
        raise ListingFormatError(f"malformed JSON: {exc}") from exc


def _count_media(path: Path) -> int | None:
    total = 0
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    data = _loads(line)
                except ListingFormatError:
                    continue
                if isinstance(data, dict):
                    total += len(data.get("media") or ())
    except (OSError, UnicodeDecodeError):
        return None
    return total


@click.command("download")
@click.option(
    "--posts",
    "posts_file",
    required=True,
    type=click.File("r", encoding="utf-8"),
    help="JSON Lines of posts as `redditvision collect` writes them; - for standard input.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder: images/ and manifest.sqlite (created; a re-run resumes).",
)
@click.option(
    "--concurrency",
    default=16,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Requests in flight.",
)
@click.option(
    "--per-host",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Requests in flight per host.",
)
@click.option(
    "--max-bytes",
    default=DownloadLimits().max_bytes,
    show_default=True,
    type=click.IntRange(1),
    help="Largest image in bytes (Vertex AI takes up to 30 MB).",
)
@click.option(
    "--deadline",
    default=DownloadLimits().deadline,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds one image may take in all (attempts and retries), enforced while it streams.",
)
@click.option(
    "--min-rate",
    default=DownloadLimits().min_bytes_per_second,
    show_default=True,
    type=click.IntRange(0),
    help="Slowest transfer accepted in bytes/s, after 10 s of body (0: no minimum).",
)
@click.option(
    "--near-duplicate-distance",
    default=6,
    show_default=True,
    type=click.IntRange(0, 64),
    help="Hamming distance of perceptual hashes under which images share a group.",
)
@click.option(
    "--allow-private-networks",
    is_flag=True,
    help="Also fetch from loopback/private/link-local addresses (tests, intranets only).",
)
@click.option(
    "--wait-for-lock",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to wait while another download holds --out (0: refuse at once).",
)
@click.option(
    "--progress-every",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds between progress lines on standard error when it is not a terminal "
    "(logs, CI; a terminal gets the progress bar); 0 for a line per image.",
)
@click.option(
    "--json-summary",
    is_flag=True,
    help="Print one JSON object with the counts on standard output (no progress bar).",
)
@handle_errors
def download(
    posts_file: IO[str],
    out_dir: Path,
    concurrency: int,
    per_host: int,
    max_bytes: int,
    deadline: float,
    min_rate: int,
    near_duplicate_distance: int,
    allow_private_networks: bool,
    wait_for_lock: float,
    progress_every: float,
    json_summary: bool,
) -> None:
    """Download the images of collected posts, verified and deduplicated.

    Reads posts (JSON Lines, one `redditvision collect` object a line) from --posts,
    streaming, so `redditvision collect ... | redditvision download --posts - --out DIR`
    works. Files are named by content under DIR/images; DIR/manifest.sqlite records each
    media item (ok, duplicate, missing, skipped, failed, with the reason). Running again
    skips what is done and retries what failed. Exits with 1 when images failed and none
    was fetched (no network, every host refusing), so scripts notice.
    """
    name = getattr(posts_file, "name", "<posts>")
    reader = _PostReader(posts_file, "stdin" if name == "<stdin>" else str(name))
    total = None if name in ("<stdin>", "-") else _count_media(Path(name))
    counts: dict[str, int] = dict.fromkeys(_COUNT_NAMES.values(), 0)
    counts["bytes"] = 0
    reasons: Counter[str] = Counter()
    limits = DownloadLimits(max_bytes=max_bytes, deadline=deadline, min_bytes_per_second=min_rate)
    with (
        ImageDownloader(
            out_dir,
            limits=limits,
            concurrency=concurrency,
            per_host=per_host,
            allow_private_networks=allow_private_networks,
            near_duplicate_distance=near_duplicate_distance,
            lock_timeout=wait_for_lock,
        ) as downloader,
        progress(disable=json_summary) as bar,
    ):
        task = bar.add_task("download", total=total)
        manifest = downloader.manifest
        lines = _ProgressLines(progress_every, total, enabled=not err_console.is_terminal)
        for record in downloader.fetch(reader):
            counts[_COUNT_NAMES[record.status]] += 1
            if record.status in (RecordStatus.FAILED, RecordStatus.MISSING):
                reasons[record.reason or record.status.value] += 1
                logger.info("%s %s: %s", record.status.value, record.url, record.reason)
            if record.status is RecordStatus.OK:
                counts["bytes"] += record.size_bytes or 0
            bar.advance(task)
            lines.tick(counts)
        lines.tick(counts, final=True)
        folder_summary = manifest.summary()
    if reader.lines and reader.bad == reader.lines:
        raise ListingFormatError(
            f"no line of {reader.name} is a post ({reader.bad} bad lines); pass the JSON "
            "Lines that `redditvision collect` writes"
        )
    summary: dict[str, Any] = {
        **counts,
        "bad_lines": reader.bad,
        "out": str(out_dir),
        "manifest": str(out_dir / "manifest.sqlite"),
        "folder": folder_summary,
        "failure_reasons": dict(reasons.most_common(10)),
    }
    if json_summary:
        echo_json(summary)
    else:
        err_console.print(
            f"[bold]{counts['ok']}[/] ok, {counts['duplicates']} duplicates, "
            f"{counts['missing']} missing, {counts['skipped']} skipped, "
            f"[red]{counts['failed']}[/] failed, {counts['bytes']:,} bytes -> {out_dir}"
        )
        # The commonest reasons, so a run that fails wholesale (no network, a host that
        # refuses) says why without opening the manifest; -v logs every item.
        for reason, count in reasons.most_common(5):
            err_console.print(f"  {count:>6} x {reason}", markup=False, highlight=False)

    if counts["failed"] and not counts["ok"] and not counts["duplicates"]:
        err_console.print(
            f"[red]nothing was fetched[/]: {counts['failed']} failed, 0 ok", highlight=False
        )
        sys.exit(EXIT_FAILED)


class _ProgressLines:
    """One plain progress line on standard error every ``every`` seconds (not a terminal)."""

    def __init__(self, every: float, total: int | None, *, enabled: bool) -> None:
        self.every = every
        self.total = total
        self.enabled = enabled
        self.started = time.monotonic()
        self.last = self.started

    def tick(self, counts: dict[str, int], *, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < self.every):
            return
        self.last = now
        done = sum(counts[name] for name in _COUNT_NAMES.values())
        of = f"/{self.total}" if self.total is not None else ""
        err_console.print(
            f"download: {done}{of} done ({counts['ok']} ok, {counts['duplicates']} duplicates, "
            f"{counts['missing']} missing, {counts['skipped']} skipped, {counts['failed']} "
            f"failed) after {now - self.started:.0f} s",
            markup=False,
            highlight=False,
        )


COMMANDS: list[click.Command] = [download]
