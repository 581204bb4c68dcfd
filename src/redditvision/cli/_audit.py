"""``redditvision audit``: find label errors, off-domain images, duplicates and image issues."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import TaskID

from redditvision.cli._common import echo_json, err_console, handle_errors, json_option, progress

__all__ = ["COMMANDS", "audit"]

_DATASET_FILE = "dataset.jsonl"


@click.command()
@click.argument(
    "dataset_path",
    metavar="DATASET",
    type=click.Path(exists=True, path_type=Path),
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for audit.html, audit.csv, audit.jsonl (and the cleaned dataset.jsonl).",
)
@click.option(
    "--exclude",
    "exclude",
    multiple=True,
    metavar="ISSUE",
    help="Leave out images with this issue in OUT/dataset.jsonl (repeatable), e.g. off_domain.",
)
@click.option(
    "--relabel",
    is_flag=True,
    help="Give likely label errors their suggested label in OUT/dataset.jsonl.",
)
@click.option(
    "--target",
    default="local",
    show_default=True,
    help="Backend whose per-label limits the counts are checked against.",
)
@click.option(
    "--generic/--no-generic",
    default=True,
    show_default=True,
    help="Explain off-domain images with the offline ImageNet labeler's words.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Cross-validation seed.")
@json_option("Print a JSON summary on stdout.")
@handle_errors
def audit(
    dataset_path: Path,
    out_dir: Path,
    exclude: tuple[str, ...],
    relabel: bool,
    target: str,
    generic: bool,
    seed: int,
    as_json: bool,
) -> None:
    """Audit DATASET (what `redditvision label --out` wrote) and write the audit into --out.

    Reports, never blocks: flagged images are ranked for review in audit.html. With
    --exclude ISSUE or --relabel it also writes the cleaned OUT/dataset.jsonl, which the
    next steps (`upload`, `train --dataset`) take as they take the labeled one. Issues:
    label_error, off_domain, duplicate_across_labels, split_leak, duplicate, undecodable,
    blurry, dark, overexposed, tiny, odd_aspect_ratio, low_information.
    """
    from redditvision.audit import ISSUE_KINDS, audit_dataset, write_audit
    from redditvision.backends.local import (
        EfficientNetLite0Extractor,
        ImageNetLabeler,
    )
    from redditvision.errors import ConfigError
    from redditvision.storage import load_local_dataset, write_local_dataset

    unknown = sorted(set(exclude) - set(ISSUE_KINDS))
    if unknown:
        raise ConfigError(
            f"unknown issue(s) for --exclude: {', '.join(unknown)}; "
            f"choose from {', '.join(ISSUE_KINDS)}"
        )
    dataset = load_local_dataset(dataset_path)
    extractor = EfficientNetLite0Extractor()
    labeler = ImageNetLabeler(extractor=extractor) if generic else None
    with progress(disable=as_json) as bars:
        tasks: dict[str, TaskID] = {}

        def advance(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=total)
            bars.update(tasks[stage], completed=done, total=total)

        report = audit_dataset(
            dataset,
            extractor=extractor,
            generic=labeler,
            target=target,
            seed=seed,
            progress=advance,
        )
    files = write_audit(report, out_dir)
    counts = report.counts()
    flagged = len(report.flagged())
    err_console.print(
        f"audited {len(dataset.images)} image(s): {flagged} flagged"
        + ("" if not counts else " (" + ", ".join(f"{n} {k}" for k, n in counts.items()) + ")"),
        highlight=False,
    )
    err_console.print(
        f"wrote {files.html}, {files.csv.name} and {files.jsonl.name}", highlight=False
    )
    summary: dict[str, object] = {
        "images": len(dataset.images),
        "flagged": flagged,
        "issues": counts,
        "html": str(files.html),
        "csv": str(files.csv),
        "jsonl": str(files.jsonl),
    }
    if exclude or relabel:
        cleaned, stats = report.cleaned(exclude=exclude, relabel=relabel)
        path = write_local_dataset(cleaned, out_dir / _DATASET_FILE)
        err_console.print(
            f"wrote the cleaned dataset ({len(cleaned.images)} image(s); "
            + (", ".join(f"{n} {k}" for k, n in sorted(stats.items())) or "no change")
            + f") to {path}",
            highlight=False,
        )
        summary["cleaned"] = {"dataset_file": str(path), "images": len(cleaned.images), **stats}
    if as_json:
        echo_json(summary)


COMMANDS: list[click.Command] = [audit]
