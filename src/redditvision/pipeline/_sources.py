"""Several sources in one dataset: labeling each, deduplicating across them, provenance."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from redditvision.models import LabeledDataset, LabeledImage
from redditvision.pipeline.config import SourceConfig

__all__ = ["SourceDataset", "merge_sources", "posts_file", "write_lines", "write_provenance"]


def write_lines(path: Path, lines: Iterable[str]) -> int:
    """Write ``lines`` to ``path`` through a temporary file and a rename; return the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")
            count += 1
    os.replace(tmp, path)
    return count


def posts_file(output: Path, number: int, name: str) -> Path:
    """``OUTPUT/posts/NN-name.jsonl``: the collected posts of source ``number`` (from 1)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "source"
    return output / "posts" / f"{number:02d}-{slug}.jsonl"


@attrs.frozen(kw_only=True)
class SourceDataset:
    """One source's labeled images, before merging.

    Attributes:
        name: The source's name.
        config: The source's table.
        dataset: Its labeled, unsplit images.
        unmatched: Records no rule matched (rules labelers), else 0.
    """

    name: str
    config: SourceConfig
    dataset: LabeledDataset
    unmatched: int = 0


def merge_sources(
    parts: Sequence[SourceDataset], *, name: str, group: bool
) -> tuple[LabeledDataset, list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Merge the sources' images into one dataset, each image kept from its first source.

    An image whose SHA-256 an earlier source already holds is dropped (``"duplicate"``);
    with ``group``, images are then grouped by perceptual hash
    (:func:`redditvision.split.group_near_duplicates`, at most 2 of 64 bits apart) and a
    group that spans sources keeps only the images of its first source
    (``"near_duplicate"``). Within one source nothing is dropped (its near-duplicates
    share a split). Labels with the same name in several sources are one label.

    Args:
        parts: The sources' datasets, in config order.
        name: The merged dataset's display name.
        group: Group near-duplicates (always true with several sources or an image
            folder; one Reddit source keeps the download step's groups).

    Returns:
        The merged unsplit dataset, one provenance row per image of every source
        (``source``, ``path``, ``sha256``, ``label``, ``kept``, ``dropped``,
        ``duplicate_of``), and per source its counts (``kind``, ``images`` kept,
        ``labels`` kept per label, ``duplicates`` and ``near_duplicates`` dropped,
        ``unmatched``).

    Raises:
        DatasetError: Two different label names map to one service label.
    """
    from redditvision._files import file_sha256
    from redditvision.labels import map_labels
    from redditvision.split import group_near_duplicates

    rows: list[dict[str, Any]] = []
    kept: list[tuple[str, LabeledImage]] = []
    first_by_sha: dict[str, tuple[str, Path]] = {}
    for part in parts:
        for image in part.dataset.images:
            sha = image.sha256 or file_sha256(image.path)
            image = attrs.evolve(image, sha256=sha)
            first = first_by_sha.setdefault(sha, (part.name, image.path))
            row = _row(part.name, image)
            if first[0] != part.name:
                row.update(kept=False, dropped="duplicate", duplicate_of=str(first[1]))
            else:
                kept.append((part.name, image))
            rows.append(row)
    mapping = map_labels(image.original_label for _, image in kept)
    merged = LabeledDataset(
        images=tuple(attrs.evolve(image, label=mapping[image.original_label]) for _, image in kept),
        label_map={service: original for original, service in sorted(mapping.items())},
        name=name,
    )
    if group:
        merged = group_near_duplicates(merged)
        owner: dict[str, tuple[str, Path]] = {}
        for (source, _), image in zip(kept, merged.images, strict=True):
            owner.setdefault(image.group or str(image.path), (source, image.path))
        survivors: list[LabeledImage] = []
        by_path = {str(row["path"]): row for row in rows if row["kept"]}
        for (source, _), image in zip(kept, merged.images, strict=True):
            first_source, first_path = owner[image.group or str(image.path)]
            if first_source != source:
                by_path[str(image.path)].update(
                    kept=False, dropped="near_duplicate", duplicate_of=str(first_path)
                )
            else:
                survivors.append(image)
        merged = attrs.evolve(merged, images=tuple(survivors))
        used = {image.label for image in survivors}
        merged = attrs.evolve(
            merged, label_map={k: v for k, v in merged.label_map.items() if k in used}
        )
    counts: dict[str, dict[str, Any]] = {}
    for part in parts:
        mine = [row for row in rows if row["source"] == part.name]
        labels: dict[str, int] = {}
        for row in mine:
            if row["kept"]:
                labels[row["label"]] = labels.get(row["label"], 0) + 1
        counts[part.name] = {
            "kind": part.config.kind,
            "images": sum(1 for row in mine if row["kept"]),
            "labels": dict(sorted(labels.items())),
            "duplicates": sum(1 for row in mine if row["dropped"] == "duplicate"),
            "near_duplicates": sum(1 for row in mine if row["dropped"] == "near_duplicate"),
            "unmatched": part.unmatched,
        }
    return merged, rows, counts


def _row(source: str, image: LabeledImage) -> dict[str, Any]:
    return {
        "source": source,
        "path": str(image.path),
        "sha256": image.sha256,
        "label": image.original_label,
        "kept": True,
        "dropped": None,
        "duplicate_of": None,
    }


def write_provenance(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write the provenance rows as JSON lines (``OUTPUT/provenance.jsonl``).

    Args:
        path: The file (replaced atomically).
        rows: From :func:`merge_sources`.

    Returns:
        ``path``.
    """
    write_lines(path, (json.dumps(row, ensure_ascii=False) for row in rows))
    return path
