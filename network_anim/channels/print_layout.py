"""Letter layout: one PDF of A4 letters, each in the window of a DL envelope.

Layout (A4, millimetres, in Source Sans Pro, a Unicode TrueType font under the SIL Open
Font License that the ``font-source-sans-pro`` package ships, so every name of the network
prints: "Łukasz", "Đorđe", Greek, Cyrillic; embedded as a subset in each PDF):
sender block top left; the address block at x=110, y=50, at most 85 mm wide, which is
inside the window of a French DL window envelope (window 100 x 45 mm, 20 mm from the right
and 15 mm from the bottom of a 220 x 110 envelope, letter folded in three);
"Place, le date" below the window and the first fold (99 mm); then "Objet : ...", the
body with automatic page breaks, the signature, and a small reference footer so a letter
returned as undeliverable can be traced to its delivery.

Pure: bytes out, no files. The export to the mail house (the transport) is
:mod:`network_anim.channels.print_mail`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from io import BytesIO

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from network_anim.channels.contract import Outbound
from network_anim.config.settings import PrintSettings

__all__ = ["FONT_FILES", "Letter", "letter_date", "pdf_text", "printable", "render_letters"]

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


# The letters' font: a regular and a bold face (the sender's first line, the subject),
# read from the package that ships them, never from the machine's fonts nor the network.
FONT = "SourceSans"
FONT_FILES = {"": "SourceSansPro-Regular.ttf", "B": "SourceSansPro-Bold.ttf"}
_FONT_PACKAGE = "font_source_sans_pro"


def _font_file(style: str) -> Traversable:
    return files(_FONT_PACKAGE).joinpath("files", FONT_FILES[style])


@cache
def _font_characters() -> frozenset[int]:
    """The code points both faces draw: what a letter can print as written."""
    from fontTools.ttLib import TTFont  # fpdf2's own dependency, read once per process

    faces = [set(TTFont(BytesIO(_font_file(s).read_bytes())).getBestCmap()) for s in FONT_FILES]
    return frozenset(set.intersection(*faces))


# Typographic variants are normalised to the common form (spaces, dashes, arrows), so the
# text reads and searches the same whatever the template author typed; a character the
# font lacks is then folded to its nearest look-alike, and anything else is dropped or
# becomes "?" (see pdf_text), never a missing-glyph box.
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
    """Make ``text`` printable with the letters' font, keeping French typography intact."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = text.translate(_PDF_LOOKALIKES)
    out: list[str] = []
    for ch in text:
        if ch == "\n":
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cf") and ch != "\u00ad":
            continue  # invisible controls would print as boxes; the soft hyphen is meaningful
        elif printable(ch):
            out.append(ch)
        else:
            # Compatibility forms first ("ﬁ" -> "fi", "①" -> "1"), then the bare letter.
            folded = unicodedata.normalize("NFKD", ch)
            folded = "".join(c for c in folded if not unicodedata.combining(c))
            if folded and all(printable(c) for c in folded):
                out.append(folded)
            elif unicodedata.category(ch) != "So":
                # Emoji and pictographs are decoration: dropped. A letter we cannot print
                # shows as "?" so the loss is visible on proof-reading.
                out.append("?")
    return "".join(out)


def printable(ch: str) -> bool:
    """Whether the letters' font draws ``ch`` (regular and bold alike)."""
    return ord(ch) in _font_characters()


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
class Letter:
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
        for style in FONT_FILES:
            with as_file(_font_file(style)) as path:  # a real file even from a zipped install
                self.add_font(FONT, style, path)
        # No inner cell padding: text starts exactly at the x we give (address at 110 mm).
        self.c_margin = 0
        self._widths: dict[tuple[str, float, str], float] = {}
        self.letter_reference = ""
        self.letter_first_page = 1

    def measure(self, text: str) -> float:
        """``get_string_width`` remembered per font and size: the letters of a batch
        share their words, and fpdf2's own measure costs far more than the lookup."""
        key = (self.font_family + self.font_style, self.font_size_pt, text)
        width = self._widths.get(key)
        if width is None:
            width = self._widths[key] = self.get_string_width(text)
        return width

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, size=FOOTER_SIZE)
        self.set_text_color(110)
        page = self.page_no() - self.letter_first_page + 1
        self.cell(0, 4, pdf_text(f"Réf. {self.letter_reference} - page {page}"), align="R")
        self.set_text_color(0)


def render_letters(
    letters: Sequence[Letter], settings: PrintSettings, when: date, title: str
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


def _draw_letter(pdf: _LetterPDF, letter: Letter, settings: PrintSettings, when: date) -> None:
    # Sender, top left; its first line (the organisation) in bold.
    pdf.set_xy(PAGE_MARGIN, TOP_MARGIN)
    for number, line in enumerate(settings.sender_lines):
        pdf.set_font(FONT, "B" if number == 0 else "", SENDER_SIZE)
        pdf.cell(85, SENDER_SIZE * PT * 1.3, pdf_text(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    _draw_address(pdf, [pdf_text(line) for line in letter.lines])

    pdf.set_font(FONT, "", BODY_SIZE)
    pdf.set_xy(ADDRESS_X, DATE_Y)
    pdf.cell(ADDRESS_WIDTH, BODY_LINE, pdf_text(letter_date(when, settings.place)))

    pdf.set_xy(PAGE_MARGIN, SUBJECT_Y)
    subject = " ".join(letter.item.subject.split())
    if subject:
        pdf.set_font(FONT, "B", BODY_SIZE)
        pdf.multi_cell(0, BODY_LINE, pdf_text(f"Objet : {subject}"))
        pdf.ln(BODY_LINE)

    pdf.set_font(FONT, "", BODY_SIZE)
    # A blank line separates paragraphs; a single line break inside one is kept as is.
    for paragraph in re.split(r"\n\s*\n", pdf_text(letter.item.text)):
        paragraph = paragraph.strip("\n ")
        if paragraph:
            for line in _wrapped(pdf, paragraph, pdf.epw):
                pdf.cell(0, BODY_LINE, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(BODY_LINE * 0.6)

    if settings.signature.strip():
        pdf.ln(BODY_LINE * 1.5)
        pdf.set_x(ADDRESS_X)
        pdf.multi_cell(ADDRESS_WIDTH, BODY_LINE, pdf_text(settings.signature))


def _wrapped(pdf: _LetterPDF, paragraph: str, width: float) -> list[str]:
    """The paragraph's lines, left-aligned, each at most ``width`` mm in the current font.

    Our own greedy wrap instead of ``multi_cell``: fpdf2 measures the whole line again for
    each character it adds (quadratic in the line's length), which made letters the
    slowest part of a broadcast (17 ms each). Words are measured once. Breaks fall on
    spaces (never on a no-break space), on a soft hyphen when the word does not fit
    (printed as "-"), and inside a word only when it is wider than a whole line.
    """
    measure = pdf.measure
    space = measure(" ")
    lines: list[str] = []
    for text_line in paragraph.split("\n"):
        current: list[str] = []
        used = 0.0
        for word in text_line.split(" "):
            shown = word.replace(SOFT_HYPHEN, "")
            size = measure(shown)
            gap = space if current else 0.0
            if used + gap + size <= width:
                current.append(shown)
                used += gap + size
                continue
            head, tail = _hyphenated(word, width - used - gap, measure)
            if head:
                current.append(head)
            if current:
                lines.append(" ".join(current))
            for piece in _cut(tail, width, measure)[:-1]:
                lines.append(piece)
            last = _cut(tail, width, measure)[-1]
            current, used = ([last], measure(last)) if last else ([], 0.0)
        lines.append(" ".join(current))
    return lines


SOFT_HYPHEN = "\u00ad"


def _hyphenated(word: str, room: float, measure: Callable[[str], float]) -> tuple[str, str]:
    """The longest part of ``word`` up to a soft hyphen that fits ``room`` with its "-",
    and the rest (without soft hyphens); ("", the word) when none fits."""
    parts = word.split(SOFT_HYPHEN)
    for cut in range(len(parts) - 1, 0, -1):
        head = "".join(parts[:cut]) + "-"
        if measure(head) <= room:
            return head, "".join(parts[cut:])
    return "", "".join(parts)


def _cut(word: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """``word`` in pieces of at most ``width`` (one piece when it fits, as is mostly)."""
    pieces: list[str] = []
    while word and measure(word) > width:
        end = len(word) - 1
        while end > 1 and measure(word[:end]) > width:
            end -= 1
        pieces.append(word[:end])
        word = word[end:]
    pieces.append(word)
    return pieces


def _draw_address(pdf: _LetterPDF, lines: Sequence[str]) -> None:
    """The block in the window, shrunk (never clipped) so its widest line fits 85 mm.

    38 capitals at 10 pt can reach 105 mm ("W" x 38): the whole block goes down to 8 pt
    together (a uniform look), and a line still too wide at 8 pt is condensed horizontally.
    """
    pdf.set_font(FONT, "", ADDRESS_SIZE)
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
