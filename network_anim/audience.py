"""Resolve a named audience into contacts, in batches, without loading the network."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Select, exists, select
from sqlmodel import Session

from network_anim.config import Audience
from network_anim.db.models import Company, Contact, Participant
from network_anim.domain import Level

_LEVELS_FROM = {level: [lv.value for lv in Level if lv.rank >= level.rank] for level in Level}


def audience_query(audience: Audience, *, min_level: Level = Level.SELLER) -> Select:
    """Contacts (with their company) matching every filter of the audience."""
    query = (
        select(Contact, Company)
        .join(Company, Company.id == Contact.company_id)  # type: ignore[arg-type]
        .where(Contact.active.is_(True))  # type: ignore[attr-defined]
        .where(Contact.level.in_(_LEVELS_FROM[min_level]))  # type: ignore[attr-defined]
        .order_by(Contact.id)
    )
    filters = (
        (audience.levels, Contact.level),
        (audience.roles, Contact.role),
        (audience.email_kinds, Contact.email_kind),
        (audience.languages, Contact.language),
        (audience.regions, Company.region),
        (audience.sectors, Company.sector),
        (audience.sizes, Company.size),
        (audience.tiers, Company.tier),
        (audience.companies, Company.external_id),
    )
    for values, column in filters:
        if values:
            query = query.where(column.in_([str(v) for v in values]))  # type: ignore[attr-defined]
    if audience.challenge is not None and audience.registered is not None:
        registered = exists().where(
            Participant.challenge_key == audience.challenge, Participant.contact_id == Contact.id
        )
        query = query.where(registered if audience.registered else ~registered)
    return query


def iter_audience(
    session: Session, audience: Audience, *, min_level: Level = Level.SELLER, batch: int = 1000
) -> Iterator[list[tuple[Contact, Company]]]:
    """Batches of (contact, company), keyed on id so memory stays flat in the network size."""
    last_id = 0
    base = audience_query(audience, min_level=min_level)
    while True:
        rows = session.execute(base.where(Contact.id > last_id).limit(batch)).all()  # type: ignore[operator]
        if not rows:
            return
        yield [(row[0], row[1]) for row in rows]
        last_id = rows[-1][0].id


def count_audience(session: Session, audience: Audience, *, min_level: Level = Level.SELLER) -> int:
    from sqlalchemy import func

    sub = audience_query(audience, min_level=min_level).order_by(None).subquery()
    return int(session.scalar(select(func.count()).select_from(sub)) or 0)
