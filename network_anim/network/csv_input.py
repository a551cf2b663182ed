"""What every imported CSV file shares: decoding, the separator, the header check, and
the refusal of spreadsheet formulas."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Sequence
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
    first = _first_line(text)
    return ";" if first.count(";") > first.count(",") else ","


def _first_line(text: str) -> str:
    """``text.splitlines()[0]`` (or "") without splitting a whole 30 MB file into lines."""
    size = 4096
    while True:
        head = text[:size]
        lines = head.splitlines()
        # A break inside the prefix ends the first line there; a prefix ending in "\r"
        # could be half of "\r\n", which ends the same first line anyway.
        if len(lines) > 1 or len(head) == len(text):
            return lines[0] if lines else ""
        size *= 4


# What io.StringIO(text, newline="") yields line by line: each line with its ending,
# "\r\n", a lone "\r" or "\n" (universal newlines, untranslated).
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def _lines(text: str) -> Iterator[str]:
    # Rather than io.StringIO: it copies the text into 4 bytes a character (120 MB for a
    # 30 MB file) before the first line is read.
    if "\r" not in text or text.count("\r") == text.count("\r\n"):
        # Every line ends at a "\n" (a "\r" only ever precedes one): found with str.find,
        # a tenth of what the pattern costs a line.
        yield from _lines_at_newlines(text)
        return
    for match in _LINE.finditer(text):
        yield match.group()


def _lines_at_newlines(text: str) -> Iterator[str]:
    start, find = 0, text.find
    while end := find("\n", start) + 1:
        yield text[start:end]
        start = end
    if start < len(text):
        yield text[start:]


def formula_lines(text: str, delimiter: str, first_line: int = 1) -> set[int]:
    """The numbers of the lines of ``text`` (which holds no quote: every cell is a run
    between separators) where a cell starts like a formula, after spaces; ``text``'s
    first line is ``first_line``. One search of the whole text: a row on any other line
    needs no cell-by-cell formula check."""
    starts = "[" + re.escape("".join(FORMULA_STARTS)) + "]"
    lines = {first_line} if re.match(" *" + starts, text) else set()
    line, previous = first_line, 0
    # The formula's character looked ahead, not taken: it may be a line break that
    # precedes the next one ("\r\r+33...").
    for match in re.finditer(f"[{re.escape(delimiter)}\r\n] *(?={starts})", text):
        # The formula's first character: never the "\n" of a "\r\n", so no range
        # counted here cuts one in two.
        position = match.end()
        line += line_breaks(text, previous, position)
        previous = position
        lines.add(line)
    return lines


def line_breaks(text: str, start: int, end: int) -> int:
    """The line breaks in ``text[start:end]`` as _lines splits: "\r\n", a lone "\r", "\n"."""
    return (
        text.count("\n", start, end) + text.count("\r", start, end) - text.count("\r\n", start, end)
    )


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


def read_header(text: str, *, source: str) -> tuple[Any, list[str]]:
    """A csv reader past the header, and the header's cells as written (stripped); its
    ``line_num`` counts physical lines, as the error messages number them."""
    if not text.strip():
        raise UserError(f"{source}: the file is empty")
    reader = rows_reader(text, delimiter_of(text))
    return reader, [h.strip() for h in next(reader)]


def rows_reader(text: str, delimiter: str) -> Any:
    """A csv reader of ``text``'s rows; its ``line_num`` counts physical lines."""
    return csv.reader(_lines(text), delimiter=delimiter)


def open_rows(
    text: str, *, source: str, known: Sequence[str], required: Sequence[str], hint: str
) -> tuple[Any, list[str]]:
    """A csv reader past a checked header, and the header (lower-case, stripped)."""
    reader, written = read_header(text, source=source)
    header = [h.lower() for h in written]
    check_header(header, source=source, known=known, required=required, hint=hint)
    return reader, header


def data_rows(
    reader: Any, header: Sequence[str], problem: Callable[[int, str], None]
) -> Iterator[tuple[int, dict[str, str]]]:
    """Each row under the header with its cells by column and the line it starts on
    (a quoted cell can span lines); blank rows are skipped, and a row whose cell count
    is not the header's goes to ``problem`` instead."""
    line = reader.line_num
    for raw_row in reader:
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in raw_row):
            continue
        if len(raw_row) != len(header):
            problem(start, f"{len(raw_row)} cells, the header has {len(header)}")
            continue
        yield start, dict(zip(header, raw_row, strict=True))
