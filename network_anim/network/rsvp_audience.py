"""The audiences an event's reminders and last call go to, read from the RSVP table when
they fire: those holding a confirmed seat, and those invited who never answered."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, not_

from network_anim.config.event_campaigns import INVITATION
from network_anim.db.models import Campaign, Contact, Delivery, Message, Rsvp


def invited(event_key: str) -> ColumnElement[bool]:
    """The contact was sent the event's invitation, by any channel."""
    return exists().where(
        Delivery.contact_id == Contact.id,
        Delivery.sent_at.is_not(None),  # type: ignore[union-attr]
        Message.id == Delivery.message_id,
        Campaign.id == Message.campaign_id,
        Campaign.key == f"{event_key}-{INVITATION}",
    )


def rsvp_test(event_key: str, rsvp: str) -> tuple[str, ColumnElement[bool]]:
    """The words ``audience explain`` shows and the SQL test of ``rsvp``."""
    if rsvp == "yes":
        return (
            f"holds a confirmed seat at event {event_key}",
            exists().where(
                Rsvp.event_key == event_key,
                Rsvp.contact_id == Contact.id,
                Rsvp.answer == "yes",
                Rsvp.status == "confirmed",
            ),
        )
    answered = exists().where(
        Rsvp.event_key == event_key,
        Rsvp.contact_id == Contact.id,
        Rsvp.answer.is_not(None),  # type: ignore[union-attr]
    )
    return (
        f"invited to event {event_key}, no answer yet",
        and_(invited(event_key), not_(answered)),
    )
