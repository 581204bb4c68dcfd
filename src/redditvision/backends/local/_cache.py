"""The embedding cache: one ``.npy`` file per (extractor id and version, view, image sha256)."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = ["EmbeddingCache", "default_cache_dir"]

logger = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def default_cache_dir() -> Path:
    """Return ``$XDG_CACHE_HOME/redditvision/embeddings`` (default ``~/.cache/...``).

    Returns:
        The folder (not created).
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "redditvision" / "embeddings"


class EmbeddingCache:
    """Feature vectors stored by (extractor id and version, augmentation, image SHA-256).

    A vector is only ever written whole (temporary file, then ``os.replace``), and a file
    that does not load as a float32 vector of the expected length is treated as missing,
    so a crash or a concurrent run never poisons the cache.

    Args:
        root: The cache folder (created on first write).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.root)!r})"

    def _path(self, namespace: str, augmentation: str, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"not a hex SHA-256: {sha256!r}")
        folder = _SAFE.sub("_", namespace)
        return self.root / folder / _SAFE.sub("_", augmentation) / sha256[:2] / f"{sha256}.npy"

    def get(
        self, namespace: str, augmentation: str, sha256: str, *, dim: int
    ) -> NDArray[np.float32] | None:
        """Return the cached vector, or None when absent or unreadable.

        Args:
            namespace: ``"{extractor id}@{version}"``.
            augmentation: The view (``"none"``, ``"hflip"``).
            sha256: Hex SHA-256 of the encoded image.
            dim: Expected vector length.

        Returns:
            A float32 vector of shape (dim,), or None.
        """
        path = self._path(namespace, augmentation, sha256)
        try:
            vector: NDArray[np.float32] = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable embedding cache file %s: %s", path, exc)
            return None
        if vector.dtype != np.float32 or vector.shape != (dim,):
            logger.warning("ignoring embedding cache file %s of shape %s", path, vector.shape)
            return None
        return vector

    def put(
        self, namespace: str, augmentation: str, sha256: str, vector: NDArray[np.float32]
    ) -> None:
        """Store a vector atomically; a failure to write is logged, never raised.

        Args:
            namespace: ``"{extractor id}@{version}"``.
            augmentation: The view.
            sha256: Hex SHA-256 of the encoded image.
            vector: Float32 vector of shape (dim,).
        """
        path = self._path(namespace, augmentation, sha256)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
            try:
                with os.fdopen(fd, "wb") as handle:
                    np.save(handle, np.asarray(vector, dtype=np.float32), allow_pickle=False)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            logger.warning("cannot write embedding cache file %s: %s", path, exc)
