"""What every imported CSV file shares: decoding, the separator, the header check, and
the refusal of spreadsheet formulas."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from network_anim.errors import UserError

# A cell starting with one of these is run as a formula by spreadsheet software.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: not UTF-8 (byte {exc.start})",
            ["save the file as 'CSV UTF-8' from your spreadsheet and import it again"],
        ) from None


def delimiter_of(text: str) -> str:
    """French spreadsheets write ';', others ','; the header line tells which."""
    first = text.splitlines()[0] if text else ""
    return ";" if first.count(";") > first.count(",") else ","


def check_header(
    header: Sequence[str], *, source: str, known: Sequence[str], required: Sequence[str], hint: str
) -> None:
    problems = []
    unknown = [h for h in header if h not in known]
    if unknown:
        problems.append(f"unknown column(s): {', '.join(unknown)} ({hint})")
    missing = [c for c in required if c not in header]
    if missing:
        problems.append(f"missing required column(s): {', '.join(missing)}")
    dupes = sorted({h for h in header if list(header).count(h) > 1})
    if dupes:
        problems.append(f"column(s) given twice: {', '.join(dupes)}")
    if problems:
        raise UserError(f"{source} line 1 (header): nothing was imported", problems)


def formula_problem(column: str, raw: str) -> str | None:
    """Checked on the cell as written, before any stripping (a leading TAB counts)."""
    if raw.startswith(FORMULA_STARTS):
        shown = raw[:20]
        return (
            f"{column} {shown!r} starts with {raw[0]!r}: formula-like cells are refused "
            "(spreadsheet injection); remove the leading character"
        )
    return None


def open_rows(
    text: str, *, source: str, known: Sequence[str], required: Sequence[str], hint: str
) -> tuple[Any, list[str]]:
    """A csv reader past a checked header, and the header (lower-case, stripped)."""
    if not text.strip():
        raise UserError(f"{source}: the file is empty")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter_of(text))
    header = [h.strip().lower() for h in next(reader)]
    check_header(header, source=source, known=known, required=required, hint=hint)
    return reader, header
