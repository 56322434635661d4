"""CSV as the product writes it for spreadsheets: one writer, formula injection neutralised.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
read by Excel, LibreOffice and Google Sheets as a formula (``=HYPERLINK(...)``,
``=cmd|...``); text that models, tools or people wrote (an agent's final answer,
a workflow or approver name) must never run as one. Such a cell is written with a
single quote before it (the OWASP rule), which spreadsheets show as text; a plain
number (``-3``, ``+1.5``, ``2e-3``) stays a number. Every CSV export goes through
``csv_text`` (execution logs, approval analytics).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """``value`` as a CSV cell that no spreadsheet runs as a formula (None: empty)."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_text(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """A CSV document (a header row, then ``rows``; ``\\n`` line ends), every cell
    through ``safe_cell``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue()


__all__ = ["FORMULA_STARTS", "csv_text", "safe_cell"]
