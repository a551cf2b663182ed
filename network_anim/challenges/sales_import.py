"""Write validated sales declarations into the database, in one transaction.

Sales dated within a challenge that asks for approval wait for a manager ("pending");
the others are "approved" at once. Nothing here awards points: the caller hands the
approved sale ids of the summary to whatever scores them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from network_anim.challenges.sales_csv import SaleRecord
from network_anim.challenges.sales_rules import ChallengePeriod, RecordedSale, SalesContext
from network_anim.db.models import Company, Contact, Product, Sale
from network_anim.errors import UserError
from network_anim.gc_pause import collector_paused

# A declaration its seller took back while pending: its invoice is free again.
WITHDRAWN = "withdrawn"

_BATCH = 500
_SOURCE_MAX = 200
_ACTOR_MAX = 80


@dataclass(frozen=True, slots=True)
class SalesImportSummary:
    inserted: int
    pending: int
    approved: int
    products_created: int
    products_updated: int
    sale_ids: tuple[int, ...]  # every inserted sale, in file order
    approved_sale_ids: tuple[int, ...]  # those that may earn points now


def _chunks(items: Sequence) -> list[Sequence]:
    return [items[i : i + _BATCH] for i in range(0, len(items), _BATCH)]


def sales_context(app, *, challenge: str | None = None) -> SalesContext:  # type: ignore[no-untyped-def]
    """What a sales file is checked against, read from the app's config and database.

    ``challenge``: only sales dated within that challenge's period are accepted (an
    unknown key is a :class:`UserError` listing the configured ones).
    """
    config = app.config
    period = None
    if challenge is not None:
        chosen = config.challenge(challenge)
        period = ChallengePeriod(chosen.id, chosen.start, chosen.end)
    engine = app.engine
    with Session(engine) as session:
        products = {p.sku: p.unit_price for p in session.scalars(select(Product))}
    products.update({p.sku: p.unit_price for p in config.products})

    def contacts(external_ids: Collection[str]) -> Mapping[str, str]:
        found: dict[str, str] = {}
        with Session(engine) as session:
            for chunk in _chunks(list(external_ids)):
                query = (
                    select(Contact.external_id, Company.external_id)
                    .join(Company, Contact.company_id == Company.id)
                    .where(Contact.external_id.in_(chunk))  # type: ignore[attr-defined]
                )
                found.update({contact: company for contact, company in session.execute(query)})
        return found

    def recorded(pairs: Collection[tuple[str, str]]) -> Mapping[tuple[str, str], RecordedSale]:
        wanted = set(pairs)
        found: dict[tuple[str, str], RecordedSale] = {}
        with Session(engine) as session:
            for chunk in _chunks(sorted({ref for _, ref in wanted})):
                query = (
                    select(Company.external_id, Sale.invoice_ref, Sale.id, Sale.source)
                    .join(Company, Sale.company_id == Company.id)
                    .where(
                        Sale.invoice_ref.in_(chunk),  # type: ignore[attr-defined]
                        Sale.status != WITHDRAWN,
                    )
                )
                for company, ref, sale_id, source in session.execute(query):
                    if (company, ref) in wanted:
                        found[(company, ref)] = RecordedSale(sale_id, source)
        return found

    return SalesContext(
        now=app.clock.now(),
        timezone=config.engine.timezone,
        products=products,
        contacts=contacts,
        recorded=recorded,
        period=period,
    )


def sale_status(challenges: Iterable, sold_at: datetime, timezone: str) -> str:
    """``pending`` when any challenge covering the sale's day (engine time zone) asks for
    approval, else ``approved``."""
    day = sold_at.astimezone(ZoneInfo(timezone)).date()
    for challenge in challenges:
        if challenge.approval and challenge.start <= day <= challenge.end:
            return "pending"
    return "approved"


def outside_every_challenge(challenges: Iterable, sold_at: datetime, timezone: str) -> bool:
    day = sold_at.astimezone(ZoneInfo(timezone)).date()
    return not any(c.start <= day <= c.end for c in challenges)


@collector_paused()
def import_sales(
    app,  # type: ignore[no-untyped-def]
    records: Sequence[SaleRecord],
    *,
    source: str,
    declared_by: str,
) -> SalesImportSummary:
    """Insert ``records`` (from :func:`read_sales_csv`) in one transaction: all or nothing.

    ``source`` names the file: each sale records "``source``:line N". ``declared_by`` is
    who imported them. Products of the config are upserted into the ``product`` table first.
    """
    if len(declared_by) > _ACTOR_MAX or not declared_by.strip():
        raise UserError(f"actor {declared_by!r}: give a name of 1 to {_ACTOR_MAX} characters")
    try:
        with Session(app.engine) as session, session.begin():
            created, updated = upsert_products(session, app.config.products)
            ids, approved = write_sales(
                app,
                session,
                records,
                label=lambda record: _source(source, record.line),
                declared_by=declared_by,
            )
    except IntegrityError:
        raise UserError(
            f"{source}: another import recorded some of these sales or products meanwhile; "
            "nothing was imported",
            ["run the import again: the sales already recorded will be named"],
        ) from None
    return SalesImportSummary(
        inserted=len(ids),
        pending=len(ids) - len(approved),
        approved=len(approved),
        products_created=created,
        products_updated=updated,
        sale_ids=ids,
        approved_sale_ids=approved,
    )


def write_sales(
    app,  # type: ignore[no-untyped-def]
    session: Session,
    records: Sequence[SaleRecord],
    *,
    label: Callable[[SaleRecord], str],
    declared_by: str,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Insert checked ``records`` in the caller's transaction, checked again against the
    network and the recorded invoices (they may have changed since): (every new sale id,
    the approved ones), in record order. ``label`` gives each sale's ``source``."""
    contacts = _contacts(session, records)
    _refuse_recorded(session, records, contacts)
    config = app.config
    return _insert_sales(
        session,
        records,
        contacts,
        config.challenges,
        config.engine.timezone,
        app.clock.now(),
        label,
        declared_by,
    )


def _insert_sales(
    session: Session,
    records: Sequence[SaleRecord],
    contacts: dict[str, tuple[int, int]],
    challenges: Sequence,  # type: ignore[type-arg]
    timezone: str,
    now: datetime,
    label: Callable[[SaleRecord], str],
    declared_by: str,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A Core executemany with RETURNING in parameter order rather than one ORM instance
    per sale."""
    rows = []
    for record in records:
        contact_id, company_id = contacts[record.contact_external_id]
        rows.append(
            {
                "company_id": company_id,
                "contact_id": contact_id,
                "invoice_ref": record.invoice_ref,
                "product": record.sku,
                "quantity": record.quantity,
                "amount": record.amount,
                "status": sale_status(challenges, record.sold_at, timezone),
                "sold_at": record.sold_at,
                "created_at": now,
                "declared_by": declared_by,
                "source": label(record),
            }
        )
    ids: list[int] = []
    approved: list[int] = []
    statement = insert(Sale).returning(
        Sale.id,  # type: ignore[arg-type]
        Sale.status,  # type: ignore[arg-type]
        sort_by_parameter_order=True,
    )
    for chunk in _chunks(rows):
        for sale_id, status in session.execute(statement, list(chunk)):
            ids.append(sale_id)
            if status == "approved":
                approved.append(sale_id)
    return tuple(ids), tuple(approved)


def _source(source: str, line: int) -> str:
    suffix = f":line {line}"
    return source[: _SOURCE_MAX - len(suffix)] + suffix


def upsert_products(session: Session, products: Iterable) -> tuple[int, int]:
    existing = {p.sku: p for p in session.scalars(select(Product))}
    created = updated = 0
    for product in products:
        row = existing.get(product.sku)
        fields = {"name": product.name, "family": product.family, "unit_price": product.unit_price}
        if row is None:
            session.add(Product(sku=product.sku, **fields))
            created += 1
            continue
        changed = False
        for name, value in fields.items():
            if getattr(row, name) != value:
                setattr(row, name, value)
                changed = True
        updated += changed
    session.flush()
    return created, updated


def _contacts(session: Session, records: Sequence[SaleRecord]) -> dict[str, tuple[int, int]]:
    """Contact external id -> (contact id, company id), checked against each record."""
    wanted = sorted({r.contact_external_id for r in records})
    found: dict[str, tuple[int, int, str]] = {}
    for chunk in _chunks(wanted):
        query = (
            select(Contact.external_id, Contact.id, Company.id, Company.external_id)
            .join(Company, Contact.company_id == Company.id)
            .where(Contact.external_id.in_(chunk))  # type: ignore[attr-defined]
        )
        for external_id, contact_id, company_id, company in session.execute(query):
            found[external_id] = (contact_id, company_id, company)
    problems = [
        f"line {r.line}: contact {r.contact_external_id} of company {r.company_external_id} "
        "is no longer in the network"
        for r in records
        if r.contact_external_id not in found
        or found[r.contact_external_id][2] != r.company_external_id
    ]
    if problems:
        raise UserError(
            "the network changed since the file was checked; nothing was imported", problems
        )
    return {key: (contact, company) for key, (contact, company, _) in found.items()}


def _refuse_recorded(
    session: Session, records: Sequence[SaleRecord], contacts: dict[str, tuple[int, int]]
) -> None:
    wanted = {(contacts[r.contact_external_id][1], r.invoice_ref): r.line for r in records}
    problems = []
    for chunk in _chunks(sorted({ref for _, ref in wanted})):
        query = select(Sale.company_id, Sale.invoice_ref, Sale.id).where(
            Sale.invoice_ref.in_(chunk),  # type: ignore[attr-defined]
            Sale.status != WITHDRAWN,  # its invoice is free (db/models.py, Sale)
        )
        for company_id, ref, sale_id in session.execute(query):
            line = wanted.get((company_id, ref))
            if line is not None:
                problems.append(
                    (line, f"line {line}: invoice_ref {ref} is already recorded (sale #{sale_id})")
                )
    if problems:
        raise UserError(
            "some sales were recorded since the file was checked; nothing was imported",
            [p for _, p in sorted(problems)],
        )
