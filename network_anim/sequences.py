"""Nurturing sequences: enrolment, the per-contact step tick, exits and engagement branches.

Per-contact timing lives in the ``enrolment`` table (``next_due_at``, indexed): a tick
claims the due rows, plans each contact's step through the ordinary planner and router,
and advances the rows, all in one transaction, so a crash either did the step or did
not, and a restart carries on. Nothing here holds one scheduler job per contact.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlmodel import Session

from network_anim.app import App
from network_anim.audience import audience_query
from network_anim.config import Campaign as CampaignConfig
from network_anim.config import Step
from network_anim.db.models import Campaign as CampaignRow
from network_anim.db.models import (
    Company,
    Consent,
    Contact,
    Delivery,
    Enrolment,
    Event,
    Message,
    Sale,
)
from network_anim.domain import LawfulBasis, Urgency
from network_anim.errors import UserError
from network_anim.planner import MessageRequest, plan_in_session
from network_anim.timing import step_due

ACTIVE, COMPLETED, EXITED = "active", "completed", "exited"
_CLAIM_BATCH = 500
_OPT_OUT_CHANNELS = ("email", "sms", "print")


@dataclass
class SequenceStats:
    enrolled: Counter[str] = field(default_factory=Counter)
    steps: Counter[str] = field(default_factory=Counter)
    branched: int = 0
    postponed: int = 0
    completed: int = 0
    exited: Counter[str] = field(default_factory=Counter)
    # Campaign id -> why its steps could not be planned this time.
    errors: dict[str, str] = field(default_factory=dict)

    def add(self, other: SequenceStats) -> None:
        self.enrolled.update(other.enrolled)
        self.steps.update(other.steps)
        self.branched += other.branched
        self.postponed += other.postponed
        self.completed += other.completed
        self.exited.update(other.exited)
        self.errors.update(other.errors)


def nurture_campaigns(app: App) -> list[CampaignConfig]:
    return [c for c in app.config.campaigns if c.kind == "nurture" and c.enrol is not None]


# -- enrolment -----------------------------------------------------------------------------


def enrol(
    app: App,
    session: Session,
    campaign: CampaignConfig,
    contacts: Iterable[Contact],
    *,
    trigger: str,
) -> int:
    """Enrol contacts; an active enrolment is left as it is (re-enrolling is a no-op), a
    finished one starts a new cycle from the first step."""
    now = app.clock.now()
    contacts = list(contacts)
    if not contacts:
        return 0
    existing = {
        e.contact_id: e
        for e in session.scalars(
            select(Enrolment).where(
                Enrolment.campaign_key == campaign.id,
                Enrolment.contact_id.in_([c.id for c in contacts]),  # type: ignore[union-attr]
            )
        )
    }
    countries = _countries(session, contacts)
    count = 0
    for contact in contacts:
        first_due = step_due(
            campaign.steps[0], now, contact.timezone, countries[contact.company_id]
        )
        row = existing.get(contact.id or 0)
        if row is None:
            session.add(
                Enrolment(
                    campaign_key=campaign.id,
                    contact_id=contact.id,  # type: ignore[arg-type]
                    status=ACTIVE,
                    next_due_at=first_due,
                    trigger=trigger,
                    enrolled_at=now,
                    updated_at=now,
                )
            )
        elif row.status == ACTIVE:
            continue
        else:
            row.status, row.cycle, row.step_index = ACTIVE, row.cycle + 1, 0
            row.next_due_at, row.trigger, row.exit_reason = first_due, trigger, ""
            row.enrolled_at = row.updated_at = now
        count += 1
    session.flush()
    return count


def _countries(session: Session, contacts: list[Contact]) -> dict[int, str]:
    ids = sorted({c.company_id for c in contacts})
    rows = session.execute(select(Company.id, Company.country).where(Company.id.in_(ids)))  # type: ignore[union-attr]
    return {cid: country for cid, country in rows}


def enrol_by_triggers(app: App) -> SequenceStats:
    """Scan for contacts that a trigger enrols (imported, first sale, no sale for N days)."""
    stats = SequenceStats()
    now = app.clock.now()
    for campaign in nurture_campaigns(app):
        assert campaign.enrol is not None
        audience = app.config.audience(campaign.audience)
        for trigger in campaign.enrol.on:
            if trigger == "manual":
                continue
            with Session(app.engine) as session, session.begin():
                query = audience_query(audience, min_level=campaign.level)
                query = query.where(_trigger_condition(trigger, campaign, now))
                contacts = [row[0] for row in session.execute(query)]
                stats.enrolled[campaign.id] += enrol(
                    app, session, campaign, contacts, trigger=trigger
                )
    return stats


def _never_enrolled(campaign_key: str) -> Any:
    return ~exists().where(
        Enrolment.campaign_key == campaign_key, Enrolment.contact_id == Contact.id
    )


def _sales_of_contact() -> Any:
    """Sales that count for a contact: their own, or their company's undesignated ones."""
    return or_(
        Sale.contact_id == Contact.id,
        and_(Sale.contact_id.is_(None), Sale.company_id == Contact.company_id),  # type: ignore[union-attr]
    )


def _trigger_condition(trigger: str, campaign: CampaignConfig, now: datetime) -> Any:
    if trigger == "imported":
        return _never_enrolled(campaign.id)
    if trigger == "first_sale":
        return and_(
            _never_enrolled(campaign.id),
            exists().where(_sales_of_contact(), Sale.status == "approved"),
        )
    if trigger == "no_sale":
        assert campaign.enrol is not None
        since = now - timedelta(days=campaign.enrol.no_sale_days)
        recent_sale = exists().where(
            _sales_of_contact(), Sale.status == "approved", Sale.sold_at >= since
        )
        # A contact gets this sequence again only if the last one started long enough ago.
        recent_enrolment = exists().where(
            Enrolment.campaign_key == campaign.id,
            Enrolment.contact_id == Contact.id,
            or_(Enrolment.status == ACTIVE, Enrolment.enrolled_at >= since),
        )
        return and_(~recent_sale, ~recent_enrolment, Contact.created_at <= since)
    raise ValueError(f"unknown trigger {trigger!r}")


# -- the tick ------------------------------------------------------------------------------


def tick(app: App, *, batch: int = _CLAIM_BATCH) -> SequenceStats:
    """Run every due step of every active enrolment, campaign by campaign, batch after
    batch. A campaign whose step cannot be planned (a template broken since the last
    reload) is reported and skipped; the other campaigns go on."""
    stats = SequenceStats()
    for campaign in nurture_campaigns(app):
        try:
            while _tick_batch(app, campaign, batch, stats) == batch:
                pass
        except UserError as exc:
            stats.errors[campaign.id] = exc.render()
    return stats


def _tick_batch(app: App, campaign: CampaignConfig, batch: int, stats: SequenceStats) -> int:
    now = app.clock.now()
    with Session(app.engine) as session, session.begin():
        query = (
            select(Enrolment, Contact, Company)
            .join(Contact, Contact.id == Enrolment.contact_id)  # type: ignore[arg-type]
            .join(Company, Company.id == Contact.company_id)  # type: ignore[arg-type]
            .where(Enrolment.campaign_key == campaign.id)
            .where(Enrolment.status == ACTIVE, Enrolment.next_due_at <= now)
            .order_by(Enrolment.next_due_at, Enrolment.id)
            .limit(batch)
        )
        if session.get_bind().dialect.name == "postgresql":
            # Several daemons share the tick: each takes the enrolments no one else holds.
            query = query.with_for_update(skip_locked=True, of=Enrolment)
        rows = [(e, c, co) for e, c, co in session.execute(query).all()]
        if rows:
            _run_steps(app, session, campaign, rows, now, stats)
    return len(rows)


def _run_steps(
    app: App,
    session: Session,
    campaign: CampaignConfig,
    items: list[tuple[Enrolment, Contact, Company]],
    now: datetime,
    stats: SequenceStats,
) -> None:
    exits = _exit_reasons(app, session, campaign, items)
    groups: dict[tuple[int, Urgency, int], list[tuple[Enrolment, Contact, Company]]] = defaultdict(
        list
    )
    for enrolment, contact, company in items:
        reason = exits.get(contact.id or 0)
        if reason is not None:
            enrolment.status, enrolment.exit_reason, enrolment.updated_at = EXITED, reason, now
            stats.exited[reason] += 1
            continue
        step = campaign.steps[enrolment.step_index]
        urgency, wait_until = _branch(session, campaign, enrolment, contact, step, now)
        if wait_until is not None:
            enrolment.next_due_at, enrolment.updated_at = wait_until, now
            stats.postponed += 1
            continue
        if urgency != step.urgency:
            stats.branched += 1
        groups[(enrolment.step_index, urgency, enrolment.cycle)].append(
            (enrolment, contact, company)
        )
    for (index, urgency, cycle), members in groups.items():
        step = campaign.steps[index]
        variant = "" if urgency == step.urgency else f"~{urgency}"
        occurrence = now.date().isoformat() + (f".c{cycle}" if cycle else "")
        plan_in_session(
            app,
            session,
            MessageRequest(
                campaign_key=campaign.id,
                campaign_name=campaign.name,
                campaign_kind=campaign.kind,
                step=step.name + variant,
                occurrence=occurrence,
                audience=app.config.audience(campaign.audience),
                urgency=urgency,
                template=step.template,
                kind=step.kind,
                level=campaign.level,
                variables=campaign.vars,
                attachments=tuple(app.loaded.resolve(path) for path in step.attachments),
                due_at=now,
            ),
            contacts=[(contact, company) for _, contact, company in members],
        )
        stats.steps[f"{campaign.id}:{step.name}{variant}"] += len(members)
        for enrolment, contact, company in members:
            _advance(campaign, enrolment, contact, company, now, stats)


def _advance(
    campaign: CampaignConfig,
    enrolment: Enrolment,
    contact: Contact,
    company: Company,
    now: datetime,
    stats: SequenceStats,
) -> None:
    enrolment.updated_at = now
    if enrolment.step_index + 1 >= len(campaign.steps):
        enrolment.status = COMPLETED
        stats.completed += 1
        return
    # From when this step was due, not from now: a late tick must not push the calendar.
    base = enrolment.next_due_at
    enrolment.step_index += 1
    enrolment.next_due_at = step_due(
        campaign.steps[enrolment.step_index], base, contact.timezone, company.country
    )


def _branch(
    session: Session,
    campaign: CampaignConfig,
    enrolment: Enrolment,
    contact: Contact,
    step: Step,
    now: datetime,
) -> tuple[Urgency, datetime | None]:
    """The urgency this step goes with, or when to look again if it is too early to
    know whether the previous email was opened."""
    branch = step.unopened
    if branch is None or enrolment.step_index == 0:
        return step.urgency, None
    previous = campaign.steps[enrolment.step_index - 1]
    email = session.execute(
        select(Delivery.id, Delivery.sent_at)
        .join(Message, Message.id == Delivery.message_id)  # type: ignore[arg-type]
        .join(CampaignRow, CampaignRow.id == Message.campaign_id)  # type: ignore[arg-type]
        .where(
            CampaignRow.key == campaign.id,
            Message.step.in_([previous.name, *(f"{previous.name}~{u}" for u in Urgency)]),  # type: ignore[attr-defined]
            Delivery.contact_id == contact.id,
            Delivery.channel == "email",
            Delivery.status == "sent",
            Delivery.sent_at >= enrolment.enrolled_at,  # type: ignore[operator]
        )
        .order_by(Delivery.sent_at.desc())  # type: ignore[union-attr]
        .limit(1)
    ).first()
    if email is None:
        return step.urgency, None  # the previous step did not go by email: nothing to wait for
    delivery_id, sent_at = email
    opened = session.scalar(
        select(func.count())
        .select_from(Event)
        .where(Event.delivery_id == delivery_id, Event.type == "opened", Event.machine.is_(False))  # type: ignore[attr-defined]
    )
    if opened:
        return step.urgency, None
    deadline = sent_at + timedelta(days=branch.after_days)
    if now < deadline:
        return step.urgency, deadline
    return branch.urgency, None


def _exit_reasons(
    app: App,
    session: Session,
    campaign: CampaignConfig,
    items: list[tuple[Enrolment, Contact, Company]],
) -> dict[int, str]:
    ids = [contact.id for _, contact, _ in items]
    enrolled_at = {contact.id: e.enrolled_at for e, contact, _ in items}
    reasons: dict[int, str] = {}

    def mark(contact_id: int, reason: str, when: datetime | None = None) -> None:
        if contact_id not in reasons and (when is None or when >= enrolled_at[contact_id]):
            reasons[contact_id] = reason

    if "converted" in campaign.exit_on:
        rows = session.execute(
            select(Contact.id, func.max(Sale.sold_at))
            .join(Sale, _sales_of_contact())
            .where(Contact.id.in_(ids), Sale.status == "approved")  # type: ignore[union-attr]
            .group_by(Contact.id)
        )
        for contact_id, sold_at in rows:
            mark(contact_id, "converted", sold_at)
    for condition, event_type in (("replied", "replied"), ("unsubscribed", "unsubscribed")):
        if condition in campaign.exit_on:
            rows = session.execute(
                select(Event.contact_id, func.max(Event.occurred_at))
                .where(Event.contact_id.in_(ids), Event.type == event_type)  # type: ignore[union-attr]
                .group_by(Event.contact_id)
            )
            for contact_id, when in rows:
                mark(contact_id, condition, when)
    if "unsubscribed" in campaign.exit_on:
        rows = session.execute(
            select(Consent.contact_id, func.count())
            .where(
                Consent.contact_id.in_(ids),  # type: ignore[attr-defined]
                Consent.channel.in_(_OPT_OUT_CHANNELS),  # type: ignore[attr-defined]
                Consent.basis == LawfulBasis.OPTED_OUT.value,
            )
            .group_by(Consent.contact_id)
        )
        for contact_id, count in rows:
            if count == len(_OPT_OUT_CHANNELS):
                mark(contact_id, "unsubscribed")
    if "left_audience" in campaign.exit_on:
        audience = app.config.audience(campaign.audience)
        still_in = {
            row[0].id
            for row in session.execute(
                audience_query(audience, min_level=campaign.level).where(Contact.id.in_(ids))  # type: ignore[union-attr]
            )
        }
        for contact_id in ids:
            if contact_id not in still_in:
                mark(contact_id, "left_audience")  # type: ignore[arg-type]
    return reasons
