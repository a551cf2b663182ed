"""``/api/v1``: what other systems (a CRM, a BI tool) read of the engine, with a bearer
token per system (``netanim api token create NAME --scope ...``), read-only.

Lists are pages in id order behind an opaque cursor: ``next_cursor`` is where the next
page starts (the cursor given back when nothing came), so a system that keeps it and asks
again later gets only what was added since, nothing twice and nothing missed while rows
are added. Deliveries are listed once, as planned: their later life (sent, delivered,
opened, bounced...) is in ``/events``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlmodel import Session

from network_anim.db.models import (
    Campaign,
    Company,
    Consent,
    Contact,
    Delivery,
    Event,
    LedgerEntry,
    Message,
    Participant,
)
from network_anim.domain import RANKED_KINDS
from network_anim.errors import UserError
from network_anim.reports.model import FunnelRow
from network_anim.web import Web, WebContext
from network_anim.web.api_tokens import scopes_of

router = APIRouter(prefix="/api/v1", tags=["api"])
_bearer = HTTPBearer(
    auto_error=False,
    description="A token made by `netanim api token create NAME --scope ...`.",
)
Limit = Annotated[int, Query(ge=1, le=500, description="Rows per page.")]
CursorQuery = Annotated[
    str | None, Query(max_length=100, description="next_cursor of the previous page.")
]
# Opens and clicks by scanners and prefetchers are recorded but not a person's.
_ENGAGEMENT = ("opened", "clicked", "read", "replied")
_HUMAN_ONLY = {"opened", "clicked"}
_LAST_USED_EVERY = timedelta(minutes=5)


def _reader(scope: str) -> Callable[..., WebContext]:
    def check(
        web: Web,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> WebContext:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(
                401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )
        now = web.app.clock.now()
        with Session(web.app.engine) as session, session.begin():
            scopes = scopes_of(session, credentials.credentials, now=now, every=_LAST_USED_EVERY)
        if scopes is None:
            raise HTTPException(
                401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"}
            )
        if scope not in scopes:
            raise HTTPException(403, f"this token may not read {scope}")
        return web

    return check


def _after(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode() + b"==").decode().partition(":")
        if kind == "v1" and value.isdigit():
            return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise HTTPException(400, "cursor is not one this API gave: start without it")


def _cursor(after: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{after}".encode()).decode().rstrip("=")


class Page(BaseModel):
    next_cursor: str
    has_more: bool


def _keyset(
    session: Session, query: Select[Any], id_column: Any, cursor: str | None, limit: int
) -> tuple[list[Any], str, bool]:
    """One page of ``query`` (whose first column is ``id_column``) after ``cursor``: its
    rows, the cursor after them, whether more follow."""
    after = _after(cursor)
    rows = session.execute(
        query.where(id_column > after).order_by(id_column).limit(limit + 1)
    ).all()
    kept = list(rows[:limit])
    return kept, _cursor(kept[-1][0] if kept else after), len(rows) > limit


# -- contacts --------------------------------------------------------------------------


class ConsentOut(BaseModel):
    channel: str
    basis: str
    source: str
    updated_at: datetime


class EngagementOut(BaseModel):
    event: str
    count: int
    last_at: datetime


class ContactOut(BaseModel):
    id: str
    company_id: str
    company_name: str
    civility: str
    first_name: str
    last_name: str
    role: str
    level: str
    email: str | None
    email_kind: str
    email_invalid_at: datetime | None
    mobile: str | None
    web_access: bool
    language: str
    active: bool
    consents: list[ConsentOut]
    engagement: list[EngagementOut]


class ContactPage(Page):
    data: list[ContactOut]


_CONTACTS = select(Contact.id, Contact, Company).join(
    Company,
    Company.id == Contact.company_id,  # type: ignore[arg-type]
)


def _contacts(session: Session, rows: Sequence[Any]) -> list[ContactOut]:
    """Rows of ``_CONTACTS`` with their consents and engagement (two queries a page)."""
    ids = [c.id for _, c, _ in rows]
    consents: dict[int, list[ConsentOut]] = {i: [] for i in ids}
    for consent in session.scalars(
        select(Consent).where(Consent.contact_id.in_(ids)).order_by(Consent.channel)  # type: ignore[attr-defined]
    ):
        consents[consent.contact_id].append(
            ConsentOut(
                channel=consent.channel,
                basis=consent.basis,
                source=consent.source,
                updated_at=consent.updated_at,
            )
        )
    engagement: dict[int, list[EngagementOut]] = {i: [] for i in ids}
    human = (Event.machine.is_(False)) | (Event.type.not_in(_HUMAN_ONLY))  # type: ignore[attr-defined]
    for contact_id, kind, count, last in session.execute(
        select(Event.contact_id, Event.type, func.count(), func.max(Event.occurred_at))
        .where(Event.contact_id.in_(ids), Event.type.in_(_ENGAGEMENT), human)  # type: ignore[union-attr,attr-defined]
        .group_by(Event.contact_id, Event.type)
        .order_by(Event.contact_id, Event.type)
    ):
        engagement[contact_id].append(EngagementOut(event=kind, count=count, last_at=last))
    return [
        ContactOut(
            id=contact.external_id,
            company_id=company.external_id,
            company_name=company.name,
            civility=contact.civility,
            first_name=contact.first_name,
            last_name=contact.last_name,
            role=contact.role,
            level=contact.level,
            email=contact.email,
            email_kind=contact.email_kind,
            email_invalid_at=contact.email_invalid_at,
            mobile=contact.mobile,
            web_access=contact.web_access,
            language=contact.language,
            active=contact.active,
            consents=consents[contact.id],  # type: ignore[index]
            engagement=engagement[contact.id],  # type: ignore[index]
        )
        for _, contact, company in rows
    ]


@router.get("/contacts", summary="Contacts with their consents and engagement")
def list_contacts(
    web: Annotated[WebContext, Depends(_reader("contacts"))],
    limit: Limit = 100,
    cursor: CursorQuery = None,
) -> ContactPage:
    with Session(web.app.engine) as session:
        rows, next_cursor, more = _keyset(session, _CONTACTS, Contact.id, cursor, limit)
        data = _contacts(session, rows)
    return ContactPage(data=data, next_cursor=next_cursor, has_more=more)


@router.get("/contacts/{contact_id}", summary="One contact by its external id")
def get_contact(
    contact_id: str, web: Annotated[WebContext, Depends(_reader("contacts"))]
) -> ContactOut:
    with Session(web.app.engine) as session:
        rows = session.execute(_CONTACTS.where(Contact.external_id == contact_id)).all()
        if not rows:
            raise HTTPException(404, f"no contact {contact_id!r}")
        return _contacts(session, rows)[0]


# -- campaigns -------------------------------------------------------------------------


class CampaignOut(BaseModel):
    key: str
    name: str
    kind: str
    created_at: datetime
    messages: int


class CampaignPage(Page):
    data: list[CampaignOut]


class CampaignFunnel(BaseModel):
    campaign: str
    channels: list[FunnelRow]  # group "all": the campaign's totals per channel


@router.get("/campaigns", summary="Campaigns that planned messages")
def list_campaigns(
    web: Annotated[WebContext, Depends(_reader("campaigns"))],
    limit: Limit = 100,
    cursor: CursorQuery = None,
) -> CampaignPage:
    messages = select(func.count()).where(Message.campaign_id == Campaign.id).scalar_subquery()
    query = select(Campaign.id, Campaign, messages)
    with Session(web.app.engine) as session:
        kept, next_cursor, more = _keyset(session, query, Campaign.id, cursor, limit)
    data = [
        CampaignOut(key=c.key, name=c.name, kind=c.kind, created_at=c.created_at, messages=n)
        for _, c, n in kept
    ]
    return CampaignPage(data=data, next_cursor=next_cursor, has_more=more)


@router.get("/campaigns/{key}/funnel", summary="A campaign's funnel per channel")
def campaign_funnel(
    key: str, web: Annotated[WebContext, Depends(_reader("campaigns"))]
) -> CampaignFunnel:
    """Planned, sent, delivered, opened (people and machines apart), clicked, read,
    converted and cost per channel, as ``netanim report --campaign KEY`` counts them."""
    from network_anim.reports.build import build_report

    try:
        report = build_report(web.app, campaign=key)
    except UserError as exc:
        raise HTTPException(404, exc.summary) from None
    return CampaignFunnel(campaign=key, channels=list(report.funnel_totals))


# -- deliveries and events -------------------------------------------------------------


class DeliveryOut(BaseModel):
    id: int
    contact_id: str
    campaign: str
    step: str
    occurrence: str
    channel: str
    status: str
    due_at: datetime
    sent_at: datetime | None
    reason: str
    cost: float


class DeliveryPage(Page):
    data: list[DeliveryOut]


@router.get("/deliveries", summary="Deliveries planned since a cursor")
def list_deliveries(
    web: Annotated[WebContext, Depends(_reader("deliveries"))],
    limit: Limit = 100,
    cursor: CursorQuery = None,
) -> DeliveryPage:
    query = (
        select(Delivery.id, Delivery, Contact.external_id, Campaign.key, Message)
        .join(Contact, Contact.id == Delivery.contact_id)  # type: ignore[arg-type]
        .join(Message, Message.id == Delivery.message_id)  # type: ignore[arg-type]
        .join(Campaign, Campaign.id == Message.campaign_id)  # type: ignore[arg-type]
    )
    with Session(web.app.engine) as session:
        kept, next_cursor, more = _keyset(session, query, Delivery.id, cursor, limit)
    data = [
        DeliveryOut(
            id=d.id,
            contact_id=contact,
            campaign=campaign,
            step=m.step,
            occurrence=m.occurrence,
            channel=d.channel,
            status=d.status,
            due_at=d.due_at,
            sent_at=d.sent_at,
            reason=d.reason,
            cost=d.cost if d.cost is not None else d.cost_estimate,
        )
        for _, d, contact, campaign, m in kept
    ]
    return DeliveryPage(data=data, next_cursor=next_cursor, has_more=more)


class EventOut(BaseModel):
    id: int
    type: str
    occurred_at: datetime
    channel: str
    contact_id: str | None
    delivery_id: int | None
    machine: bool


class EventPage(Page):
    data: list[EventOut]


@router.get("/events", summary="Events recorded since a cursor")
def list_events(
    web: Annotated[WebContext, Depends(_reader("events"))],
    limit: Limit = 100,
    cursor: CursorQuery = None,
    kind: Annotated[
        str | None, Query(alias="type", max_length=30, description="Only this event type.")
    ] = None,
) -> EventPage:
    """Deliveries' statuses, opens, clicks (``machine``: a scanner or a prefetch, not a
    person), reads, replies, bounces, unsubscriptions, in the order they were recorded."""
    query = select(Event.id, Event, Contact.external_id).outerjoin(
        Contact,
        Contact.id == Event.contact_id,  # type: ignore[arg-type]
    )
    if kind is not None:
        query = query.where(Event.type == kind)
    with Session(web.app.engine) as session:
        kept, next_cursor, more = _keyset(session, query, Event.id, cursor, limit)
    data = [
        EventOut(
            id=e.id,
            type=e.type,
            occurred_at=e.occurred_at,
            channel=e.channel,
            contact_id=contact,
            delivery_id=e.delivery_id,
            machine=e.machine,
        )
        for _, e, contact in kept
    ]
    return EventPage(data=data, next_cursor=next_cursor, has_more=more)


# -- challenges and points --------------------------------------------------------------


class StandingOut(BaseModel):
    rank: int
    id: str | None
    name: str
    company: str | None
    points: int | float
    members: int | None
    movement: int | None


class Standings(BaseModel):
    challenge: str
    scope: str
    period: str
    rows: list[StandingOut]


@router.get("/challenges/{key}/standings", summary="A challenge's leaderboard")
def challenge_standings(
    key: str,
    web: Annotated[WebContext, Depends(_reader("challenges"))],
    scope: Literal["individual", "team"] = "individual",
    period: Literal["whole", "month", "week"] = "whole",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Standings:
    """The top of the board, ties broken as on the portal; participants who chose not to
    be shown by name stay anonymous here too."""
    from network_anim.challenges.leaderboard import leaderboard

    try:
        rows = leaderboard(web.app, key, scope=scope, period=period, limit=limit)
    except UserError as exc:
        raise HTTPException(404, exc.summary) from None
    data = [
        StandingOut(
            rank=r.rank,
            id=r.subject,
            name=r.name,
            company=r.company,
            points=r.points,
            members=r.members,
            movement=r.movement,
        )
        for r in rows
    ]
    return Standings(challenge=key, scope=scope, period=period, rows=data)


class ChallengePoints(BaseModel):
    challenge: str
    registered: bool
    points: int


class PointsOut(BaseModel):
    contact_id: str
    balance: int
    challenges: list[ChallengePoints]


@router.get("/points/{contact_id}", summary="A contact's points")
def contact_points(
    contact_id: str, web: Annotated[WebContext, Depends(_reader("points"))]
) -> PointsOut:
    """The rewards balance and, per challenge, the points that rank."""
    from network_anim.challenges.ledger import balance

    with Session(web.app.engine) as session:
        found = session.scalar(select(Contact.id).where(Contact.external_id == contact_id))
        if found is None:
            raise HTTPException(404, f"no contact {contact_id!r}")
        points = dict(
            session.execute(
                select(LedgerEntry.challenge_key, func.sum(LedgerEntry.points))
                .where(
                    LedgerEntry.contact_id == found,
                    LedgerEntry.challenge_key.is_not(None),  # type: ignore[union-attr]
                    LedgerEntry.kind.in_(RANKED_KINDS),  # type: ignore[attr-defined]
                )
                .group_by(LedgerEntry.challenge_key)
            ).all()
        )
        registered = set(
            session.scalars(
                select(Participant.challenge_key).where(Participant.contact_id == found)
            )
        )
        total = balance(session, found)
    keys = sorted(set(points) | registered)
    challenges = [
        ChallengePoints(challenge=k, registered=k in registered, points=int(points.get(k) or 0))
        for k in keys
    ]
    return PointsOut(contact_id=contact_id, balance=total, challenges=challenges)
