"""Resolve a named audience into contacts, in batches, without loading the network."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from sqlalchemy import Select, exists, select
from sqlmodel import Session

from network_anim.config.settings import Audience
from network_anim.db.models import Company, CompanySegment, Contact, Participant
from network_anim.domain import Level
from network_anim.network.rfm import SCHEME as RFM_SCHEME

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
    if audience.rfm_segments:
        query = query.where(
            exists().where(
                CompanySegment.company_id == Contact.company_id,
                CompanySegment.scheme == RFM_SCHEME,
                CompanySegment.segment.in_(audience.rfm_segments),  # type: ignore[attr-defined]
            )
        )
    return query


class MemberContact(NamedTuple):
    """What planning reads of a contact: a plain row, not a tracked ORM object."""

    id: int
    external_id: str
    company_id: int
    civility: str
    first_name: str
    last_name: str
    role: str
    level: str
    email: str | None
    email_kind: str
    mobile: str | None
    web_access: bool
    timezone: str
    language: str


class MemberCompany(NamedTuple):
    """What planning reads of a contact's company (segments and postal address)."""

    id: int
    external_id: str
    name: str
    sector: str
    size: str
    tier: str
    region: str
    delivery_point: str
    building: str
    street: str
    locality: str
    postcode: str
    city: str
    country: str


_MEMBER_COLUMNS = [
    *(getattr(Contact, name) for name in MemberContact._fields),
    *(getattr(Company, name) for name in MemberCompany._fields),
]
_SPLIT = len(MemberContact._fields)


def iter_audience(
    session: Session, audience: Audience, *, min_level: Level = Level.SELLER, batch: int = 1000
) -> Iterator[list[tuple[MemberContact, MemberCompany]]]:
    """Batches of (contact, company) from one streamed query, so memory stays flat in the
    network size (PostgreSQL: a server-side cursor; SQLite steps its statement).

    One query rather than one per batch: SQLite, without statistics, reads the level
    filter through its index and sorts the rest of the network for every batch (quadratic
    in the network size). Plain rows rather than ORM objects: identity-mapped entities
    cost several times the query itself, and planning only reads them.
    """
    query = audience_query(audience, min_level=min_level).with_only_columns(*_MEMBER_COLUMNS)
    result = session.execute(query.execution_options(yield_per=batch))
    for rows in result.partitions():
        companies: dict[int, MemberCompany] = {}
        members = []
        for row in rows:
            company = companies.get(row[_SPLIT])
            if company is None:
                company = companies[row[_SPLIT]] = MemberCompany._make(row[_SPLIT:])
            members.append((MemberContact._make(row[:_SPLIT]), company))
        yield members


def count_audience(session: Session, audience: Audience, *, min_level: Level = Level.SELLER) -> int:
    from sqlalchemy import func

    sub = audience_query(audience, min_level=min_level).order_by(None).subquery()
    return int(session.scalar(select(func.count()).select_from(sub)) or 0)
