"""``redditvision label-studio``: export tasks for Label Studio and import its exports."""

from __future__ import annotations

from pathlib import Path

import click

from redditvision.cli._common import echo_json, err_console, handle_errors, json_option

__all__ = ["COMMANDS", "label_studio"]

_DATASET_FILE = "dataset.jsonl"


@click.group("label-studio")
def label_studio() -> None:
    """Label by hand in Label Studio: export tasks, then import its JSON/JSON-MIN/CSV export."""


@label_studio.command("export")
@click.argument("dataset_path", metavar="DATASET", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for tasks.json and label_config.xml.",
)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Local model folder whose predictions become pre-annotations (with scores).",
)
@click.option(
    "--audit",
    "audit_dir",
    type=click.Path(exists=True, path_type=Path),
    help="What `redditvision audit --out` wrote (folder or audit.jsonl): flagged images first.",
)
@click.option(
    "--image-url",
    type=click.Choice(["local-files", "http"]),
    default="local-files",
    show_default=True,
    help="local-files: /data/local-files/?d=PATH (Label Studio's local files storage).",
)
@click.option(
    "--document-root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder PATH is relative to: LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT (default /).",
)
@click.option(
    "--base-url",
    help="With --image-url http: the URL the document root is served at (e.g. what "
    "`redditvision label-studio serve-images ROOT` prints).",
)
@json_option("Print a JSON summary on stdout.")
@handle_errors
def export(
    dataset_path: Path,
    out_dir: Path,
    model_dir: Path | None,
    audit_dir: Path | None,
    image_url: str,
    document_root: Path | None,
    base_url: str | None,
    as_json: bool,
) -> None:
    """Write Label Studio tasks and a labeling config for DATASET (`label --out` wrote it)."""
    from redditvision.labels.label_studio import export_tasks
    from redditvision.storage import load_local_dataset

    dataset = load_local_dataset(dataset_path)
    if model_dir is not None:
        from redditvision.classify import Classifier

        with Classifier(model_dir) as classifier:
            result = export_tasks(
                dataset,
                out_dir,
                image_url=image_url,
                document_root=document_root,
                base_url=base_url,
                classifier=classifier,
                audit=audit_dir,
                model_version=model_dir.name,
            )
    else:
        result = export_tasks(
            dataset,
            out_dir,
            image_url=image_url,
            document_root=document_root,
            base_url=base_url,
            audit=audit_dir,
        )
    err_console.print(
        f"wrote {result.tasks} task(s) ({result.predictions} pre-annotated, {result.flagged} "
        f"flagged) to {result.tasks_path} and the config to {result.config_path}",
        highlight=False,
    )
    if as_json:
        echo_json(
            {
                "tasks": result.tasks,
                "tasks_file": str(result.tasks_path),
                "config_file": str(result.config_path),
                "labels": list(result.labels),
                "predictions": result.predictions,
                "flagged": result.flagged,
            }
        )


@label_studio.command("import")
@click.argument("export_path", metavar="EXPORT", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--dataset",
    "dataset_path",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="The dataset the tasks were exported from (dataset.jsonl or its folder).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the relabeled dataset.jsonl.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The label_config.xml whose choices are allowed [default: the dataset's labels].",
)
@json_option("Print a JSON summary on stdout.")
@handle_errors
def import_(
    export_path: Path, dataset_path: Path, out_dir: Path, config_file: Path | None, as_json: bool
) -> None:
    """Import a Label Studio export (JSON, JSON_MIN or CSV) as labels of the dataset.

    This is the `label --label-studio EXPORT` route: tasks are matched back by data.rv_id.
    """
    from redditvision.labels.label_studio import import_labels, read_label_config
    from redditvision.storage import load_local_dataset, write_local_dataset

    dataset = load_local_dataset(dataset_path)
    labels = read_label_config(config_file) if config_file is not None else None
    relabeled, report = import_labels(export_path, dataset, config_labels=labels)
    path = write_local_dataset(relabeled, out_dir / _DATASET_FILE)
    err_console.print(
        f"read {report.tasks} task(s) ({report.export_format}): {report.annotated} annotated, "
        f"{report.relabeled} relabeled, {report.cancelled} cancelled, "
        f"{report.unannotated} unannotated; wrote {path}",
        highlight=False,
    )
    if as_json:
        echo_json(
            {
                "format": report.export_format,
                "tasks": report.tasks,
                "annotated": report.annotated,
                "relabeled": report.relabeled,
                "cancelled": report.cancelled,
                "unannotated": report.unannotated,
                "dataset_file": str(path),
                "counts": relabeled.counts(),
            }
        )


@label_studio.command("serve-images")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind.")
@click.option("--port", default=8081, show_default=True, type=int, help="Port (0: a free one).")
@click.option(
    "--allow-origin",
    default="*",
    show_default=True,
    help="CORS origin allowed to read the images, e.g. Label Studio's http://127.0.0.1:8080.",
)
@handle_errors
def serve_images(root: Path, host: str, port: int, allow_origin: str) -> None:
    """Serve the images under ROOT over HTTP for Label Studio, until Ctrl-C or SIGTERM.

    Export the tasks with `--image-url http --document-root ROOT --base-url URL` (URL as
    printed here) and Label Studio's browser loads each image from this server. Images only,
    nothing outside ROOT, loopback only (the photos are not exposed beyond this machine).
    """
    from redditvision.errors import ConfigError
    from redditvision.serve import create_image_app, is_loopback, serve_app

    if not is_loopback(host):
        raise ConfigError(
            f"the image server binds loopback only (got {host}): it has no API key, and the "
            "photos should not leave this machine; bind 127.0.0.1"
        )
    app = create_image_app(root, allow_origin=allow_origin)

    def ready(url: str) -> None:
        err_console.print(
            f"serving the images under {root} at {url}\nexport with: redditvision "
            f"label-studio export DATASET --out DIR --image-url http --document-root {root} "
            f"--base-url {url}",
            highlight=False,
        )

    serve_app(app, host=host, port=port, on_ready=ready, timeout_graceful_shutdown=2.0)


COMMANDS: list[click.Command] = [label_studio]
