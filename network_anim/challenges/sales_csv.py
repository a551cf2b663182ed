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
clock, the challenge period) comes in a :class:`SalesContext`, so parsing stays pure; the
rules themselves, shared with the portal's declaration form, are in
:mod:`network_anim.challenges.sales_rules`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from network_anim.challenges.sales_rules import (
    REQUIRED_FIELDS,
    ChallengePeriod,
    Problem,
    SalesContext,
    already_recorded,
    check_sale,
    is_number,
    too_long,
)
from network_anim.errors import UserError
from network_anim.gc_pause import collector_paused
from network_anim.network.csv_input import data_rows, formula_problem, open_rows, read_text

REQUIRED_COLUMNS = REQUIRED_FIELDS
OPTIONAL_COLUMNS = ("company_id",)
ALL_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
_NUMERIC_COLUMNS = frozenset({"quantity", "amount"})

__all__ = ["ChallengePeriod", "SaleRecord", "SalesContext", "parse_sales_csv", "read_sales_csv"]


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

    problems: list[tuple[int, str]] = []
    rows: list[_Row] = []
    for start, cells in data_rows(reader, header, lambda n, p: problems.append((n, p))):
        try:
            rows.append(_parse_row(cells, start, context))
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


def _parse_row(raw: dict[str, str], line: int, context: SalesContext) -> _Row:
    problems: list[str] = []
    refused: set[str] = set()
    cells: dict[str, str] = {}
    for name, value in raw.items():
        stripped = value.strip()
        cells[name] = stripped
        formula = formula_problem(name, value.lstrip(" "))
        if formula and not (name in _NUMERIC_COLUMNS and is_number(stripped)):
            problems.append(formula)
            refused.add(name)
            cells[name] = ""  # reported once, not again as empty or malformed
            continue
        length = too_long(name, stripped)
        if length:
            problems.append(length.text())
            refused.add(name)
    checked, broken = check_sale(cells, context, refused=refused)
    problems += [p.text() for p in broken]
    if problems or checked is None:
        raise _LineProblems(problems)
    return _Row(
        line=line,
        invoice_ref=cells["invoice_ref"],
        contact_id=cells["contact_id"],
        company_id=cells.get("company_id", ""),
        sku=checked.sku,
        quantity=checked.quantity,
        amount=checked.amount,
        sold_at=checked.sold_at,
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
                (row.line, Problem("unknown_contact", {"contact": row.contact_id}).text())
            )
        elif row.company_id and row.company_id != company:
            values = {"company": row.company_id, "contact": row.contact_id, "actual": company}
            problems.append((row.line, Problem("other_company", values).text()))
        else:
            candidates.append((row, company))

    recorded = context.recorded(sorted({(c, r.invoice_ref) for r, c in candidates}))
    seen: dict[tuple[str, str], int] = {}
    records: list[SaleRecord] = []
    for row, company in candidates:
        key = (company, row.invoice_ref)
        if key in recorded:
            problem = already_recorded(row.invoice_ref, company, recorded[key])
            problems.append((row.line, problem.text()))
            continue
        if key in seen:
            values = {"invoice": row.invoice_ref, "company": company, "line": seen[key]}
            problems.append((row.line, Problem("already_in_file", values).text()))
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
