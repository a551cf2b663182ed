"""An audience's ``where`` conditions compiled into one SQL clause over contact and
company: correlated EXISTS for events, segments, registrations and consents, a correlated
sum for challenge points. The whole audience stays one query, however deep the groups.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, false, func, not_, or_, select, true

from network_anim.config.audience_conditions import (
    HUMAN_ONLY_EVENTS,
    AllOf,
    AnyOf,
    ChallengeTest,
    Condition,
    Engaged,
    FieldTest,
    InSegment,
    Not,
    OptedOut,
    Reachable,
)
from network_anim.db.models import (
    Company,
    CompanySegment,
    Consent,
    Contact,
    Event,
    LedgerEntry,
    Participant,
)
from network_anim.domain import RANKED_KINDS, EmailKind, LawfulBasis
from network_anim.network.rfm import SCHEME as RFM_SCHEME

_TABLES = {"contact": Contact, "company": Company}


def compile_condition(condition: Condition, *, now: datetime) -> ColumnElement[bool]:
    """The SQL test of ``condition`` for the query's current contact and company
    (``now``: where "the last N days" end, the engine's clock)."""
    match condition:
        case AllOf(parts):
            return and_(true(), *(compile_condition(p, now=now) for p in parts))
        case AnyOf(parts):
            return or_(false(), *(compile_condition(p, now=now) for p in parts))
        case Not(part):
            return not_(compile_condition(part, now=now))
        case FieldTest():
            return _field(condition)
        case InSegment(segments):
            return exists().where(
                CompanySegment.company_id == Contact.company_id,
                CompanySegment.scheme == RFM_SCHEME,
                CompanySegment.segment.in_(segments),  # type: ignore[attr-defined]
            )
        case ChallengeTest():
            return _challenge(condition)
        case Engaged():
            return _engaged(condition, now)
        case Reachable(channel):
            return _reachable(channel)
        case OptedOut(channel):
            return exists().where(
                Consent.contact_id == Contact.id,
                Consent.channel == channel,
                Consent.basis == LawfulBasis.OPTED_OUT.value,
            )
    raise AssertionError(condition)


def _field(test: FieldTest) -> ColumnElement[bool]:
    table, name = test.field.split(".")
    column = getattr(_TABLES[table], name)
    if test.empty is not None:
        blank = or_(column.is_(None), column == "")
        return blank if test.empty else not_(blank)
    if test.prefixes:
        return or_(*(column.startswith(prefix, autoescape=True) for prefix in test.prefixes))
    return column.in_(test.values)  # type: ignore[no-any-return]


def _challenge(test: ChallengeTest) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    if test.registered is not None:
        registered = exists().where(
            Participant.challenge_key == test.challenge, Participant.contact_id == Contact.id
        )
        clauses.append(registered if test.registered else not_(registered))
    if test.points_at_least is not None or test.points_below is not None:
        # The ledger is the source of truth (the running totals may not be built yet).
        points = (
            select(func.coalesce(func.sum(LedgerEntry.points), 0))
            .where(
                LedgerEntry.challenge_key == test.challenge,
                LedgerEntry.contact_id == Contact.id,
                LedgerEntry.kind.in_(RANKED_KINDS),  # type: ignore[attr-defined]
            )
            .scalar_subquery()
        )
        if test.points_at_least is not None:
            clauses.append(points >= test.points_at_least)
        if test.points_below is not None:
            clauses.append(points < test.points_below)
    return and_(*clauses)


def _engaged(test: Engaged, now: datetime) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = [Event.contact_id == Contact.id, Event.type == test.event]
    if test.event in HUMAN_ONLY_EVENTS:
        clauses.append(Event.machine.is_(False))  # type: ignore[attr-defined]
    if test.channel is not None:
        clauses.append(Event.channel == test.channel)
    if test.within_days is not None:
        clauses.append(Event.occurred_at >= now - timedelta(days=test.within_days))  # type: ignore[operator]
    return exists().where(*clauses)


def _reachable(channel: str) -> ColumnElement[bool]:
    if channel == "email":
        return and_(
            Contact.email.is_not(None),  # type: ignore[union-attr]
            Contact.email != "",
            Contact.email_kind != EmailKind.NONE.value,
            Contact.email_invalid_at.is_(None),  # type: ignore[union-attr]
        )
    if channel == "mobile":
        return and_(Contact.mobile.is_not(None), Contact.mobile != "")  # type: ignore[union-attr]
    if channel == "web":
        return Contact.web_access.is_(True)  # type: ignore[attr-defined,no-any-return]
    # postal: an address a letter can carry (the print export refuses the others).
    return and_(Company.street != "", Company.postcode != "", Company.city != "")
