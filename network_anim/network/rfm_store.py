"""RFM against the database: read each company's approved sales, store its segment.

The scoring itself is pure (:mod:`network_anim.network.rfm`); this module only feeds it and keeps
its result in ``CompanySegment`` rows, which campaign audiences filter on
(``rfm_segments``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, insert, select
from sqlmodel import Session

from network_anim.app import App
from network_anim.db.models import Company, CompanySegment, Sale
from network_anim.network.rfm import SCHEME, Activity, RfmScore, months_before, score_companies

DEFAULT_MONTHS = 12
# Audiences filter on stored scores: older than this, sales declared since are ignored.
STALE_AFTER = timedelta(days=31)


@dataclass(frozen=True)
class RfmRun:
    as_of: datetime
    since: datetime  # window: since < sold_at <= as_of
    scores: list[RfmScore]
    written: bool


def company_activity(session: Session, *, as_of: datetime, since: datetime) -> list[Activity]:
    """Every company with its approved sales in (since, as_of]; companies without any
    come back with frequency 0. One grouped query, whatever the number of sales."""
    in_window = and_(
        Sale.company_id == Company.id,
        Sale.status == "approved",
        Sale.sold_at > since,  # type: ignore[operator]
        Sale.sold_at <= as_of,  # type: ignore[operator]
    )
    rows = session.execute(
        select(
            Company.id,
            func.max(Sale.sold_at),
            func.count(Sale.id),  # type: ignore[arg-type]
            func.coalesce(func.sum(Sale.amount), 0.0),
        )
        .select_from(Company)
        .outerjoin(Sale, in_window)
        .group_by(Company.id)
        .order_by(Company.id)
    ).all()
    return [
        Activity(
            company_id=int(company_id),
            recency_days=None if last is None else (as_of - last).days,
            frequency=int(count),
            monetary=float(amount),
        )
        for company_id, last, count, amount in rows
    ]


def score_fields(score: RfmScore | CompanySegment) -> dict[str, object]:
    """A company's segment and its R, F, M values and scores, as stored and reported."""
    return {
        "segment": score.segment,
        "recency_days": score.recency_days,
        "frequency": score.frequency,
        "monetary": score.monetary,
        "r_score": score.r_score,
        "f_score": score.f_score,
        "m_score": score.m_score,
    }


def replace_scores(session: Session, scores: Sequence[RfmScore], computed_at: datetime) -> None:
    """Swap the scheme's rows for ``scores`` in the caller's transaction: audiences see
    the old segments or the new ones, never a mix."""
    session.execute(delete(CompanySegment).where(CompanySegment.scheme == SCHEME))  # type: ignore[arg-type]
    if not scores:
        return
    session.execute(
        insert(CompanySegment),
        [
            {
                "company_id": s.company_id,
                "scheme": SCHEME,
                **score_fields(s),
                "computed_at": computed_at,
            }
            for s in scores
        ],
    )


def recompute_rfm(
    app: App,
    *,
    as_of: datetime | None = None,
    months: int = DEFAULT_MONTHS,
    dry_run: bool = False,
) -> RfmRun:
    """Score every company as of ``as_of`` (default: now) over the last ``months``;
    store the result unless ``dry_run``."""
    if months < 1:
        raise ValueError("months must be at least 1")
    now = app.clock.now()
    moment = as_of or now
    since = months_before(moment, months)
    with Session(app.engine) as session, session.begin():
        scores = score_companies(company_activity(session, as_of=moment, since=since))
        if not dry_run:
            replace_scores(session, scores, computed_at=now)
    return RfmRun(as_of=moment, since=since, scores=scores, written=not dry_run)


def last_computed(session: Session) -> datetime | None:
    return session.scalar(
        select(func.max(CompanySegment.computed_at)).where(CompanySegment.scheme == SCHEME)  # type: ignore[arg-type]
    )


def stale_rfm_warnings(app: App) -> list[str]:
    """What to tell an operator whose campaigns filter on RFM segments that are missing or
    old: such an audience is silently empty or out of date, not an error."""
    filtered = {a.name for a in app.config.audiences if a.rfm_segments}
    campaigns = [c.id for c in app.config.campaigns if c.audience in filtered]
    if not campaigns:
        return []
    with Session(app.engine) as session:
        computed = last_computed(session)
    names = ", ".join(campaigns)
    if computed is None:
        return [
            f"campaign(s) {names}: audience filters on rfm_segments but no RFM scores exist "
            "yet, so it selects nobody: run netanim segment rfm"
        ]
    age = app.clock.now() - computed
    if age > STALE_AFTER:
        return [
            f"campaign(s) {names}: RFM scores are {age.days} days old "
            f"(computed {computed:%Y-%m-%d}): run netanim segment rfm to refresh them"
        ]
    return []
