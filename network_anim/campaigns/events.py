"""Answers to an event's invitation (docs/events.md): yes with a number of seats, no or
maybe, from an SMS reply or the portal; capacity and the waiting list; attendance.

Rules, each applied in one transaction per answer (on PostgreSQL under an advisory lock
per event, so two answers never take the last seat twice):

* A yes takes its seats if they fit in the capacity and nobody is waiting; otherwise it
  goes to the end of the waiting list (first answered, first served).
* A contact who holds seats and answers again keeps them if the new number still fits.
* A no or a maybe frees the contact's seats; the waiting list is then served in order,
  as long as its first answer fits, and each contact promoted is told through the outbox
  (the event's ``<id>-promoted`` message, operational and urgent: SMS first).
* Answers close when the event starts.

Which invitation an SMS answers: the latest invitation sent by SMS to that number whose
event has not started (a reply keyword names the event instead).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.app import App
from network_anim.config.event_campaigns import INVITATION, PROMOTED, campaign_id
from network_anim.config.settings import EventConfig
from network_anim.db.models import Campaign, Company, Contact, Delivery, Message, Rsvp
from network_anim.errors import UserError
from network_anim.planning.messages import step_request
from network_anim.planning.planner import plan_in_session

YES, NO, MAYBE = "yes", "no", "maybe"
CONFIRMED, WAITING = "confirmed", "waiting"
# Rsvp.last_change: what the webhook feed announces (rsvp.answered, .promoted, .attended).
CHANGE_ANSWERED, CHANGE_PROMOTED, CHANGE_ATTENDED = "answered", "promoted", "attended"


@dataclass(frozen=True, slots=True)
class Invitation:
    """An invitation a contact may still answer: the event and the delivery that carried it."""

    event: EventConfig
    delivery_id: int | None
    channel: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an answer did: its status (confirmed, waiting, or None for no and maybe),
    the seats held, the place in the waiting list, and who got a seat because of it."""

    answer: str
    seats: int = 0
    status: str | None = None
    position: int | None = None
    promoted: tuple[int, ...] = field(default_factory=tuple)


def open_events(app: App, now: datetime) -> list[EventConfig]:
    """The events whose answers are still open (not started yet, in [engine] timezone)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(app.config.engine.timezone)
    return [e for e in app.config.events if e.start.replace(tzinfo=zone) > now]


def latest_invitation(
    app: App,
    session: Session,
    contact_id: int,
    *,
    events: Iterable[EventConfig],
    channel: str | None = None,
) -> Invitation | None:
    """The latest invitation delivery of one of ``events`` sent to the contact (by
    ``channel`` when given)."""
    by_key = {campaign_id(e, INVITATION): e for e in events}
    if not by_key:
        return None
    query = (
        select(Delivery.id, Delivery.channel, Campaign.key)
        .join(Message, Message.id == Delivery.message_id)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(
            Delivery.contact_id == contact_id,
            Delivery.sent_at.is_not(None),  # type: ignore[union-attr]
            Campaign.key.in_(by_key),  # type: ignore[attr-defined]
        )
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc())  # type: ignore[union-attr]
        .limit(1)
    )
    if channel is not None:
        query = query.where(Delivery.channel == channel)
    row = session.execute(query).first()
    return None if row is None else Invitation(by_key[row[2]], row[0], row[1])


def record_answer(
    app: App,
    invitation: Invitation,
    contact_id: int,
    *,
    answer: str,
    seats: int = 1,
    by: str,
) -> Outcome:
    """Record one contact's answer (see the module's rules); a number of seats outside
    1..max_seats is a :class:`UserError` and changes nothing."""
    event = invitation.event
    if answer == YES and not 1 <= seats <= event.max_seats:
        raise UserError(f"{seats} seat(s): give 1 to {event.max_seats} per answer")
    now = app.clock.now()
    with Session(app.engine) as session, session.begin():
        _lock(session, event.id)
        row = session.scalars(
            select(Rsvp).where(Rsvp.event_key == event.id, Rsvp.contact_id == contact_id)
        ).first()
        if row is None:
            row = Rsvp(event_key=event.id, contact_id=contact_id, updated_at=now)
            session.add(row)
            session.flush()  # an id: the waiting list is read without this row
        held = row.seats if row.status == CONFIRMED else 0
        status = _status(session, event, row, seats, held) if answer == YES else None
        if not (held and status == CONFIRMED):
            row.answered_at = now  # a new place in the queue, unless seats are kept
        row.answer, row.answered_by, row.updated_at = answer, by, now
        row.seats, row.status = (seats if answer == YES else 0), status
        if row.delivery_id is None:
            row.delivery_id, row.channel = invitation.delivery_id, invitation.channel
        session.flush()
        promoted = _serve_waiting_list(session, event, now)
        # Set after the promotions: a yes seated by its own answer is an answer.
        row.last_change = CHANGE_ANSWERED
        if promoted:
            _notify_promoted(app, session, event, promoted)
        position = _position(session, row) if row.status == WAITING else None
        return Outcome(answer, row.seats, row.status, position, tuple(promoted))


def current_outcome(app: App, event: EventConfig, contact_id: int) -> Outcome | None:
    """The contact's answer as it stands (the portal shows it), or None before any."""
    with Session(app.engine) as session:
        row = session.scalars(
            select(Rsvp).where(Rsvp.event_key == event.id, Rsvp.contact_id == contact_id)
        ).first()
        if row is None or row.answer is None:
            return None
        position = _position(session, row) if row.status == WAITING else None
        return Outcome(row.answer, row.seats, row.status, position)


def _lock(session: Session, event_key: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(zlib.crc32(event_key.encode()))))


def _confirmed_seats(session: Session, event_key: str) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(Rsvp.seats), 0)).where(
                Rsvp.event_key == event_key, Rsvp.status == CONFIRMED
            )
        )
        or 0
    )


def _status(session: Session, event: EventConfig, row: Rsvp, seats: int, held: int) -> str:
    """A yes's status: its seats fit (and, for a new yes, nobody waits before it)."""
    free = event.capacity - (_confirmed_seats(session, event.id) - held)
    if held and seats <= free:
        return CONFIRMED
    others_waiting = session.scalar(
        select(func.count())
        .select_from(Rsvp)
        .where(Rsvp.event_key == event.id, Rsvp.status == WAITING, Rsvp.id != row.id)
    )
    return CONFIRMED if seats <= free and not others_waiting else WAITING


def _waiting(session: Session, event_key: str) -> list[Rsvp]:
    return list(
        session.scalars(
            select(Rsvp)
            .where(Rsvp.event_key == event_key, Rsvp.status == WAITING)
            .order_by(Rsvp.answered_at, Rsvp.id)
        )
    )


def _serve_waiting_list(session: Session, event: EventConfig, now: datetime) -> list[int]:
    """Confirm the waiting answers in order while the first one fits; their contacts."""
    free = event.capacity - _confirmed_seats(session, event.id)
    promoted: list[int] = []
    for row in _waiting(session, event.id):
        if row.seats > free:
            break  # first come, first served: nobody overtakes a larger party
        row.status, free = CONFIRMED, free - row.seats
        row.updated_at, row.last_change = now, CHANGE_PROMOTED
        promoted.append(row.contact_id)
    session.flush()
    return promoted


def _position(session: Session, row: Rsvp) -> int:
    return [r.id for r in _waiting(session, row.event_key)].index(row.id) + 1


def _notify_promoted(
    app: App, session: Session, event: EventConfig, contact_ids: list[int]
) -> None:
    """The "a seat is yours" message, planned through the outbox in this transaction.
    One occurrence per event: a contact is told once, however often seats move."""
    campaign = app.config.campaign(campaign_id(event, PROMOTED))
    assert campaign is not None  # generated with the event
    contacts = session.execute(
        select(Contact, Company)
        .join(Company, Company.id == Contact.company_id)  # type: ignore[arg-type]
        .where(Contact.id.in_(contact_ids))  # type: ignore[union-attr]
        .order_by(Contact.id)
    ).all()
    request = step_request(
        app,
        session,
        campaign,
        campaign.steps[0],
        occurrence="waiting-list",
        due_at=app.clock.now(),
        contact_ids=contact_ids,
    )
    plan_in_session(app, session, request, contacts=[(c, co) for c, co in contacts])


def record_attendance(app: App, event: EventConfig, attended: Mapping[int, bool]) -> dict[str, int]:
    """Who came, by contact id, in one transaction; a contact who came without having
    answered gets a row with no answer. Returns how many rows were updated and added."""
    now = app.clock.now()
    counts = {"updated": 0, "added": 0}
    with Session(app.engine) as session, session.begin():
        rows = {
            r.contact_id: r
            for r in session.scalars(
                select(Rsvp).where(
                    Rsvp.event_key == event.id,
                    Rsvp.contact_id.in_(list(attended)),  # type: ignore[attr-defined]
                )
            )
        }
        for contact_id, came in attended.items():
            row = rows.get(contact_id)
            if row is None:
                invitation = latest_invitation(app, session, contact_id, events=[event])
                row = Rsvp(
                    event_key=event.id,
                    contact_id=contact_id,
                    delivery_id=invitation.delivery_id if invitation else None,
                    channel=invitation.channel if invitation else "",
                    updated_at=now,
                )
                session.add(row)
                counts["added"] += 1
            else:
                counts["updated"] += 1
            row.attended, row.updated_at, row.last_change = came, now, CHANGE_ATTENDED
    return counts


# The answers' words by language (the contact's; any other language gets French, like
# the portal). Fields: {name} the SMS sender, {event}, {when}, {place}, {seats},
# {position}, {prefix} the reply keyword and a space (or nothing), {max_seats}.
_WORDS: dict[str, dict[str, str]] = {
    "fr": {
        "when": "le {date} à {hour}h{minute}",
        "one_seat": "votre place est réservée",
        "seats": "vos {seats} places sont réservées",
        "confirmed": "{name} : merci, {places} pour {event}, {when}, {place}.",
        "waiting": "{name} : {event} est complet. Vous êtes sur liste d'attente, position "
        "{position} ; nous vous prévenons par SMS si une place se libère.",
        "no": "{name} : réponse enregistrée : non. Merci de nous avoir prévenus.",
        "maybe": "{name} : réponse enregistrée : peut-être. Répondez OUI pour réserver votre "
        "place à {event}, {when}.",
        "help": "{name} : réponse non comprise. Pour {event}, répondez {prefix}OUI (ou "
        "{prefix}OUI 2 pour 2 places, jusqu'à {max_seats}), {prefix}NON ou {prefix}PEUT-ETRE.",
    },
    "en": {
        "when": "on {date} at {hour}:{minute}",
        "one_seat": "your seat is booked",
        "seats": "your {seats} seats are booked",
        "confirmed": "{name}: thank you, {places} for {event}, {when}, {place}.",
        "waiting": "{name}: {event} is full. You are on the waiting list, position "
        "{position}; we will text you if a seat becomes free.",
        "no": "{name}: answer recorded: no. Thank you for letting us know.",
        "maybe": "{name}: answer recorded: maybe. Reply YES to book your seat for {event}, {when}.",
        "help": "{name}: answer not understood. For {event}, reply {prefix}YES (or "
        "{prefix}YES 2 for 2 seats, up to {max_seats}), {prefix}NO or {prefix}MAYBE.",
    },
}


def _say(app: App, event: EventConfig, language: str, key: str, **values: object) -> str:
    words = _WORDS.get(language, _WORDS["fr"])
    start = event.start
    when = words["when"].format(date=f"{start:%d/%m/%Y}", hour=f"{start:%H}", minute=f"{start:%M}")
    return words[key].format(
        name=app.config.channels.sms.sender_name,
        event=event.name,
        when=when,
        place=event.place,
        **values,
    )


def confirmation_text(app: App, event: EventConfig, outcome: Outcome, language: str = "fr") -> str:
    """The words confirming an answer (the SMS reply, the portal's notice)."""
    if outcome.answer == YES and outcome.status == CONFIRMED:
        words = _WORDS.get(language, _WORDS["fr"])
        seats = outcome.seats
        places = words["one_seat"] if seats == 1 else words["seats"].format(seats=seats)
        return _say(app, event, language, "confirmed", places=places)
    if outcome.answer == YES:
        return _say(app, event, language, "waiting", position=outcome.position)
    return _say(app, event, language, "no" if outcome.answer == NO else "maybe")


def help_text(app: App, event: EventConfig, language: str = "fr") -> str:
    """The answer to a reply that is no RSVP word: how to answer."""
    prefix = f"{event.reply_keyword} " if event.reply_keyword else ""
    return _say(app, event, language, "help", prefix=prefix, max_seats=event.max_seats)
