"""`redditvision collect` writes JSON Lines and a summary, and fails on bad input in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import vcr
from click.testing import CliRunner

from redditvision.cli import main
from redditvision.serialize import post_from_json

POPULAR = "TestSubmission.test_hide_multiple_in_batches"


def test_listing_to_json_lines_with_a_json_summary(reddit_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "posts.jsonl"
    listing = reddit_data / "listings" / f"{POPULAR}.0.json"
    result = CliRunner().invoke(
        main, ["collect", "--listing", str(listing), "--out", str(out), "--json-summary"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["posts_seen"] == 100
    assert summary["posts_with_images"] == 64
    assert summary["images"] == 109
    # The 50 direct i.redd.it links each carry their Reddit preview as a fallback item.
    assert summary["fallback_previews"] == 50
    assert summary["skips"] == {"not_an_image_link": 5, "self_post": 6, "video": 25}
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == summary["posts_written"] == 64
    first = json.loads(lines[0])
    assert {"id", "subreddit", "title", "permalink", "media", "skipped"} <= set(first)
    assert {"url", "kind"} <= set(first["media"][0])
    posts = [post_from_json(json.loads(line)) for line in lines]
    assert sum(len(post.media) for post in posts) == 109 + 50
    assert sum(m.is_preview for post in posts for m in post.media) == 50


def test_dump_to_stdout_with_the_summary_on_stderr(reddit_data: Path, tmp_path: Path) -> None:
    children = json.loads((reddit_data / "listings" / f"{POPULAR}.0.json").read_text("utf-8"))
    lines = [json.dumps(child["data"]) for child in children["data"]["children"][:10]]
    lines.insert(3, "{oops")
    dump = tmp_path / "RS_2026-04.ndjson"
    dump.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["collect", "--dump", str(dump), "--min-width", "1000"])
    assert result.exit_code == 0, result.output
    written = [json.loads(line) for line in result.stdout.splitlines()]
    assert written and all(post["media"] for post in written)
    assert "posts seen" in result.stderr
    assert f"{dump}:4: malformed JSON" in result.stderr


def test_subreddit_through_praw_from_praw_env_vars(
    reddit_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("praw_client_id", "dummy-id")
    monkeypatch.setenv("praw_client_secret", "dummy-secret")
    monkeypatch.setenv("praw_user_agent", "linux:redditvision-tests:0.1 (replay)")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "popular.jsonl"
    recorder = vcr.VCR(record_mode="none", match_on=["method", "path"])
    with recorder.use_cassette(str(reddit_data / "cassettes" / f"{POPULAR}.json")):
        result = CliRunner().invoke(
            main,
            [
                "collect",
                "-s",
                "popular",
                "--sort",
                "hot",
                "--limit",
                "100",
                "-o",
                str(out),
                "--json-summary",
            ],
        )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["images"] == 109
    assert len(out.read_text(encoding="utf-8").splitlines()) == 64


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one input"),
        (["--listing", "missing.json"], "missing.json does not exist"),
        (["--listing", "notes.json"], "is not a Reddit listing"),
        (["--listing", "notes.json", "--json-summary"], "--json-summary prints the summary"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.json").write_text('{"kind": "t1"}', encoding="utf-8")
    result = CliRunner().invoke(main, ["collect", *args])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


def test_a_failed_run_leaves_no_partial_output_file(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps(
            {
                "kind": "Listing",
                "data": {
                    "children": [
                        {"kind": "t3", "data": {"id": "a1", "url": "https://i.redd.it/a.png"}}
                    ]
                },
            }
        ),
        encoding="utf-8",
    )
    bad = tmp_path / "bad.json"
    bad.write_text("[1]", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        main, ["collect", "--listing", str(good), "--listing", str(bad), "-o", str(out)]
    )
    assert result.exit_code == 2
    assert not out.exists()
    assert list(tmp_path.glob("*.partial")) == []
