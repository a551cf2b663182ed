"""The funnel per group and channel, the daily timeline and the channel mix.

One pass over the deliveries of the period: the database says, per delivery, whether it
was delivered, opened (by a human, by a machine: first time of each), clicked and read;
Python adds them up per (group, channel). Rows are streamed, so the memory held is the
tallies and the contact sets behind the unique counts, not the deliveries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select
from sqlmodel import Session

from network_anim.config.channel_defs import ChannelDefinition, with_trait
from network_anim.db.models import Company, Contact, Delivery, Event, Message, Post, PostRead
from network_anim.reports.conversion import restrict
from network_anim.reports.figures import amount, rate
from network_anim.reports.groups import company_segments, group_label, segment_of
from network_anim.reports.model import ALL_GROUPS, FunnelRow, MixCell, TimelinePoint
from network_anim.reports.scope import Scope


@dataclass(frozen=True)
class Measures:
    """What can be measured on each channel: the ``[traits]`` of channels/*.toml."""

    open_tracked: frozenset[str] = frozenset()  # a pixel: an open rate
    read_tracked: frozenset[str] = frozenset()  # portal reads: a read rate
    click_tracked: frozenset[str] = frozenset()  # tracked links: a click rate
    confirmed: frozenset[str] = frozenset()  # delivered once a provider event says so
    when_sent: frozenset[str] = frozenset()  # delivered as soon as sent

    @classmethod
    def of(cls, definitions: Mapping[str, ChannelDefinition]) -> Measures:
        def delivery(kind: str) -> frozenset[str]:
            return frozenset(n for n, d in definitions.items() if d.traits.delivery == kind)

        return cls(
            open_tracked=with_trait(definitions, "open_tracked"),
            read_tracked=with_trait(definitions, "read_tracked"),
            click_tracked=with_trait(definitions, "click_tracked"),
            confirmed=delivery("confirmed"),
            when_sent=delivery("when_sent"),
        )


FETCH_BATCH = 2000


@dataclass(frozen=True)
class DeliveryFacts:
    channel: str
    contact_id: int
    campaign_id: int
    sent_at: datetime | None
    cost: float | None
    cost_estimate: float
    first_human_open: datetime | None
    first_machine_open: datetime | None
    clicked: bool
    delivered_event: bool
    bounced: bool
    read: bool
    role: str
    company_id: int
    company_external_id: str
    company_name: str

    @property
    def sent(self) -> bool:
        return self.sent_at is not None

    def delivered(self, measures: Measures) -> bool:
        if not self.sent:
            return False
        if self.channel in measures.confirmed:
            return self.delivered_event
        if self.channel in measures.when_sent:
            return True
        return not self.bounced

    @property
    def spent(self) -> float:
        """What the row cost: the provider's price when known, else the estimate; a row
        never sent cost nothing."""
        if not self.sent:
            return 0.0
        return float(self.cost) if self.cost is not None else float(self.cost_estimate)


@dataclass
class _Tally:
    measures: Measures
    planned: int = 0
    sent: int = 0
    delivered: int = 0
    opened_human: int = 0
    opened_machine: int = 0
    clicked: int = 0
    read: int = 0
    cost: float = 0.0
    reached: set[int] = field(default_factory=set)
    converted: set[int] = field(default_factory=set)

    def add(self, facts: DeliveryFacts, converted: bool) -> None:
        self.planned += 1
        if not facts.sent:
            return
        self.sent += 1
        self.cost += facts.spent
        self.reached.add(facts.contact_id)
        if converted:
            self.converted.add(facts.contact_id)
        if not facts.delivered(self.measures):
            return
        # Engagement counts only on delivered rows, so no rate can pass 100 %.
        self.delivered += 1
        self.opened_human += facts.first_human_open is not None
        self.opened_machine += facts.first_machine_open is not None
        self.clicked += facts.clicked
        # The message's page may be read after an email too: only posts have a read rate.
        self.read += facts.read and facts.channel in self.measures.read_tracked

    def row(self, group: str, channel: str) -> FunnelRow:
        delivered = self.delivered
        measures = self.measures
        return FunnelRow(
            group=group,
            channel=channel,
            planned=self.planned,
            sent=self.sent,
            delivered=delivered,
            opened_human=self.opened_human,
            opened_machine=self.opened_machine,
            clicked=self.clicked,
            read=self.read,
            reached_contacts=len(self.reached),
            converted=len(self.converted),
            cost=amount(self.cost),
            delivery_rate=rate(delivered, self.sent),
            open_rate=rate(self.opened_human, delivered)
            if channel in measures.open_tracked
            else None,
            click_rate=(
                rate(self.clicked, delivered) if channel in measures.click_tracked else None
            ),
            read_rate=rate(self.read, delivered) if channel in measures.read_tracked else None,
            conversion_rate=rate(len(self.converted), len(self.reached)),
        )


@dataclass
class _Day:
    sent: int = 0
    opened_human: int = 0
    opened_machine: int = 0


@dataclass(frozen=True)
class FunnelResult:
    rows: tuple[FunnelRow, ...]
    totals: tuple[FunnelRow, ...]
    timeline: tuple[TimelinePoint, ...]
    mix: tuple[MixCell, ...]
    # Unrounded cost per channel: ROI and cost per conversion are computed from these, so
    # a few SMS at 0.004 EUR never make a cost of 0.
    raw_costs: dict[str, float]


def compute_funnel(
    session: Session,
    scope: Scope,
    converted_pairs: frozenset[tuple[int, int]],
    timezone: str,
    channels: Mapping[str, ChannelDefinition],
) -> FunnelResult:
    """``channels``: every channel definition, so the totals show each channel (with zeros
    if unused) and each rate only where the channel's traits say it can be measured."""
    measures = Measures.of(channels)
    zone = ZoneInfo(timezone)
    segments = company_segments(session)
    groups: dict[tuple[str, str], _Tally] = defaultdict(lambda: _Tally(measures))
    totals: dict[str, _Tally] = {channel: _Tally(measures) for channel in channels}
    days: dict[tuple[date, str], _Day] = defaultdict(_Day)
    mix: dict[tuple[str, str], int] = defaultdict(int)
    for facts in delivery_facts(session, scope):
        converted = (facts.campaign_id, facts.contact_id) in converted_pairs
        label = group_label(
            scope.by,
            segments=segments,
            company_id=facts.company_id,
            company_external_id=facts.company_external_id,
            company_name=facts.company_name,
            role=facts.role,
        )
        groups[(label, facts.channel)].add(facts, converted)
        totals.setdefault(facts.channel, _Tally(measures)).add(facts, converted)
        if facts.sent_at is not None:
            days[(facts.sent_at.astimezone(zone).date(), facts.channel)].sent += 1
            mix[(segment_of(segments, facts.company_id), facts.channel)] += 1
        delivered = facts.delivered(measures)
        if delivered and facts.first_human_open is not None:
            days[(facts.first_human_open.astimezone(zone).date(), facts.channel)].opened_human += 1
        if delivered and facts.first_machine_open is not None:
            day = facts.first_machine_open.astimezone(zone).date()
            days[(day, facts.channel)].opened_machine += 1
    return FunnelResult(
        rows=tuple(groups[key].row(*key) for key in sorted(groups)),
        totals=tuple(totals[channel].row(ALL_GROUPS, channel) for channel in sorted(totals)),
        timeline=tuple(
            TimelinePoint(day, channel, d.sent, d.opened_human, d.opened_machine)
            for (day, channel), d in sorted(days.items())
        ),
        mix=tuple(MixCell(segment, channel, n) for (segment, channel), n in sorted(mix.items())),
        raw_costs={channel: tally.cost for channel, tally in totals.items()},
    )


def delivery_facts(session: Session, scope: Scope) -> Iterator[DeliveryFacts]:
    """One :class:`DeliveryFacts` per delivery of the scope, streamed."""
    query = restrict(_facts_query(), scope)
    for row in session.execute(query.execution_options(yield_per=FETCH_BATCH)):
        values = list(row)
        # SQLite answers the flag comparisons with 0/1, PostgreSQL with booleans.
        values[8:12] = (bool(v) for v in values[8:12])
        yield DeliveryFacts(*values)


# Event types the funnel reads; a delivery's events are folded into one row by
# ``_event_summary``.
# A soft bounce did not arrive either (its retry is a row of its own).
_FUNNEL_EVENTS = ("opened", "clicked", "delivered", "bounced", "soft_bounced")


def _event_summary():  # type: ignore[no-untyped-def]
    """Per delivery: first human and first machine open, human click, provider delivered
    and bounced. One grouped pass over the events, joined to the deliveries: a correlated
    subquery per delivery would let SQLite pick the (type, time) index and scan every
    event of the type for each delivery (90 s for 20,000 deliveries)."""
    human = Event.machine.is_(False)  # type: ignore[attr-defined]
    machine = Event.machine.is_(True)  # type: ignore[attr-defined]

    def first(*conditions):  # type: ignore[no-untyped-def]
        return func.min(case((and_(*conditions), Event.occurred_at)))

    def flag(*conditions):  # type: ignore[no-untyped-def]
        return func.max(case((and_(*conditions), 1), else_=0))

    return (
        select(
            Event.delivery_id.label("delivery_id"),  # type: ignore[union-attr]
            first(Event.type == "opened", human).label("first_human_open"),
            first(Event.type == "opened", machine).label("first_machine_open"),
            flag(Event.type == "clicked", human).label("clicked"),
            flag(Event.type == "delivered").label("delivered"),
            flag(Event.type.in_(("bounced", "soft_bounced"))).label("bounced"),  # type: ignore[attr-defined]
        )
        .where(Event.delivery_id.is_not(None), Event.type.in_(_FUNNEL_EVENTS))  # type: ignore[union-attr,attr-defined]
        .group_by(Event.delivery_id)
        .subquery("event_summary")
    )


def _post_reads():  # type: ignore[no-untyped-def]
    """(contact, message, flash or not) of every post read: a delivery's post is read when
    its contact read the flash post (flash delivery) or the message's page (otherwise),
    in any language."""
    return (
        select(
            PostRead.contact_id.label("contact_id"),
            Post.message_id.label("message_id"),
            Post.is_flash.label("is_flash"),
        )
        .join(Post, Post.id == PostRead.post_id)  # type: ignore[arg-type]
        .distinct()
        .subquery("post_reads")
    )


def _facts_query():  # type: ignore[no-untyped-def]
    events = _event_summary()
    reads = _post_reads()
    read_match = and_(
        reads.c.contact_id == Delivery.contact_id,
        reads.c.message_id == Delivery.message_id,
        or_(
            and_(Delivery.channel == "flash", reads.c.is_flash.is_(True)),
            and_(Delivery.channel != "flash", reads.c.is_flash.is_(False)),
        ),
    )
    return (
        select(
            Delivery.channel,
            Delivery.contact_id,
            Message.campaign_id,
            Delivery.sent_at,
            Delivery.cost,
            Delivery.cost_estimate,
            events.c.first_human_open,
            events.c.first_machine_open,
            func.coalesce(events.c.clicked, 0) == 1,
            func.coalesce(events.c.delivered, 0) == 1,
            func.coalesce(events.c.bounced, 0) == 1,
            reads.c.contact_id.is_not(None),
            Contact.role,
            Contact.company_id,
            Company.external_id,
            Company.name,
        )
        .join(Message, Message.id == Delivery.message_id)  # type: ignore[arg-type]
        .join(Contact, Contact.id == Delivery.contact_id)  # type: ignore[arg-type]
        .join(Company, Company.id == Contact.company_id)  # type: ignore[arg-type]
        .outerjoin(events, events.c.delivery_id == Delivery.id)
        .outerjoin(reads, read_match)
        .order_by(Delivery.id)
    )
