"""``redditvision label`` and ``redditvision upload``: build the dataset and write it out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from redditvision._import_formats import IMPORT_FILE_NAMES
from redditvision.checks import (
    TARGET_LIMITS,
    DatasetCheckReport,
    check_dataset,
    convert_unsupported,
)
from redditvision.cli._common import echo_json, err_console, handle_errors, parse_split, progress
from redditvision.labels import (
    LabelingReport,
    LabelMap,
    RuleSet,
    export_label_csv,
    label_csv,
    label_folders,
    label_records,
)
from redditvision.models import ImageRecord, LabeledDataset, RecordStatus
from redditvision.split import group_near_duplicates, split_dataset
from redditvision.storage import (
    GcsDatasetWriter,
    LocalDatasetWriter,
    UploadResult,
    load_local_dataset,
    write_local_dataset,
)

__all__ = ["COMMANDS", "label", "upload"]

_DATASET_FILE = IMPORT_FILE_NAMES["local_jsonl"]


def _read_manifest(folder: Path) -> list[ImageRecord]:
    from redditvision.manifest import ImageManifest

    with ImageManifest.for_folder(folder) as manifest:
        return list(manifest.records(RecordStatus.OK))


def _print_report(report: DatasetCheckReport, dataset: LabeledDataset) -> None:
    from rich.table import Table

    table = Table(title=f"{len(dataset.images)} images, checked for {report.target}")
    table.add_column("label")
    table.add_column("original")
    for use in ("training", "validation", "test"):
        table.add_column(use, justify="right")
    table.add_column("total", justify="right")
    for label, count in report.counts.items():
        per_use = dict.fromkeys(("training", "validation", "test"), 0)
        for image in dataset.images:
            if image.label == label and image.ml_use is not None:
                per_use[image.ml_use.value] += 1
        table.add_row(
            label,
            dataset.label_map.get(label, label),
            *(str(per_use[use]) for use in per_use),
            str(count),
        )
    err_console.print(table)
    for issue in report.errors:
        err_console.print(f"[red]error[/red] {issue.message}", highlight=False)
    for issue in report.warnings:
        err_console.print(f"[yellow]warning[/yellow] {issue.message}", highlight=False)
    verdict = "[green]ok[/green]" if report.ok else f"[red]{len(report.errors)} error(s)[/red]"
    err_console.print(f"check: {verdict}, {len(report.warnings)} warning(s)")


@click.command()
@click.option(
    "--images",
    "images_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder with one subfolder of images per label (label = folder name).",
)
@click.option(
    "--downloads",
    "downloads_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder written by `redditvision download` (reads its manifest.sqlite); label with "
    "--rules, or with --csv after hand labeling.",
)
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file of [[rules]] (label + title/flair/subreddit regexes); first match wins.",
)
@click.option(
    "--label-map",
    "label_map_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file whose [labels] table groups folder names (glob patterns) into labels.",
)
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Hand-labeled CSV with path and label columns.",
)
@click.option(
    "--export-csv",
    "export_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --downloads: write a CSV with an empty label column for hand labeling, and stop.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Folder to write the labeled, split dataset to, as {_DATASET_FILE} (a local JSONL "
    "manifest that `upload --dataset` and `train` read).",
)
@click.option(
    "--target",
    type=click.Choice(sorted(TARGET_LIMITS)),
    default="vertex",
    show_default=True,
    help="Service whose limits the check applies.",
)
@click.option(
    "--split",
    "split_text",
    default="0.8,0.1,0.1",
    show_default=True,
    help="Training, validation, test fractions.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option(
    "--normalize/--no-normalize",
    default=True,
    show_default=True,
    help="Map invalid label names to valid ones (kept reversibly), or reject them.",
)
@click.option(
    "--near-duplicates/--no-near-duplicates",
    default=True,
    show_default=True,
    help="Group perceptually near-identical images (phash) so they share a split.",
)
@click.option(
    "--convert",
    type=click.Choice(["png", "jpeg"]),
    default=None,
    help="Convert images the target does not train on (e.g. WEBP) into --out/converted.",
)
@click.option("--json-summary", is_flag=True, help="Print the check report as JSON on stdout.")
@handle_errors
def label(
    images_dir: Path | None,
    downloads_dir: Path | None,
    rules_file: Path | None,
    label_map_file: Path | None,
    csv_file: Path | None,
    export_file: Path | None,
    out_dir: Path | None,
    target: str,
    split_text: str,
    seed: int,
    normalize: bool,
    near_duplicates: bool,
    convert: str | None,
    json_summary: bool,
) -> None:
    """Label images, split them and check them against the service's limits.

    From an image folder (--images, optionally --label-map), from downloads (--downloads with
    --rules), or from a hand-labeled --csv. Writes DIR/dataset.jsonl with --out and prints the
    check report; exits with status 2 when the check finds errors.
    """
    train, validation, test = parse_split(split_text)
    if images_dir is not None and downloads_dir is not None:
        raise click.UsageError("give either --images or --downloads, not both")
    report_extra: dict[str, Any] = {}
    labeling: LabelingReport | None = None
    if images_dir is not None:
        if rules_file is not None or csv_file is not None:
            raise click.UsageError("--images labels by folder; use --label-map, not --rules/--csv")
        label_map = LabelMap.from_toml(label_map_file) if label_map_file else None
        if label_map is not None:
            folders = [p.name for p in images_dir.iterdir() if p.is_dir()]
            left_out = label_map.unmatched(folders)
            if left_out:
                err_console.print(
                    f"{len(left_out)} folder(s) match no label map pattern, left out: "
                    + ", ".join(left_out),
                    highlight=False,
                )
            report_extra["unmatched_folders"] = left_out
        dataset = label_folders(images_dir, label_map=label_map, normalize=normalize)
    elif downloads_dir is not None:
        records = _read_manifest(downloads_dir)
        if export_file is not None:
            rows = export_label_csv(records, export_file)
            err_console.print(f"wrote {rows} rows to {export_file}; fill in the label column")
            return
        if csv_file is not None:
            dataset = label_csv(csv_file, normalize=normalize)
        elif rules_file is not None:
            dataset, labeling = label_records(records, RuleSet.from_toml(rules_file))
        else:
            raise click.UsageError("--downloads needs --rules FILE, --csv FILE or --export-csv")
    elif csv_file is not None:
        dataset = label_csv(csv_file, normalize=normalize)
    else:
        raise click.UsageError("give --images DIR, --downloads DIR or --csv FILE")
    if labeling is not None:
        err_console.print(
            f"rules labeled {labeling.labeled} image(s); {len(labeling.unmatched)} matched no "
            f"rule; {len(labeling.not_ok)} record(s) not ok",
            highlight=False,
        )
        report_extra["unmatched"] = len(labeling.unmatched)
        report_extra["per_rule"] = dict(labeling.per_rule)
        if out_dir is not None and labeling.unmatched:
            out_dir.mkdir(parents=True, exist_ok=True)
            export_label_csv(labeling.unmatched, out_dir / "unmatched.csv")
            err_console.print(f"unmatched images listed in {out_dir / 'unmatched.csv'}")
    if convert is not None and dataset.images:
        if out_dir is None:
            raise click.UsageError("--convert needs --out (converted files go to OUT/converted)")
        dataset = convert_unsupported(
            dataset, out_dir / "converted", target=target, to="PNG" if convert == "png" else "JPEG"
        )
    if near_duplicates and dataset.images:
        dataset = group_near_duplicates(dataset)
    if dataset.images:
        dataset = split_dataset(dataset, train=train, validation=validation, test=test, seed=seed)
    report = check_dataset(dataset, target=target)
    if out_dir is not None and dataset.images:
        path = write_local_dataset(dataset, out_dir / _DATASET_FILE)
        err_console.print(f"wrote {len(dataset.images)} images to {path}", highlight=False)
        report_extra["dataset_file"] = str(path)
    _print_report(report, dataset)
    if json_summary:
        echo_json({**report.to_json(), **report_extra})
    if not report.ok:
        raise SystemExit(2)


@click.command()
@click.option(
    "--dataset",
    "dataset_file",
    required=True,
    type=click.Path(path_type=Path),
    help=f"The {_DATASET_FILE} written by `redditvision label --out DIR` (or its folder).",
)
@click.option("--bucket", help="Cloud Storage bucket name (Application Default Credentials).")
@click.option("--prefix", default="redditvision", show_default=True, help="Object name prefix.")
@click.option(
    "--local",
    "local_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write to this local folder instead of a bucket (file:// URIs).",
)
@click.option(
    "--format",
    "import_format",
    type=click.Choice(["vertex_csv", "vertex_jsonl", "automl_csv", "local_jsonl"]),
    default=None,
    help="Import file format [default: vertex_csv for --bucket, local_jsonl for --local].",
)
@click.option("--json-summary", is_flag=True, help="Print a JSON summary on stdout.")
@handle_errors
def upload(
    dataset_file: Path,
    bucket: str | None,
    prefix: str,
    local_dir: Path | None,
    import_format: str | None,
    json_summary: bool,
) -> None:
    """Upload a labeled dataset's images, then write its import file.

    Re-running uploads only what is missing (objects are named by content hash); the import
    file is written last, so it never points at a missing image.
    """
    if (bucket is None) == (local_dir is None):
        raise click.UsageError("give exactly one of --bucket NAME or --local DIR")
    dataset = load_local_dataset(dataset_file)
    with progress(disable=json_summary) as display:
        task = display.add_task("uploading", total=len(dataset.images))

        def advance(done: int, total: int) -> None:
            display.update(task, completed=done, total=total)

        result: UploadResult
        if bucket is not None:
            with GcsDatasetWriter.from_env(bucket=bucket, prefix=prefix) as writer:
                result = writer.write(
                    dataset, import_format=import_format or "vertex_csv", progress=advance
                )
        else:
            assert local_dir is not None
            with LocalDatasetWriter(local_dir) as local_writer:
                result = local_writer.write(
                    dataset, import_format=import_format or "local_jsonl", progress=advance
                )
    for path, reason in result.failed:
        err_console.print(f"[yellow]left out[/yellow] {path}: {reason}", highlight=False)
    err_console.print(
        f"uploaded {result.uploaded} image(s) ({result.bytes} bytes), "
        f"{result.skipped_unchanged} unchanged; import file {result.location.import_file_uri}",
        highlight=False,
    )
    if json_summary:
        echo_json(result.to_json())
    else:
        click.echo(result.location.import_file_uri)


COMMANDS: list[click.Command] = [label, upload]
