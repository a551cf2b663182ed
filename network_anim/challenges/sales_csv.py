"""Read and validate a sales declarations CSV file, all or nothing.

One row per invoice line declared by a seller::

    invoice_ref;contact_id;sku;quantity;amount;sold_at;company_id
    F2027-0001;C0002;PBX-S40;2;2450.00;2027-01-12;D001

``amount`` is the line total in EUR excluding VAT; ``sold_at`` is an ISO date or date-time
(without an offset it is in the config's [engine] time zone); ``company_id`` is optional and,
when given, must be the company of the declaring contact. An invoice reference is unique per
company: in the file and against the sales already recorded.

Every bad line is reported with its number and reason; nothing is returned unless the whole
file is clean. What the file is checked against (contacts, products, recorded invoices, the
clock, the challenge period) comes in a :class:`SalesContext`, so parsing stays pure.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from network_anim.errors import UserError
from network_anim.gc_pause import collector_paused
from network_anim.network.csv_input import formula_problem, open_rows, read_text

REQUIRED_COLUMNS = ("invoice_ref", "contact_id", "sku", "quantity", "amount", "sold_at")
OPTIONAL_COLUMNS = ("company_id",)
ALL_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
_NUMERIC_COLUMNS = frozenset({"quantity", "amount"})
_MAX_LENGTH = {"invoice_ref": 80, "contact_id": 64, "company_id": 64, "sku": 64}
_DEFAULT_MAX_LENGTH = 40
# A plain number: digits, spaces (or no-break spaces) between thousands, one decimal
# separator ("." or the French ","), an optional sign that the range check then refuses.
_NUMBER = re.compile(r"^[+-]?\d{1,3}(?:[ \u00a0\u202f]?\d{3})*(?:[.,]\d+)?$|^[+-]?\d+(?:[.,]\d+)?$")
# An amount above this many times quantity x unit price, or below this share of it, is absurd.
ABSURD_HIGH = 10.0
ABSURD_LOW = 0.01


@dataclass(frozen=True, slots=True)
class SaleRecord:
    line: int
    invoice_ref: str
    contact_external_id: str
    company_external_id: str
    sku: str
    quantity: float
    amount: float  # EUR, excluding VAT
    sold_at: datetime  # timezone-aware UTC


@dataclass(frozen=True, slots=True)
class ChallengePeriod:
    """Sales must be dated within [start, end], whole days in the engine time zone."""

    key: str
    start: date
    end: date


ContactLookup = Callable[[Collection[str]], Mapping[str, str]]
InvoiceLookup = Callable[[Collection[tuple[str, str]]], Mapping[tuple[str, str], str]]


@dataclass(frozen=True, slots=True)
class SalesContext:
    """What a sales file is checked against.

    ``contacts`` maps the contact external ids it is given to their company's external id
    (unknown ones are left out); ``recorded`` maps the (company external id, invoice_ref)
    pairs it is given that are already recorded to a description of that sale.
    ``products`` maps every known SKU to its reference unit price (0: no price check).
    """

    now: datetime
    timezone: str
    products: Mapping[str, float]
    contacts: ContactLookup
    recorded: InvoiceLookup
    period: ChallengePeriod | None = None


class _LineProblems(Exception):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems


def read_sales_csv(path: Path, context: SalesContext) -> list[SaleRecord]:
    return parse_sales_csv(read_text(path), source=str(path), context=context)


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    invoice_ref: str
    contact_id: str
    company_id: str
    sku: str
    quantity: float
    amount: float
    sold_at: datetime


@collector_paused()
def parse_sales_csv(text: str, *, source: str, context: SalesContext) -> list[SaleRecord]:
    reader, header = open_rows(
        text,
        source=source,
        known=ALL_COLUMNS,
        required=REQUIRED_COLUMNS,
        hint=f"the columns are {', '.join(ALL_COLUMNS)}",
    )
    zone = ZoneInfo(context.timezone)

    problems: list[tuple[int, str]] = []
    rows: list[_Row] = []
    line = reader.line_num
    for raw_row in reader:
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in raw_row):
            continue
        if len(raw_row) != len(header):
            problems.append((start, f"{len(raw_row)} cells, the header has {len(header)}"))
            continue
        cells = dict(zip(header, raw_row, strict=True))
        try:
            rows.append(_parse_row(cells, start, context, zone))
        except _LineProblems as exc:
            problems.extend((start, p) for p in exc.problems)

    records = _cross_check(rows, context, problems)
    if problems:
        problems.sort(key=lambda p: p[0])  # stable: a line's problems keep their order
        raise UserError(
            f"{source}: {len({n for n, _ in problems})} bad line(s); nothing was imported",
            [f"line {n}: {p}" for n, p in problems],
        )
    if not records:
        raise UserError(f"{source}: no sale rows under the header")
    return records


def _parse_row(raw: dict[str, str], line: int, context: SalesContext, zone: ZoneInfo) -> _Row:
    problems: list[str] = []
    cells: dict[str, str] = {}
    for name, value in raw.items():
        stripped = value.strip()
        cells[name] = stripped
        formula = formula_problem(name, value.lstrip(" "))
        if formula and not (name in _NUMERIC_COLUMNS and _NUMBER.match(stripped)):
            problems.append(formula)
            cells[name] = ""  # reported once, not again as empty or malformed
            continue
        limit = _MAX_LENGTH.get(name, _DEFAULT_MAX_LENGTH)
        if len(stripped) > limit:
            problems.append(f"{name} is {len(stripped)} characters; at most {limit}")
    for name in REQUIRED_COLUMNS:
        if not cells.get(name) and not any(p.startswith(f"{name} ") for p in problems):
            problems.append(f"{name} is empty; it is required")

    sku = cells.get("sku", "")
    if sku and sku not in context.products:
        problems.append(_unknown_sku(sku, context.products))
    quantity = _positive(cells.get("quantity", ""), "quantity", problems)
    amount = _positive(cells.get("amount", ""), "amount", problems)
    if quantity is not None and amount is not None and sku in context.products:
        problem = _absurd_amount(amount, quantity, context.products[sku])
        if problem:
            problems.append(problem)
    sold_at = _sold_at(cells.get("sold_at", ""), zone, context, problems)
    if problems:
        raise _LineProblems(problems)
    assert quantity is not None and amount is not None and sold_at is not None
    return _Row(
        line=line,
        invoice_ref=cells["invoice_ref"],
        contact_id=cells["contact_id"],
        company_id=cells.get("company_id", ""),
        sku=sku,
        quantity=quantity,
        amount=amount,
        sold_at=sold_at,
    )


def _cross_check(
    rows: list[_Row], context: SalesContext, problems: list[tuple[int, str]]
) -> list[SaleRecord]:
    """What needs the whole file or the database: contacts, companies, duplicate invoices."""
    companies = context.contacts(sorted({r.contact_id for r in rows}))
    candidates: list[tuple[_Row, str]] = []
    for row in rows:
        company = companies.get(row.contact_id)
        if company is None:
            problems.append(
                (
                    row.line,
                    f"contact_id {row.contact_id} is not in the network "
                    "(import it first with: netanim import network)",
                )
            )
        elif row.company_id and row.company_id != company:
            problems.append(
                (
                    row.line,
                    f"company_id {row.company_id} is not the company of contact "
                    f"{row.contact_id} ({company}); correct it or leave the cell empty",
                )
            )
        else:
            candidates.append((row, company))

    recorded = context.recorded(sorted({(c, r.invoice_ref) for r, c in candidates}))
    seen: dict[tuple[str, str], int] = {}
    records: list[SaleRecord] = []
    for row, company in candidates:
        key = (company, row.invoice_ref)
        if key in recorded:
            problems.append(
                (
                    row.line,
                    f"invoice_ref {row.invoice_ref} of company {company} is already recorded "
                    f"({recorded[key]}); a sale is declared once",
                )
            )
            continue
        if key in seen:
            problems.append(
                (
                    row.line,
                    f"invoice_ref {row.invoice_ref} of company {company} already on line "
                    f"{seen[key]}; one row per invoice",
                )
            )
            continue
        seen[key] = row.line
        records.append(
            SaleRecord(
                line=row.line,
                invoice_ref=row.invoice_ref,
                contact_external_id=row.contact_id,
                company_external_id=company,
                sku=row.sku,
                quantity=row.quantity,
                amount=row.amount,
                sold_at=row.sold_at,
            )
        )
    return records


def _unknown_sku(sku: str, products: Mapping[str, float]) -> str:
    close = difflib.get_close_matches(sku.upper(), [p.upper() for p in products], n=3, cutoff=0.6)
    by_upper = {p.upper(): p for p in products}
    if close:
        hint = f"did you mean {', '.join(by_upper[c] for c in close)}?"
    elif len(products) <= 12:
        hint = f"known SKUs: {', '.join(sorted(products)) or 'none'}"
    else:
        hint = "see [[products]] in the config"
    return f"sku {sku!r} is not a known product ({hint})"


def parse_number(value: str) -> float | None:
    """A plain decimal number, "." or "," as separator, spaces between thousands."""
    if not _NUMBER.match(value):
        return None
    number = float(re.sub(r"[ \u00a0\u202f]", "", value).replace(",", "."))
    return number if math.isfinite(number) else None


def _positive(value: str, column: str, problems: list[str]) -> float | None:
    if not value:
        return None
    number = parse_number(value)
    if number is None:
        problems.append(f"{column} {value!r} is not a number (write it like 12 or 1250.50)")
        return None
    if number <= 0:
        problems.append(f"{column} {value} is not positive; it must be more than 0")
        return None
    return number


def _absurd_amount(amount: float, quantity: float, unit_price: float) -> str | None:
    if unit_price <= 0:
        return None
    expected = quantity * unit_price
    if amount > ABSURD_HIGH * expected:
        return (
            f"amount {amount:.2f} is too high: more than {ABSURD_HIGH:g} x quantity x unit price "
            f"({quantity:g} x {unit_price:.2f} = {expected:.2f} EUR); check it is in EUR "
            "excluding VAT (not cents) and the quantity"
        )
    if amount < ABSURD_LOW * expected:
        return (
            f"amount {amount:.2f} is too low: less than 1 % of quantity x unit price "
            f"({quantity:g} x {unit_price:.2f} = {expected:.2f} EUR); the amount is the line "
            "total in EUR (not thousands), check it and the quantity"
        )
    return None


def _sold_at(
    value: str, zone: ZoneInfo, context: SalesContext, problems: list[str]
) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        problems.append(
            f"sold_at {value!r} is not an ISO date or date-time "
            "(write 2027-01-15 or 2027-01-15T14:30)"
        )
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    moment = moment.astimezone(UTC)
    if moment > context.now:
        now_local = context.now.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        problems.append(
            f"sold_at {value} is in the future (now is {now_local} {context.timezone}); "
            "declare a sale once it is made"
        )
        return None
    period = context.period
    if period is not None:
        day = moment.astimezone(zone).date()
        if not period.start <= day <= period.end:
            problems.append(
                f"sold_at {value} is outside challenge {period.key} "
                f"({period.start.isoformat()} to {period.end.isoformat()}); correct the date, "
                "or import it without --challenge"
            )
            return None
    return moment
