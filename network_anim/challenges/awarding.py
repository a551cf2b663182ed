"""Sales into points: approved sales credited to the challenges they count for, the
milestone bonuses they unlock, and the manager's review (approval or rejection) of
declared sales."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.challenges.calendar import local_day
from network_anim.challenges.communications import MILESTONE, enrol_in
from network_anim.challenges.ledger import credit, sales_points
from network_anim.challenges.objectives import final_targets
from network_anim.challenges.scoring import sale_points
from network_anim.config.settings import ChallengeConfig
from network_anim.db.models import Contact, Participant, Product, Sale
from network_anim.errors import UserError

APPROVED, PENDING, REJECTED = "approved", "pending", "rejected"


@dataclass
class AwardResult:
    points: int = 0
    entries: int = 0
    # (challenge, contact id, share of the objective reached) for "milestone reached" messages.
    milestones: list[tuple[str, int, float]] = field(default_factory=list)


def award_sales(
    app: App, session: Session, sale_ids: list[int], *, actor: str = "system"
) -> AwardResult:
    """Credit every approved sale to the challenges it counts for (idempotent per sale and
    challenge), then the milestone bonuses it unlocks."""
    result = AwardResult()
    if not sale_ids:
        return result
    now = app.clock.now()
    rows = session.execute(
        select(Sale, Product.family, Participant.challenge_key)
        .join(Product, Product.sku == Sale.product, isouter=True)  # type: ignore[arg-type]
        .join(Participant, Participant.contact_id == Sale.contact_id)  # type: ignore[arg-type]
        .where(Sale.id.in_(sale_ids), Sale.status == APPROVED)  # type: ignore[union-attr]
    ).all()
    touched: dict[str, set[int]] = defaultdict(set)
    for sale, family, challenge_key in rows:
        challenge = _configured(app, challenge_key)
        if challenge is None:
            continue
        sold_on = local_day(app, sale.sold_at)
        if not challenge.start <= sold_on <= challenge.end:
            continue
        points = sale_points(
            challenge,
            family=family or "",
            quantity=sale.quantity,
            amount=sale.amount,
            sold_on=sold_on,
        )
        if points <= 0:
            continue
        entry = credit(
            session,
            contact_id=sale.contact_id,
            points=points,
            kind="earn",  # type: ignore[arg-type]
            source_key=f"sale:{sale.id}:{challenge.id}",
            now=now,
            actor=actor,
            reason=f"sale {sale.invoice_ref}: {sale.product} × {sale.quantity:g}",
            challenge_key=challenge.id,
            sale_id=sale.id,
            expires_at=_expiry(challenge, now),
        )
        if entry is not None:
            result.points += points
            result.entries += 1
            touched[challenge.id].add(sale.contact_id)  # type: ignore[arg-type]
    for challenge_key, contacts in touched.items():
        result.milestones += _milestone_bonuses(
            app, session, _configured(app, challenge_key), contacts
        )  # type: ignore[arg-type]
    return result


def _configured(app: App, key: str) -> ChallengeConfig | None:
    return next((c for c in app.config.challenges if c.id == key), None)


def _expiry(challenge: ChallengeConfig, now: datetime) -> datetime | None:
    months = challenge.points_expiry_months
    if months is None:
        return None
    month = now.month - 1 + months
    year, month = now.year + month // 12, month % 12 + 1
    day = min(
        now.day,
        [
            31,
            29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28,
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ][month - 1],
    )
    return now.replace(year=year, month=month, day=day)


def _milestone_bonuses(
    app: App, session: Session, challenge: ChallengeConfig, contact_ids: set[int]
) -> list[tuple[str, int, float]]:
    if not challenge.scoring.milestones:
        return []
    targets = final_targets(session, challenge.id, "participant")
    externals = dict(
        session.execute(
            select(Contact.id, Contact.external_id).where(Contact.id.in_(sorted(contact_ids)))  # type: ignore[union-attr]
        ).all()
    )
    earned = sales_points(session, challenge.id, contact_ids)
    reached = []
    for contact_id in sorted(contact_ids):
        target = targets.get(externals[contact_id])
        if not target:
            continue
        share = earned.get(contact_id, 0) / target
        for milestone in challenge.scoring.milestones:
            if share < milestone.reached:
                continue
            entry = credit(
                session,
                contact_id=contact_id,
                points=milestone.points,
                kind="bonus",
                source_key=f"milestone:{challenge.id}:{contact_id}:{milestone.reached:g}",
                now=app.clock.now(),
                challenge_key=challenge.id,
                reason=f"milestone: {milestone.reached:.0%} of the objective",
                expires_at=_expiry(challenge, app.clock.now()),
            )
            if entry is not None:
                reached.append((challenge.id, contact_id, milestone.reached))
    if reached:
        contacts = session.scalars(
            select(Contact).where(Contact.id.in_(sorted({cid for _, cid, _ in reached})))  # type: ignore[union-attr]
        ).all()
        enrol_in(app, session, challenge, MILESTONE, list(contacts))
    return reached


def review(
    app: App, sale_ids: list[int], *, approve: bool, reason: str = "", actor: str = "manager"
) -> AwardResult:
    """Approve (points are credited) or reject (the reason is kept for the participant)."""
    if not approve and not reason.strip():
        raise UserError("a rejection needs a --reason: the participant sees it")
    now = app.clock.now()
    with Session(app.engine) as session, session.begin():
        sales = session.scalars(select(Sale).where(Sale.id.in_(sale_ids))).all()  # type: ignore[union-attr]
        found = {s.id for s in sales}
        missing = [str(i) for i in sale_ids if i not in found]
        not_pending = [str(s.id) for s in sales if s.status != PENDING]
        if missing or not_pending:
            raise UserError(
                "nothing reviewed",
                [f"unknown sale id(s): {', '.join(missing)}"] * bool(missing)
                + [f"not pending: {', '.join(not_pending)}"] * bool(not_pending),
            )
        for sale in sales:
            sale.status = APPROVED if approve else REJECTED
            sale.review_reason, sale.reviewed_at = reason, now
        session.flush()
        return award_sales(app, session, sale_ids, actor=actor) if approve else AwardResult()
