"""The one CSV writer for files people open in a spreadsheet: cells cannot run as formulas.

Reddit titles and flair are strangers' text; a cell such as ``=HYPERLINK(...)`` or
``+cmd|'/C calc'!A0`` runs as a formula when the CSV is opened in Excel, LibreOffice or
Google Sheets. Following OWASP's CSV-injection guidance
(https://owasp.org/www-community/attacks/CSV_Injection), a cell that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return is prefixed with a single quote, which the
spreadsheet shows as text; the ``csv`` module quotes cells holding the delimiter, quotes
or line breaks, doubling embedded quotes. :func:`unneutralize_cell` takes the quote off
again when such a file is read back.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

__all__ = ["FORMULA_PREFIXES", "safe_cell", "unneutralize_cell", "write_csv"]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP)."""


def safe_cell(value: object) -> str:
    """Return a cell's text with formula triggers neutralized.

    Args:
        value: Any value; None becomes ``""``, others ``str(value)``.

    Returns:
        The text, prefixed with ``'`` when it starts with one of :data:`FORMULA_PREFIXES`.
    """
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def unneutralize_cell(text: str) -> str:
    """Undo :func:`safe_cell` on a cell read back from a file written by :func:`write_csv`.

    Args:
        text: The cell as read.

    Returns:
        The text without the ``'`` that :func:`safe_cell` added (only when it is followed
        by one of :data:`FORMULA_PREFIXES`), else unchanged.
    """
    if text.startswith("'") and text[1:].startswith(FORMULA_PREFIXES):
        return text[1:]
    return text


def write_csv(
    path_or_file: str | Path | IO[str],
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
) -> int:
    r"""Write a CSV with every cell passed through :func:`safe_cell`.

    UTF-8, ``\n`` line ends. A path is written atomically (a temporary file, then a
    rename), so a reader never sees half a file.

    Args:
        path_or_file: The file to write, or an open text file (written, not closed).
        header: The column names (neutralized as well).
        rows: The rows.

    Returns:
        Rows written, header not counted.

    Raises:
        OSError: The file cannot be written (callers translate it into their error).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([safe_cell(cell) for cell in header])
    count = 0
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
        count += 1
    if isinstance(path_or_file, str | Path):
        target = Path(path_or_file)
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_text(buffer.getvalue(), encoding="utf-8")
        os.replace(temporary, target)
    else:
        path_or_file.write(buffer.getvalue())
    return count
