"""`redditvision download` reads posts from a file or a pipe, sums up, and survives SIGKILL."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import ImageHost
from redditvision.cli import main
from redditvision.manifest import ImageManifest
from redditvision.models import ImagePost, MediaItem, RecordStatus
from redditvision.serialize import post_to_json


def jsonl(*posts: ImagePost) -> str:
    return "".join(json.dumps(post_to_json(post)) + "\n" for post in posts)


def post(post_id: str, *urls: str) -> ImagePost:
    return ImagePost(
        id=post_id,
        subreddit="BMW",
        title=f"title of {post_id}",
        permalink=f"/r/BMW/comments/{post_id}/",
        media=tuple(MediaItem(url=url) for url in urls),
    )


@pytest.fixture(scope="module")
def photo_bytes(bmw_photos: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted(bmw_photos.glob("*/*.jpg"))[:40]]


def test_json_summary_counts_ok_failed_skipped_duplicates_and_bytes(
    image_host: ImageHost, photo_bytes: list[bytes], tmp_path: Path
) -> None:
    a = image_host.serve("/a.jpg", photo_bytes[0])
    b = image_host.serve("/b.jpg", photo_bytes[0])
    bad = image_host.serve("/page.jpg", b"<html></html>")
    posts = tmp_path / "posts.jsonl"
    posts.write_text(jsonl(post("p1", a), post("p2", b), post("p3", bad)), encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "download",
            "--posts",
            str(posts),
            "--out",
            str(out),
            "--concurrency",
            "1",
            "--allow-private-networks",
            "--json-summary",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ok"] == 1
    assert summary["duplicates"] == 1
    assert summary["failed"] == 1
    assert summary["skipped"] == 0
    assert summary["bytes"] == len(photo_bytes[0])
    assert (out / "manifest.sqlite").is_file()


def test_posts_stream_from_standard_input(
    image_host: ImageHost, photo_bytes: list[bytes], tmp_path: Path
) -> None:
    urls = [image_host.serve(f"/{i}.jpg", photo_bytes[i]) for i in range(3)]
    stdin = jsonl(*(post(f"p{i}", url) for i, url in enumerate(urls)))
    result = CliRunner().invoke(
        main,
        [
            "download",
            "--posts",
            "-",
            "--out",
            str(tmp_path / "out"),
            "--allow-private-networks",
            "--json-summary",
        ],
        input=stdin,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["ok"] == 3


def test_loopback_links_fail_without_the_opt_in(image_host: ImageHost, tmp_path: Path) -> None:
    url = image_host.serve("/a.jpg", b"\xff\xd8\xff")
    result = CliRunner().invoke(
        main,
        ["download", "--posts", "-", "--out", str(tmp_path / "out"), "--json-summary"],
        input=jsonl(post("p1", url)),
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["failed"] == 1
    assert image_host.hits("/a.jpg") == 0


def test_the_summary_names_the_commonest_failure_reasons(
    image_host: ImageHost, tmp_path: Path
) -> None:
    urls = [image_host.serve(f"/{i}.jpg", b"\xff\xd8\xff") for i in range(3)]
    stdin = jsonl(*(post(f"p{i}", url) for i, url in enumerate(urls)))
    out = str(tmp_path / "out")
    summary_run = CliRunner().invoke(
        main, ["download", "--posts", "-", "--out", out, "--json-summary"], input=stdin
    )
    reasons = json.loads(summary_run.stdout.strip().splitlines()[-1])["failure_reasons"]
    assert sum(reasons.values()) == 3
    assert all("127.0.0.1" in reason for reason in reasons)

    table_run = CliRunner().invoke(
        main, ["download", "--posts", "-", "--out", str(tmp_path / "again")], input=stdin
    )
    assert table_run.exit_code == 0, table_run.output
    assert "127.0.0.1" in table_run.stderr


def test_a_bad_line_is_skipped_and_reported_while_the_rest_runs(
    image_host: ImageHost, photo_bytes: list[bytes], tmp_path: Path
) -> None:
    url = image_host.serve("/a.jpg", photo_bytes[0])
    stdin = "{not json\n" + jsonl(post("p1", url)) + '{"id": "x"}\n'
    result = CliRunner().invoke(
        main,
        [
            "download",
            "--posts",
            "-",
            "--out",
            str(tmp_path / "out"),
            "--allow-private-networks",
            "--json-summary",
        ],
        input=stdin,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["ok"], summary["bad_lines"]) == (1, 2)
    assert "line 1 skipped" in result.stderr


def test_input_with_no_post_at_all_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["download", "--posts", "-", "--out", str(tmp_path / "out")], input="nope\n[]\n"
    )
    assert result.exit_code == 2
    assert "no line of stdin is a post" in result.stderr


def _rows(database: Path) -> int:
    if not database.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM records").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_sigkill_mid_run_then_rerun_leaves_complete_unique_files(
    photo_bytes: list[bytes], tmp_path: Path
) -> None:
    with ImageHost() as host:
        urls = [host.serve(f"/{i}.jpg", photo_bytes[i]) for i in range(30)]
        urls += [host.serve(f"/repost{i}.jpg", photo_bytes[i]) for i in range(6)]
        posts_file = tmp_path / "posts.jsonl"
        posts_file.write_text(jsonl(*(post(f"p{i}", url) for i, url in enumerate(urls))))
        # The first six photos are answered; every later request is held unanswered, so
        # the kill lands at a known moment: six rows committed, both workers waiting.
        host.hold(*(f"/{i}.jpg" for i in range(6, 30)), *(f"/repost{i}.jpg" for i in range(6)))
        out = tmp_path / "out"
        command = [
            sys.executable, "-c", "from redditvision.cli import main; main()",
            "download", "--posts", str(posts_file), "--out", str(out), "--concurrency", "2",
            "--allow-private-networks", "--json-summary",
        ]  # fmt: skip
        first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            host.wait_held(2)  # both workers are inside a held request: nothing else moves
            deadline = time.monotonic() + 120
            while _rows(out / "manifest.sqlite") < 6 and time.monotonic() < deadline:
                time.sleep(0.05)  # the six answered photos are being committed
            assert first.poll() is None, "the download ended before it could be killed"
        finally:
            first.send_signal(signal.SIGKILL)
            first.communicate(timeout=30)
        assert first.returncode == -signal.SIGKILL  # killed mid-run, not finished
        with ImageManifest.for_folder(out) as manifest:
            assert {r.key for r in manifest.records()} == {f"p{i}:0" for i in range(6)}
        assert host.hits("/6.jpg") == host.hits("/7.jpg") == 1  # the two held when killed

        host.release()
        second = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        assert second.returncode == 0, second.stderr
        summary = json.loads(second.stdout.strip().splitlines()[-1])
        hits = {i: host.hits(f"/{i}.jpg") for i in range(30)}
        repost_hits = [host.hits(f"/repost{i}.jpg") for i in range(6)]

    # The run's summary covers every item of the input, those done before the kill too.
    assert (summary["ok"], summary["duplicates"], summary["failed"]) == (30, 6, 0)
    with ImageManifest.for_folder(out) as manifest:
        records = list(manifest.records())
    assert len(records) == len(urls)
    assert {r.status for r in records} <= {RecordStatus.OK, RecordStatus.DUPLICATE}
    files = sorted((out / "images").rglob("*.*"))
    assert len(files) == 30  # one file per distinct photo, none twice
    for file in files:
        assert file.stem == hashlib.sha256(file.read_bytes()).hexdigest()
    assert {r.path for r in records} == set(files)
    assert not list((out / ".partial").glob("*.part"))
    # What was committed before the kill was not fetched again; the two requests that were
    # in flight at the kill were fetched again, everything else once.
    assert [hits[i] for i in range(6)] == [1] * 6
    assert (hits[6], hits[7]) == (2, 2)
    assert [hits[i] for i in range(8, 30)] == [1] * 22
    assert repost_hits == [1] * 6
