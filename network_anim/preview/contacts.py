"""For whom a preview is made: contacts named by their id, or a sample of the audience
that shows its different profiles first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.config.settings import Audience
from network_anim.db.models import Company, Contact
from network_anim.domain import Level, MessageKind
from network_anim.errors import UserError
from network_anim.network.audience import audience_query, iter_audience
from network_anim.planning.planner import profile_key, routing_inputs

Pair = tuple[Contact, Company]


def named_contacts(session: Session, external_ids: Sequence[str]) -> list[Pair]:
    """The contacts with these ids (and their companies), in the order given."""
    wanted = list(dict.fromkeys(external_ids))
    rows = session.execute(
        select(Contact, Company)
        .join(Company, Company.id == Contact.company_id)  # type: ignore[arg-type]
        .where(Contact.external_id.in_(wanted))  # type: ignore[attr-defined]
    ).all()
    found = {contact.external_id: (contact, company) for contact, company in rows}
    missing = [ext for ext in wanted if ext not in found]
    if missing:
        raise UserError(
            f"unknown contact(s): {', '.join(missing)}",
            ["--contact takes the contact_id of the network CSV (netanim import network)"],
        )
    return [found[ext] for ext in wanted]


def sample_contacts(
    app: App, session: Session, audience: Audience, level: Level, size: int, now: datetime
) -> list[Pair]:
    """Up to ``size`` contacts of the audience: one of each routing profile first (email
    kind, mobile, web access, address, consents...), in contact order, then the next
    ones. Frequency caps are left out of the profiles compared: the sample is about who
    the contacts are, the preview of each then routes them with their caps."""
    distinct: list[int] = []
    others: list[int] = []
    seen: set[tuple[object, ...]] = set()
    for batch in iter_audience(session, audience, now=now, min_level=level):
        ids = [contact.id for contact, _ in batch]
        inputs = routing_inputs(app, session, ids, None, MessageKind.OPERATIONAL, now)
        for contact, company in batch:
            key = profile_key(contact, company, *inputs.of(contact.id))
            if key in seen:
                if len(others) < size:
                    others.append(contact.id)
                continue
            seen.add(key)
            distinct.append(contact.id)
            if len(distinct) == size:
                return _pairs(session, audience, level, now, distinct)
    if not distinct:
        raise UserError(f"audience {audience.name!r} has no contact to preview")
    return _pairs(session, audience, level, now, (distinct + others)[:size])


def in_audience(
    session: Session, audience: Audience, level: Level, now: datetime, ids: Sequence[int]
) -> set[int]:
    """Which of these contacts the audience holds (a real send reaches no other)."""
    query = (
        audience_query(audience, now=now, min_level=level)
        .with_only_columns(Contact.id)
        .where(Contact.id.in_(list(ids)))  # type: ignore[union-attr]
    )
    return set(session.scalars(query))


def _pairs(
    session: Session, audience: Audience, level: Level, now: datetime, ids: list[int]
) -> list[Pair]:
    query = audience_query(audience, now=now, min_level=level).where(
        Contact.id.in_(ids)  # type: ignore[union-attr]
    )
    order = {contact_id: position for position, contact_id in enumerate(ids)}
    pairs = [(contact, company) for contact, company in session.execute(query).all()]
    return sorted(pairs, key=lambda pair: order[pair[0].id])
