"""Confine paths read from a file (a label CSV, a dataset file) to a declared folder.

A label CSV is often strangers' work (a shared spreadsheet), so every path it names must
resolve, symlinks followed, inside the folder the user declared: rows naming
``/etc/passwd``, ``../../secret``, ``file:///etc/shadow`` or a symlink that points out of
the folder are refused before anything is read or written.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

__all__ = ["confined_path", "path_from"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def path_from(text: str, base: Path) -> Path:
    """Turn a path or ``file://`` URI from a file into a path.

    Args:
        text: A local path (relative ones resolve against ``base``) or a ``file://`` URI.
        base: The folder relative paths are resolved against.

    Returns:
        The path (not resolved, not checked; see :func:`confined_path`).
    """
    if text.startswith("file://"):
        parsed = urlparse(text)
        return Path(url2pathname(unquote(parsed.path)))
    path = Path(text)
    return path if path.is_absolute() else base / path


def confined_path(text: str, *, base: Path, root: Path) -> tuple[Path | None, str]:
    """Resolve a path from a file and check that it stays inside ``root``.

    Args:
        text: The path as written: relative (to ``base``), absolute, or a ``file://`` URI
            with no host (or ``localhost``).
        base: The folder relative paths are resolved against.
        root: The folder every path must resolve into (symlinks followed).

    Returns:
        ``(resolved path, "")`` when it is inside ``root``; else ``(None, reason)`` where
        the reason says what is wrong (a URL of another kind, a host, a NUL byte, outside
        the folder).
    """
    if "\x00" in text:
        return None, "holds a NUL byte"
    if _SCHEME.match(text) and not text.lower().startswith("file://"):
        return None, "is a URL, not a local path"
    if text.lower().startswith("file://"):
        host = urlparse(text).netloc
        if host not in ("", "localhost"):
            return None, f"is a file:// URI on another host ({host})"
        text = "file://" + text[len("file://") :]
    try:
        resolved = path_from(text, base).resolve()
        resolved_root = root.resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        return None, f"cannot be resolved ({exc})"
    if not resolved.is_relative_to(resolved_root):
        return None, f"resolves to {resolved}, outside {resolved_root}"
    return resolved, ""
