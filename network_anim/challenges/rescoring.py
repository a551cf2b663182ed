"""Scoring again: every approved sale re-scored after a rule change (compensating
entries keep the history true), and the hidden dry run of the rules on a past period."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.app import App
from network_anim.challenges.awarding import APPROVED
from network_anim.challenges.calendar import local_day
from network_anim.challenges.ledger import credit, debit
from network_anim.challenges.scoring import sale_points
from network_anim.db.models import Contact, LedgerEntry, Participant, Product, Sale
from network_anim.network.audience import audience_query


@dataclass
class RecomputeResult:
    changed_sales: int = 0
    points_delta: int = 0


def recompute(app: App, challenge_key: str, *, actor: str = "manager") -> RecomputeResult:
    """Re-score every approved sale of the challenge under the current rules; differences
    become compensating entries, so the history stays true and explains the change."""
    challenge = app.config.challenge(challenge_key)
    now = app.clock.now()
    run = now.strftime("%Y%m%dT%H%M%S%f")
    result = RecomputeResult()
    with Session(app.engine) as session, session.begin():
        rows = session.execute(
            select(Sale, Product.family)
            .join(Product, Product.sku == Sale.product, isouter=True)  # type: ignore[arg-type]
            .join(Participant, Participant.contact_id == Sale.contact_id)  # type: ignore[arg-type]
            .where(Participant.challenge_key == challenge.id, Sale.status == APPROVED)
        ).all()
        current = defaultdict(int)
        for sale_id, points in session.execute(
            select(LedgerEntry.sale_id, func.sum(LedgerEntry.points))
            .where(LedgerEntry.challenge_key == challenge.id, LedgerEntry.sale_id.is_not(None))  # type: ignore[union-attr]
            .group_by(LedgerEntry.sale_id)
        ):
            current[sale_id] = int(points or 0)
        for sale, family in rows:
            sold_on = local_day(app, sale.sold_at)
            expected = (
                sale_points(
                    challenge,
                    family=family or "",
                    quantity=sale.quantity,
                    amount=sale.amount,
                    sold_on=sold_on,
                )
                if challenge.start <= sold_on <= challenge.end
                else 0
            )
            delta = expected - current[sale.id]
            if delta == 0:
                continue
            source = f"recompute:{run}:sale:{sale.id}:{challenge.id}"
            reason = f"rules changed: sale {sale.invoice_ref} now worth {expected} points (was {current[sale.id]})"
            if delta > 0:
                entry = credit(
                    session,
                    contact_id=sale.contact_id,
                    points=delta,
                    kind="adjust",  # type: ignore[arg-type]
                    source_key=source,
                    now=now,
                    actor=actor,
                    reason=reason,
                    challenge_key=challenge.id,
                    sale_id=sale.id,
                )
            else:
                entry = debit(
                    session,
                    contact_id=sale.contact_id,
                    points=-delta,
                    kind="adjust",  # type: ignore[arg-type]
                    source_key=source,
                    now=now,
                    actor=actor,
                    reason=reason,
                    challenge_key=challenge.id,
                    partial=True,
                )
                if entry is not None:
                    entry.sale_id = sale.id
            if entry is not None:
                result.changed_sales += 1
                result.points_delta += entry.points
    return result


def dry_run(app: App, challenge_key: str, *, start: date, end: date) -> dict[int, int]:
    """The hidden run: points each contact of the audience would have earned on the
    approved sales of [start, end] under the challenge's rules. Writes nothing. Run it on
    the period before launch, it is also the baseline for incremental sales."""
    challenge = app.config.challenge(challenge_key)
    rehearsal = challenge.model_copy(update={"start": start, "end": end})
    zone = ZoneInfo(app.config.engine.timezone)
    first = datetime.combine(start, time(0), tzinfo=zone)
    last = datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone)
    audience = audience_query(
        app.config.audience(challenge.audience), now=app.clock.now(), min_level=challenge.level
    )
    members = audience.with_only_columns(Contact.id).order_by(None)
    points: dict[int, int] = defaultdict(int)
    with Session(app.engine) as session:
        for sale, family in session.execute(
            select(Sale, Product.family)
            .join(Product, Product.sku == Sale.product, isouter=True)  # type: ignore[arg-type]
            .where(Sale.status == APPROVED, Sale.sold_at >= first, Sale.sold_at < last)
            .where(Sale.contact_id.in_(members))  # type: ignore[union-attr]
        ):
            points[sale.contact_id] += sale_points(
                rehearsal,
                family=family or "",
                quantity=sale.quantity,
                amount=sale.amount,
                sold_on=local_day(app, sale.sold_at),
            )
    return dict(points)
