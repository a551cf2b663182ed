"""Fallbacks: the planner decides the next channel of a delivery that failed for good.

The outbox only marks a row whose send failed for good (an SMTP 550, a provider opt-out,
a Twilio "undelivered" callback) with ``fallback_due``, in the transaction that records
the failure. This stage picks the marked rows up and plans each one's next channel the
way every delivery is planned: through the router, with the contact's profile read now
(a consent withdrawn meanwhile counts), the legal window of the channel in the contact's
zone and company country, quiet hours, and, for a marketing message, the frequency cap of
the channel it lands on. A fallback the router refuses (the cap is reached, no channel
left) is held: nothing is sent and the failed row says why.

Crash-safe and idempotent: the new row and the cleared mark are one transaction, and the
new row's key is ``"<failed row's key>><channel>"`` (inserted with ON CONFLICT DO NOTHING),
so a crash before the planning leaves the mark for the next run, and two planners at
once never plan a fallback twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.channels.email_mime import message_key_hash
from network_anim.compose.composer import Composer, message_context
from network_anim.config.settings import UrgencyPolicy
from network_anim.db.models import Campaign, Company, Contact, Delivery, Message
from network_anim.domain import DeliveryStatus, MessageKind, Urgency
from network_anim.errors import UserError
from network_anim.outbox.stats import DispatchStats
from network_anim.planning.planner import (
    RoutingInputs,
    _existing_keys,
    _insert,
    contact_profile,
    make_composer,
    routing_inputs,
)
from network_anim.routing.router import MessageSpec, Routing, RoutingPolicy, route

_BATCH = 200  # marked rows per transaction: a mass bounce is planned in bounded steps
_DETAIL = 200  # characters of the provider's answer kept in the fallback's reason


@dataclass
class FallbackStats:
    # New rows by channel; ``deferred`` of them wait for a window or quiet hours.
    planned: Counter[str] = field(default_factory=Counter)
    deferred: Counter[str] = field(default_factory=Counter)
    # Refused by the router (frequency cap, no channel left), by the channel tried.
    held: Counter[str] = field(default_factory=Counter)
    # Planned rows due now: a drain has more to send.
    due_now: int = 0


def plan_fallbacks(app: App, *, ids: Sequence[int] | None = None) -> FallbackStats:
    """Plan the fallback of every marked row (or of the marked rows among ``ids``)."""
    stats = FallbackStats()
    composer = make_composer(app)
    after = 0
    while True:
        with Session(app.engine) as session, session.begin():
            query = (
                select(Delivery)
                .where(Delivery.fallback_due.is_(True), Delivery.id > after)  # type: ignore[attr-defined, operator]
                .order_by(Delivery.id)
                .limit(_BATCH)
                # Two planners at once (two daemons on PostgreSQL) take distinct rows.
                .with_for_update(skip_locked=True)
            )
            if ids is not None:
                query = query.where(Delivery.id.in_(list(ids)))  # type: ignore[union-attr]
            rows = list(session.scalars(query))
            if not rows:
                return stats
            _Batch(app, session, composer, stats).plan(rows)
        if len(rows) < _BATCH:
            return stats
        after = rows[-1].id or after


def plan_retries(
    app: App, session: Session, rows: Sequence[Delivery], *, at: datetime
) -> FallbackStats:
    """Plan, in the caller's transaction, one more try of each of these rows (soft
    bounces: the relay accepted them, the mailbox did not) on its own channel at ``at``,
    routed like any delivery: a consent withdrawn or an address marked invalid since
    moves it to the row's next channel. The new row's key is ``"<key>><channel>"``, so a
    row is retried once (a second report of the same send plans nothing), and the retry's
    own soft bounce plans the next one."""
    stats = FallbackStats()
    if rows:
        _Batch(app, session, make_composer(app), stats, retry_at=at).plan(list(rows))
    return stats


def fail_for_good(delivery: Delivery, *, status: DeliveryStatus, error: str, now: datetime) -> bool:
    """A row the provider accepted, then could not deliver (a Twilio "undelivered"
    callback, an email's hard bounce): as final as a refused send, so the message goes on
    by the router's next channel. Marks it for the planning stage, in the caller's
    transaction; the caller runs ``plan_fallbacks(app, ids=[...])`` after its commit
    (a crash in between leaves the mark for the next drain). Returns whether a fallback
    is due."""
    delivery.status = status.value
    delivery.last_error = error[:1000]
    delivery.updated_at = now
    if delivery.fallback:
        delivery.fallback_due = True
        return True
    return False


async def drain_with_fallbacks(
    app: App, drain: Callable[[], Awaitable[DispatchStats]]
) -> DispatchStats:
    """Drain the outbox, plan the fallbacks of what failed, and drain again while some
    are due now: what the sender loops run (``send_due``, the daemon's dispatch tick,
    the simulation). The fallbacks planned land in ``DispatchStats.fallbacks`` (held ones
    in ``fallbacks_held``)."""
    stats = DispatchStats()
    # First what an earlier run left marked (a crash, a webhook that died after its commit).
    planned = await asyncio.to_thread(plan_fallbacks, app)
    _count(stats, planned)
    while True:
        stats.add(await drain())
        planned = await asyncio.to_thread(plan_fallbacks, app)
        _count(stats, planned)
        if not planned.due_now:
            return stats


def _count(stats: DispatchStats, planned: FallbackStats) -> None:
    stats.fallbacks.update(planned.planned)
    stats.fallbacks_held.update(planned.held)


@dataclass
class _Batch:
    app: App
    session: Session
    composer: Composer
    stats: FallbackStats
    policies: dict[tuple[str, tuple[str, ...]], RoutingPolicy] = field(default_factory=dict)
    # Set for soft-bounce retries (plan_retries): the rows' own channel is tried again,
    # routed at this time (legal windows and quiet hours from it), the fallbacks after it.
    retry_at: datetime | None = None

    def plan(self, rows: list[Delivery]) -> None:
        session, now = self.session, self.app.clock.now()
        messages = _by_id(session, Message, {r.message_id for r in rows})
        contacts = _by_id(session, Contact, {r.contact_id for r in rows})
        companies = _by_id(session, Company, {c.company_id for c in contacts.values()})
        campaigns = _by_id(session, Campaign, {m.campaign_id for m in messages.values()})
        # Every channel, not only the listed ones: the router may pick a stand-in.
        existing = _existing_keys(
            session, [f"{r.idempotency_key}>{ch}" for r in rows for ch in self.app.definitions]
        )
        inputs: dict[int, RoutingInputs] = {}
        new_rows: list[dict[str, Any]] = []
        for row in rows:
            row.fallback_due = False
            row.updated_at = now
            channels = [row.channel, *row.fallback] if self.retry_at else row.fallback
            if not channels:
                continue
            message = messages[row.message_id]
            if row.message_id not in inputs:
                # Counted for the contacts of this batch only: one IN query per message.
                ids = [r.contact_id for r in rows if r.message_id == row.message_id]
                inputs[row.message_id] = routing_inputs(
                    self.app, session, ids, message.id, MessageKind(message.kind), now
                )
            contact = contacts[row.contact_id]
            company = companies[contact.company_id]
            routing = route(
                MessageSpec(Urgency(message.urgency), MessageKind(message.kind)),
                contact_profile(contact, company, *inputs[row.message_id].of(contact.id)),
                self._policy(message.urgency, channels),
                self.retry_at or now,
            )
            planned = self._row(
                row,
                message,
                campaigns[message.campaign_id],
                contact,
                company,
                routing,
                existing,
                now,
            )
            if planned is None:
                continue
            new_rows.append(planned)
            channel = planned["channel"]
            if row.marketing and channel in self.app.config.routing.frequency_caps:
                # The next fallback of this contact in the batch sees this one in the cap.
                per_channel = inputs[row.message_id].counts.setdefault(row.contact_id, {})
                per_channel[channel] = per_channel.get(channel, 0) + 1
        if new_rows:
            _insert(session, new_rows)

    def _policy(self, urgency: str, fallback: list[str]) -> RoutingPolicy:
        """The message's policy with the failed row's remaining channels as the ones to
        try: the first is the one to send by, the others stand in if it is refused (an
        opt-out since), as for any message whose channel is impossible."""
        key = (urgency, tuple(fallback))
        if key not in self.policies:
            base = self.app.policy
            tried = UrgencyPolicy(send=(fallback[0],), fallback=tuple(fallback[1:]))
            self.policies[key] = dataclasses.replace(
                base, urgencies={**base.urgencies, Urgency(urgency): tried}
            )
        return self.policies[key]

    def _row(
        self,
        failed: Delivery,
        message: Message,
        campaign: Campaign,
        contact: Contact,
        company: Company,
        routing: Routing,
        existing: set[str],
        now: datetime,
    ) -> dict[str, Any] | None:
        """The fallback's outbox row, or None when it is held (noted on the failed row)
        or already planned."""
        detail = failed.last_error.split("; fallback", 1)[0][:_DETAIL]
        if routing.unreachable:
            self.stats.held[failed.channel if self.retry_at else failed.fallback[0]] += 1
            self._note(failed, f"fallback held: {routing.unreachable}")
            return None
        choice = routing.choices[0]
        key = f"{failed.idempotency_key}>{choice.channel}"
        if key in existing:
            return None  # planned before (a retried webhook, a replay)
        personal = failed.extra.get("vars") or {}
        try:
            composed = self.composer.compose(
                channel=choice.channel,
                message=message,
                base_context={
                    **message_context(self.app.config, campaign, message, now.date()),
                    **personal,
                },
                contact=contact,
                company=company,
                post_id=int(failed.extra.get("post_id", 0)),
                delivery_key=key,
            )
        except (UserError, ValueError) as exc:
            self.stats.held[choice.channel] += 1
            self._note(failed, f"fallback to {choice.channel} impossible: {exc}")
            return None
        extra = dict(composed.extra)
        if personal:
            extra["vars"] = dict(personal)  # the next fallback renders with them too
        if composed.headers:
            extra["headers"] = composed.headers
        due_at = choice.not_before or self.retry_at or now
        if choice.not_before is not None and choice.not_before > now:
            extra["deferred_from"] = now.isoformat()  # the router held it back from now
        self.stats.planned[choice.channel] += 1
        if due_at > now:
            self.stats.deferred[choice.channel] += 1
        else:
            self.stats.due_now += 1
        return {
            "idempotency_key": key,
            "key_hash": message_key_hash(key) if choice.channel == "email" else None,
            "message_id": failed.message_id,
            "contact_id": failed.contact_id,
            "channel": choice.channel,
            "status": DeliveryStatus.PENDING.value,
            "marketing": failed.marketing,
            "due_at": due_at,
            "reason": f"{self._why(failed, detail)}; {choice.reason}"[:500],
            "fallback": list(choice.fallback),
            "parent_id": failed.id,
            "attempts": 0,
            "last_error": "",
            "subject": composed.rendered.subject[:300],
            "body_text": composed.rendered.text,
            "body_html": composed.rendered.html,
            "extra": extra,
            "cost_estimate": composed.cost_estimate,
            "fallback_due": False,
            "created_at": now,
            "updated_at": now,
        }

    def _why(self, failed: Delivery, detail: str) -> str:
        if self.retry_at is not None:
            return f"retry: {failed.channel} soft-bounced ({detail})"
        return f"fallback: {failed.channel} failed ({detail})"

    @staticmethod
    def _note(failed: Delivery, note: str) -> None:
        failed.last_error = f"{failed.last_error}; {note}"[:1000]


def _by_id(session: Session, model: Any, ids: set[int]) -> dict[int, Any]:
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(list(ids))))}


__all__ = [
    "FallbackStats",
    "drain_with_fallbacks",
    "fail_for_good",
    "plan_fallbacks",
    "plan_retries",
]
