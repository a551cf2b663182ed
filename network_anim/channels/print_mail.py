"""Print mailing export: one PDF of letters plus one address file for the mail house, per batch.

The "provider" is a folder the mail house collects from. Each :meth:`PrintTransport.send_batch`
publishes exactly two files, ``letters-<batchid>.pdf`` (one letter per item, each starting
on a new page, laid out by :mod:`network_anim.channels.print_layout`) and
``addresses-<batchid>.csv`` (one row per letter). Both are written to hidden temporary
files and renamed into place, PDF first, so a collector that waits for the CSV never sees
a half-written or missing PDF.

Times come from the engine's clock: the batch id (and so the file names) is the batch's
moment, and each letter is dated the day the batch is handed to the mail house (in the
engine's time zone) plus ``[channels.print] date_offset_days``.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from network_anim.channels.contract import Outbound, SendResult, TransportBase
from network_anim.channels.postal import MAX_LENGTH, MAX_LINES, AddressError, split_destination
from network_anim.channels.print_layout import Letter, render_letters
from network_anim.clock import Clock
from network_anim.config.channel_defs import ChannelDefinition
from network_anim.config.settings import PrintSettings
from network_anim.domain import Outcome

__all__ = [
    "CSV_HEADER",
    "PrintTransport",
    "address_problem",
    "batch_id",
    "letter_day",
    "neutralise_csv_cell",
]

# --- pure helpers -------------------------------------------------------------------------

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def neutralise_csv_cell(value: str) -> str:
    """Prefix ``'`` to a cell a spreadsheet would evaluate as a formula (OWASP CSV injection).

    Full-width ``＝＋－＠`` are included because some spreadsheet locales fold them to
    their ASCII forms before deciding whether a cell is a formula.
    """
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


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


def letter_day(handed_over: datetime, timezone: ZoneInfo, offset_days: int = 0) -> date:
    """The date a letter carries: the local day its batch is handed to the mail house, plus
    the configured lead time (``[channels.print] date_offset_days``)."""
    return handed_over.astimezone(timezone).date() + timedelta(days=offset_days)


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


# --- files --------------------------------------------------------------------------------


def _csv_bytes(letters: Sequence[Letter], pages: Sequence[tuple[int, int]], pdf_name: str) -> bytes:
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

    Implements :class:`network_anim.channels.contract.Transport`. ``clock`` is the
    engine's: each batch reads it once, for its id (the file names) and for the letters'
    date (:func:`letter_day` in ``timezone``), so a simulated run dates each letter on its
    planned day and a daemon running past midnight dates the next batch correctly.
    """

    throttled = False  # the mail house takes the files at its own pace

    def __init__(
        self,
        settings: PrintSettings,
        definition: ChannelDefinition,
        *,
        directory: Path,
        clock: Clock,
        timezone: str = "Europe/Paris",
    ) -> None:
        self.settings = settings
        self.definition = definition
        self.directory = Path(directory)
        self.clock = clock
        self.timezone = ZoneInfo(timezone)
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
        letters: list[Letter] = []
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
            letters.append(Letter(index, item, lines, where.postcode, where.city, where.country))

        if letters:
            now = self.clock.now()
            when = letter_day(now, self.timezone, self.settings.date_offset_days)
            bid = batch_id([item.idempotency_key for item in items], now)
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
        self, letters: list[Letter], results: list[SendResult | None], when: date, bid: str
    ) -> tuple[list[Letter], bytes, list[tuple[int, int]]]:
        """Render the batch; if that fails, find the letters at fault and render the rest."""
        title = f"Letters {bid}"
        try:
            pdf, pages = render_letters(letters, self.settings, when, title)
            return letters, pdf, pages
        except Exception:
            pass  # a failure in one letter must not fail its neighbours: find the culprit
        good: list[Letter] = []
        for letter in letters:
            try:
                render_letters([letter], self.settings, when, title)
            except Exception as exc:
                results[letter.index] = SendResult(
                    Outcome.FAILED,
                    detail=f"letter cannot be rendered: {type(exc).__name__}: {exc}",
                )
            else:
                good.append(letter)
        if not good:
            return [], b"", []
        pdf, pages = render_letters(good, self.settings, when, title)
        return good, pdf, pages

    def _write(
        self, bid: str, letters: Sequence[Letter], pdf: bytes, pages: Sequence[tuple[int, int]]
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
