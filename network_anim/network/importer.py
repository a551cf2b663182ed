"""Write a validated network file into the database: upsert by external id, one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import Engine, select
from sqlmodel import Session

from network_anim.db.models import Company, Consent, Contact
from network_anim.network.network_csv import CompanyRecord, ContactRecord, NetworkFile

_BATCH = 500
# Called with a stage name ("companies", "contacts", "consents") and the rows just done;
# the three stages add up to companies + 2 x contacts.
Progress = Callable[[str, int], None]


def _silent(stage: str, done: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ImportSummary:
    companies_created: int
    companies_updated: int
    contacts_created: int
    contacts_updated: int
    consents_set: int


def import_network(
    engine: Engine,
    network: NetworkFile,
    *,
    now: datetime,
    source: str,
    progress: Progress = _silent,
) -> ImportSummary:
    """Upsert the whole file in one transaction; ``progress`` hears of each batch written
    (a network of tens of thousands of contacts takes seconds)."""
    with Session(engine) as session, session.begin():
        companies, c_new, c_upd = _upsert_companies(session, network.companies, now, progress)
        contacts, p_new, p_upd = _upsert_contacts(
            session, network.contacts, companies, now, progress
        )
        consents = _upsert_consents(session, network.contacts, contacts, now, source, progress)
    return ImportSummary(c_new, c_upd, p_new, p_upd, consents)


def _chunks(items: list) -> list[list]:
    return [items[i : i + _BATCH] for i in range(0, len(items), _BATCH)]


def _existing(session: Session, model: type, external_ids: list[str]) -> dict[str, object]:
    found: dict[str, object] = {}
    for chunk in _chunks(external_ids):
        for row in session.scalars(select(model).where(model.external_id.in_(chunk))):
            found[row.external_id] = row
    return found


def _upsert(
    session: Session,
    model: type,
    rows: dict[str, dict[str, object]],
    now: datetime,
    progress: Callable[[int], None],
    updating: Callable[[object, dict[str, object]], dict[str, object]] | None = None,
) -> tuple[dict[str, object], int, int]:
    """Insert or update rows by external id: (rows by external id, created, updated).
    ``updating(row, fields)`` may add fields to an existing row's update, seeing it as it
    was before."""
    existing = _existing(session, model, list(rows))
    by_id: dict[str, object] = {}
    created = updated = 0
    for external_id, fields in rows.items():
        row = existing.get(external_id)
        if row is None:
            row = model(external_id=external_id, **fields, created_at=now, updated_at=now)
            session.add(row)
            created += 1
        elif _apply(row, updating(row, fields) if updating else fields):
            row.updated_at = now  # type: ignore[attr-defined]
            updated += 1
        by_id[external_id] = row
        if len(by_id) % _BATCH == 0:
            session.flush()
            progress(_BATCH)
    session.flush()
    progress(len(by_id) % _BATCH)
    return by_id, created, updated


def _upsert_companies(
    session: Session, records: list[CompanyRecord], now: datetime, progress: Progress
) -> tuple[dict[str, Company], int, int]:
    rows = {
        r.external_id: {n: getattr(r, n) for n in CompanyRecord.__slots__ if n != "external_id"}
        for r in records
    }
    return _upsert(session, Company, rows, now, partial(progress, "companies"))  # type: ignore[return-value]


def _upsert_contacts(
    session: Session,
    records: list[ContactRecord],
    companies: dict[str, Company],
    now: datetime,
    progress: Progress,
) -> tuple[dict[str, Contact], int, int]:
    rows = {
        record.external_id: {
            "company_id": companies[record.company_external_id].id,
            "civility": record.civility,
            "first_name": record.first_name,
            "last_name": record.last_name,
            "role": record.role,
            "level": record.level.value,
            "email": record.email,
            "email_kind": record.email_kind.value,
            "mobile": record.mobile,
            "phone": record.phone,
            "web_access": record.web_access,
            "timezone": record.timezone,
            "language": record.language,
            "active": True,
        }
        for record in records
    }
    return _upsert(  # type: ignore[return-value]
        session, Contact, rows, now, partial(progress, "contacts"), _new_address_clears_mark
    )


def _new_address_clears_mark(row: object, fields: dict[str, object]) -> dict[str, object]:
    """A new email address clears the invalid mark its predecessor's hard bounce left;
    the same address again (whatever its case) keeps it: it would bounce again."""
    contact: Contact = row  # type: ignore[assignment]
    new = str(fields.get("email") or "").lower()
    if contact.email_invalid_at is None or not new or new == (contact.email or "").lower():
        return fields
    return {**fields, "email_invalid_at": None, "email_invalid_reason": ""}


def _upsert_consents(
    session: Session,
    records: list[ContactRecord],
    contacts: dict[str, Contact],
    now: datetime,
    source: str,
    progress: Progress,
) -> int:
    wanted = {
        (contacts[r.external_id].id, channel): basis.value
        for r in records
        for channel, basis in r.consents.items()
    }
    contact_ids = sorted({cid for cid, _ in wanted})
    existing: dict[tuple[int, str], Consent] = {}
    for chunk in _chunks(contact_ids):
        for consent in session.scalars(select(Consent).where(Consent.contact_id.in_(chunk))):
            existing[(consent.contact_id, consent.channel)] = consent
    changed = 0
    for (contact_id, channel), basis in wanted.items():
        consent = existing.get((contact_id, channel))  # type: ignore[arg-type]
        if consent is None:
            session.add(
                Consent(
                    contact_id=contact_id,
                    channel=channel,
                    basis=basis,
                    source=source,
                    updated_at=now,
                )
            )
            changed += 1
        elif consent.basis != basis:
            consent.basis, consent.source, consent.updated_at = basis, source, now
            changed += 1
    progress("consents", len(records))
    return changed


def _apply(row: object, fields: dict[str, object]) -> bool:
    changed = False
    for name, value in fields.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed
