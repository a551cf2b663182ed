"""What the webhook feed reads: one :class:`Source` per table whose new rows are events.

Adding a source is one entry in :data:`SOURCES`: a query (with the columns its events
need), the ordering key the feed keeps its position by, and how a row becomes events.
The feed never asks the modules that write these tables to emit anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, Select, select

from network_anim.db.models import (
    Campaign,
    Company,
    Contact,
    Event,
    Message,
    Participant,
    Redemption,
    Rsvp,
    Sale,
)

# Longer than any transaction of the engine between taking its time and committing.
REREAD_WINDOW = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class FeedEvent:
    key: str  # the webhook-id: unique per event, the same for every subscriber and attempt
    type: str
    occurred_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Source:
    name: str  # its row in webhook_feed
    table: Any  # locked while read on PostgreSQL (webhooks/feed.py says why)
    query: Select[Any]  # the rows and their columns, without order or position
    order: tuple[Any, ...]  # the ordering key (unique): the feed's position
    events: Callable[[Row[Any]], list[FeedEvent]]
    # For a position that is a time the writer took (a review's, an answer's): how far
    # back of it each pass reads again. A transaction takes its time before it writes,
    # so it can commit a row that sorts before one the feed has read already, at the
    # same time or a little earlier; the unique (event_key, subscriber) index drops
    # what was read before.
    reread_window: timedelta | None = None


# Event.type -> the family of its webhook type ("delivery.sent"); any other type, one
# the code adds later, arrives as "event.<type>" rather than being left out.
_FAMILY = {
    **dict.fromkeys(
        ("sent", "deferred", "failed", "unknown", "opted_out", "dead", "provider_queued",
         "provider_sending", "provider_sent", "delivered", "cancelled", "provider_status",
         "bounced", "soft_bounced"),
        "delivery",
    ),
    **dict.fromkeys(("opened", "clicked", "read"), "engagement"),
    **dict.fromkeys(
        ("unsubscribed", "resubscribed", "consented", "replied", "sms_help"), "contact"
    ),
}  # fmt: skip


def event_webhook_type(event_type: str, delivery_id: int | None) -> str:
    if event_type == "complained":  # per delivery, and per contact of the address
        return "delivery.complained" if delivery_id is not None else "contact.complained"
    return f"{_FAMILY.get(event_type, 'event')}.{event_type}"


def _events(row: Row[Any]) -> list[FeedEvent]:
    return [
        FeedEvent(
            key=f"event-{row.id}",
            type=event_webhook_type(row.type, row.delivery_id),
            occurred_at=row.occurred_at,
            data={
                "contact": row.contact,
                "channel": row.channel,
                "delivery_id": row.delivery_id,
                "message_id": row.message_id,
                "campaign": row.campaign,
                "step": row.step,
                # Opens and clicks by mail scanners and link checkers, not by a person.
                "machine": row.machine,
                "details": row.data,
            },
        )
    ]


def _registration(row: Row[Any]) -> list[FeedEvent]:
    return [
        FeedEvent(
            key=f"participant-{row.id}",
            type="challenge.registered",
            occurred_at=row.registered_at,
            data={
                "contact": row.contact,
                "challenge": row.challenge_key,
                "team": row.team_key,
                "via": row.via,
            },
        )
    ]


def _sale_data(row: Row[Any]) -> dict[str, Any]:
    return {
        "sale_id": row.id,
        "contact": row.contact,
        "company": row.company,
        "invoice_ref": row.invoice_ref,
        "product": row.product,
        "quantity": row.quantity,
        "amount": row.amount,
        "status": row.status,
        "sold_at": iso(row.sold_at),
        "declared_by": row.declared_by,
        "source": row.source,
    }


def _declaration(row: Row[Any]) -> list[FeedEvent]:
    return [FeedEvent(f"sale-{row.id}-declared", "sale.declared", row.created_at, _sale_data(row))]


def _review(row: Row[Any]) -> list[FeedEvent]:
    if row.status not in ("approved", "rejected", "withdrawn"):
        return []
    data = {**_sale_data(row), "reason": row.review_reason}
    return [FeedEvent(f"sale-{row.id}-{row.status}", f"sale.{row.status}", row.reviewed_at, data)]


def _redemption(row: Row[Any]) -> list[FeedEvent]:
    return [
        FeedEvent(
            key=f"redemption-{row.id}",
            type="points.redeemed",
            occurred_at=row.created_at,
            data={"contact": row.contact, "reward": row.reward_key, "points": row.points},
        )
    ]


def _rsvp(row: Row[Any]) -> list[FeedEvent]:
    return [
        FeedEvent(
            # The state is part of the key: two changes at one instant are two events.
            key=f"rsvp-{row.id}-{row.updated_at.timestamp():.6f}-{row.last_change}-"
            f"{row.answer}-{row.seats}-{row.status}-{row.attended}",
            type=f"rsvp.{row.last_change}",
            occurred_at=row.updated_at,
            data={
                "contact": row.contact,
                "event": row.event_key,
                "channel": row.channel,  # of the invitation answered
                "answer": row.answer,
                "seats": row.seats,
                "status": row.status,
                "answered_by": row.answered_by,
                "answered_at": None if row.answered_at is None else iso(row.answered_at),
                "attended": row.attended,
            },
        )
    ]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


_SALE_COLUMNS = (
    select(
        Sale.id,
        Sale.invoice_ref,
        Sale.product,
        Sale.quantity,
        Sale.amount,
        Sale.status,
        Sale.sold_at,
        Sale.created_at,
        Sale.declared_by,
        Sale.source,
        Sale.reviewed_at,
        Sale.review_reason,
        Contact.external_id.label("contact"),  # type: ignore[attr-defined]
        Company.external_id.label("company"),  # type: ignore[attr-defined]
    )
    .outerjoin(Contact, Contact.id == Sale.contact_id)  # type: ignore[arg-type]
    .join(Company, Company.id == Sale.company_id)  # type: ignore[arg-type]
)

SOURCES: tuple[Source, ...] = (
    Source(
        "event",
        Event,
        select(
            Event.id,
            Event.type,
            Event.occurred_at,
            Event.channel,
            Event.delivery_id,
            Event.message_id,
            Event.machine,
            Event.data,
            Contact.external_id.label("contact"),  # type: ignore[attr-defined]
            Campaign.key.label("campaign"),
            Message.step,  # type: ignore[attr-defined]
        )
        .outerjoin(Contact, Contact.id == Event.contact_id)  # type: ignore[arg-type]
        .outerjoin(Message, Message.id == Event.message_id)  # type: ignore[arg-type]
        .outerjoin(Campaign, Campaign.id == Message.campaign_id),  # type: ignore[arg-type]
        (Event.id,),
        _events,
    ),
    Source(
        "participant",
        Participant,
        select(
            Participant.id,
            Participant.challenge_key,
            Participant.team_key,
            Participant.registered_at,
            Participant.via,
            Contact.external_id.label("contact"),  # type: ignore[attr-defined]
        ).join(Contact, Contact.id == Participant.contact_id),  # type: ignore[arg-type]
        (Participant.id,),
        _registration,
    ),
    Source("sale", Sale, _SALE_COLUMNS, (Sale.id,), _declaration),
    Source(
        "sale_review",
        Sale,
        _SALE_COLUMNS.where(Sale.reviewed_at.is_not(None)),  # type: ignore[union-attr]
        (Sale.reviewed_at, Sale.id),
        _review,
        reread_window=REREAD_WINDOW,
    ),
    Source(
        "redemption",
        Redemption,
        select(
            Redemption.id,
            Redemption.reward_key,
            Redemption.points,
            Redemption.created_at,
            Contact.external_id.label("contact"),  # type: ignore[attr-defined]
        ).join(Contact, Contact.id == Redemption.contact_id),  # type: ignore[arg-type]
        (Redemption.id,),
        _redemption,
    ),
    # A row is updated in place by each answer, promotion and attendance: read again
    # whenever its updated_at moves, like a sale's review.
    Source(
        "rsvp",
        Rsvp,
        select(
            Rsvp.id,
            Rsvp.event_key,
            Rsvp.channel,
            Rsvp.answer,
            Rsvp.seats,
            Rsvp.status,
            Rsvp.answered_by,
            Rsvp.answered_at,
            Rsvp.attended,
            Rsvp.updated_at,
            Rsvp.last_change,
            Contact.external_id.label("contact"),  # type: ignore[attr-defined]
        ).join(Contact, Contact.id == Rsvp.contact_id),  # type: ignore[arg-type]
        (Rsvp.updated_at, Rsvp.id),
        _rsvp,
        reread_window=REREAD_WINDOW,
    ),
)
