"""Writing an audit: ``audit.html``, ``audit.csv`` and ``audit.jsonl``."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path
from typing import Any

import attrs

from redditvision._csv import write_csv
from redditvision.audit._types import ACTIONS, ISSUE_KINDS, AuditReport
from redditvision.errors import StorageError

__all__ = ["CSV_COLUMNS", "AuditFiles", "write_audit"]

CSV_COLUMNS = (
    "rank",
    "path",
    "label",
    "issue",
    "score",
    "suggested_label",
    "action",
    "reason",
    "ml_use",
    "sha256",
)
"""Columns of ``audit.csv``, in order (one row per finding)."""

THUMBNAIL_SIDE = 128
"""Longer side in pixels of the thumbnails inlined in ``audit.html``."""

MAX_ROWS_PER_ISSUE = 500
"""Findings shown per issue in ``audit.html`` (every finding is in the CSV and JSONL)."""


@attrs.frozen(kw_only=True)
class AuditFiles:
    """The files an audit wrote.

    Attributes:
        html: ``audit.html``: thumbnails grouped by issue, sortable, offline.
        csv: ``audit.csv``: one row per finding (:data:`CSV_COLUMNS`), injection-safe.
        jsonl: ``audit.jsonl``: one JSON object per finding (:meth:`AuditFinding.to_json`).
    """

    html: Path
    csv: Path
    jsonl: Path


def _thumbnail(path: Path) -> str | None:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            image.draft("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            small = ImageOps.exif_transpose(image).convert("RGB")
            small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            buffer = io.BytesIO()
            small.save(buffer, format="JPEG", quality=80)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _shown(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:  # another drive on Windows
        return str(path)


def write_audit(report: AuditReport, out_dir: str | os.PathLike[str]) -> AuditFiles:
    """Write the audit's HTML page, CSV and JSON Lines files into ``out_dir``.

    Paths in the HTML page are shown relative to ``out_dir``; the CSV and JSONL keep them as
    the dataset names them. The folder is created; existing audit files are replaced
    (each written whole, then renamed).

    Args:
        report: The audit.
        out_dir: The folder.

    Returns:
        The paths written.

    Raises:
        StorageError: The folder or a file cannot be written.
    """
    from redditvision.report.html import render_page

    out = Path(out_dir)
    rank = {path: i + 1 for i, path in enumerate(report.flagged())}
    try:
        out.mkdir(parents=True, exist_ok=True)
        csv_path = out / "audit.csv"
        write_csv(
            csv_path,
            CSV_COLUMNS,
            (
                (
                    rank[f.path],
                    str(f.path),
                    f.label,
                    f.issue,
                    round(f.score, 4),
                    f.suggested_label,
                    f.action,
                    f.reason,
                    f.ml_use,
                    f.sha256,
                )
                for f in report.findings
            ),
        )
        jsonl_path = out / "audit.jsonl"
        tmp = jsonl_path.with_name(".audit.jsonl.tmp")
        with tmp.open("w", encoding="utf-8") as stream:
            for f in report.findings:
                stream.write(
                    json.dumps({"rank": rank[f.path], **f.to_json()}, ensure_ascii=False) + "\n"
                )
        tmp.replace(jsonl_path)
        counts = report.counts()
        groups = []
        thumbnails: dict[Path, str | None] = {}
        for issue in ISSUE_KINDS:
            rows: list[dict[str, Any]] = []
            for f in (f for f in report.findings if f.issue == issue):
                if len(rows) >= MAX_ROWS_PER_ISSUE:
                    break
                if f.path not in thumbnails:
                    thumbnails[f.path] = _thumbnail(f.path)
                rows.append(
                    {
                        "rank": rank[f.path],
                        "thumbnail": thumbnails[f.path],
                        "path": _shown(f.path, out),
                        "label": f.label,
                        "score": f.score,
                        "suggested": f.suggested_label,
                        "action": f.action,
                        "reason": f.reason,
                    }
                )
            if rows:
                groups.append({"issue": issue, "meaning": ISSUE_KINDS[issue], "rows": rows})
        flagged = len(rank)
        total = len(report.dataset.images)
        headline = (
            f"{flagged} of {total} images ({flagged / total:.0%}) are flagged for review; "
            + (
                "most harmful first: "
                + ", ".join(
                    f"{counts[i]} {i.replace('_', ' ')}" for i in ISSUE_KINDS if i in counts
                )
                + "."
                if counts
                else "nothing to fix."
            )
        )
        summary = [
            {
                "issue": issue,
                "count": counts[issue],
                "meaning": ISSUE_KINDS[issue],
                "action": ACTIONS.get(
                    next(f.action for f in report.findings if f.issue == issue), ""
                ),
            }
            for issue in ISSUE_KINDS
            if issue in counts
        ]
        page = render_page(
            "audit.html",
            title=f"Data audit of {report.dataset.name}",
            headline=headline,
            summary=summary,
            groups=groups,
            label_counts=list(report.label_counts.items()),
            limit_issues=list(report.limit_issues),
            target=report.target,
            method=[(k, str(v)) for k, v in report.method.items()],
        )
        html_path = out / "audit.html"
        tmp_html = html_path.with_name(".audit.html.tmp")
        tmp_html.write_text(page, encoding="utf-8")
        tmp_html.replace(html_path)
    except OSError as exc:
        raise StorageError(f"cannot write the audit into {out}: {exc.strerror or exc}") from exc
    return AuditFiles(html=html_path, csv=csv_path, jsonl=jsonl_path)
