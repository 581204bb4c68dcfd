"""Labeling by hand in Label Studio: export tasks and a labeling config, import its exports.

Formats follow Label Studio's documentation (labelstud.io/guide):

* tasks (``tasks.json``): a JSON list of ``{"id", "data": {...}, "predictions": [...]}``
  (guide "Import data", task format); predictions carry ``model_version``, ``score`` and a
  ``result`` of ``choices`` regions (guide "Import pre-annotated data");
* image URLs: local files storage, ``/data/local-files/?d=PATH`` with ``PATH`` relative to
  ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` (guide "Local storage"), or plain HTTP URLs;
* exports (guide "Export annotations"): ``JSON`` (tasks with ``annotations[].result[]
  .value.choices`` and ``was_cancelled``), ``JSON_MIN`` (one flat object per task with the
  data fields and the choices under the control's ``from_name``, here ``label``) and
  ``CSV`` (the same fields as columns).

Records are matched back by the id this module puts in ``data.rv_id`` (the image's
SHA-256, or its path when no hash is known or two records share one), never by file name.
"""

from __future__ import annotations

import csv
import io
import json
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

import attrs

from redditvision.errors import DatasetError
from redditvision.labels._names import normalize_label
from redditvision.models import LabeledDataset, LabeledImage, Prediction

__all__ = [
    "CONFIG_FILE",
    "TASKS_FILE",
    "LabelStudioExport",
    "LabelStudioImportReport",
    "export_tasks",
    "import_labels",
    "label_config",
    "read_label_config",
    "record_ids",
]

TASKS_FILE = "tasks.json"
"""The tasks file :func:`export_tasks` writes (import it in Label Studio's Data Import)."""

CONFIG_FILE = "label_config.xml"
"""The labeling config :func:`export_tasks` writes (paste it in Settings > Labeling Interface)."""

FROM_NAME = "label"
"""The ``<Choices name>``: the ``from_name`` of results, the JSON-MIN/CSV column."""

TO_NAME = "image"
"""The ``<Image name>`` and the task data field holding the image URL."""

ID_FIELD = "rv_id"
"""The task data field holding our record id (what imports are matched by)."""

LABEL_FIELD = "rv_label"
"""The task data field holding the record's label at export time (the user's name)."""

LOCAL_FILES_PREFIX = "/data/local-files/?d="
"""Label Studio's local files storage URL prefix (guide "Local storage")."""


class Classifies(Protocol):
    """Anything that scores images like :class:`redditvision.classify.Classifier`."""

    def predict_many(self, images: Iterable[Path]) -> list[list[Prediction]]:
        """Return the predictions of each image, best first, in the user's label names."""
        ...


@attrs.frozen(kw_only=True)
class LabelStudioExport:
    """What :func:`export_tasks` wrote.

    Attributes:
        tasks_path: ``tasks.json``, the tasks to import into Label Studio.
        config_path: ``label_config.xml``, the labeling config.
        tasks: Number of tasks (one per record).
        labels: The choices offered, the user's label names, sorted.
        predictions: Number of tasks with a pre-annotation.
        flagged: Number of tasks flagged by the audit.
    """

    tasks_path: Path
    config_path: Path
    tasks: int
    labels: tuple[str, ...]
    predictions: int
    flagged: int


@attrs.frozen(kw_only=True)
class LabelStudioImportReport:
    """What :func:`import_labels` read.

    Attributes:
        export_format: ``"json"``, ``"json_min"`` or ``"csv"``.
        tasks: Tasks in the export.
        annotated: Tasks with a (not cancelled) annotation, whose label was taken.
        relabeled: Records whose label changed.
        cancelled: Annotations skipped in Label Studio (``was_cancelled``), ignored.
        unannotated: Tasks without a usable annotation; their records keep their label.
    """

    export_format: str
    tasks: int
    annotated: int
    relabeled: int
    cancelled: int
    unannotated: int


def record_ids(dataset: LabeledDataset) -> list[str]:
    """Return each record's stable id, in dataset order.

    The id is the image's SHA-256 when known and unique in the dataset, else its
    absolute path (POSIX form); an id still shared gets ``#N`` (its position) appended.

    Args:
        dataset: The dataset.

    Returns:
        One distinct id per image.
    """
    hashes: dict[str, int] = {}
    for image in dataset.images:
        if image.sha256:
            hashes[image.sha256] = hashes.get(image.sha256, 0) + 1
    ids: list[str] = []
    seen: set[str] = set()
    for index, image in enumerate(dataset.images):
        if image.sha256 and hashes[image.sha256] == 1:
            found = image.sha256
        else:
            found = image.path.resolve().as_posix()
        if found in seen:
            found = f"{found}#{index}"
        seen.add(found)
        ids.append(found)
    return ids


def label_config(labels: Sequence[str]) -> str:
    """Return the Label Studio labeling config: one image, single choice over ``labels``.

    Args:
        labels: The choices, the user's label names (XML-escaped here).

    Returns:
        ``<View><Image name="image" value="$image"/><Choices name="label" toName="image"
        choice="single" showInline="true"><Choice value="..."/>...</Choices></View>``.
    """
    choices = "".join(f"    <Choice value={quoteattr(label)}/>\n" for label in labels)
    return (
        "<View>\n"
        f'  <Image name="{TO_NAME}" value="${TO_NAME}"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" '
        'showInline="true">\n'
        f"{choices}"
        "  </Choices>\n"
        "</View>\n"
    )


def read_label_config(path: str | Path) -> tuple[str, ...]:
    """Return the ``<Choice value>`` labels of a labeling config (``label_config.xml``).

    Args:
        path: The config file (what :func:`export_tasks` wrote, maybe edited in Label
            Studio's Settings > Labeling Interface and saved back).

    Returns:
        The choice values of the ``<Choices name="label">`` control, in file order.

    Raises:
        DatasetError: The file is unreadable, not XML, or has no such choices.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read the labeling config {path}: {exc}") from exc
    if "<!" in text.replace("<!--", ""):
        raise DatasetError(
            f"the labeling config {path} holds a DOCTYPE or ENTITY declaration; a Label "
            "Studio config has none - remove it"
        )
    try:
        # No DTD is left (checked above), so no entity expansion: the plain parser is safe.
        root = ElementTree.fromstring(text)  # noqa: S314
    except ElementTree.ParseError as exc:
        raise DatasetError(f"the labeling config {path} is not XML: {exc}") from exc
    labels = tuple(
        choice.attrib["value"]
        for control in root.iter("Choices")
        if control.attrib.get("name") == FROM_NAME
        for choice in control.iter("Choice")
        if "value" in choice.attrib
    )
    if not labels:
        raise DatasetError(
            f"the labeling config {path} has no <Choices name={FROM_NAME!r}> with <Choice "
            "value=...>; use the label_config.xml `redditvision label-studio export` wrote"
        )
    return labels


def _image_url(
    image: LabeledImage,
    *,
    image_url: str,
    document_root: Path | None,
    base_url: str | None,
) -> str:
    path = image.path.resolve()
    if document_root is None:
        relative = path.as_posix().lstrip("/")
    else:
        try:
            relative = path.relative_to(document_root.resolve()).as_posix()
        except ValueError as exc:
            raise DatasetError(
                f"image {path} is not under the document root {document_root}; give a "
                "--document-root that holds every image"
            ) from exc
    if image_url == "local-files":
        return LOCAL_FILES_PREFIX + urllib.parse.quote(relative, safe="/")
    assert base_url is not None
    return base_url.rstrip("/") + "/" + urllib.parse.quote(relative, safe="/")


def _audit_flags(audit: str | Path) -> dict[str, float]:
    """Resolved path -> the highest audit score, from ``audit.jsonl`` (or its folder)."""
    path = Path(audit)
    if path.is_dir():
        path = path / "audit.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"cannot read audit file {path}: {exc}; write it with `redditvision audit`"
        ) from exc
    flags: dict[str, float] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            key = Path(str(data["path"])).resolve().as_posix()
            score = float(data.get("score") or 0.0)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DatasetError(
                f"{path} line {number} is not an audit line ({exc}); expected JSON with "
                "path and score"
            ) from exc
        flags[key] = max(score, flags.get(key, 0.0))
    return flags


def export_tasks(
    dataset: LabeledDataset,
    out_dir: str | Path,
    *,
    labels: Sequence[str] | None = None,
    image_url: str = "local-files",
    document_root: str | Path | None = None,
    base_url: str | None = None,
    classifier: Classifies | None = None,
    audit: str | Path | None = None,
    model_version: str = "redditvision",
) -> LabelStudioExport:
    """Write Label Studio tasks (``tasks.json``) and a labeling config (``label_config.xml``).

    Each task: ``{"id": n, "data": {"image": URL, "rv_id": ID, "rv_label": LABEL},
    "predictions": [...]}`` with ids 1..N in the written order. Order: audit-flagged
    images first (highest audit score first), then by the classifier's top score, lowest
    first (the least confident is the most informative), then dataset order.

    Args:
        dataset: The dataset (e.g. :func:`~redditvision.storage.load_local_dataset`).
        out_dir: Folder for the two files (created).
        labels: The choices, user's names (default: the dataset's original labels).
        image_url: ``"local-files"`` (default): ``/data/local-files/?d=PATH`` for Label
            Studio's local files storage; ``"http"``: ``base_url`` + ``PATH``.
        document_root: The folder ``PATH`` is relative to; must equal Label Studio's
            ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` (default: the file system root).
        base_url: Required with ``image_url="http"``, e.g. ``http://127.0.0.1:8081``.
        classifier: Gives pre-annotations: its top prediction per image becomes a
            Label Studio prediction with its score (``model_version`` names it).
        audit: ``audit.jsonl`` or the folder ``redditvision audit --out`` wrote.
        model_version: The predictions' ``model_version`` (default ``"redditvision"``).

    Returns:
        The paths and counts.

    Raises:
        DatasetError: Empty dataset, unknown ``image_url``, no ``base_url`` for http, an
            image outside ``document_root``, an unreadable audit file, or the folder
            cannot be written.
        PredictionError: The classifier cannot score an image.
    """
    if not dataset.images:
        raise DatasetError("the dataset has no image to export to Label Studio")
    if image_url not in ("local-files", "http"):
        raise DatasetError(f"unknown image_url {image_url!r}; choose local-files or http")
    if image_url == "http" and not base_url:
        raise DatasetError("image_url='http' needs base_url, e.g. http://127.0.0.1:8081")
    root = Path(document_root) if document_root is not None else None
    choices = tuple(
        sorted(set(labels) if labels else {image.original_label for image in dataset.images})
    )
    ids = record_ids(dataset)
    urls = [
        _image_url(image, image_url=image_url, document_root=root, base_url=base_url)
        for image in dataset.images
    ]
    predictions: list[list[Prediction]] = (
        classifier.predict_many([image.path for image in dataset.images])
        if classifier is not None
        else [[] for _ in dataset.images]
    )
    flags = _audit_flags(audit) if audit is not None else {}

    def order(index: int) -> tuple[int, float, float, int]:
        flag = flags.get(dataset.images[index].path.resolve().as_posix())
        top = predictions[index][0].score if predictions[index] else 1.0
        return (0 if flag is not None else 1, -(flag or 0.0), top, index)

    tasks: list[dict[str, object]] = []
    for number, index in enumerate(sorted(range(len(ids)), key=order), start=1):
        image = dataset.images[index]
        task: dict[str, object] = {
            "id": number,
            "data": {TO_NAME: urls[index], ID_FIELD: ids[index], LABEL_FIELD: image.original_label},
        }
        if predictions[index]:
            top = predictions[index][0]
            task["predictions"] = [
                {
                    "model_version": model_version,
                    "score": round(float(top.score), 6),
                    "result": [
                        {
                            "from_name": FROM_NAME,
                            "to_name": TO_NAME,
                            "type": "choices",
                            "value": {"choices": [top.label]},
                        }
                    ],
                }
            ]
        tasks.append(task)
    out = Path(out_dir)
    tasks_path, config_path = out / TASKS_FILE, out / CONFIG_FILE
    try:
        out.mkdir(parents=True, exist_ok=True)
        tasks_path.write_text(json.dumps(tasks, indent=1, ensure_ascii=False), encoding="utf-8")
        config_path.write_text(label_config(choices), encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot write Label Studio files in {out}: {exc}") from exc
    flagged = sum(1 for image in dataset.images if image.path.resolve().as_posix() in flags)
    return LabelStudioExport(
        tasks_path=tasks_path,
        config_path=config_path,
        tasks=len(tasks),
        labels=choices,
        predictions=sum(1 for p in predictions if p),
        flagged=flagged,
    )


def _read_export(path: Path) -> tuple[str, list[dict[str, object]]]:
    """Return the export's format and its rows (JSON tasks, JSON-MIN objects, CSV rows)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read Label Studio export {path}: {exc}") from exc
    if not text.strip():
        raise DatasetError(f"Label Studio export {path} is empty; export the project again")
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DatasetError(f"Label Studio export {path} is not valid JSON: {exc}") from exc
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise DatasetError(
                f"Label Studio export {path} is not a list of tasks; export as JSON, "
                "JSON_MIN or CSV"
            )
        if not data:
            raise DatasetError(f"Label Studio export {path} holds no task")
        rows: list[dict[str, object]] = data
        kind = "json" if any("annotations" in row or "data" in row for row in rows) else "json_min"
        return kind, rows
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or ID_FIELD not in reader.fieldnames:
        raise DatasetError(
            f"Label Studio export {path} is neither JSON nor a CSV export with a {ID_FIELD} "
            "column; export the project as JSON, JSON_MIN or CSV"
        )
    csv_rows: list[dict[str, object]] = [dict(row) for row in reader]
    if not csv_rows:
        raise DatasetError(f"Label Studio export {path} holds no task")
    return "csv", csv_rows


def _choices_of(value: object, where: str) -> list[str]:
    """The chosen labels of a JSON-MIN/CSV cell: a name, or ``{"choices": [...]}``."""
    if value is None or value == "":
        return []
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise DatasetError(f"{where}: cannot read the choices {value!r}") from exc
    if isinstance(value, dict):
        value = value.get("choices", [])
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise DatasetError(f"{where}: the {FROM_NAME!r} field is not a choice: {value!r}")


def _json_task(row: Mapping[str, object], where: str) -> tuple[object, list[str] | None, int]:
    """(rv_id, chosen labels or None, cancelled count) of one JSON export task."""
    data = row.get("data")
    rv_id = data.get(ID_FIELD) if isinstance(data, dict) else None
    annotations = row.get("annotations") or []
    if not isinstance(annotations, list):
        raise DatasetError(f"{where}: annotations is not a list")
    chosen: list[str] | None = None
    cancelled = 0
    for annotation in annotations:
        if not isinstance(annotation, dict):
            raise DatasetError(f"{where}: an annotation is not an object")
        if annotation.get("was_cancelled"):
            cancelled += 1
            continue
        found: list[str] = []
        for result in annotation.get("result") or []:
            if not isinstance(result, dict) or result.get("from_name") != FROM_NAME:
                continue
            value = result.get("value")
            choices = value.get("choices") if isinstance(value, dict) else None
            if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
                raise DatasetError(f"{where}: a result's value.choices is not a list of labels")
            found.extend(choices)
        chosen = found  # the last (most recent) annotation wins
    return rv_id, chosen, cancelled


def import_labels(
    export_path: str | Path,
    dataset: LabeledDataset,
    *,
    config_labels: Sequence[str] | None = None,
) -> tuple[LabeledDataset, LabelStudioImportReport]:
    """Read a Label Studio export (JSON, JSON-MIN or CSV) and relabel the dataset.

    Every task is matched to its record by ``data.rv_id`` (:func:`record_ids`); the last
    annotation that was not cancelled gives the label. Records without an annotation keep
    their label; nothing is dropped. Labels are the user's names; service labels come
    from the dataset's label map, else :func:`normalize_label`.

    Args:
        export_path: The export file Label Studio wrote.
        dataset: The dataset the tasks were exported from.
        config_labels: The choices allowed (default: the dataset's original labels, the
            labels :func:`export_tasks` offered).

    Returns:
        The relabeled dataset (same records, same order) and the counts.

    Raises:
        DatasetError: The export is unreadable, empty, not JSON/CSV, a task has no or an
            unknown ``rv_id`` (or one twice), a task has two choices, or a label is
            outside the config. Nothing is changed then.
    """
    path = Path(export_path)
    kind, rows = _read_export(path)
    ids = record_ids(dataset)
    index_of = {record_id: index for index, record_id in enumerate(ids)}
    allowed = set(config_labels) if config_labels else {i.original_label for i in dataset.images}
    service_of = {original: service for service, original in dataset.label_map.items()}
    for image in dataset.images:
        service_of.setdefault(image.original_label, image.label)
    chosen_by_index: dict[int, str] = {}
    seen: set[int] = set()
    cancelled = 0
    for number, row in enumerate(rows, start=1):
        where = f"{path} task {row.get('id', number)}"
        if kind == "json":
            rv_id, chosen, skipped = _json_task(row, where)
            cancelled += skipped
        else:
            rv_id = row.get(ID_FIELD)
            chosen = _choices_of(row.get(FROM_NAME), where)
        if not isinstance(rv_id, str) or rv_id not in index_of:
            raise DatasetError(
                f"{where}: unknown record id {rv_id!r} (data.{ID_FIELD}); this export is not "
                "from this dataset's tasks - export the tasks again with `redditvision "
                "label-studio export`"
            )
        index = index_of[rv_id]
        if index in seen:
            raise DatasetError(f"{where}: record id {rv_id!r} appears in two tasks")
        seen.add(index)
        if not chosen:
            continue
        if len(chosen) > 1:
            raise DatasetError(
                f"{where}: {len(chosen)} choices ({', '.join(chosen)}); each image takes one "
                "label - fix the annotation in Label Studio"
            )
        label = chosen[0]
        if label not in allowed:
            raise DatasetError(
                f"{where}: label {label!r} is not in the labeling config "
                f"({', '.join(sorted(allowed))}); fix the annotation or pass the labels"
            )
        chosen_by_index[index] = label
    images = list(dataset.images)
    relabeled = 0
    label_map = dict(dataset.label_map)
    for index, original in chosen_by_index.items():
        image = images[index]
        if original == image.original_label:
            continue
        service = service_of.get(original) or normalize_label(original)
        if label_map.setdefault(service, original) != original:
            raise DatasetError(
                f"label {original!r} maps to {service!r}, which already stands for "
                f"{label_map[service]!r}; rename one of them"
            )
        images[index] = attrs.evolve(image, label=service, original_label=original)
        relabeled += 1
    used = {image.label for image in images}
    report = LabelStudioImportReport(
        export_format=kind,
        tasks=len(rows),
        annotated=len(chosen_by_index),
        relabeled=relabeled,
        cancelled=cancelled,
        unannotated=len(rows) - len(chosen_by_index),
    )
    relabeled_dataset = attrs.evolve(
        dataset,
        images=tuple(images),
        label_map={k: v for k, v in sorted(label_map.items()) if k in used},
    )
    return relabeled_dataset, report
