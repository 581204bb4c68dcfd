"""The one CSV writer for files that people open in a spreadsheet.

Reddit titles, flair and file names are strangers' text. A spreadsheet that opens a CSV file
evaluates a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula (and a leading tab
or carriage return can hide such a start), so a title such as ``=HYPERLINK("http://x")`` would
become a live link or worse (CSV or formula injection). This module follows OWASP's
`CSV Injection <https://owasp.org/www-community/attacks/CSV_Injection>`_ guidance:

* every cell whose text starts with one of ``= + - @``, tab (0x09) or carriage return (0x0D)
  is prefixed with a single quote, so the spreadsheet reads it as text;
* every cell is wrapped in double quotes and embedded double quotes are doubled (Python's
  :data:`csv.QUOTE_ALL`), so a field separator inside a cell (``,`` or a locale's ``;``)
  cannot start a new, unescaped cell.

Decisions, so readers of our files know what to expect:

* **Numbers stay numbers.** An ``int`` or finite ``float`` *value* is written as itself
  (``-0.5`` stays ``-0.5``): its text is a literal, never a formula. The decision is made on
  the type, not the text: a *string* ``"-0.5"`` (for example a title) is prefixed like any
  other string. Non-finite floats (``nan``, ``-inf``) are written as text, ``-inf`` prefixed.
  ``bool`` is written ``true``/``false``; ``None`` as an empty cell.
* **A leading single quote is escaped too** (``'Tis`` becomes ``''Tis``), so that
  :func:`restore_cell` can undo :func:`safe_cell` exactly when our own code reads a file back.

Files meant for machines (Vertex AI or AutoML import files) are not written with this module:
their readers do not evaluate formulas and must see the values unchanged.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TextIO

__all__ = ["FORMULA_TRIGGERS", "Cell", "restore_cell", "safe_cell", "write_csv"]

Cell = str | int | float | bool | None
"""What a cell may hold before it is written."""

FORMULA_TRIGGERS = frozenset("=+-@\t\r")
"""First characters a spreadsheet may treat as the start of a formula (OWASP's list)."""

_ESCAPED_FIRST = FORMULA_TRIGGERS | {"'"}


def safe_cell(value: Cell) -> str:
    """Return the text to write for one cell, neutralized against formula injection.

    Args:
        value: The cell's value. ``None`` becomes an empty cell; ``True``/``False`` become
            ``true``/``false``; an ``int`` or finite ``float`` is written as its Python text
            (``repr``, e.g. ``-0.5``, ``1e-07``) and never prefixed; anything else is a string.

    Returns:
        The cell text. A string starting with ``=``, ``+``, ``-``, ``@``, tab, carriage return or
        a single quote gets one single quote in front (``=1+1`` -> ``'=1+1``); any other
        string is returned unchanged.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    text = str(value)
    if text and text[0] in _ESCAPED_FIRST:
        return "'" + text
    return text


def restore_cell(text: str) -> str:
    """Undo :func:`safe_cell` for a string cell read back from one of our files.

    Args:
        text: A cell as :mod:`csv` read it.

    Returns:
        The text with the one quote :func:`safe_cell` added removed (``'=1+1`` -> ``=1+1``,
        ``''Tis`` -> ``'Tis``); any other text unchanged.
    """
    if len(text) >= 2 and text[0] == "'" and text[1] in _ESCAPED_FIRST:
        return text[1:]
    return text


def _write_rows(stream: TextIO, header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> int:
    writer = csv.writer(stream, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow([safe_cell(name) for name in header])
    count = 0
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
        count += 1
    return count


def write_csv(
    target: str | os.PathLike[str] | TextIO,
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
) -> int:
    """Write a header and rows as an injection-safe CSV file (UTF-8, LF line ends).

    Every cell goes through :func:`safe_cell` and is quoted (:data:`csv.QUOTE_ALL`). A path is
    written atomically: the rows go to a temporary file in the same folder, which then replaces
    ``target``, so a reader never sees half a file and a killed run leaves the old file.

    Args:
        target: A file path (its folder must exist) or an open text stream (written as is,
            not closed).
        header: Column names, written as the first row.
        rows: The rows; each a sequence of cells (see :data:`Cell`), normally as long as
            ``header``.

    Returns:
        Number of rows written, header not counted.

    Raises:
        OSError: The file cannot be written (callers translate it into their step's error).
    """
    if not isinstance(target, (str, os.PathLike)):
        return _write_rows(target, header, rows)
    path = Path(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            count = _write_rows(stream, header, rows)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return count
