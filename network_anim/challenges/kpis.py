"""What the channel manager steers a challenge by: registration, participation,
attainment of the objectives, points issued and redeemed, sales uplift."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.app import App
from network_anim.challenges.awarding import APPROVED
from network_anim.challenges.calendar import window
from network_anim.challenges.ledger import challenge_points, sales_points
from network_anim.challenges.objectives import final_targets
from network_anim.db.models import Contact, LedgerEntry, Participant, Sale
from network_anim.network.audience import audience_query


def kpis(app: App, challenge_key: str) -> dict[str, Any]:
    """What the channel manager steers the challenge by (the seeds' 42 of 43, 101 sellers)."""
    challenge = app.config.challenge(challenge_key)
    first, last = window(app, challenge)
    length = last - first
    audience = audience_query(
        app.config.audience(challenge.audience), now=app.clock.now(), min_level=challenge.level
    )
    with Session(app.engine) as session:
        targeted = {row[1].id for row in session.execute(audience)}
        participants = session.execute(
            select(Participant.contact_id, Contact.company_id, Participant.team_key)
            .join(Contact, Contact.id == Participant.contact_id)  # type: ignore[arg-type]
            .where(Participant.challenge_key == challenge.id)
        ).all()
        contact_ids = {p[0] for p in participants}
        earned = challenge_points(session, challenge.id)
        sales = sales_points(session, challenge.id, contact_ids) if contact_ids else {}
        active = {cid for cid, pts in sales.items() if pts > 0}
        redeemed = -int(
            session.scalar(
                select(func.coalesce(func.sum(LedgerEntry.points), 0))
                .where(
                    LedgerEntry.kind == "redeem", LedgerEntry.contact_id.in_(sorted(contact_ids))
                )  # type: ignore[attr-defined]
                .where(LedgerEntry.created_at >= first)
            )
            or 0
        )
        members = audience.with_only_columns(Contact.id).order_by(None)

        def sales_between(a: datetime, b: datetime) -> float:
            return float(
                session.scalar(
                    select(func.coalesce(func.sum(Sale.amount), 0.0))
                    .where(Sale.status == APPROVED, Sale.sold_at >= a, Sale.sold_at <= b)
                    .where(Sale.contact_id.in_(members))  # type: ignore[union-attr]
                )
                or 0.0
            )

        during = sales_between(first, last)
        baseline = sales_between(
            first - length - timedelta(microseconds=1), first - timedelta(microseconds=1)
        )
        externals = (
            dict(
                session.execute(
                    select(Contact.id, Contact.external_id).where(
                        Contact.id.in_(sorted(contact_ids))
                    )  # type: ignore[union-attr]
                ).all()
            )
            if contact_ids
            else {}
        )
        individual_targets = final_targets(session, challenge.id, "participant")
        team_targets = final_targets(session, challenge.id, "team")
    attainment = {
        externals[cid]: round(sales.get(cid, 0) / individual_targets[externals[cid]], 4)
        for cid in contact_ids
        if externals[cid] in individual_targets
    }
    team_points: dict[str, int] = defaultdict(int)
    for cid, _company, team in participants:
        team_points[team] += sales.get(cid, 0)
    return {
        "challenge": challenge.id,
        "companies_targeted": len(targeted),
        "companies_registered": len({p[1] for p in participants}),
        "participants": len(contact_ids),
        "active_participants": len(active),
        "attainment": attainment,
        "team_attainment": {
            t: round(team_points[t] / target, 4) for t, target in team_targets.items()
        },
        "points_issued": sum(v for v in earned.values() if v > 0),
        "points_redeemed": redeemed,
        "sales_during": round(during, 2),
        "sales_baseline": round(baseline, 2),
        "sales_uplift": round((during - baseline) / baseline, 4) if baseline else None,
    }
