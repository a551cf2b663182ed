"""Reseller challenges: registration, objectives, sales into points, milestones, reviews,
re-scoring after a rule change, the hidden dry run, expiry, KPIs.

The rules live in the config (``[[challenges]]``); the database holds who takes part,
the objectives, and the ledger entries that explain every point.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.app import App
from network_anim.challenges.communications import MILESTONE, WELCOME, enrol_in
from network_anim.challenges.ledger import challenge_points, credit, debit, sales_points
from network_anim.challenges.scoring import sale_points
from network_anim.config.settings import ChallengeConfig
from network_anim.db.models import (
    Challenge,
    Company,
    Contact,
    LedgerEntry,
    Objective,
    Participant,
    Product,
    Sale,
)
from network_anim.errors import UserError
from network_anim.network.audience import audience_query

APPROVED, PENDING, REJECTED = "approved", "pending", "rejected"


# -- calendar ------------------------------------------------------------------------------


def window(app: App, challenge: ChallengeConfig) -> tuple[datetime, datetime]:
    """First and last moment of the challenge, both days included, in the engine's zone."""
    zone = ZoneInfo(app.config.engine.timezone)
    return (
        datetime.combine(challenge.start, time(0), tzinfo=zone),
        datetime.combine(challenge.end + timedelta(days=1), time(0), tzinfo=zone)
        - timedelta(microseconds=1),
    )


def local_day(app: App, moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(app.config.engine.timezone)).date()


def sync_challenges(app: App) -> None:
    """Challenge rows follow the config; their objectives are (re)read from their CSV."""
    now = app.clock.now()
    with Session(app.engine) as session, session.begin():
        rows = {c.key: c for c in session.scalars(select(Challenge))}
        for challenge in app.config.challenges:
            starts, ends = window(app, challenge)
            status = "scheduled" if now < starts else ("live" if now <= ends else "closed")
            row = rows.get(challenge.id)
            if row is None:
                session.add(
                    Challenge(
                        key=challenge.id,
                        name=challenge.name,
                        starts_at=starts,
                        ends_at=ends,
                        status=status,
                        created_at=now,
                    )
                )
            else:
                row.name, row.starts_at, row.ends_at, row.status = (
                    challenge.name,
                    starts,
                    ends,
                    status,
                )
            if challenge.objectives is not None:
                _store_objectives(session, app, challenge)
        _sync_products(session, app)


def _sync_products(session: Session, app: App) -> None:
    rows = {p.sku: p for p in session.scalars(select(Product))}
    for product in app.config.products:
        row = rows.get(product.sku)
        if row is None:
            session.add(
                Product(
                    sku=product.sku,
                    name=product.name,
                    family=product.family,
                    unit_price=product.unit_price,
                )
            )
        else:
            row.name, row.family, row.unit_price = product.name, product.family, product.unit_price


# -- teams and registration -------------------------------------------------------------------


def team_key(challenge: ChallengeConfig, company_external_id: str) -> str:
    """A company's team: the named group that lists it, else the company itself."""
    if not challenge.teams:
        return company_external_id
    for team in challenge.teams:
        if company_external_id in team.companies:
            return team.key
    return ""


def register(
    app: App, session: Session, challenge: ChallengeConfig, contacts: list[Contact], *, via: str
) -> list[Contact]:
    """Register contacts (those already in are left alone); returns the new participants.
    Someone outside the challenge's audience is refused with the reason."""
    audience = app.config.audience(challenge.audience)
    ids = [c.id for c in contacts]
    eligible = {
        row[0].id: row[1]
        for row in session.execute(
            audience_query(audience, min_level=challenge.level).where(Contact.id.in_(ids))  # type: ignore[union-attr]
        )
    }
    outside = [c.external_id for c in contacts if c.id not in eligible]
    if outside:
        raise UserError(
            f"not in the audience of challenge {challenge.id} ({challenge.audience}, level "
            f"{challenge.level} and above): nothing registered",
            [", ".join(outside)],
        )
    already = set(
        session.scalars(
            select(Participant.contact_id).where(
                Participant.challenge_key == challenge.id, Participant.contact_id.in_(ids)
            )  # type: ignore[attr-defined]
        )
    )
    now = app.clock.now()
    new = []
    for contact in contacts:
        if contact.id in already:
            continue
        company: Company = eligible[contact.id]
        session.add(
            Participant(
                challenge_key=challenge.id,
                contact_id=contact.id,  # type: ignore[arg-type]
                team_key=team_key(challenge, company.external_id),
                registered_at=now,
                via=via,
            )
        )
        already.add(contact.id)
        new.append(contact)
    session.flush()
    # Confirmation now, a follow-up a week later: the challenge's registration sequence.
    enrol_in(app, session, challenge, WELCOME, new)
    return new


def register_everyone(app: App, challenge: ChallengeConfig) -> int:
    """Automatic registration: the whole audience takes part once the challenge is live."""
    with Session(app.engine) as session, session.begin():
        audience = app.config.audience(challenge.audience)
        query = audience_query(audience, min_level=challenge.level).where(
            ~Contact.id.in_(
                select(Participant.contact_id).where(Participant.challenge_key == challenge.id)
            )  # type: ignore[union-attr]
        )
        contacts = [row[0] for row in session.execute(query)]
        return len(register(app, session, challenge, contacts, via="automatic"))


def register_by_keyword(app: App, contact_id: int, keyword: str) -> ChallengeConfig | None:
    """An inbound SMS keyword registers the sender to the challenge that uses it."""
    word = keyword.strip().upper()
    for challenge in app.config.challenges:
        if challenge.sms_keyword == word:
            with Session(app.engine) as session, session.begin():
                contact = session.get(Contact, contact_id)
                if contact is not None:
                    register(app, session, challenge, [contact], via="sms")
            return challenge
    return None


# -- objectives -------------------------------------------------------------------------------

_OBJECTIVE_COLUMNS = ("challenge_id", "scope", "subject", "due", "target")


def read_objectives(app: App, challenge: ChallengeConfig) -> list[tuple[str, str, date, float]]:
    """(scope, subject, due, target) rows of the challenge's objectives file, or the
    line-by-line problems as a UserError."""
    assert challenge.objectives is not None
    path = app.loaded.resolve(challenge.objectives)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UserError(f"{path}: cannot read the objectives file ({exc.strerror})") from None
    reader = csv.reader(io.StringIO(text), delimiter=";" if ";" in text.splitlines()[0] else ",")
    header = [h.strip().lower() for h in next(reader, [])]
    if tuple(header) != _OBJECTIVE_COLUMNS:
        raise UserError(f"{path} line 1: the header must be {';'.join(_OBJECTIVE_COLUMNS)}")
    rows, problems = [], []
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(_OBJECTIVE_COLUMNS):
            problems.append(
                f"line {number}: {len(cells)} cells, expected {len(_OBJECTIVE_COLUMNS)}"
            )
            continue
        challenge_id, scope, subject, due, target = (c.strip() for c in cells)
        if challenge_id != challenge.id:
            continue
        try:
            due_day = date.fromisoformat(due)
            value = float(target)
        except ValueError:
            problems.append(f"line {number}: due must be a date (2027-02-28) and target a number")
            continue
        if scope not in ("participant", "team"):
            problems.append(f"line {number}: scope {scope!r} is not participant or team")
        elif not challenge.start <= due_day <= challenge.end:
            problems.append(
                f"line {number}: due {due_day} is outside the challenge ({challenge.start} to {challenge.end})"
            )
        elif value <= 0:
            problems.append(f"line {number}: target must be positive")
        else:
            rows.append((scope, subject, due_day, value))
    if problems:
        raise UserError(f"{path}: {len(problems)} bad line(s); no objective changed", problems)
    return rows


def _store_objectives(session: Session, app: App, challenge: ChallengeConfig) -> None:
    zone = ZoneInfo(app.config.engine.timezone)
    wanted = {
        (scope, subject, datetime.combine(due, time(23, 59), tzinfo=zone)): target
        for scope, subject, due, target in read_objectives(app, challenge)
    }
    existing = {
        (o.scope, o.subject, o.due): o
        for o in session.scalars(select(Objective).where(Objective.challenge_key == challenge.id))
    }
    for (scope, subject, due), target in wanted.items():
        row = existing.get((scope, subject, due.astimezone(ZoneInfo("UTC"))))
        if row is None:
            session.add(
                Objective(
                    challenge_key=challenge.id, scope=scope, subject=subject, due=due, target=target
                )
            )
        else:
            row.target = target


def final_targets(session: Session, challenge_key: str, scope: str) -> dict[str, float]:
    """Each subject's last milestone: the objective of the whole challenge."""
    targets: dict[str, tuple[datetime, float]] = {}
    for objective in session.scalars(
        select(Objective).where(Objective.challenge_key == challenge_key, Objective.scope == scope)
    ):
        if objective.subject not in targets or objective.due > targets[objective.subject][0]:
            targets[objective.subject] = (objective.due, objective.target)
    return {subject: target for subject, (_, target) in targets.items()}


# -- sales into points ----------------------------------------------------------------------------


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


# -- reviews (approval), recompute, dry run -------------------------------------------------------


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
    audience = audience_query(app.config.audience(challenge.audience), min_level=challenge.level)
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


# -- KPIs -------------------------------------------------------------------------------------------


def kpis(app: App, challenge_key: str) -> dict[str, Any]:
    """What the channel manager steers the challenge by (the seeds' 42 of 43, 101 sellers)."""
    challenge = app.config.challenge(challenge_key)
    first, last = window(app, challenge)
    length = last - first
    audience = audience_query(app.config.audience(challenge.audience), min_level=challenge.level)
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


def challenge_tick(app: App, *, sync: bool = True) -> int:
    """Periodic upkeep: challenge rows and objectives follow the config (``sync``: once
    per config is enough), automatic registration of live challenges, expiry of points."""
    from network_anim.challenges.ledger import expire_due

    if sync:
        sync_challenges(app)
    now = app.clock.now()
    registered = 0
    for challenge in app.config.challenges:
        first, last = window(app, challenge)
        if challenge.registration == "automatic" and first <= now <= last:
            registered += register_everyone(app, challenge)
    with Session(app.engine) as session, session.begin():
        expire_due(session, now)
    return registered
