"""Print mailing: one PDF of letters plus one address file for the mail house, per batch.

The "provider" is a folder the mail house collects from. Each :meth:`PrintTransport.send_batch`
publishes exactly two files, ``letters-<batchid>.pdf`` (one letter per item, each starting
on a new page) and ``addresses-<batchid>.csv`` (one row per letter). Both are written to
hidden temporary files and renamed into place, PDF first, so a collector that waits for
the CSV never sees a half-written or missing PDF.

Layout (A4, millimetres, core font Helvetica so no font file ships with the package):
sender block top left; the address block at x=110, y=50, at most 85 mm wide, which is
inside the window of a French DL window envelope (window 100 x 45 mm, 20 mm from the right
and 15 mm from the bottom of a 220 x 110 envelope, letter folded in three);
"Place, le date" below the window and the first fold (99 mm); then "Objet : ...", the
body with automatic page breaks, the signature, and a small reference footer so a letter
returned as undeliverable can be traced to its delivery.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import os
import re
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from network_anim.channels.base import Outbound, SendResult, TransportBase
from network_anim.channels.postal import MAX_LENGTH, MAX_LINES, AddressError, split_destination
from network_anim.config.channel_defs import ChannelDefinition
from network_anim.config.settings import PrintSettings
from network_anim.domain import Outcome

# --- pure helpers -------------------------------------------------------------------------

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def neutralise_csv_cell(value: str) -> str:
    """Prefix ``'`` to a cell a spreadsheet would evaluate as a formula (OWASP CSV injection).

    Full-width ``＝＋－＠`` are included because some spreadsheet locales fold them to
    their ASCII forms before deciding whether a cell is a formula.
    """
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


def letter_date(d: date, place: str) -> str:
    """``"Paris, le 25 novembre 2026"``; "1er" for the first day, as French letters write it.

    Month names come from a table, not from ``strftime``: the process locale is whatever the
    server has, often C or English.
    """
    day = "1er" if d.day == 1 else str(d.day)
    when = f"{day} {_MONTHS[d.month - 1]} {d.year}"
    place = place.strip()
    return f"{place}, le {when}" if place else f"Le {when}"


# fpdf2's core fonts take one byte per character. With ``core_fonts_encoding = "cp1252"``
# (the fonts are declared WinAnsiEncoding anyway) they accept and measure correctly all of
# ’ ‘ “ ” – — … œ Œ € « » and NBSP, which French text needs; the default latin-1 would
# raise FPDFUnicodeEncodingException on the first curly apostrophe. What cp1252 lacks is
# mapped below to its nearest look-alike; anything else is dropped or becomes "?"
# (see pdf_text) instead of crashing.
PDF_ENCODING = "cp1252"
_PDF_LOOKALIKES = str.maketrans(
    {
        "\u202f": "\u00a0",  # narrow no-break space (before ; : ! ? in French typography)
        "\u2007": "\u00a0",  # figure space
        "\u2009": " ",  # thin space
        "\u200a": " ",  # hair space
        "\u2002": " ",  # en space
        "\u2003": " ",  # em space
        "\u2010": "-",  # hyphen
        "\u2011": "-",  # non-breaking hyphen
        "\u2012": "–",  # figure dash
        "\u2015": "—",  # horizontal bar
        "\u2212": "-",  # minus sign
        "\u2032": "'",  # prime
        "\u2033": '"',  # double prime
        "\u2043": "-",  # hyphen bullet
        "\u2219": "•",  # bullet operator
        "\u2192": "->",  # rightwards arrow
        "\u2190": "<-",  # leftwards arrow
        "\u2264": "<=",
        "\u2265": ">=",
        "\u2260": "!=",
        "\u2713": "v",  # check mark
        "\u2028": "\n",  # line separator
        "\u2029": "\n\n",  # paragraph separator
        "\t": "    ",
    }
)


def pdf_text(text: str) -> str:
    """Make ``text`` printable with a cp1252 core font, keeping French typography intact."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = text.translate(_PDF_LOOKALIKES)
    out: list[str] = []
    for ch in text:
        if ch == "\n":
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cf") and ch != "\u00ad":
            continue  # invisible controls would print as boxes; the soft hyphen is meaningful
        elif _encodable(ch):
            out.append(ch)
        else:
            # Compatibility forms first ("ﬁ" -> "fi", "①" -> "1"), then the bare letter.
            folded = unicodedata.normalize("NFKD", ch)
            folded = "".join(c for c in folded if not unicodedata.combining(c))
            if folded and all(_encodable(c) for c in folded):
                out.append(folded)
            elif unicodedata.category(ch) != "So":
                # Emoji and pictographs are decoration: dropped. A letter we cannot print
                # shows as "?" so the loss is visible on proof-reading.
                out.append("?")
    return "".join(out)


def _encodable(ch: str) -> bool:
    try:
        ch.encode(PDF_ENCODING)
    except UnicodeEncodeError:
        return False
    return True


def address_problem(lines: Sequence[str], *, max_lines: int, max_length: int) -> str | None:
    """Why a ready-made address block cannot go in the envelope window, or ``None``."""
    if not lines:
        return "no postal address: the recipient has no address block (postal_lines is empty)"
    if len(lines) > max_lines:
        return (
            f"address block has {len(lines)} lines; at most {max_lines} (NF Z10-011): "
            "rebuild it with network_anim.channels.postal.address_block"
        )
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            return f"address line {number} is blank: La Poste wants no empty line in the block"
        if "\n" in line or "\r" in line:
            return f"address line {number} {line!r} holds a line break"
        if len(line) > max_length:
            return (
                f"address line {number} '{line}' is {len(line)} characters; at most "
                f"{max_length}: abbreviate it (AV, BD, RTE...) in the contact's address"
            )
    return None


def batch_id(keys: Sequence[str], now: datetime) -> str:
    """UTC timestamp to the microsecond plus a short hash of the keys: unique and sortable."""
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:8]
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{digest}"


CSV_HEADER = (
    "reference",
    *(f"ligne{i}" for i in range(1, 7)),
    "code_postal",
    "ville",
    "pays",
    "pages",
    "fichier_pdf",
)


# --- PDF layout ---------------------------------------------------------------------------

PAGE_MARGIN = 20.0  # left, right and bottom (mm)
TOP_MARGIN = 15.0
SENDER_SIZE = 10.0
ADDRESS_X, ADDRESS_Y, ADDRESS_WIDTH = 110.0, 50.0, 85.0  # DL window, see module docstring
ADDRESS_SIZE, ADDRESS_MIN_SIZE = 10.0, 8.0  # La Poste asks for 8 pt at least
DATE_Y = 102.0  # below the window (ends about 95 mm) and the first fold (99 mm)
SUBJECT_Y = 114.0
BODY_SIZE = 11.0
BODY_LINE = 5.5
FOOTER_SIZE = 7.0
PT = 25.4 / 72  # millimetres per point


@dataclass(frozen=True, slots=True)
class _Letter:
    index: int  # position in the batch, to put the result back in order
    item: Outbound
    lines: tuple[str, ...]
    postcode: str
    city: str
    country: str


class _LetterPDF(FPDF):
    """FPDF with a footer that numbers pages per letter, not per file."""

    def __init__(self) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.core_fonts_encoding = PDF_ENCODING
        # No inner cell padding: text starts exactly at the x we give (address at 110 mm).
        self.c_margin = 0
        self.letter_reference = ""
        self.letter_first_page = 1

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=FOOTER_SIZE)
        self.set_text_color(110)
        page = self.page_no() - self.letter_first_page + 1
        self.cell(0, 4, pdf_text(f"Réf. {self.letter_reference} - page {page}"), align="R")
        self.set_text_color(0)


def _render(
    letters: Sequence[_Letter], settings: PrintSettings, when: date, title: str
) -> tuple[bytes, list[tuple[int, int]]]:
    """The PDF bytes and, per letter, (first page, page count)."""
    pdf = _LetterPDF()
    pdf.set_title(title)
    pdf.set_creator("network-anim")
    pdf.set_margins(PAGE_MARGIN, TOP_MARGIN, PAGE_MARGIN)
    pdf.set_auto_page_break(True, margin=PAGE_MARGIN)
    pages: list[tuple[int, int]] = []
    for letter in letters:
        # add_page closes the previous page first, so its footer still shows the previous
        # letter's reference; only then does this letter's numbering start.
        pdf.add_page()
        pdf.letter_reference = letter.item.idempotency_key
        pdf.letter_first_page = pdf.page_no()
        _draw_letter(pdf, letter, settings, when)
        pages.append((pdf.letter_first_page, pdf.page_no() - pdf.letter_first_page + 1))
    return bytes(pdf.output()), pages


def _draw_letter(pdf: _LetterPDF, letter: _Letter, settings: PrintSettings, when: date) -> None:
    # Sender, top left; its first line (the organisation) in bold.
    pdf.set_xy(PAGE_MARGIN, TOP_MARGIN)
    for number, line in enumerate(settings.sender_lines):
        pdf.set_font("Helvetica", "B" if number == 0 else "", SENDER_SIZE)
        pdf.cell(85, SENDER_SIZE * PT * 1.3, pdf_text(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    _draw_address(pdf, [pdf_text(line) for line in letter.lines])

    pdf.set_font("Helvetica", "", BODY_SIZE)
    pdf.set_xy(ADDRESS_X, DATE_Y)
    pdf.cell(ADDRESS_WIDTH, BODY_LINE, pdf_text(letter_date(when, settings.place)))

    pdf.set_xy(PAGE_MARGIN, SUBJECT_Y)
    subject = " ".join(letter.item.subject.split())
    if subject:
        pdf.set_font("Helvetica", "B", BODY_SIZE)
        pdf.multi_cell(0, BODY_LINE, pdf_text(f"Objet : {subject}"))
        pdf.ln(BODY_LINE)

    pdf.set_font("Helvetica", "", BODY_SIZE)
    # A blank line separates paragraphs; a single line break inside one is kept as is.
    for paragraph in re.split(r"\n\s*\n", pdf_text(letter.item.text)):
        paragraph = paragraph.strip("\n ")
        if paragraph:
            pdf.multi_cell(0, BODY_LINE, paragraph, align="L")
            pdf.ln(BODY_LINE * 0.6)

    if settings.signature.strip():
        pdf.ln(BODY_LINE * 1.5)
        pdf.set_x(ADDRESS_X)
        pdf.multi_cell(ADDRESS_WIDTH, BODY_LINE, pdf_text(settings.signature))


def _draw_address(pdf: _LetterPDF, lines: Sequence[str]) -> None:
    """The block in the window, shrunk (never clipped) so its widest line fits 85 mm.

    38 capitals of Helvetica 10 pt can reach 95 mm: the whole block goes down to 8 pt
    together (a uniform look), and a line still too wide at 8 pt is condensed horizontally.
    """
    pdf.set_font("Helvetica", "", ADDRESS_SIZE)
    widest = max(pdf.get_string_width(line) for line in lines)
    size = ADDRESS_SIZE
    if widest > ADDRESS_WIDTH:
        size = max(ADDRESS_MIN_SIZE, ADDRESS_SIZE * ADDRESS_WIDTH / widest)
        pdf.set_font_size(size)
    height = size * PT * 1.25
    for number, line in enumerate(lines):
        pdf.set_stretching(100.0)  # get_string_width counts the current stretching
        width = pdf.get_string_width(line)
        stretch = 100.0 if width <= ADDRESS_WIDTH else 100.0 * ADDRESS_WIDTH / width
        pdf.set_stretching(stretch)
        pdf.set_xy(ADDRESS_X, ADDRESS_Y + number * height)
        pdf.cell(ADDRESS_WIDTH, height, line)
    pdf.set_stretching(100.0)


# --- files --------------------------------------------------------------------------------


def _csv_bytes(
    letters: Sequence[_Letter], pages: Sequence[tuple[int, int]], pdf_name: str
) -> bytes:
    buffer = io.StringIO(newline="")
    # ";" because French Excel reads "," as the decimal mark; CRLF is what Excel writes.
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for letter, (_, count) in zip(letters, pages, strict=True):
        cells = [
            letter.item.idempotency_key,
            *letter.lines,
            *([""] * (6 - len(letter.lines))),
            letter.postcode,
            letter.city,
            letter.country,
            str(count),
            pdf_name,
        ]
        writer.writerow([neutralise_csv_cell(cell) for cell in cells])
    # The BOM lets Excel recognise UTF-8 instead of guessing cp1252 and garbling accents.
    return buffer.getvalue().encode("utf-8-sig")


def _publish(directory: Path, name: str, data: bytes) -> None:
    """Write ``data`` to ``directory/name`` atomically: all of it or nothing."""
    # Hidden, ".tmp" temporary in the same folder: rename is only atomic within a file
    # system, and a collector globbing "*.pdf" / "*.csv" never picks it up.
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # the bytes are on disk before the name points to them
        # mkstemp makes the file private (0600); the mail house's collector often runs as
        # another user, so publish with the usual rw-r--r--.
        os.chmod(temp, 0o644)
        os.replace(temp, directory / name)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _fsync_directory(directory: Path) -> None:
    # Makes the renames themselves durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- transport ----------------------------------------------------------------------------


class PrintTransport(TransportBase):
    """Turns each batch into one letters PDF and one address CSV in ``directory``.

    Implements :class:`network_anim.channels.base.Transport`. ``today`` pins the letter
    date (tests, simulated runs); otherwise the date is read at each batch, so a daemon
    running past midnight dates its letters correctly.
    """

    def __init__(
        self,
        settings: PrintSettings,
        definition: ChannelDefinition,
        *,
        directory: Path,
        today: date | None = None,
    ) -> None:
        self.settings = settings
        self.definition = definition
        self.directory = Path(directory)
        self.today = today
        capabilities = definition.capabilities
        # The address file has six "ligne" columns whatever a definition override says.
        self.max_lines = min(capabilities.address_lines or MAX_LINES, MAX_LINES)
        self.max_length = capabilities.address_line_length or MAX_LENGTH

    async def open(self) -> None:
        await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)

    async def send_batch(self, items: Sequence[Outbound]) -> list[SendResult]:
        if not items:
            return []
        # fpdf2 is synchronous and CPU-bound: keep the event loop (other channels) free.
        return await asyncio.to_thread(self._send_batch, list(items))

    # Runs in a worker thread (see send_batch): plain blocking code from here on.
    def _send_batch(self, items: list[Outbound]) -> list[SendResult]:
        results: list[SendResult | None] = [None] * len(items)
        letters: list[_Letter] = []
        for index, item in enumerate(items):
            lines = tuple(item.recipient.postal_lines)
            problem = address_problem(lines, max_lines=self.max_lines, max_length=self.max_length)
            if problem is None:
                try:
                    where = split_destination(lines)
                except AddressError as exc:
                    problem = str(exc)
            if problem is not None:
                results[index] = SendResult(Outcome.FAILED, detail=problem)
                continue
            letters.append(_Letter(index, item, lines, where.postcode, where.city, where.country))

        if letters:
            when = self.today or date.today()
            bid = batch_id([item.idempotency_key for item in items], datetime.now(UTC))
            letters, pdf, pages = self._render_isolating(letters, results, when, bid)
        if letters:
            try:
                pdf_name, csv_name = self._write(bid, letters, pdf, pages)
            except OSError as exc:
                # Disk full, permissions, folder gone: nothing was published (or only a PDF
                # no address file points to), so it is safe to try again later.
                for letter in letters:
                    results[letter.index] = SendResult(
                        Outcome.DEFERRED, detail=f"cannot write to {self.directory}: {exc}"
                    )
            else:
                for letter, (first, count) in zip(letters, pages, strict=True):
                    results[letter.index] = SendResult.sent(
                        provider_id=f"{pdf_name}#page={first}",
                        detail=f"{count} page(s) in {pdf_name}, address row in {csv_name}",
                        cost=self.definition.cost.per_message,
                    )
        return [r if r is not None else _LOST for r in results]

    def _render_isolating(
        self, letters: list[_Letter], results: list[SendResult | None], when: date, bid: str
    ) -> tuple[list[_Letter], bytes, list[tuple[int, int]]]:
        """Render the batch; if that fails, find the letters at fault and render the rest."""
        title = f"Letters {bid}"
        try:
            pdf, pages = _render(letters, self.settings, when, title)
            return letters, pdf, pages
        except Exception:
            pass  # a failure in one letter must not fail its neighbours: find the culprit
        good: list[_Letter] = []
        for letter in letters:
            try:
                _render([letter], self.settings, when, title)
            except Exception as exc:
                results[letter.index] = SendResult(
                    Outcome.FAILED,
                    detail=f"letter cannot be rendered: {type(exc).__name__}: {exc}",
                )
            else:
                good.append(letter)
        if not good:
            return [], b"", []
        pdf, pages = _render(good, self.settings, when, title)
        return good, pdf, pages

    def _write(
        self, bid: str, letters: Sequence[_Letter], pdf: bytes, pages: Sequence[tuple[int, int]]
    ) -> tuple[str, str]:
        self.directory.mkdir(parents=True, exist_ok=True)
        # The timestamp is to the microsecond, so a clash needs a clock set back (or two
        # processes on the same keys at once); even then an earlier file is never replaced.
        suffix, attempt = "", 1
        while (self.directory / f"letters-{bid}{suffix}.pdf").exists() or (
            self.directory / f"addresses-{bid}{suffix}.csv"
        ).exists():
            attempt += 1
            suffix = f"-{attempt}"
        pdf_name = f"letters-{bid}{suffix}.pdf"
        csv_name = f"addresses-{bid}{suffix}.csv"
        # PDF first: the address file names it, and collectors usually wait for the CSV.
        _publish(self.directory, pdf_name, pdf)
        try:
            _publish(self.directory, csv_name, _csv_bytes(letters, pages, pdf_name))
        except BaseException:
            # The letters will be retried in a new batch: an orphan PDF would be printed twice
            # by a collector that watches PDFs.
            (self.directory / pdf_name).unlink(missing_ok=True)
            raise
        _fsync_directory(self.directory)
        return pdf_name, csv_name


# Never returned in practice: every index gets a result above. Kept so a bug shows up as a
# result the dispatcher will not resend, rather than as a crash that loses the whole batch.
_LOST = SendResult(Outcome.UNKNOWN, detail="internal error: no result recorded for this item")
