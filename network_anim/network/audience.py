"""Resolve a named audience into contacts, in batches, without loading the network."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement, Select, select
from sqlmodel import Session

from network_anim.config.audience_conditions import ChallengeTest, InSegment, describe
from network_anim.config.settings import Audience
from network_anim.db.models import Company, Contact
from network_anim.domain import Level
from network_anim.network.conditions import compile_condition

_LEVELS_FROM = {level: [lv.value for lv in Level if lv.rank >= level.rank] for level in Level}


def audience_tests(
    audience: Audience, *, now: datetime, min_level: Level = Level.SELLER
) -> list[tuple[str, ColumnElement[bool]]]:
    """Every test a member passes, each with the words ``audience explain`` shows: the
    contact is active and of the level, each filter given, then the ``where`` conditions
    (their ``now`` for "the last N days" is the engine's clock)."""
    tests: list[tuple[str, ColumnElement[bool]]] = [
        ("active contact", Contact.active.is_(True)),  # type: ignore[attr-defined]
        (
            f"level {min_level.value} or above",
            Contact.level.in_(_LEVELS_FROM[min_level]),  # type: ignore[attr-defined]
        ),
    ]
    filters = (
        ("levels", audience.levels, Contact.level),
        ("roles", audience.roles, Contact.role),
        ("email_kinds", audience.email_kinds, Contact.email_kind),
        ("languages", audience.languages, Contact.language),
        ("regions", audience.regions, Company.region),
        ("sectors", audience.sectors, Company.sector),
        ("sizes", audience.sizes, Company.size),
        ("tiers", audience.tiers, Company.tier),
        ("companies", audience.companies, Company.external_id),
    )
    for key, values, column in filters:
        if values:
            names = [str(v) for v in values]
            tests.append((f"{key}: {', '.join(names)}", column.in_(names)))  # type: ignore[attr-defined]
    if audience.challenge is not None and audience.registered is not None:
        test = ChallengeTest(audience.challenge, registered=audience.registered)
        tests.append((describe(test), compile_condition(test, now=now)))
    if audience.event is not None and audience.rsvp is not None:
        from network_anim.network.rsvp_audience import rsvp_test

        tests.append(rsvp_test(audience.event, audience.rsvp))
    if audience.rfm_segments:
        segments = InSegment(audience.rfm_segments)
        tests.append(
            (
                f"rfm_segments: {', '.join(audience.rfm_segments)}",
                compile_condition(segments, now=now),
            )
        )
    if audience.condition is not None:
        tests.append(("where", compile_condition(audience.condition, now=now)))
    return tests


def audience_query(audience: Audience, *, now: datetime, min_level: Level = Level.SELLER) -> Select:
    """Contacts (with their company) passing every test of the audience: one query."""
    tests = audience_tests(audience, now=now, min_level=min_level)
    return (
        select(Contact, Company)
        .join(Company, Company.id == Contact.company_id)  # type: ignore[arg-type]
        .where(*(clause for _, clause in tests))
        .order_by(Contact.id)
    )


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
    session: Session,
    audience: Audience,
    *,
    now: datetime,
    min_level: Level = Level.SELLER,
    batch: int = 1000,
) -> Iterator[list[tuple[MemberContact, MemberCompany]]]:
    """Batches of (contact, company) from one streamed query, so memory stays flat in the
    network size (PostgreSQL: a server-side cursor; SQLite steps its statement).

    One query rather than one per batch: SQLite, without statistics, reads the level
    filter through its index and sorts the rest of the network for every batch (quadratic
    in the network size). Plain rows rather than ORM objects: identity-mapped entities
    cost several times the query itself, and planning only reads them.
    """
    query = audience_query(audience, now=now, min_level=min_level).with_only_columns(
        *_MEMBER_COLUMNS
    )
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


def count_audience(
    session: Session, audience: Audience, *, now: datetime, min_level: Level = Level.SELLER
) -> int:
    from sqlalchemy import func

    sub = audience_query(audience, now=now, min_level=min_level).order_by(None).subquery()
    return int(session.scalar(select(func.count()).select_from(sub)) or 0)
