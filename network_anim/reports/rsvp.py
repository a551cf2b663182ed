"""An event's RSVP funnel: invited → answered → yes → attended, per channel of the
invitation (the report's ``rsvp`` key, docs/report-json.md).

* invited: contacts sent the event's invitation, counted on the channel of their latest
  invitation sent (an SMS that failed over to email counts as email);
* answered: those with an answer (yes, no or maybe: an unknown word is no answer), on
  the channel of the invitation they answered;
* yes: their answer is yes now, seat confirmed or on the waiting list;
* attended: marked as present by ``netanim import attendance`` (a contact who came
  without answering counts here too).

The whole life of the event is counted, whatever the report's period.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rich.table import Table
from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.config.event_campaigns import INVITATION, campaign_id
from network_anim.config.settings import EventConfig
from network_anim.db.models import Campaign, Delivery, Message, Rsvp

STAGES = ("invited", "answered", "yes", "attended")


@dataclass(frozen=True)
class RsvpRow:
    channel: str
    invited: int
    answered: int
    yes: int
    attended: int


@dataclass(frozen=True)
class RsvpFunnel:
    event: str
    name: str
    capacity: int
    seats_confirmed: int
    waiting: int
    rows: tuple[RsvpRow, ...]  # per channel of the invitation
    totals: RsvpRow  # channel "all"


def compute_rsvp(session: Session, events: tuple[EventConfig, ...]) -> tuple[RsvpFunnel, ...]:
    return tuple(_funnel(session, event) for event in events)


def _funnel(session: Session, event: EventConfig) -> RsvpFunnel:
    latest = (
        select(Delivery.contact_id, func.max(Delivery.sent_at).label("at"))
        .join(Message, Message.id == Delivery.message_id)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(
            Campaign.key == campaign_id(event, INVITATION),
            Delivery.sent_at.is_not(None),  # type: ignore[union-attr]
        )
        .group_by(Delivery.contact_id)
        .subquery()
    )
    invited: Counter[str] = Counter(
        dict(
            session.execute(
                select(Delivery.channel, func.count(func.distinct(Delivery.contact_id)))
                .join(
                    latest,
                    (latest.c.contact_id == Delivery.contact_id)
                    & (latest.c.at == Delivery.sent_at),
                )
                .join(Message, Message.id == Delivery.message_id)
                .join(Campaign, Campaign.id == Message.campaign_id)
                .where(Campaign.key == campaign_id(event, INVITATION))
                .group_by(Delivery.channel)
            ).all()
        )
    )
    counts = {stage: Counter[str]() for stage in STAGES[1:]}
    seats = waiting = 0
    for row in session.scalars(select(Rsvp).where(Rsvp.event_key == event.id)):
        channel = row.channel or "none"
        counts["answered"][channel] += row.answer is not None
        counts["yes"][channel] += row.answer == "yes"
        counts["attended"][channel] += bool(row.attended)
        seats += row.seats if row.status == "confirmed" else 0
        waiting += row.status == "waiting"
    channels = sorted(set(invited) | {c for found in counts.values() for c in found if found[c]})
    rows = tuple(
        RsvpRow(c, invited[c], counts["answered"][c], counts["yes"][c], counts["attended"][c])
        for c in channels
    )
    totals = RsvpRow("all", *(sum(getattr(r, stage) for r in rows) for stage in STAGES))
    return RsvpFunnel(event.id, event.name, event.capacity, seats, waiting, rows, totals)


def rsvp_table(funnel: RsvpFunnel) -> Table:
    """The funnel as a terminal table (reports/terminal.py)."""
    table = Table(
        title=f"Event {funnel.event}: {funnel.name} — {funnel.seats_confirmed} of "
        f"{funnel.capacity} seats confirmed, {funnel.waiting} waiting",
        title_justify="left",
    )
    table.add_column("invitation channel")
    for stage in STAGES:
        table.add_column(stage, justify="right")
    for row in (*funnel.rows, funnel.totals):
        table.add_row(row.channel, *(str(getattr(row, stage)) for stage in STAGES))
    return table
