"""CSV that a spreadsheet opens as data: every cell that starts like a formula is quoted."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

# What Excel, LibreOffice and Google Sheets evaluate at the start of a cell (OWASP "CSV
# injection"): a tab or CR is stripped by some of them before the check.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "|", "%")


def cell_safe(value: object) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def csv_line(row: Iterable[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([cell_safe(cell) for cell in row])
    return buffer.getvalue()


def csv_lines(header: Iterable[object], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    yield csv_line(header)
    for row in rows:
        yield csv_line(row)


def csv_text(header: Iterable[object], rows: Iterable[Iterable[object]]) -> str:
    return "".join(csv_lines(header, rows))
