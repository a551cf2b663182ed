"""What a feedback event does to its delivery and its contact: one place, whatever the source.

``apply_feedback(app, events)`` records each event once (``feedback.key``, inserted with
ON CONFLICT DO NOTHING: the same DSN read twice, from the mailbox and from a file, or a
webhook retried, changes nothing the second time), finds what it is about (``resolve``),
then, per kind:

* hard bounce: the delivery is ``bounced`` (a ``bounced`` event, as a Twilio
  "undelivered" callback writes, so reports count it) and marked for its fallback, which
  the planner plans after the commit (legal windows, quiet hours, caps); the contact's
  address is marked invalid with the reason and the date, so the router stops using it;
* soft bounce: the delivery is ``bounced`` (a ``soft_bounced`` event) and one retry on
  its channel is planned through the outbox, an hour later per soft bounce already seen
  (1 h, 2 h, 4 h...), never when the message was reported delivered, and only once per
  row (the retry's key); ``soft_to_hard`` soft bounces of one address within
  ``soft_window_days`` count as a hard bounce;
* complaint: the contact is opted out of marketing email (consent row
  ``email:marketing``, basis ``opted_out``, source ``complaint``): operational email
  still goes;
* unsubscribe: opted out of email, as the one-click unsubscribe link does;
* auto-reply: recorded, nothing else.

One transaction per call: a crash leaves either the whole batch applied or none of it
(reading it again applies it then). Every time comes from ``app.clock``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from network_anim.app import App
from network_anim.bounces.events import FeedbackEvent, FeedbackKind
from network_anim.bounces.resolve import Resolved, Resolver
from network_anim.db.models import Contact, Delivery, Event, Feedback
from network_anim.domain import DeliveryStatus, LawfulBasis
from network_anim.planning.fallbacks import fail_for_good, plan_fallbacks, plan_retries
from network_anim.planning.records import (
    current_basis,
    event_row,
    insert_event,
    opt_out,
    set_consent,
)
from network_anim.routing.router import marketing_channel

log = logging.getLogger(__name__)

_FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]
_REASON = 120  # characters of the server's words kept in the invalid mark
_SOFT_RETRY_BASE = timedelta(hours=1)
_SOFT_RETRY_MAX = timedelta(hours=24)
# An email the relay accepted, or may have (UNKNOWN): a bounce proves it was not delivered.
_BOUNCEABLE = frozenset({DeliveryStatus.SENT.value, DeliveryStatus.UNKNOWN.value})


@dataclass
class FeedbackStats:
    """What one call did; ``to_json()`` for ``--json``."""

    received: int = 0
    applied: Counter[str] = field(default_factory=Counter)  # new events by kind
    duplicates: int = 0  # events already recorded (same key)
    unresolved: int = 0  # recorded, but no delivery nor contact found
    forged_tokens: int = 0  # tokens whose signature did not verify (ignored as clues)
    bounced: int = 0  # deliveries now bounced (hard and soft)
    retries: int = 0  # soft-bounce retries planned
    marked_invalid: int = 0  # contacts whose address is now marked invalid
    opted_out: int = 0  # contacts opted out (complaints, unsubscribe requests)
    fallbacks: Counter[str] = field(default_factory=Counter)  # planned, by channel
    fallbacks_held: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "applied": dict(self.applied),
            "duplicates": self.duplicates,
            "unresolved": self.unresolved,
            "forged_tokens": self.forged_tokens,
            "bounced": self.bounced,
            "retries": self.retries,
            "marked_invalid": self.marked_invalid,
            "opted_out": self.opted_out,
            "fallbacks": dict(self.fallbacks),
            "fallbacks_held": dict(self.fallbacks_held),
        }


def apply_feedback(app: App, events: Iterable[FeedbackEvent]) -> FeedbackStats:
    """Apply a batch of feedback events in one transaction, then plan the fallbacks of
    the deliveries it bounced for good."""
    stats = FeedbackStats()
    now = app.clock.now()
    fall_back: list[int] = []
    with Session(app.engine) as session, session.begin():
        batch = _Batch(app, session, Resolver(app, session), stats, now)
        for event in events:
            stats.received += 1
            fall_back.extend(batch.apply(event))
    if fall_back:
        # After the commit: were this process to die now, the rows stay marked and the
        # next drain's planning stage plans their fallbacks.
        planned = plan_fallbacks(app, ids=fall_back)
        stats.fallbacks.update(planned.planned)
        stats.fallbacks_held.update(planned.held)
    return stats


@dataclass
class _Batch:
    app: App
    session: Session
    resolver: Resolver
    stats: FeedbackStats
    now: datetime

    def apply(self, event: FeedbackEvent) -> list[int]:
        """Record one event and apply it; the ids of rows now due for their fallback."""
        found = self.resolver.resolve(event.ref)
        if found.forged:
            self.stats.forged_tokens += 1
        occurred = event.occurred_at or self.now
        contact_ids = found.contact_ids
        feedback_id = self._record(event, found, occurred)
        if feedback_id is None:
            self.stats.duplicates += 1
            return []
        self.stats.applied[event.kind.value] += 1
        if found.delivery is None and not contact_ids:
            self.stats.unresolved += 1
            log.info(
                "%s from %s (%s) matches no delivery nor contact: recorded only",
                event.kind.value,
                event.source,
                event.ref.recipient or "no recipient",
            )
            self._outcome(feedback_id, "unresolved")
            return []
        kind = event.kind
        if kind == FeedbackKind.SOFT_BOUNCE:
            count = self._soft_count(contact_ids, found.address, occurred)
            threshold = self.app.config.bounces.soft_to_hard
            if count >= threshold:
                days = self.app.config.bounces.soft_window_days
                reason = f"{count} soft bounces in {days} days (last: {_words(event)})"
                return self._hard(event, found, feedback_id, occurred, reason)
            return self._soft(event, found, feedback_id, occurred, count)
        if kind == FeedbackKind.HARD_BOUNCE:
            return self._hard(event, found, feedback_id, occurred, _words(event))
        if kind == FeedbackKind.COMPLAINT:
            self._complaint(event, found, feedback_id, occurred)
        elif kind == FeedbackKind.UNSUBSCRIBE:
            self._unsubscribe(event, found, feedback_id)
        else:
            self._outcome(feedback_id, "recorded")
        return []

    # -- kinds ----------------------------------------------------------------------------

    def _hard(
        self,
        event: FeedbackEvent,
        found: Resolved,
        feedback_id: int,
        occurred: datetime,
        reason: str,
    ) -> list[int]:
        done: list[str] = []
        due: list[int] = []
        delivery = found.delivery
        if delivery is not None and delivery.status in _BOUNCEABLE:
            self._event("bounced", event, delivery, occurred, reason)
            self.stats.bounced += 1
            done.append("bounced")
            error = f"bounced: {reason}"
            if fail_for_good(delivery, status=DeliveryStatus.BOUNCED, error=error, now=self.now):
                due.append(delivery.id)  # type: ignore[arg-type]
                done.append("fallback due")
        marked = self._mark_invalid(found, reason)
        if marked:
            done.append(f"{marked} address(es) marked invalid")
        self._outcome(feedback_id, ", ".join(done) or "recorded")
        return due

    def _soft(
        self,
        event: FeedbackEvent,
        found: Resolved,
        feedback_id: int,
        occurred: datetime,
        count: int,
    ) -> list[int]:
        delivery = found.delivery
        if delivery is None or delivery.status not in _BOUNCEABLE:
            self._outcome(feedback_id, f"soft bounce {count}: no retry (no sent delivery)")
            return []
        if self._delivered(delivery):
            # A provider said it arrived: a retry would be a second copy.
            self._outcome(feedback_id, f"soft bounce {count}: no retry (reported delivered)")
            return []
        words = _words(event)
        self._event("soft_bounced", event, delivery, occurred, words)
        delivery.status = DeliveryStatus.BOUNCED.value
        delivery.last_error = f"soft bounce: {words}"[:1000]
        delivery.updated_at = self.now
        self.stats.bounced += 1
        delay = min(_SOFT_RETRY_MAX, _SOFT_RETRY_BASE * (2 ** max(0, count - 1)))
        planned = plan_retries(self.app, self.session, [delivery], at=self.now + delay)
        self.stats.retries += sum(planned.planned.values())
        held = sum(planned.held.values())
        what = "retry planned" if planned.planned else ("retry held" if held else "no retry")
        self._outcome(feedback_id, f"soft bounce {count}: {what}")
        return []

    def _complaint(
        self, event: FeedbackEvent, found: Resolved, feedback_id: int, occurred: datetime
    ) -> None:
        delivery = found.delivery
        changed = 0
        for contact_id in found.contact_ids:
            if current_basis(self.session, contact_id, "email") == LawfulBasis.OPTED_OUT.value:
                continue  # opted out of all email already: a complaint must not narrow it
            previous = set_consent(
                self.session,
                contact_id=contact_id,
                channel=marketing_channel("email"),
                basis=LawfulBasis.OPTED_OUT,
                source="complaint",
                now=self.now,
            )
            changed += previous != LawfulBasis.OPTED_OUT.value
        if delivery is not None:
            self._event("complained", event, delivery, occurred, _words(event))
        else:
            for contact_id in found.contact_ids:
                self._contact_event("complained", event, contact_id, occurred)
        self.stats.opted_out += changed
        self._outcome(feedback_id, f"opted out of marketing email: {changed}")

    def _unsubscribe(self, event: FeedbackEvent, found: Resolved, feedback_id: int) -> None:
        delivery = found.delivery
        changed = 0
        for contact_id in found.contact_ids:
            changed += opt_out(
                self.session,
                contact_id=contact_id,
                channel="email",
                source=f"unsubscribe:{event.source}",
                now=self.now,
                delivery_id=delivery.id if delivery is not None else None,
                message_id=delivery.message_id if delivery is not None else None,
            )
        self.stats.opted_out += changed
        self._outcome(feedback_id, f"opted out of email: {changed}")

    # -- helpers ----------------------------------------------------------------------------

    def _record(self, event: FeedbackEvent, found: Resolved, occurred: datetime) -> int | None:
        connection = self.session.connection()
        module = postgresql if connection.dialect.name == "postgresql" else sqlite
        delivery = found.delivery
        row = {
            "key": event.key[:200],
            "kind": event.kind.value,
            "source": event.source[:40],
            "delivery_id": delivery.id if delivery is not None else None,
            "contact_id": found.contact_ids[0] if found.contact_ids else None,
            "address": (found.address or "")[:254],
            "occurred_at": occurred,
            "received_at": self.now,
            "status": event.status[:40],
            "diagnostic": event.diagnostic[:500],
            "outcome": "",
        }
        statement = module.insert(_FEEDBACK).on_conflict_do_nothing(index_elements=["key"])
        return connection.execute(statement.returning(_FEEDBACK.c.id), row).scalar()

    def _outcome(self, feedback_id: int, outcome: str) -> None:
        self.session.connection().execute(
            _FEEDBACK.update().where(_FEEDBACK.c.id == feedback_id).values(outcome=outcome[:200])
        )

    def _soft_count(self, contact_ids: list[int], address: str | None, occurred: datetime) -> int:
        """Soft-bounced sends of this address (this one included) in the window before it:
        two reports about one send (a relay's "delayed", then its "failed") count once."""
        if not contact_ids:
            return 1
        since = occurred - timedelta(days=self.app.config.bounces.soft_window_days)
        sends = func.coalesce(Feedback.delivery_id, -Feedback.id)  # type: ignore[operator]
        query = select(func.count(func.distinct(sends))).where(
            Feedback.contact_id == contact_ids[0],
            Feedback.kind == FeedbackKind.SOFT_BOUNCE.value,
            Feedback.occurred_at >= since,
            Feedback.occurred_at <= occurred,
        )
        if address:
            query = query.where(Feedback.address == address)
        return int(self.session.scalar(query) or 0)

    def _delivered(self, delivery: Delivery) -> bool:
        return (
            self.session.scalar(
                select(Event.id)
                .where(Event.delivery_id == delivery.id, Event.type == "delivered")
                .limit(1)
            )
            is not None
        )

    def _mark_invalid(self, found: Resolved, reason: str) -> int:
        """Mark the address of each contact invalid, unless it changed since the report's
        address (a new import already replaced it) or is marked already (its date stays
        the first bounce's)."""
        marked = 0
        for contact in self.session.scalars(
            select(Contact).where(Contact.id.in_(found.contact_ids))  # type: ignore[union-attr]
        ):
            current = (contact.email or "").lower()
            if not current or (found.address and found.address != current):
                continue
            if contact.email_invalid_at is not None:
                continue
            contact.email_invalid_at = self.now
            contact.email_invalid_reason = reason[:300]
            contact.updated_at = self.now
            marked += 1
        self.stats.marked_invalid += marked
        return marked

    def _event(
        self,
        type_: str,
        event: FeedbackEvent,
        delivery: Delivery,
        occurred: datetime,
        words: str,
    ) -> None:
        insert_event(
            self.session.connection(),
            event_row(
                type=type_,
                occurred_at=occurred,
                channel=delivery.channel,
                contact_id=delivery.contact_id,
                delivery_id=delivery.id,
                message_id=delivery.message_id,
                data={"source": event.source, "kind": event.kind.value, "detail": words[:300]},
                dedupe_key=f"feedback:{event.key}"[:200],
            ),
        )

    def _contact_event(
        self, type_: str, event: FeedbackEvent, contact_id: int, occurred: datetime
    ) -> None:
        insert_event(
            self.session.connection(),
            event_row(
                type=type_,
                occurred_at=occurred,
                channel="email",
                contact_id=contact_id,
                data={"source": event.source, "kind": event.kind.value},
                dedupe_key=f"feedback:{event.key}:{contact_id}"[:200],
            ),
        )


def _words(event: FeedbackEvent) -> str:
    """The short reason a person reads: the status code and the server's words."""
    words = " ".join(event.diagnostic.split())
    if event.status and event.status not in words:
        words = f"{event.status} {words}".strip()
    words = words or event.kind.value.replace("_", " ")
    return words if len(words) <= _REASON else words[: _REASON - 1] + "…"


__all__ = ["FeedbackStats", "apply_feedback"]
