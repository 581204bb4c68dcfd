"""The HTML report opened in headless Chromium: tables, images, sorting, no console errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from harness.browser import console_lines, find_chromium, probe_page, run_chromium
from redditvision.report import ReportFiles, write_report
from test_report import make_evaluation, make_report

pytestmark = pytest.mark.browser

# Runs after the page's own script: records what rendered, then sorts the image table by
# the "score" column as a reader's click would, and writes the result into the DOM.
PROBE = """
<script>
window.addEventListener('load', function () {
  var table = document.getElementById('image-table');
  var header = table.tHead.rows[0].cells[4];
  header.click();
  var scores = Array.prototype.map.call(table.tBodies[0].rows, function (row) {
    return row.cells[4].getAttribute('data-sort');
  });
  var images = Array.prototype.slice.call(document.images);
  var probe = document.createElement('pre');
  probe.id = 'probe';
  probe.textContent = JSON.stringify({
    ready: document.body.getAttribute('data-sortable'),
    tables: document.querySelectorAll('table.sortable').length,
    imageRows: table.tBodies[0].rows.length,
    images: images.length,
    broken: images.filter(function (i) { return !i.complete || i.naturalWidth === 0; }).length,
    sort: header.getAttribute('aria-sort'),
    scores: scores
  });
  document.body.appendChild(probe);
});
</script>
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    return find_chromium()


@pytest.fixture(scope="module")
def report_files(tmp_path_factory: pytest.TempPathFactory) -> ReportFiles:
    folder = tmp_path_factory.mktemp("browser") / "report"
    return write_report(make_report(n_images=6), folder, evaluation=make_evaluation())


def test_report_renders_tables_and_images_sorts_and_logs_no_console_errors(
    chromium: str, report_files: ReportFiles, tmp_path: Path
) -> None:
    page = report_files.html
    screenshot = tmp_path / "report.png"

    shot = run_chromium(
        chromium,
        tmp_path / "profile-shot",
        "--window-size=1280,2400",
        "--hide-scrollbars",
        f"--screenshot={screenshot}",
        page.as_uri(),
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    # The page as shipped: its own script ran and nothing (CSP, scripts) complained.
    assert console_lines(shot.stderr) == []
    image = Image.open(io.BytesIO(screenshot.read_bytes()))
    assert image.format == "PNG"
    assert image.size == (1280, 2400)
    assert max(ImageStat.Stat(image.convert("L")).stddev) > 10  # not a blank page

    result, dom = probe_page(chromium, page, PROBE, tmp_path)
    assert result["ready"] == "ready"
    assert result["tables"] == 6  # overall, classes, images, evaluation x3
    assert result["imageRows"] == 7
    # 6 thumbnails, 3 comparison plots, 3 evaluation plots; the broken image has none.
    assert result["images"] == 12
    assert result["broken"] == 0
    assert result["sort"] == "ascending"
    scores = [float(s) for s in result["scores"] if s]
    assert scores == sorted(scores)
    assert result["scores"][-1] == ""  # the image without a score sorts last
    assert "&lt;script&gt;alert" in dom
