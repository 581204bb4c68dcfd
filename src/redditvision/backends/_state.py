"""A small JSON state file that lets a cloud run resume instead of repeating a create.

Training on a cloud runs for hours and costs money. Before a backend waits on anything it
created (a dataset, an import operation, a training pipeline, an endpoint, a deploy
operation), it records the resource or operation name here. After a crash or a timeout, the
next run with the same key finds the name and resumes polling it instead of sending a second
create (creates are not idempotent and are never retried blindly).

The file is written atomically (a temporary file in the same folder, ``fsync``, then
``os.replace``), so a crash mid-write leaves either the old or the new content, never a torn
file. Values must be JSON-compatible.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from redditvision.errors import ConfigError

__all__ = ["RunState", "default_state_dir", "run_key"]

_VERSION = 1


def default_state_dir() -> Path:
    """Return the default folder for state files.

    ``$REDDITVISION_STATE_DIR`` when set, else ``.redditvision/state`` in the current folder
    ("next to the run").

    Returns:
        The folder (not created here).
    """
    env = os.environ.get("REDDITVISION_STATE_DIR")
    return Path(env) if env else Path.cwd() / ".redditvision" / "state"


def run_key(backend: str, *parts: str) -> str:
    """Build a stable, file-name-safe key for one run from what identifies it.

    Args:
        backend: ``"vertex"`` or ``"automl"``.
        *parts: What makes the run unique, e.g. project, location, import file URI,
            display name.

    Returns:
        ``"{backend}-{slug}-{hash12}"``: a readable slug of the last part and the first 12
        hex digits of the SHA-256 of all parts.
    """
    digest = hashlib.sha256("\x1f".join((backend, *parts)).encode("utf-8")).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", parts[-1] if parts else "run").strip("-.")[:40]
    return f"{backend}-{slug or 'run'}-{digest}"


class RunState:
    """The state of one cloud run, persisted as JSON at ``path``.

    Args:
        path: The JSON file; its folder is created on the first write.

    Keys are short step names (``"dataset"``, ``"import_operation"``, ``"pipeline"``,
    ``"endpoint"``, ``"deploy_operation"``, ...); values are resource or operation names or
    other JSON-compatible values.

    Raises:
        ConfigError: The file exists but is not a state file (not JSON, wrong version).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._data: dict[str, Any] = self._load()

    @classmethod
    def for_run(
        cls, state_dir: str | os.PathLike[str] | None, backend: str, *parts: str
    ) -> RunState:
        """Open the state of the run identified by ``backend`` and ``parts``.

        Args:
            state_dir: The folder, or None for :func:`default_state_dir`.
            backend: ``"vertex"`` or ``"automl"``.
            *parts: What makes the run unique (see :func:`run_key`).

        Returns:
            The state (empty when the run has not started before).
        """
        folder = Path(state_dir) if state_dir is not None else default_state_dir()
        return cls(folder / f"{run_key(backend, *parts)}.json")

    def __repr__(self) -> str:
        return f"RunState({str(self.path)!r}, keys={sorted(self._data)!r})"

    def _load(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(f"cannot read state file {self.path}: {exc.strerror}") from exc
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"state file {self.path} is not valid JSON ({exc.msg}); move it away to "
                "start the run afresh"
            ) from exc
        if not isinstance(document, dict) or document.get("version") != _VERSION:
            raise ConfigError(
                f"state file {self.path} is not a redditvision state file (version "
                f"{_VERSION}); move it away to start the run afresh"
            )
        values = document.get("values", {})
        return dict(values) if isinstance(values, dict) else {}

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value recorded for ``key``, or ``default``.

        Args:
            key: The step name.
            default: Returned when nothing is recorded.

        Returns:
            The value.
        """
        with self._lock:
            return self._data.get(key, default)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._data

    def as_dict(self) -> dict[str, Any]:
        """Return a copy of every recorded value."""
        with self._lock:
            return dict(self._data)

    def set(self, key: str, value: Any) -> None:
        """Record ``value`` for ``key`` and write the file atomically before returning.

        Args:
            key: The step name.
            value: A JSON-compatible value.

        Raises:
            ConfigError: The file cannot be written.
        """
        with self._lock:
            self._data[key] = value
            self._write()

    def update(self, values: dict[str, Any]) -> None:
        """Record several values in one atomic write.

        Args:
            values: Step name -> JSON-compatible value.
        """
        with self._lock:
            self._data.update(values)
            self._write()

    def discard(self, keys: Iterable[str]) -> None:
        """Forget ``keys`` (missing ones are ignored) and write the file.

        Args:
            keys: The step names.
        """
        with self._lock:
            changed = False
            for key in keys:
                if key in self._data:
                    del self._data[key]
                    changed = True
            if changed:
                self._write()

    def clear(self) -> None:
        """Forget everything and remove the file (a finished run starts afresh next time)."""
        with self._lock:
            self._data = {}
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise ConfigError(f"cannot remove state file {self.path}: {exc.strerror}") from exc

    def _write(self) -> None:
        document = {"version": _VERSION, "values": self._data}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(document, handle, indent=2, sort_keys=True)
                    handle.write("\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise ConfigError(
                f"cannot write state file {self.path}: {exc.strerror}; pass a writable state_dir"
            ) from exc
