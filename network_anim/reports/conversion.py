"""Conversion into sales: who a campaign reached, who then bought, against whom.

A contact is reached by a campaign at its first sent delivery of that campaign (among the
deliveries of the period); they convert with an approved sale dated within
``conversion_window_days`` from that moment. The comparison group is the campaign's
audience never reached by it, over the same length of time from the campaign's first send;
when the whole audience was reached, the same contacts over the window just before their
first delivery (baseline period).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.app import App
from network_anim.db.models import Contact, Delivery, Message, Sale
from network_anim.errors import UserError
from network_anim.network.audience import audience_query
from network_anim.reports.figures import amount, rate
from network_anim.reports.model import CampaignConversion, Conversion, ConversionGroup
from network_anim.reports.scope import Scope

APPROVED = "approved"

Window = tuple[datetime, datetime]  # [start, end)


@dataclass(frozen=True)
class SaleRow:
    id: int
    contact_id: int
    sold_at: datetime
    amount: float


@dataclass
class _Tally:
    """What a group of contacts bought within their windows."""

    contacts: int = 0
    converters: set[int] = field(default_factory=set)
    sale_ids: set[int] = field(default_factory=set)
    sales_amount: float = 0.0

    def group(self, label: str) -> ConversionGroup:
        return ConversionGroup(
            label=label,
            contacts=self.contacts,
            converters=len(self.converters),
            sales_amount=amount(self.sales_amount),
            rate=rate(len(self.converters), self.contacts),
            average_order_value=(
                amount(self.sales_amount / len(self.sale_ids)) if self.sale_ids else None
            ),
        )


@dataclass(frozen=True)
class ConversionResult:
    conversion: Conversion
    # (campaign id, contact id) of every conversion: the funnel counts them per channel.
    converted_pairs: frozenset[tuple[int, int]]


def compute_conversion(app: App, session: Session, scope: Scope) -> ConversionResult:
    window = timedelta(days=app.config.reports.conversion_window_days)
    touches = first_touches(session, scope)
    per_campaign: list[CampaignConversion] = []
    converted_pairs: set[tuple[int, int]] = set()
    overall = _Tally()
    reached_everywhere: set[int] = set()
    incremental = 0.0
    for campaign_id, key in sorted(scope.campaigns.items(), key=lambda item: item[1]):
        reached = touches.get(campaign_id, {})
        reached_windows = {c: (first, first + window) for c, first in reached.items()}
        comparison_windows, kind = _comparison_windows(
            app, session, campaign_id, key, reached, window
        )
        sales = _sales_of(session, [reached_windows, comparison_windows])
        reached_tally = _tally(reached_windows, sales)
        comparison_tally = _tally(comparison_windows, sales) if kind != "none" else None
        converted_pairs.update((campaign_id, c) for c in reached_tally.converters)
        reached_everywhere.update(reached)
        overall.converters |= reached_tally.converters
        for sale in _sales_in(reached_windows, sales):
            if sale.id not in overall.sale_ids:
                overall.sale_ids.add(sale.id)
                overall.sales_amount += sale.amount
        reached_group = reached_tally.group("reached")
        comparison_group = (
            comparison_tally.group(_COMPARISON_LABELS[kind]) if comparison_tally else None
        )
        incremental += _incremental(reached_group, comparison_group)
        per_campaign.append(_campaign_conversion(key, reached_group, comparison_group, kind))
    overall.contacts = len(reached_everywhere)
    return ConversionResult(
        Conversion(
            window_days=app.config.reports.conversion_window_days,
            campaigns=tuple(per_campaign),
            overall=overall.group("reached by any campaign"),
            incremental_sales=amount(incremental),
        ),
        frozenset(converted_pairs),
    )


_COMPARISON_LABELS = {
    "unreached": "unreached audience",
    "baseline": "baseline, same contacts",
}


def first_touches(session: Session, scope: Scope) -> dict[int, dict[int, datetime]]:
    """campaign id -> contact id -> first sent_at, over the deliveries of the period."""
    query = (
        select(Message.campaign_id, Delivery.contact_id, func.min(Delivery.sent_at))
        .join(Message, Message.id == Delivery.message_id)  # type: ignore[arg-type]
        .where(Delivery.sent_at.is_not(None))  # type: ignore[union-attr]
        .group_by(Message.campaign_id, Delivery.contact_id)
    )
    query = restrict(query, scope)
    touches: dict[int, dict[int, datetime]] = defaultdict(dict)
    for campaign_id, contact_id, first in session.execute(query):
        touches[campaign_id][contact_id] = first
    return touches


def restrict(query, scope: Scope):  # type: ignore[no-untyped-def]
    """The period (on due_at) and campaigns of the scope, on a query over deliveries
    joined to their message."""
    if scope.campaign_filter is not None:
        query = query.where(Message.campaign_id.in_(scope.campaign_ids))  # type: ignore[attr-defined]
    if scope.start is not None:
        query = query.where(Delivery.due_at >= scope.start)
    if scope.end is not None:
        query = query.where(Delivery.due_at < scope.end)
    return query


def _comparison_windows(
    app: App,
    session: Session,
    campaign_id: int,
    key: str,
    reached: dict[int, datetime],
    window: timedelta,
) -> tuple[dict[int, Window], str]:
    if not reached:
        return {}, "none"
    ever_reached = set(
        session.scalars(
            select(Delivery.contact_id)
            .join(Message, Message.id == Delivery.message_id)  # type: ignore[arg-type]
            .where(Message.campaign_id == campaign_id, Delivery.sent_at.is_not(None))  # type: ignore[union-attr]
            .distinct()
        )
    )
    unreached = _audience(app, session, campaign_id, key) - ever_reached - set(reached)
    if unreached:
        start = min(reached.values())
        return {c: (start, start + window) for c in unreached}, "unreached"
    return {c: (first - window, first) for c, first in reached.items()}, "baseline"


def _audience(app: App, session: Session, campaign_id: int, key: str) -> set[int]:
    """The campaign's audience as the config defines it today; for a campaign the config
    no longer (or never) held, such as a broadcast, every contact it was planned for."""
    configured = app.config.campaign(key)
    if configured is not None:
        try:
            audience = app.config.audience(configured.audience)
        except UserError:
            audience = None
        if audience is not None:
            query = audience_query(audience, now=app.clock.now(), min_level=configured.level)
            return set(session.scalars(query.with_only_columns(Contact.id).order_by(None)))
    return set(
        session.scalars(
            select(Delivery.contact_id)
            .join(Message, Message.id == Delivery.message_id)  # type: ignore[arg-type]
            .where(Message.campaign_id == campaign_id)
            .distinct()
        )
    )


def _sales_of(session: Session, window_sets: list[dict[int, Window]]) -> dict[int, list[SaleRow]]:
    """Approved sales of the contacts concerned, over the span of their windows."""
    windows = [w for windows in window_sets for w in windows.values()]
    if not windows:
        return {}
    contacts = {c for windows in window_sets for c in windows}
    query = (
        select(Sale.id, Sale.contact_id, Sale.sold_at, Sale.amount)
        .where(Sale.status == APPROVED, Sale.contact_id.is_not(None))  # type: ignore[union-attr]
        .where(Sale.sold_at >= min(w[0] for w in windows))
        .where(Sale.sold_at < max(w[1] for w in windows))
        .order_by(Sale.id)
    )
    sales: dict[int, list[SaleRow]] = defaultdict(list)
    for sale_id, contact_id, sold_at, value in session.execute(query):
        if contact_id in contacts:
            sales[contact_id].append(SaleRow(sale_id, contact_id, sold_at, float(value)))
    return sales


def _sales_in(windows: dict[int, Window], sales: dict[int, list[SaleRow]]) -> list[SaleRow]:
    return [
        sale
        for contact, (start, end) in windows.items()
        for sale in sales.get(contact, ())
        if start <= sale.sold_at < end
    ]


def _tally(windows: dict[int, Window], sales: dict[int, list[SaleRow]]) -> _Tally:
    tally = _Tally(contacts=len(windows))
    for sale in _sales_in(windows, sales):
        tally.converters.add(sale.contact_id)
        tally.sale_ids.add(sale.id)
        tally.sales_amount += sale.amount
    return tally


def _incremental(reached: ConversionGroup, comparison: ConversionGroup | None) -> float:
    """Reached sales beyond what the comparison group's sales per contact predict."""
    if comparison is None or not comparison.contacts:
        return 0.0
    expected = comparison.sales_amount / comparison.contacts * reached.contacts
    return reached.sales_amount - expected


def _campaign_conversion(
    key: str, reached: ConversionGroup, comparison: ConversionGroup | None, kind: str
) -> CampaignConversion:
    points = uplift = None
    if comparison is not None and reached.contacts and comparison.contacts:
        # From the counts, not the rounded rates, so the uplift is exact to its 4 places.
        ours = reached.converters / reached.contacts
        theirs = comparison.converters / comparison.contacts
        points = round(ours - theirs, 4) + 0.0
        uplift = rate(ours - theirs, theirs)
    return CampaignConversion(
        campaign=key,
        reached=reached,
        comparison=comparison,
        comparison_kind=kind,
        uplift_points=points,
        uplift=uplift,
    )
