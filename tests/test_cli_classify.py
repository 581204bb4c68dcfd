"""`redditvision classify` through an endpoint, and its page opened in headless Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import ImageHost
from harness.browser import console_lines, find_chromium, probe_page, run_chromium
from redditvision.cli import main
from redditvision.models import ImagePost, MediaItem
from redditvision.serialize import post_to_json
from redditvision.serve import BackgroundServer, create_app
from serve_support import FOLDERS, tiny_classifier, tiny_model, wait_ready

KEY_VAR = "REDDITVISION_TEST_CLASSIFY_KEY"
KEY = "classify-cli-key"


@pytest.fixture(scope="module")
def endpoint(bmw_photos: Path) -> Iterator[str]:
    with (
        tiny_classifier(tiny_model(bmw_photos)) as classifier,
        BackgroundServer(create_app(classifier, api_key=KEY), api_key=KEY) as server,
    ):
        wait_ready(server.url)
        yield server.url


@pytest.fixture
def posts_file(image_host: ImageHost, bmw_photos: Path, tmp_path: Path) -> Path:
    lines = []
    for number, (folder, _) in enumerate(FOLDERS.values()):
        paths = sorted((bmw_photos / folder).iterdir())[10:13]
        urls = [image_host.serve(f"/{number}/{i}.jpg", p.read_bytes()) for i, p in enumerate(paths)]
        post = ImagePost(
            id=f"post{number}",
            subreddit="BMW",
            title=f"<script>alert({number})</script> {folder}",
            permalink=f"/r/BMW/comments/post{number}/",
            author=None if number == 0 else f"user{number}",
            media=tuple(MediaItem(url=url, gallery_index=i) for i, url in enumerate(urls)),
        )
        lines.append(json.dumps(post_to_json(post)))
    broken = ImagePost(
        id="broken",
        subreddit="BMW",
        title="a page, not a photo",
        permalink="/r/BMW/comments/broken/",
        media=(MediaItem(url=image_host.serve("/page.jpg", b"<html></html>")),),
    )
    lines.append(json.dumps(post_to_json(broken)))
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_classify(endpoint: str, posts: Path, out: Path) -> dict[str, object]:
    result = CliRunner().invoke(
        main,
        [
            "classify",
            "--endpoint",
            endpoint,
            "--api-key-env",
            KEY_VAR,
            "--posts",
            str(posts),
            "--out",
            str(out),
            "--allow-private-networks",
            "--low-confidence",
            "0.4",
            "--json-summary",
        ],
        env={KEY_VAR: KEY},
    )
    assert result.exit_code == 0, result.output
    assert KEY not in result.output
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_classify_through_an_endpoint_writes_predictions_summary_and_page_and_resumes(
    endpoint: str, posts_file: Path, tmp_path: Path, image_host: ImageHost
) -> None:
    out = tmp_path / "out"
    summary = run_classify(endpoint, posts_file, out)
    assert summary["items"] == 10
    assert summary["classified"] == 9
    assert summary["predicted_this_run"] == 9
    assert summary["backend"] == "rest"
    assert summary["not_classified"] == {"count": 1, "reasons": {"failed": 1}}
    rows = [
        json.loads(line) for line in (out / "predictions.jsonl").read_text("utf-8").splitlines()
    ]
    assert len(rows) == 10
    assert {r["label"] for r in rows if r["label"]} <= {"3-4series", "x-suv", "z3-4-8"}
    page = (out / "index.html").read_text("utf-8")
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page

    hits = image_host.hits("/0/0.jpg")
    again = run_classify(endpoint, posts_file, out)
    assert again["predicted_this_run"] == 0
    assert again["classified"] == 9
    assert image_host.hits("/0/0.jpg") == hits


def test_one_model_and_one_input_are_required(posts_file: Path, tmp_path: Path) -> None:
    both = CliRunner().invoke(
        main,
        [
            "classify",
            "--model",
            str(tmp_path),
            "--endpoint",
            "http://127.0.0.1:9",
            "--posts",
            str(posts_file),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert both.exit_code == 2
    assert "exactly one model" in both.output
    none = CliRunner().invoke(
        main, ["classify", "--endpoint", "http://127.0.0.1:9", "--out", str(tmp_path / "o")]
    )
    assert none.exit_code == 2
    assert "exactly one input" in none.output
    unset = CliRunner().invoke(
        main,
        [
            "classify",
            "--endpoint",
            "http://127.0.0.1:9",
            "--api-key-env",
            "NOT_SET_ANYWHERE_X",
            "--posts",
            str(posts_file),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert unset.exit_code == 2
    assert "NOT_SET_ANYWHERE_X" in unset.output


PROBE = """
<script>
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var probe = document.createElement('pre');
  probe.id = 'probe';
  probe.textContent = JSON.stringify({
    sortable: document.body.getAttribute('data-sortable'),
    sections: Array.prototype.map.call(
        document.querySelectorAll('section[data-label]'), function (s) {
      return [s.getAttribute('data-label'), s.querySelectorAll('.card').length];
    }),
    images: images.length,
    broken: images.filter(function (i) { return !i.complete || i.naturalWidth === 0; }).length,
    links: Array.prototype.filter.call(document.links, function (a) {
      return a.href.indexOf('https://www.reddit.com/r/BMW/comments/') === 0;
    }).length
  });
  document.body.appendChild(probe);
});
</script>
"""


@pytest.mark.browser
def test_the_page_renders_in_headless_chromium(
    endpoint: str, posts_file: Path, tmp_path: Path
) -> None:
    chromium = find_chromium()
    out = tmp_path / "out"
    run_classify(endpoint, posts_file, out)
    page = out / "index.html"

    shot = run_chromium(
        chromium,
        tmp_path / "p1",
        "--window-size=1200,1600",
        f"--screenshot={tmp_path / 'page.png'}",
        page.as_uri(),
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert console_lines(shot.stderr) == []
    assert (tmp_path / "page.png").stat().st_size > 10_000

    result, _ = probe_page(chromium, page, PROBE, tmp_path)
    cards = dict(result["sections"])
    assert sum(cards.values()) == 10
    assert cards["not classified"] == 1
    assert result["images"] == 9
    assert result["broken"] == 0
    assert result["links"] >= 18  # a thumbnail link and a title link per classified card
    assert result["sortable"] == "ready"  # the layout's sorting script ran
