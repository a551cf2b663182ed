"""Nurturing sequences: enrolment, the per-contact step tick, exits and engagement branches.

Per-contact timing lives in the ``enrolment`` table (``next_due_at``, indexed): a tick
claims the due rows batch by batch, plans each contact's step through the ordinary planner
and router, and advances the rows, each batch in one transaction, so a crash either did a
step or did not, and a restart carries on. Nothing here holds one scheduler job per
contact, and a tick's work follows the number of due steps, not the number of enrolments:
every query is bounded by the batch (an indexed due range, lookups by the batch's ids) and
the enrolments are written back with one executemany per batch.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import Integer, and_, bindparam, exists, func, insert, or_, select, update
from sqlmodel import Session

from network_anim.app import App
from network_anim.campaigns.timing import step_due
from network_anim.config.channel_defs import with_trait
from network_anim.config.settings import Campaign as CampaignConfig
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
from network_anim.network.audience import MemberCompany, MemberContact, audience_query
from network_anim.planning.messages import step_request
from network_anim.planning.planner import plan_in_session

ACTIVE, COMPLETED, EXITED = "active", "completed", "exited"
# Due enrolments per transaction: bounds memory (contacts, rendered rows) and lock time.
_CLAIM_BATCH = 1000
# Contacts per enrolment statement (also keeps IN lists far below SQLite's limit).
_ENROL_BATCH = 1000
_ENROLMENT = Enrolment.__table__  # type: ignore[attr-defined]


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


def _unindexed(column: Any) -> Any:
    """``column`` as an expression no index serves (same value). SQLite keeps no statistics
    unless ANALYZE ran: it then reads an equality on an unselective column (delivery.status
    = 'sent', event.type = 'opened', sale.contact_id IS NULL) through that column's index,
    every matching row of the table, rather than looking up the batch's ids. PostgreSQL
    knows better either way."""
    if isinstance(column.type, Integer):
        return column + 0
    return column.concat("")


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


# -- enrolment -----------------------------------------------------------------------------


_RESTART = (
    update(_ENROLMENT)
    .where(_ENROLMENT.c.id == bindparam("b_id"))
    .values(
        status=ACTIVE,
        cycle=bindparam("b_cycle"),
        step_index=0,
        next_due_at=bindparam("b_next"),
        trigger=bindparam("b_trigger"),
        exit_reason="",
        enrolled_at=bindparam("b_now"),
        updated_at=bindparam("b_now"),
    )
)


def enrol(
    app: App,
    session: Session,
    campaign: CampaignConfig,
    contacts: Iterable[Contact],
    *,
    trigger: str,
) -> int:
    """Enrol contacts; an active enrolment is left as it is (re-enrolling is a no-op), a
    finished one starts a new cycle from the first step. Written in bulk, a chunk of
    contacts at a time, inside the caller's transaction."""
    now = app.clock.now()
    return sum(
        _enrol_chunk(session, campaign, chunk, trigger, now)
        for chunk in _chunks(contacts, _ENROL_BATCH)
    )


def _enrol_chunk(
    session: Session,
    campaign: CampaignConfig,
    contacts: list[Contact],
    trigger: str,
    now: datetime,
) -> int:
    existing = {
        contact_id: (enrolment_id, status, cycle)
        for enrolment_id, contact_id, status, cycle in session.execute(
            select(Enrolment.id, Enrolment.contact_id, Enrolment.status, Enrolment.cycle).where(
                Enrolment.campaign_key == campaign.id,
                Enrolment.contact_id.in_([c.id for c in contacts]),  # type: ignore[union-attr]
            )
        )
    }
    countries = _countries(session, contacts)
    new_rows: list[dict[str, Any]] = []
    restarts: list[dict[str, Any]] = []
    seen: set[int] = set()
    for contact in contacts:
        assert contact.id is not None
        found = existing.get(contact.id)
        if contact.id in seen or (found is not None and found[1] == ACTIVE):
            continue
        seen.add(contact.id)
        first_due = step_due(
            campaign.steps[0], now, contact.timezone, countries[contact.company_id]
        )
        if found is None:
            new_rows.append(
                {
                    "campaign_key": campaign.id,
                    "contact_id": contact.id,
                    "status": ACTIVE,
                    "cycle": 0,
                    "step_index": 0,
                    "next_due_at": first_due,
                    "trigger": trigger,
                    "exit_reason": "",
                    "enrolled_at": now,
                    "updated_at": now,
                }
            )
        else:
            restarts.append(
                {"b_id": found[0], "b_cycle": found[2] + 1, "b_next": first_due}
                | {"b_trigger": trigger, "b_now": now}
            )
    if new_rows:
        session.execute(insert(_ENROLMENT), new_rows)
    if restarts:
        session.execute(_RESTART, restarts)
    return len(new_rows) + len(restarts)


def _countries(session: Session, contacts: list[Contact]) -> dict[int, str]:
    ids = sorted({c.company_id for c in contacts})
    rows = session.execute(select(Company.id, Company.country).where(Company.id.in_(ids)))  # type: ignore[union-attr]
    return {cid: country for cid, country in rows}


def enrol_by_triggers(app: App, *, batch: int = _ENROL_BATCH) -> SequenceStats:
    """Scan for contacts that a trigger enrols (imported, first sale, no sale for N days),
    a batch of contacts per transaction, so a first import of a big network stays flat in
    memory."""
    stats = SequenceStats()
    now = app.clock.now()
    for campaign in nurture_campaigns(app):
        assert campaign.enrol is not None
        audience = app.config.audience(campaign.audience)
        for trigger in campaign.enrol.on:
            if trigger == "manual":
                continue
            query = audience_query(audience, now=now, min_level=campaign.level).where(
                _trigger_condition(trigger, campaign, now)
            )
            last_id = 0
            while True:
                with Session(app.engine) as session, session.begin():
                    page = query.where(Contact.id > last_id).limit(batch)  # type: ignore[operator]
                    contacts = [row[0] for row in session.execute(page)]
                    if contacts:
                        last_id = contacts[-1].id
                        stats.enrolled[campaign.id] += enrol(
                            app, session, campaign, contacts, trigger=trigger
                        )
                if len(contacts) < batch:
                    break
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


@dataclass(slots=True)
class _Due:
    """A due enrolment as the tick reads it and decides its next state (plain values, not
    an ORM object: the batch is written back with one executemany)."""

    enrolment_id: int
    step_index: int
    cycle: int
    next_due_at: datetime
    enrolled_at: datetime
    contact: MemberContact
    company: MemberCompany
    status: str = ACTIVE
    exit_reason: str = ""

    @property
    def contact_id(self) -> int:
        return self.contact.id


_DUE_COLUMNS = (
    Enrolment.id,
    Enrolment.step_index,
    Enrolment.cycle,
    Enrolment.next_due_at,
    Enrolment.enrolled_at,
)
_MEMBER_AT = len(_DUE_COLUMNS)
_COMPANY_AT = _MEMBER_AT + len(MemberContact._fields)


_WRITE_BACK = (
    update(_ENROLMENT)
    .where(_ENROLMENT.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        step_index=bindparam("b_step"),
        next_due_at=bindparam("b_next"),
        exit_reason=bindparam("b_reason"),
        updated_at=bindparam("b_now"),
    )
)


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
        due = _claim_due(session, campaign, now, batch)
        if due:
            _run_steps(app, session, campaign, due, now, stats)
            _write_back(session, due, now)
    return len(due)


def _claim_due(session: Session, campaign: CampaignConfig, now: datetime, batch: int) -> list[_Due]:
    """The campaign's oldest due enrolments: a range of ix_enrolment_campaign_due, read in
    its order, so the query stops after ``batch`` rows however many are enrolled."""
    # The contacts and companies as plain rows, like an audience's (planning only reads
    # them): identity-mapped ORM objects would cost more than the query.
    query = (
        select(
            *_DUE_COLUMNS,
            *(getattr(Contact, name) for name in MemberContact._fields),
            *(getattr(Company, name) for name in MemberCompany._fields),
        )
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
    companies: dict[int, MemberCompany] = {}
    due = []
    for row in session.execute(query):
        company = companies.get(row[_COMPANY_AT])
        if company is None:
            company = companies[row[_COMPANY_AT]] = MemberCompany._make(row[_COMPANY_AT:])
        contact = MemberContact._make(row[_MEMBER_AT:_COMPANY_AT])
        due.append(_Due(*row[:_MEMBER_AT], contact, company))
    return due


def _run_steps(
    app: App,
    session: Session,
    campaign: CampaignConfig,
    due: list[_Due],
    now: datetime,
    stats: SequenceStats,
) -> None:
    exits = _exit_reasons(app, session, campaign, due)
    staying: list[_Due] = []
    for item in due:
        reason = exits.get(item.contact_id)
        if reason is None:
            staying.append(item)
        else:
            item.status, item.exit_reason = EXITED, reason
            stats.exited[reason] += 1
    branches = _branches(session, campaign, staying, now)
    groups: dict[tuple[int, Urgency, int], list[_Due]] = defaultdict(list)
    for item in staying:
        step = campaign.steps[item.step_index]
        urgency, wait_until = branches.get(item.enrolment_id, (step.urgency, None))
        if wait_until is not None:
            item.next_due_at = wait_until
            stats.postponed += 1
            continue
        if urgency != step.urgency:
            stats.branched += 1
        groups[(item.step_index, urgency, item.cycle)].append(item)
    for (index, urgency, cycle), members in groups.items():
        step = campaign.steps[index]
        variant = "" if urgency == step.urgency else f"~{urgency}"
        occurrence = now.date().isoformat() + (f".c{cycle}" if cycle else "")
        request = step_request(
            app,
            session,
            campaign,
            step,
            occurrence=occurrence,
            due_at=now,
            contact_ids=[item.contact_id for item in members],
            urgency=urgency,
        )
        plan_in_session(
            app,
            session,
            request,
            # Plain rows: the planner reads them like ORM objects (as an audience's).
            contacts=[(item.contact, item.company) for item in members],  # type: ignore[misc]
        )
        stats.steps[f"{campaign.id}:{step.name}{variant}"] += len(members)
        for item in members:
            _advance(campaign, item, stats)


def _advance(campaign: CampaignConfig, item: _Due, stats: SequenceStats) -> None:
    if item.step_index + 1 >= len(campaign.steps):
        item.status = COMPLETED
        stats.completed += 1
        return
    # From when this step was due, not from now: a late tick must not push the calendar.
    base = item.next_due_at
    item.step_index += 1
    item.next_due_at = step_due(
        campaign.steps[item.step_index], base, item.contact.timezone, item.company.country
    )


def _write_back(session: Session, due: list[_Due], now: datetime) -> None:
    session.execute(
        _WRITE_BACK,
        [
            {
                "b_id": item.enrolment_id,
                "b_status": item.status,
                "b_step": item.step_index,
                "b_next": item.next_due_at,
                "b_reason": item.exit_reason,
                "b_now": now,
            }
            for item in due
        ],
    )


# -- engagement branches ---------------------------------------------------------------------


def _branches(
    session: Session, campaign: CampaignConfig, due: list[_Due], now: datetime
) -> dict[int, tuple[Urgency, datetime | None]]:
    """Enrolment id -> the urgency its step goes with, and when to look again if it is too
    early to know whether the previous email was opened (absent: the step's own urgency).
    Two queries per branching step and batch, whatever the batch size."""
    by_step: dict[int, list[_Due]] = defaultdict(list)
    for item in due:
        if item.step_index > 0 and campaign.steps[item.step_index].unopened is not None:
            by_step[item.step_index].append(item)
    decisions: dict[int, tuple[Urgency, datetime | None]] = {}
    for index, members in by_step.items():
        step = campaign.steps[index]
        branch = step.unopened
        assert branch is not None
        emails = _previous_emails(session, campaign, campaign.steps[index - 1].name, members)
        opened = _opened(session, [delivery_id for delivery_id, _ in emails.values()])
        for item in members:
            email = emails.get(item.contact_id)
            if email is None or email[0] in opened:
                continue  # no email to wait for (the step went another way), or it was read
            deadline = email[1] + timedelta(days=branch.after_days)
            if now < deadline:
                decisions[item.enrolment_id] = (step.urgency, deadline)
            else:
                decisions[item.enrolment_id] = (branch.urgency, None)
    return decisions


def _previous_emails(
    session: Session, campaign: CampaignConfig, previous: str, members: list[_Due]
) -> dict[int, tuple[int, datetime]]:
    """Contact id -> (delivery id, sent at) of the last email of the previous step sent
    during the current enrolment."""
    enrolled_at = {item.contact_id: item.enrolled_at for item in members}
    # Driven by the batch's contacts (ix_delivery_contact_channel_created): neither the
    # status nor the messages of the step (every email of that step ever sent) may lead.
    rows = session.execute(
        select(Delivery.contact_id, Delivery.id, Delivery.sent_at)
        .join(Message, Message.id == _unindexed(Delivery.message_id))
        .join(CampaignRow, CampaignRow.id == Message.campaign_id)  # type: ignore[arg-type]
        .where(
            CampaignRow.key == campaign.id,
            Message.step.in_([previous, *(f"{previous}~{u}" for u in Urgency)]),  # type: ignore[attr-defined]
            Delivery.contact_id.in_(list(enrolled_at)),  # type: ignore[attr-defined]
            Delivery.channel == "email",
            _unindexed(Delivery.status) == "sent",
        )
    )
    latest: dict[int, tuple[int, datetime]] = {}
    for contact_id, delivery_id, sent_at in rows:
        if sent_at is None or sent_at < enrolled_at[contact_id]:
            continue
        if contact_id not in latest or sent_at > latest[contact_id][1]:
            latest[contact_id] = (delivery_id, sent_at)
    return latest


def _opened(session: Session, delivery_ids: list[int]) -> set[int]:
    """The deliveries a person opened (a prefetcher's or scanner's open does not count)."""
    if not delivery_ids:
        return set()
    return set(
        session.scalars(
            select(Event.delivery_id)
            .where(
                Event.delivery_id.in_(delivery_ids),  # type: ignore[union-attr]
                _unindexed(Event.type) == "opened",
                Event.machine.is_(False),  # type: ignore[attr-defined]
            )
            .distinct()
        )
    )


# -- exits ---------------------------------------------------------------------------------


def _exit_reasons(
    app: App, session: Session, campaign: CampaignConfig, due: list[_Due]
) -> dict[int, str]:
    """Contact id -> why the sequence ends before this step; only the batch's contacts are
    looked at, each check one indexed query by their ids."""
    ids = [item.contact_id for item in due]
    enrolled_at = {item.contact_id: item.enrolled_at for item in due}
    reasons: dict[int, str] = {}

    def mark(contact_id: int, reason: str, when: datetime | None = None) -> None:
        if contact_id not in reasons and (when is None or when >= enrolled_at[contact_id]):
            reasons[contact_id] = reason

    if "converted" in campaign.exit_on:
        for contact_id, sold_at in _last_sales(session, due):
            mark(contact_id, "converted", sold_at)
    events = [c for c in ("replied", "unsubscribed") if c in campaign.exit_on]
    if events:
        rows = session.execute(
            select(Event.contact_id, Event.type, func.max(Event.occurred_at))
            .where(Event.contact_id.in_(ids), Event.type.in_(events))  # type: ignore[union-attr, attr-defined]
            .group_by(Event.contact_id, Event.type)
        )
        # In the order of ``events``: a reply is named before an unsubscription.
        for contact_id, event_type, when in sorted(rows, key=lambda r: events.index(r[1])):
            mark(contact_id, event_type, when)
    if "unsubscribed" in campaign.exit_on:
        # Opted out of every channel that counts (``unsubscribe = true`` in channels/*.toml).
        opt_out_channels = sorted(with_trait(app.definitions, "unsubscribe"))
        rows = session.execute(
            select(Consent.contact_id, func.count())
            .where(
                Consent.contact_id.in_(ids),  # type: ignore[attr-defined]
                Consent.channel.in_(opt_out_channels),  # type: ignore[attr-defined]
                Consent.basis == LawfulBasis.OPTED_OUT.value,
            )
            .group_by(Consent.contact_id)
        )
        for contact_id, count in rows:
            if count == len(opt_out_channels):
                mark(contact_id, "unsubscribed")
    if "left_audience" in campaign.exit_on:
        audience = app.config.audience(campaign.audience)
        members = audience_query(audience, now=app.clock.now(), min_level=campaign.level).where(
            Contact.id.in_(ids)  # type: ignore[union-attr]
        )
        still_in = set(session.scalars(members.with_only_columns(Contact.id).order_by(None)))
        for contact_id in ids:
            if contact_id not in still_in:
                mark(contact_id, "left_audience")
    return reasons


def _last_sales(session: Session, due: list[_Due]) -> list[tuple[int, datetime]]:
    """(contact id, last approved sale) for the batch: the contact's own sales, and their
    company's sales that name no contact. Two lookups by id (one index each) rather than
    one join on an OR, which the planners answer by scanning the sales."""
    ids = [item.contact_id for item in due]
    own = session.execute(
        select(Sale.contact_id, func.max(Sale.sold_at))
        .where(Sale.contact_id.in_(ids), Sale.status == "approved")  # type: ignore[union-attr]
        .group_by(Sale.contact_id)
    ).all()
    company_ids = sorted({item.contact.company_id for item in due})
    by_company = dict(
        session.execute(
            select(Sale.company_id, func.max(Sale.sold_at))
            .where(
                Sale.company_id.in_(company_ids),  # type: ignore[attr-defined]
                _unindexed(Sale.contact_id).is_(None),
                Sale.status == "approved",
            )
            .group_by(Sale.company_id)
        ).all()
    )
    sales = [(int(contact_id), sold_at) for contact_id, sold_at in own]
    for item in due:
        sold_at = by_company.get(item.contact.company_id)
        if sold_at is not None:
            sales.append((item.contact_id, sold_at))
    return sales
