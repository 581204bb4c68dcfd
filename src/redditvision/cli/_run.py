"""``redditvision run``: the main job, from a config file and/or flags."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from redditvision.backends import backend_names
from redditvision.cli._common import echo_json, err_console, handle_errors, progress
from redditvision.errors import ConfigError
from redditvision.models import Evaluation
from redditvision.pipeline import RunConfig, RunResult, run

__all__ = ["COMMANDS", "evaluation_table", "sources_table"]


def evaluation_table(evaluation: Evaluation) -> Table:
    """Render an evaluation as a rich table: one row per label, then macro and micro.

    Args:
        evaluation: From any backend.

    Returns:
        The table.
    """
    table = Table(title=f"Evaluation ({evaluation.evaluated_items} images, {evaluation.source})")
    for column in ("label", "precision", "recall", "F1", "support", "auPRC"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for metrics in evaluation.per_label:
        table.add_row(
            metrics.label,
            f"{metrics.precision:.3f}",
            f"{metrics.recall:.3f}",
            f"{metrics.f1:.3f}",
            str(metrics.support),
            "" if metrics.au_prc is None else f"{metrics.au_prc:.3f}",
        )
    table.add_section()
    table.add_row(
        "macro avg",
        f"{evaluation.macro_precision:.3f}",
        f"{evaluation.macro_recall:.3f}",
        f"{evaluation.macro_f1:.3f}",
        str(evaluation.evaluated_items),
        "",
    )
    table.add_row(
        "micro avg",
        f"{evaluation.micro_precision:.3f}",
        f"{evaluation.micro_recall:.3f}",
        f"{evaluation.micro_f1:.3f}",
        str(evaluation.evaluated_items),
        "" if evaluation.au_prc is None else f"{evaluation.au_prc:.3f}",
    )
    if evaluation.accuracy is not None:
        table.caption = f"accuracy {evaluation.accuracy:.3f}"
    return table


def _summary(result: RunResult) -> dict[str, Any]:
    steps = {
        step.name: {"status": step.status, "seconds": round(step.seconds, 2)}
        for step in result.steps
    }
    if result.classified is not None:
        return {
            "output": str(result.output),
            "steps": steps,
            "classified": dict(result.classified),
            "sources": {name: dict(counts) for name, counts in result.sources.items()},
        }
    evaluation = result.evaluation
    assert result.dataset is not None
    assert result.model is not None
    assert evaluation is not None
    return {
        "output": str(result.output),
        "steps": {
            step.name: {"status": step.status, "seconds": round(step.seconds, 2)}
            for step in result.steps
        },
        "dataset": result.dataset.uri,
        "import_file": result.dataset.import_file_uri,
        "images": result.dataset.images,
        "labels": list(result.dataset.labels),
        "model": result.model.resource,
        "accuracy": evaluation.accuracy,
        "macro_f1": evaluation.macro_f1,
        "micro_f1": evaluation.micro_f1,
        "au_prc": evaluation.au_prc,
        "report_html": None if result.report_html is None else str(result.report_html),
        "comparison": None if result.comparison is None else dict(result.comparison),
        "audit": None if result.audit is None else dict(result.audit),
        "sources": {name: dict(counts) for name, counts in result.sources.items()},
    }


def comparison_line(summary: Mapping[str, Any]) -> str:
    """One line on the comparison: how often each side names the right class.

    Args:
        summary: :attr:`RunResult.comparison` (``ComparisonReport.summary_dict()``).

    Returns:
        E.g. ``compare: on 38 images the custom model names the right class 92% of the
        time, the imagenet labels 0%``.
    """
    overall = summary.get("overall") or {}
    images = overall.get("with_truth", overall.get("images", 0))
    custom = overall.get("custom_accuracy")
    generic = overall.get("generic_names_truth")

    def share(value: Any) -> str:
        return "n/a" if value is None else f"{value:.0%}"

    return (
        f"compare: on {images} images the custom model names the right class "
        f"{share(custom)} of the time, the {summary.get('generic', 'generic')} labels "
        f"{share(generic)}"
    )


def audit_line(audit: Mapping[str, Any]) -> str:
    """One line on the run's audit: what it flagged, what it changed, where the page is.

    Args:
        audit: :attr:`RunResult.audit`.

    Returns:
        E.g. ``audit:  12 of 383 flagged (4 off_domain, 8 label_error); 4 excluded:
        OUT/audit/audit.html``.
    """
    if "not_run" in audit:
        return f"audit:  not run ({audit['not_run']})"
    issues = ", ".join(f"{n} {kind}" for kind, n in audit.get("issues", {}).items())
    line = f"audit:  {audit['flagged']} of {audit['images']} flagged"
    if issues:
        line += f" ({issues})"
    changes = audit.get("changes")
    if changes is not None:
        line += "; " + (", ".join(f"{n} {kind}" for kind, n in changes.items()) or "no change")
    return f"{line}: {audit['html']}"


def sources_table(result: RunResult) -> Table:
    """Render the images each source contributed: kept, duplicates dropped, per label.

    Args:
        result: The run's result.

    Returns:
        The table, one row per source in config order.
    """
    images = result.dataset.images if result.dataset is not None else 0
    table = Table(title=f"Sources ({images} images)")
    for column in ("source", "kind", "images", "duplicates", "near-duplicates", "labels"):
        numeric = column in {"images", "duplicates", "near-duplicates"}
        table.add_column(column, justify="right" if numeric else "left")
    for name, counts in result.sources.items():
        labels = ", ".join(f"{label} {n}" for label, n in counts.get("labels", {}).items())
        table.add_row(
            name,
            str(counts.get("kind", "")),
            str(counts.get("images", 0)),
            str(counts.get("duplicates", 0)),
            str(counts.get("near_duplicates", 0)),
            labels,
        )
    return table


@click.command("run")
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out", "output", type=click.Path(file_okay=False, path_type=Path), help="The run's folder."
)
@click.option(
    "--images",
    type=click.Path(file_okay=False, path_type=Path),
    help="Source: a folder of label folders.",
)
@click.option(
    "--listing",
    "listings",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Source: saved Reddit listing JSON (repeatable).",
)
@click.option(
    "--dump",
    "dumps",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Source: NDJSON submission dump (repeatable).",
)
@click.option(
    "--subreddit",
    help="Source: a subreddit read through praw (credentials from praw.ini or praw_* variables).",
)
@click.option(
    "--sort",
    type=click.Choice(["top", "hot", "new", "rising", "controversial", "search"]),
    help="Listing sort.",
)
@click.option(
    "--time-filter",
    type=click.Choice(["hour", "day", "week", "month", "year", "all"]),
    help="Time filter for top/controversial.",
)
@click.option("--limit", type=int, help="Submissions to list (Reddit returns at most about 1,000).")
@click.option(
    "--rules",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Labels: TOML rules over title and flair.",
)
@click.option(
    "--label-map",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Labels: TOML map grouping folder names.",
)
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Labels: CSV of path,label.",
)
@click.option(
    "--backend",
    type=click.Choice(backend_names()),
    help="Training backend (default local).",
)
@click.option("--project", help="Google Cloud project (cloud backends).")
@click.option("--location", help="Google Cloud region (default us-central1).")
@click.option(
    "--budget", type=int, help="Cloud budget in milli node hours (Vertex CLOUD: 8,000 to 800,000)."
)
@click.option("--time-limit", type=float, help="Local training time limit, seconds.")
@click.option(
    "--quality",
    type=click.Choice(["fast", "medium", "high", "best"]),
    help="Local preset (default medium, or $REDDITVISION_QUALITY): fast = frozen features "
    "and a head search (seconds); medium, "
    "high, best fine-tune EfficientNet-Lite (see the local backend docs).",
)
@click.option(
    "--bucket", help="Write the dataset to this Cloud Storage bucket (default: a local folder)."
)
@click.option("--prefix", help="Object name prefix in the bucket.")
@click.option(
    "--vision",
    type=click.Choice(["offline", "cloud"]),
    help="Generic labeler for the comparison (default offline).",
)
@click.option("--no-compare", is_flag=True, help="Skip the comparison step.")
@click.option("--no-audit", is_flag=True, help="Skip the data audit step (on by default).")
@click.option(
    "--audit-exclude",
    "audit_exclude",
    multiple=True,
    metavar="ISSUE",
    help="Leave out the images the audit flags with ISSUE (repeatable), e.g. off_domain.",
)
@click.option(
    "--audit-relabel",
    is_flag=True,
    default=None,
    help="Give images the audit finds confidently mislabeled their suggested label.",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(file_okay=False, path_type=Path),
    help="An existing model folder: classify the sources' new posts instead of training.",
)
@click.option(
    "--allow-private-networks",
    is_flag=True,
    default=None,
    help="Allow image URLs on loopback/private addresses (tests, intranets).",
)
@click.option(
    "--json-summary", is_flag=True, help="Print one JSON object with the results on stdout."
)
@handle_errors
def run_command(
    config: Path | None,
    output: Path | None,
    images: Path | None,
    listings: tuple[Path, ...],
    dumps: tuple[Path, ...],
    subreddit: str | None,
    sort: str | None,
    time_filter: str | None,
    limit: int | None,
    rules: Path | None,
    label_map: Path | None,
    csv_file: Path | None,
    backend: str | None,
    project: str | None,
    location: str | None,
    budget: int | None,
    time_limit: float | None,
    quality: str | None,
    bucket: str | None,
    prefix: str | None,
    vision: str | None,
    no_compare: bool,
    no_audit: bool,
    audit_exclude: tuple[str, ...],
    audit_relabel: bool | None,
    model_path: Path | None,
    allow_private_networks: bool | None,
    json_summary: bool,
) -> None:
    """Run the whole job: collect, download, label, split, audit, write, train, evaluate, compare.

    The audit reports (OUT/audit/audit.html) and changes nothing unless --audit-exclude
    or --audit-relabel (or [audit] in CONFIG) asks. CONFIG is a TOML file (see
    examples/); flags override its fields, or replace it: e.g.
    `redditvision run --images photos/ --label-map map.toml --out runs/cars`. Defaults
    need no cloud account (local writer, local backend, offline generic labels). A re-run
    with the same inputs resumes and redoes nothing finished.
    """
    overrides: dict[str, Any] = {
        "output": output,
        "source__images": images,
        "source__listings": listings,
        "source__dumps": dumps,
        "source__subreddit": subreddit,
        "source__sort": sort,
        "source__time_filter": time_filter,
        "source__limit": limit,
        "labels__rules": rules,
        "labels__label_map": label_map,
        "labels__csv": csv_file,
        "backend__kind": backend,
        "backend__project": project,
        "backend__location": location,
        "backend__budget_milli_node_hours": budget,
        "backend__time_limit_s": time_limit,
        "backend__quality": quality,
        "model__path": model_path,
        "writer__kind": "gcs" if bucket else None,
        "writer__bucket": bucket,
        "writer__prefix": prefix,
        "compare__vision": vision,
        "compare__enabled": False if no_compare else None,
        "audit__enabled": False if no_audit else None,
        "audit__exclude": audit_exclude,
        "audit__relabel": audit_relabel,
        "download__allow_private_networks": allow_private_networks,
    }
    if config is not None:
        cfg = RunConfig.from_toml(config, **overrides)
    else:
        if output is None:
            raise ConfigError(
                "give a CONFIG file, or --out and a source "
                "(--images, --listing, --dump or --subreddit)"
            )
        # Without a config file, the run folder's name names the dataset and the model.
        cfg = RunConfig(output=output, name=output.name or "redditvision").with_overrides(
            **{k: v for k, v in overrides.items() if k != "output"}
        )

    with progress() as bars:
        tasks: dict[str, Any] = {}

        def on_step(step: str, message: str) -> None:
            # Progress goes to stderr, so it shows with --json-summary too.
            bars.console.print(f"[bold]{step:<9}[/bold] {message}")

        def on_progress(step: str, done: int, total: int | None) -> None:
            if step not in tasks:
                tasks[step] = bars.add_task(step, total=total)
            bars.update(tasks[step], completed=done, total=total)

        result = run(cfg, on_step=on_step, on_progress=on_progress)
    if json_summary:
        echo_json(_summary(result))
        return
    if result.classified is not None:
        done = result.classified
        err_console.print(
            f"classified {done['items']} item(s): {done['predicted']} predicted, "
            f"{done['reused']} reused",
            highlight=False,
        )
        err_console.print(f"predictions: {Path(done['folder']) / 'predictions.jsonl'}")
        err_console.print(f"page:        {Path(done['folder']) / 'index.html'}")
        return
    assert result.model is not None
    assert result.evaluation is not None
    err_console.print(sources_table(result))
    err_console.print(evaluation_table(result.evaluation))
    if result.comparison is not None:
        err_console.print(comparison_line(result.comparison), highlight=False)
    if result.audit is not None:
        err_console.print(audit_line(result.audit), highlight=False)
    err_console.print(f"model:  {result.model.resource}")
    if result.report_html is not None:
        err_console.print(f"report: {result.report_html}")


COMMANDS: list[click.Command] = [run_command]
