"""The print-mailing adapter: real PDFs checked with poppler, real CSVs read back."""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
import subprocess
import tomllib
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from network_anim.channels.contract import Outbound, Recipient, Transport
from network_anim.channels.postal import PostalAddress, address_block, person_line
from network_anim.channels.print_layout import letter_date, pdf_text, printable
from network_anim.channels.print_mail import (
    CSV_HEADER,
    PrintTransport,
    address_problem,
    neutralise_csv_cell,
)
from network_anim.clock import SimulatedClock
from network_anim.config.channel_defs import ChannelDefinition
from network_anim.config.settings import PrintSettings
from network_anim.domain import Outcome

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 25)
# The engine clock when the batches are exported: 11:00 in Paris on TODAY.
CLOCK = SimulatedClock(datetime(2026, 11, 25, 10, 0, tzinfo=UTC))


@pytest.fixture(scope="module")
def definition() -> ChannelDefinition:
    data = tomllib.loads((ROOT / "channels" / "print.toml").read_text(encoding="utf-8"))
    return ChannelDefinition.model_validate(data)


@pytest.fixture(scope="module")
def poppler() -> None:
    missing = [tool for tool in ("pdftoppm", "pdftotext") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: the PDF checks need poppler; "
            "run `apt-get install poppler-utils`"
        )


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60)


def _outbound(n: int, lines: Sequence[str], *, subject: str = "", text: str = "") -> Outbound:
    return Outbound(
        delivery_id=n,
        idempotency_key=f"c1:s1:o1:k{n}",
        channel="print",
        recipient=Recipient(
            contact_id=n,
            external_id=f"C{n}",
            display_name=f"Contact {n}",
            postal_lines=tuple(lines),
        ),
        subject=subject,
        text=text,
    )


COMPANY_BLOCK = address_block(
    PostalAddress(
        company="Société Dupont & Fils",
        recipient=person_line("M.", "Jean", "Dupont"),
        delivery_point="Service achats",
        building="ZI de la Ballastière",
        street="12, av. des Champs-Élysées",
        locality="B.P. 40",
        postcode="33501",
        city="Libourne Cedex",
    )
)
ABROAD_BLOCK = address_block(
    PostalAddress(
        recipient="Mme Lise PEETERS", street="Rue de la Loi 16", postcode="1000",
        city="Bruxelles", country="BE",
    )
)  # fmt: skip
HOSTILE_BLOCK = ('=HYPERLINK("http://x")', "+33 cmd", "@SUM(A1)", "75001 PARIS")

FRENCH_BODY = (
    "Madame, Monsieur,\n\n"
    "L’été arrive : nous lançons le challenge « Printemps » — doté de 5 000 € de lots… "
    "“À vous de jouer”, cœur à l’ouvrage ! Œuvre\u202fcollective ; ½ tarif ; ﬁn ; 🎉.\n\n"
    "Bien cordialement,"
)
LONG_BODY = "\n\n".join(
    f"Paragraphe {i} : " + "les résultats du réseau progressent chaque mois " * 12
    for i in range(1, 31)
)


def _read_csv(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM missing: Excel would garble accents"
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=";")
        assert tuple(reader.fieldnames or ()) == CSV_HEADER
        return list(reader)


def _only(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    assert len(found) == 1, found
    return found[0]


# --- pure helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+33 cmd", "'+33 cmd"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("＝1+1", "'＝1+1"),
        ("M. Jean DUPONT", "M. Jean DUPONT"),
        ("75001", "75001"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_neutralise_csv_cell(cell: str, expected: str) -> None:
    assert neutralise_csv_cell(cell) == expected


def test_letter_date_is_french_without_locale() -> None:
    assert letter_date(TODAY, "Paris") == "Paris, le 25 novembre 2026"
    assert letter_date(date(2026, 8, 1), "Lyon") == "Lyon, le 1er août 2026"
    assert letter_date(date(2027, 2, 3), "  ") == "Le 3 février 2027"


def test_pdf_text_keeps_french_typography_and_never_crashes() -> None:
    text = "L’été “ok” ‘x’ – — … œ Œ € « » a\u00a0b"
    assert pdf_text(text) == text  # the letters' font has all of these: kept
    assert pdf_text("3\u202f%") == "3\u00a0%"  # narrow NBSP -> NBSP
    assert pdf_text("ﬁn ① x\u2212y 🎉\x00\x07") == "ﬁn 1 x-y "  # emoji dropped
    assert pdf_text("Łukasz Đorđe Ωmega Жанна 北京") == "Łukasz Đorđe Ωmega Жанна ??"
    assert pdf_text("a\r\nb\tc") == "a\nb    c"


@given(st.text())
def test_pdf_text_output_is_always_in_the_letters_font(text: str) -> None:
    assert all(ch == "\n" or printable(ch) for ch in pdf_text(text))


def test_address_problem() -> None:
    assert address_problem(COMPANY_BLOCK, max_lines=6, max_length=38) is None
    assert "no postal address" in (address_problem((), max_lines=6, max_length=38) or "")
    seven = address_problem(tuple("abcdefg"), max_lines=6, max_length=38) or ""
    assert "7 lines; at most 6" in seven
    long = address_problem(("x" * 39, "75001 PARIS"), max_lines=6, max_length=38) or ""
    assert "39 characters; at most 38" in long
    blank = address_problem(("A", " ", "75001 PARIS"), max_lines=6, max_length=38) or ""
    assert "line 2 is blank" in blank


# --- the transport ------------------------------------------------------------------------


async def test_batch_of_three_letters(
    tmp_path: Path, definition: ChannelDefinition, poppler: None
) -> None:
    items = [
        _outbound(1, COMPANY_BLOCK, subject="Lancement du challenge", text=FRENCH_BODY),
        _outbound(2, ABROAD_BLOCK, subject="Résultats du trimestre", text=LONG_BODY),
        _outbound(3, HOSTILE_BLOCK, subject="Invitation", text="Bonjour,\n\nÀ bientôt."),
    ]
    transport: Transport = PrintTransport(
        PrintSettings(), definition, directory=tmp_path / "print", clock=CLOCK
    )
    async with transport as sender:
        results = await sender.send_batch(items)

    assert [r.outcome for r in results] == [Outcome.SENT] * 3, results
    pdf = _only(tmp_path / "print", "letters-*.pdf")
    csv_path = _only(tmp_path / "print", "addresses-*.csv")
    assert re.fullmatch(r"letters-\d{8}T\d{12}Z-[0-9a-f]{8}\.pdf", pdf.name)
    assert csv_path.name == pdf.name.replace("letters-", "addresses-").replace(".pdf", ".csv")
    assert not list((tmp_path / "print").glob(".*")), "temporary file left behind"
    assert all(r.cost == definition.cost.per_message for r in results)

    rows = _read_csv(csv_path)
    assert [row["reference"] for row in rows] == [item.idempotency_key for item in items]
    pages = [int(row["pages"]) for row in rows]
    assert pages[0] == 1 and pages[1] >= 2 and pages[2] == 1
    first_pages = [1, 1 + pages[0], 1 + pages[0] + pages[1]]
    assert [r.provider_id for r in results] == [f"{pdf.name}#page={p}" for p in first_pages]
    assert all(row["fichier_pdf"] == pdf.name for row in rows)

    assert [rows[0][f"ligne{i}"] for i in range(1, 7)] == list(COMPANY_BLOCK)
    assert (rows[0]["code_postal"], rows[0]["ville"], rows[0]["pays"]) == (
        "33501", "LIBOURNE CEDEX", "FR",
    )  # fmt: skip
    assert (rows[1]["code_postal"], rows[1]["ville"], rows[1]["pays"]) == (
        "1000", "BRUXELLES", "BE",
    )  # fmt: skip
    assert rows[1]["ligne5"] == rows[1]["ligne6"] == ""
    # Spreadsheet formulas arrive as inert text.
    assert rows[2]["ligne1"] == '\'=HYPERLINK("http://x")'
    assert rows[2]["ligne2"] == "'+33 cmd"
    assert rows[2]["ligne3"] == "'@SUM(A1)"
    for row in rows:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row.values())

    # The PDF renders, page count matches the CSV...
    out = tmp_path / "png"
    out.mkdir()
    rendered = _run("pdftoppm", "-png", "-r", "50", pdf, out / "page")
    assert rendered.returncode == 0, rendered.stderr
    assert len(list(out.glob("page-*.png"))) == sum(pages)
    # ...and holds every address line, the subject and the French characters.
    text = _run("pdftotext", "-layout", pdf, "-")
    assert text.returncode == 0, text.stderr
    for line in (*COMPANY_BLOCK, *ABROAD_BLOCK, *HOSTILE_BLOCK):
        assert line in text.stdout, line
    for subject in ("Lancement du challenge", "Résultats du trimestre", "Invitation"):
        assert f"Objet : {subject}" in text.stdout
    assert "Paris, le 25 novembre 2026" in text.stdout
    # (Short fragments: the body wraps, and pdftotext keeps the line breaks.)
    for fragment in ("L’été", "— doté de 5 000 € de lots…", "“À vous", "jouer”", "cœur", "Œuvre"):
        assert fragment in text.stdout, fragment
    assert "Paragraphe 30" in text.stdout


async def test_names_in_every_script_print_as_written(
    tmp_path: Path, definition: ChannelDefinition, poppler: None
) -> None:
    # Names of a European network: Polish, Serbo-Croatian, Czech, Greek, Cyrillic.
    block = ("M. Łukasz Wąsowski", "Đorđe Đurić - Řezníček", "Σοφία Παπαδοπούλου", "75001 PARIS")
    body = "Bonjour Łukasz, Đorđe et Жанна : vos points sont crédités."
    async with PrintTransport(
        PrintSettings(), definition, directory=tmp_path, clock=CLOCK
    ) as transport:
        [result] = await transport.send_batch([_outbound(1, block, subject="Łódź", text=body)])
    assert result.outcome is Outcome.SENT
    text = _run("pdftotext", _only(tmp_path, "letters-*.pdf"), "-").stdout
    for words in (*block, "Objet : Łódź", "Łukasz, Đorđe et Жанна"):
        assert words in text, words
    assert "?" not in text


async def test_address_sits_in_the_envelope_window(
    tmp_path: Path, definition: ChannelDefinition, poppler: None
) -> None:
    # The widest possible capitals: the block must shrink or condense, never spill over.
    block = ("W" * 38, "M" * 38, "75001 PARIS")
    async with PrintTransport(
        PrintSettings(), definition, directory=tmp_path, clock=CLOCK
    ) as transport:
        [result] = await transport.send_batch([_outbound(1, block, subject="S", text="T")])
    assert result.outcome is Outcome.SENT
    html = _run("pdftotext", "-bbox", _only(tmp_path, "letters-*.pdf"), "-").stdout
    mm = 25.4 / 72
    boxes = {
        word: (float(x0) * mm, float(y0) * mm, float(x1) * mm, float(y1) * mm)
        for x0, y0, x1, y1, word in re.findall(
            r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<', html
        )
    }
    for word in (block[0], block[1], "75001", "PARIS"):
        x0, y0, x1, y1 = boxes[word]
        # DL window: about 100-200 mm across, 45-95 mm down once the letter is folded.
        assert 105 <= x0 < x1 <= 196, (word, x0, x1)
        assert 45 <= y0 < y1 <= 90, (word, y0, y1)


async def test_bad_address_fails_alone(tmp_path: Path, definition: ChannelDefinition) -> None:
    seven = ("A", "B", "C", "D", "E", "F", "75001 PARIS")
    too_long = ("M. Jean DUPONT", "145 avenue du Général de Gaulle prolongée", "75008 PARIS")
    no_postcode = ("M. Jean DUPONT", "1 rue A", "PARIS")
    items = [
        _outbound(1, COMPANY_BLOCK, subject="A", text="a"),
        _outbound(2, seven, subject="B", text="b"),
        _outbound(3, too_long, subject="C", text="c"),
        _outbound(4, (), subject="D", text="d"),
        _outbound(5, no_postcode, subject="E", text="e"),
        _outbound(6, ABROAD_BLOCK, subject="F", text="f"),
    ]
    async with PrintTransport(
        PrintSettings(), definition, directory=tmp_path, clock=CLOCK
    ) as transport:
        results = await transport.send_batch(items)

    assert [r.outcome for r in results] == [
        Outcome.SENT, Outcome.FAILED, Outcome.FAILED, Outcome.FAILED, Outcome.FAILED,
        Outcome.SENT,
    ]  # fmt: skip
    assert "7 lines; at most 6" in results[1].detail
    assert "41 characters; at most 38" in results[2].detail
    assert "no postal address" in results[3].detail
    assert "not a postcode and city" in results[4].detail
    assert all(r.provider_id is None and r.cost is None for r in results[1:5])
    rows = _read_csv(_only(tmp_path, "addresses-*.csv"))
    assert [row["reference"] for row in rows] == ["c1:s1:o1:k1", "c1:s1:o1:k6"]
    assert results[5].provider_id is not None and results[5].provider_id.endswith("#page=2")


async def test_all_failed_or_empty_batch_writes_nothing(
    tmp_path: Path, definition: ChannelDefinition
) -> None:
    async with PrintTransport(
        PrintSettings(), definition, directory=tmp_path, clock=CLOCK
    ) as transport:
        assert await transport.send_batch([]) == []
        [result] = await transport.send_batch([_outbound(1, ())])
    assert result.outcome is Outcome.FAILED
    assert list(tmp_path.iterdir()) == []


async def test_repeated_batches_write_new_files_and_keep_old_ones(
    tmp_path: Path, definition: ChannelDefinition
) -> None:
    item = _outbound(1, COMPANY_BLOCK, subject="Relance", text="Texte")
    async with PrintTransport(
        PrintSettings(), definition, directory=tmp_path, clock=CLOCK
    ) as transport:
        first = await transport.send_batch([item])
        before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
        # Same keys, same second: the names still differ and nothing is overwritten.
        second = await transport.send_batch([item])
        third = await transport.send_batch([item])
    assert len(before) == 2
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 6
    ids = {first[0].provider_id, second[0].provider_id, third[0].provider_id}
    assert len(ids) == 3
    for name, digest in before.items():
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digest
    for path in tmp_path.glob("addresses-*.csv"):
        assert len(_read_csv(path)) == 1


async def test_unwritable_folder_defers_the_batch(
    tmp_path: Path, definition: ChannelDefinition
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    transport = PrintTransport(PrintSettings(), definition, directory=blocker, clock=CLOCK)
    results = await transport.send_batch(
        [_outbound(1, COMPANY_BLOCK, text="a"), _outbound(2, ()), _outbound(3, ABROAD_BLOCK)]
    )
    assert [r.outcome for r in results] == [Outcome.DEFERRED, Outcome.FAILED, Outcome.DEFERRED]
    assert "cannot write to" in results[0].detail
    assert blocker.read_text() == "a file where the output folder should be"


async def test_letters_are_dated_the_day_their_batch_is_handed_over_by_the_engine_clock(
    tmp_path: Path, definition: ChannelDefinition
) -> None:
    """Simulated months: each batch's date line and file names are its own moment's, in
    the engine's time zone (23:30 UTC on 31 December is already 1 January in Paris), plus
    the configured lead time."""
    clock = SimulatedClock(datetime(2027, 3, 15, 6, 0, tzinfo=UTC))
    offset = PrintSettings(date_offset_days=2)
    async with (
        PrintTransport(PrintSettings(), definition, directory=tmp_path / "a", clock=clock) as plain,
        PrintTransport(offset, definition, directory=tmp_path / "b", clock=clock) as later,
    ):
        await plain.send_batch([_outbound(1, COMPANY_BLOCK, text="Mars")])
        await later.send_batch([_outbound(1, COMPANY_BLOCK, text="Mars")])
        clock.set(datetime(2027, 12, 31, 23, 30, tzinfo=UTC))
        await plain.send_batch([_outbound(2, COMPANY_BLOCK, text="Nouvel an")])

    march, new_year = sorted((tmp_path / "a").glob("letters-*.pdf"))
    assert march.name.startswith("letters-20270315T060000000000Z-")
    assert new_year.name.startswith("letters-20271231T233000000000Z-")
    assert "Paris, le 15 mars 2027" in _run("pdftotext", march, "-").stdout
    assert "Paris, le 1er janvier 2028" in _run("pdftotext", new_year, "-").stdout
    (lead,) = (tmp_path / "b").glob("letters-*.pdf")
    assert "Paris, le 17 mars 2027" in _run("pdftotext", lead, "-").stdout


@pytest.mark.parametrize("value", ["-1", "31", '"two"'])
def test_date_offset_out_of_range_is_a_user_error_naming_the_key(
    tmp_path: Path, value: str
) -> None:
    from network_anim.config.loading import load_config
    from network_anim.errors import UserError

    path = tmp_path / "netanim.toml"
    path.write_text(f"[channels.print]\ndate_offset_days = {value}\n", encoding="utf-8")
    with pytest.raises(UserError) as raised:
        load_config(path)
    assert "channels.print.date_offset_days" in str(raised.value)
    assert str(path) in str(raised.value) or path.name in str(raised.value)


def _body_pdf():  # type: ignore[no-untyped-def]
    from network_anim.channels.print_layout import BODY_SIZE, FONT, _LetterPDF

    pdf = _LetterPDF()
    pdf.add_page()
    pdf.set_font(FONT, "", BODY_SIZE)
    return pdf


@given(st.lists(st.text(alphabet="aéW Łж\u00a0\u00ad-", min_size=1, max_size=40), max_size=30))
def test_body_lines_fit_the_page_and_keep_every_character(words: list[str]) -> None:
    from network_anim.channels.print_layout import _wrapped

    pdf = _body_pdf()
    paragraph = " ".join(words)
    lines = _wrapped(pdf, paragraph, pdf.epw)
    assert all(pdf.get_string_width(line) <= pdf.epw + 1e-6 for line in lines)
    # Only spaces at breaks and soft hyphens go; a "-" printed at a soft-hyphen break.
    printed = "".join(lines).replace("-", "").replace(" ", "")
    assert printed == paragraph.replace("\u00ad", "").replace("-", "").replace(" ", "")


def test_body_breaks_on_spaces_and_soft_hyphens_never_on_a_no_break_space() -> None:
    from network_anim.channels.print_layout import _wrapped

    pdf = _body_pdf()
    width = pdf.get_string_width("Bonjour Camille, vos")
    assert _wrapped(pdf, "Bonjour Camille, vos points", width) == ["Bonjour Camille, vos", "points"]
    narrow = pdf.get_string_width("1\u00a0200\u00a0points")
    assert _wrapped(pdf, "vos 1\u00a0200\u00a0points", narrow) == [
        "vos",
        "1\u00a0200\u00a0points",
    ]
    hyphen = _wrapped(pdf, "Le chal\u00adlenge", pdf.get_string_width("Le chal-"))
    assert hyphen == ["Le chal-", "lenge"]
    assert _wrapped(pdf, "ligne\nsuivante", pdf.epw) == ["ligne", "suivante"]
