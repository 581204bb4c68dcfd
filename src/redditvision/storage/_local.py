"""Write a dataset into a local folder, and the local dataset file (``dataset.jsonl``)."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

import attrs

from redditvision._closing import Closeable
from redditvision._import_formats import IMPORT_FILE_NAMES, IMPORT_FORMATS, render_import_file
from redditvision.errors import DatasetError, StorageError
from redditvision.labels._csv_labels import path_from
from redditvision.labels._names import dataset_name
from redditvision.models import DatasetLocation, LabeledDataset, LabeledImage, MLUse
from redditvision.storage._common import (
    ProgressCallback,
    UploadResult,
    _atomic_write_text,
    _label_map_json,
    _prepare,
)

__all__ = ["LocalDatasetWriter", "load_local_dataset", "write_local_dataset"]


class LocalDatasetWriter(Closeable):
    """Writes a dataset into a local folder: the Cloud Storage layout with ``file://`` URIs.

    Images are copied to ``{root}/{prefix}/{label}/{sha256}.{ext}`` (temporary name, then
    rename, so a killed run leaves no half file); a file already there with the same size
    is skipped (names are content hashes). ``label_map.json`` and the import file are
    written last. The default import format, ``local_jsonl`` (``dataset.jsonl``), is what
    the local backend trains from (:func:`load_local_dataset`).

    Args:
        root: The dataset folder (created).
        prefix: Sub-folder inside ``root`` (default ``""``).
    """

    def __init__(self, root: str | Path, *, prefix: str = "") -> None:
        self._root = Path(root)
        self._prefix = prefix.strip("/")
        self._closed = False

    @property
    def folder(self) -> Path:
        """The folder the layout starts in, ``root/prefix``."""
        return self._root / self._prefix if self._prefix else self._root

    def __repr__(self) -> str:
        return f"LocalDatasetWriter(folder={str(self.folder)!r})"

    def close(self) -> None:
        """Nothing to release; present so both writers are used alike. Safe twice."""
        self._closed = True

    def write(
        self,
        dataset: LabeledDataset,
        *,
        import_format: str = "local_jsonl",
        extra_formats: Sequence[str] = (),
        progress: ProgressCallback | None = None,
    ) -> UploadResult:
        """Copy the images that are not there yet, then write the import file(s).

        Args:
            dataset: The dataset.
            import_format: ``"local_jsonl"`` (default) or any of
                :data:`~redditvision.storage.IMPORT_FORMATS` (the cloud formats carry
                ``file://`` URIs, for inspection).
            extra_formats: More import formats to write beside it.
            progress: Called with (done, total) images every 32 images and at the end.

        Returns:
            Counts, bytes and the :class:`~redditvision.models.DatasetLocation`.

        Raises:
            DatasetError: Empty dataset or unknown import format.
            StorageError: The folder cannot be created or written (disk full, permission).
        """
        formats = [import_format, *[f for f in extra_formats if f != import_format]]
        for fmt in formats:
            if fmt not in IMPORT_FORMATS:
                raise DatasetError(
                    f"unknown import format {fmt!r}; choose one of {', '.join(IMPORT_FORMATS)}"
                )
        items, failed = _prepare(dataset, self._prefix)
        root = self._root.resolve()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create dataset folder {root}: {exc.strerror or exc}"
            ) from exc
        uploaded = skipped = written_bytes = 0
        total = len(items)
        seen: set[str] = set()
        for done, item in enumerate(items, start=1):
            target = root / item.name
            if item.name in seen:
                pass
            elif target.is_file() and target.stat().st_size == item.size:
                skipped += 1
            else:
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    temporary = target.with_name(f".{target.name}.part")
                    shutil.copyfile(item.image.path, temporary)
                    os.replace(temporary, target)
                except OSError as exc:
                    raise StorageError(
                        f"cannot write {target}: {exc.strerror or exc}; free space or fix "
                        "permissions and run again (copied images are kept)"
                    ) from exc
                uploaded += 1
                written_bytes += item.size
            seen.add(item.name)
            if progress is not None and (done % 32 == 0 or done == total):
                progress(done, total)
        if not items:
            raise StorageError(
                f"no image of the dataset could be read: "
                f"{'; '.join(f'{p}: {r}' for p, r in failed[:5])}"
            )
        copied = attrs.evolve(
            dataset,
            images=tuple(attrs.evolve(item.image, path=root / item.name) for item in items),
        )
        folder = root / self._prefix if self._prefix else root
        import_uris: dict[str, str] = {}
        try:
            (folder / "label_map.json").write_text(_label_map_json(copied), encoding="utf-8")
            for fmt in reversed(formats):
                path = folder / IMPORT_FILE_NAMES[fmt]
                if fmt == "local_jsonl":
                    text = _dataset_file_text(copied, folder)
                else:
                    text = render_import_file(
                        copied, fmt, uri_for=lambda image: image.path.as_uri()
                    )
                _atomic_write_text(path, text)
                import_uris[fmt] = path.as_uri()
        except OSError as exc:
            raise StorageError(
                f"cannot write the import file in {folder}: {exc.strerror or exc}"
            ) from exc
        location = DatasetLocation(
            uri=folder.as_uri(),
            import_file_uri=import_uris[formats[0]],
            import_format=formats[0],
            images=len(copied.images),
            labels=copied.labels,
            label_map=dict(dataset.label_map),
            extra_import_files={fmt: import_uris[fmt] for fmt in formats[1:]},
        )
        return UploadResult(
            location=location,
            uploaded=uploaded,
            skipped_unchanged=skipped,
            bytes=written_bytes,
            failed=tuple(failed),
        )

    def upload(
        self,
        dataset: LabeledDataset,
        *,
        import_format: str = "local_jsonl",
        extra_formats: Sequence[str] = (),
        progress: ProgressCallback | None = None,
    ) -> UploadResult:
        """Deprecated alias of :meth:`write` (the same operation under its old name).

        Returns:
            What :meth:`write` returns.
        """
        warnings.warn(
            "LocalDatasetWriter.upload() is deprecated; call write(), which returns the same "
            "UploadResult",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.write(
            dataset, import_format=import_format, extra_formats=extra_formats, progress=progress
        )


def write_local_dataset(dataset: LabeledDataset, path: str | Path) -> Path:
    """Write a dataset as a local JSONL manifest (the ``local_jsonl`` import format).

    One JSON object per line: ``path`` (relative to the file's folder when the image is
    under it, else absolute), ``label``, ``original_label``, ``ml_use``, ``sha256``,
    ``group``, ``source``. Written atomically (temporary file, then rename).

    Args:
        dataset: The dataset.
        path: The file to write, conventionally ``dataset.jsonl``; its folder is created.

    Returns:
        The file's path.

    Raises:
        DatasetError: The file cannot be written.
    """
    target = Path(path)
    base = target.resolve().parent
    text = _dataset_file_text(dataset, base)
    try:
        base.mkdir(parents=True, exist_ok=True)
        _atomic_write_text(target, text)
    except OSError as exc:
        raise DatasetError(f"cannot write dataset file {target}: {exc.strerror or exc}") from exc
    return target


def _dataset_file_text(dataset: LabeledDataset, base: Path) -> str:
    """The ``local_jsonl`` text: paths relative to ``base`` when under it, else absolute."""
    resolved_base = base.resolve()

    def relative(image: LabeledImage) -> str:
        resolved = image.path.resolve()
        try:
            return resolved.relative_to(resolved_base).as_posix()
        except ValueError:
            return str(resolved)

    return render_import_file(dataset, "local_jsonl", uri_for=relative)


def load_local_dataset(path_or_uri: str | Path) -> LabeledDataset:
    """Read a local JSONL manifest written by :func:`write_local_dataset` or a writer.

    Args:
        path_or_uri: The ``dataset.jsonl`` file, as a path or ``file://`` URI, or a folder
            holding ``dataset.jsonl``.

    Returns:
        The dataset, in file order; relative paths are resolved against the file's folder;
        ``label_map`` is rebuilt from ``label`` / ``original_label``; the name is the
        folder's.

    Raises:
        DatasetError: The file is missing or unreadable, a line is not a JSON object with
            ``path`` and ``label``, an ``ml_use`` is not training/validation/test, or one
            service label carries two original labels. Messages give the line number.
    """
    text_path = str(path_or_uri)
    path = path_from(text_path, Path.cwd()) if text_path.startswith("file://") else Path(text_path)
    if path.is_dir():
        path = path / IMPORT_FILE_NAMES["local_jsonl"]
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(
            f"cannot read dataset file {path}: {exc.strerror or exc}; write it with "
            "`redditvision label --out DIR`"
        ) from exc
    base = path.resolve().parent
    images: list[LabeledImage] = []
    label_map: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise TypeError("not an object")
            label = str(data["label"])
            original = str(data.get("original_label") or label)
            use = data.get("ml_use")
            image = LabeledImage(
                path=path_from(str(data["path"]), base),
                label=label,
                original_label=original,
                ml_use=MLUse(use) if use else None,
                sha256=data.get("sha256"),
                group=data.get("group"),
                source=data.get("source"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(
                f"{path} line {number} is not a dataset line ({exc}); expected a JSON object "
                "with path, label, original_label, ml_use, sha256, group"
            ) from exc
        if label_map.setdefault(label, original) != original:
            raise DatasetError(
                f"{path} line {number}: label {label!r} stands for both "
                f"{label_map[label]!r} and {original!r}"
            )
        images.append(image)
    return LabeledDataset(
        images=tuple(images),
        label_map=dict(sorted(label_map.items())),
        name=dataset_name(base.name),
    )
