"""The points ledger: append-only entries, a guarded balance, oldest credits used first.

Every entry has a unique source key (the same sale never earns twice, the same
redemption never debits twice), an actor and a reason, so a participant's balance is
explained line by line. The balance also lives in ``pointsaccount`` so a debit is one
guarded UPDATE (``balance >= points``, plus a CHECK constraint): concurrent redemptions
serialise on that row and a balance never goes negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from network_anim.challenges.totals import RANKED_KINDS, SALES_KINDS, record_entry
from network_anim.db.models import LedgerEntry, PointsAccount
from network_anim.errors import UserError

CREDIT_KINDS = frozenset({"earn", "bonus", "refund", "adjust"})
DEBIT_KINDS = frozenset({"redeem", "adjust", "expire"})


class InsufficientPoints(UserError):
    def __init__(self, balance: int, wanted: int) -> None:
        super().__init__(f"not enough points: balance {balance}, {wanted} needed")
        self.balance, self.wanted = balance, wanted


def _ensure_account(session: Session, contact_id: int, now: datetime) -> None:
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        module.insert(PointsAccount)
        .values(contact_id=contact_id, balance=0, updated_at=now)
        .on_conflict_do_nothing(index_elements=["contact_id"])
    )


def _exists(session: Session, source_key: str) -> bool:
    return (
        session.scalar(select(LedgerEntry.id).where(LedgerEntry.source_key == source_key))
        is not None
    )


def credit(
    session: Session,
    *,
    contact_id: int,
    points: int,
    kind: str,
    source_key: str,
    now: datetime,
    actor: str = "system",
    reason: str = "",
    challenge_key: str | None = None,
    sale_id: int | None = None,
    expires_at: datetime | None = None,
) -> LedgerEntry | None:
    """Add points; ``None`` if this source was already credited (idempotent)."""
    if kind not in CREDIT_KINDS or points <= 0:
        raise ValueError(
            f"a credit is a positive {sorted(CREDIT_KINDS)} entry, not {kind} {points}"
        )
    if _exists(session, source_key):
        return None
    _ensure_account(session, contact_id, now)
    session.execute(
        update(PointsAccount)
        .where(PointsAccount.contact_id == contact_id)
        .values(balance=PointsAccount.balance + points, updated_at=now)
    )
    entry = LedgerEntry(
        contact_id=contact_id,
        challenge_key=challenge_key,
        kind=kind,
        points=points,
        remaining=points,
        source_key=source_key,
        actor=actor,
        reason=reason[:300],
        sale_id=sale_id,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(entry)
    session.flush()
    record_entry(session, entry)
    return entry


def debit(
    session: Session,
    *,
    contact_id: int,
    points: int,
    kind: str,
    source_key: str,
    now: datetime,
    actor: str = "system",
    reason: str = "",
    challenge_key: str | None = None,
    partial: bool = False,
) -> LedgerEntry | None:
    """Take points, oldest credits first. Raises InsufficientPoints, or with ``partial``
    takes what is there (a correction after points were already spent)."""
    if kind not in DEBIT_KINDS or points <= 0:
        raise ValueError(f"a debit is a positive {sorted(DEBIT_KINDS)} amount, not {kind} {points}")
    if _exists(session, source_key):
        return None
    _ensure_account(session, contact_id, now)
    if not _take(session, contact_id, points, now):
        available = balance(session, contact_id)
        if not partial:
            raise InsufficientPoints(available, points)
        if available <= 0 or not _take(session, contact_id, available, now):
            return None
        reason = f"{reason} (correction of {points}; only {available} left to take)"
        points = available
    _consume(session, contact_id, points)
    entry = LedgerEntry(
        contact_id=contact_id,
        challenge_key=challenge_key,
        kind=kind,
        points=-points,
        remaining=0,
        source_key=source_key,
        actor=actor,
        reason=reason[:300],
        created_at=now,
    )
    session.add(entry)
    session.flush()
    record_entry(session, entry)
    return entry


def _take(session: Session, contact_id: int, points: int, now: datetime) -> bool:
    """The guarded decrement: it happens whole or not at all, never below zero."""
    taken = session.execute(
        update(PointsAccount)
        .where(PointsAccount.contact_id == contact_id, PointsAccount.balance >= points)
        .values(balance=PointsAccount.balance - points, updated_at=now)
    ).rowcount
    return bool(taken)


def _consume(session: Session, contact_id: int, points: int) -> None:
    """Mark ``points`` of the oldest unspent credits as used (what expiry can still take)."""
    query = (
        select(LedgerEntry)
        .where(LedgerEntry.contact_id == contact_id, LedgerEntry.remaining > 0)
        .order_by(LedgerEntry.created_at, LedgerEntry.id)
    )
    left = points
    for entry in session.scalars(query):
        used = min(entry.remaining, left)
        entry.remaining -= used
        left -= used
        if left == 0:
            return


def expire_due(session: Session, now: datetime) -> int:
    """Expire what is left of every credit past its expiry: never more than that."""
    due = session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.expires_at <= now, LedgerEntry.remaining > 0)  # type: ignore[operator]
        .order_by(LedgerEntry.contact_id, LedgerEntry.created_at, LedgerEntry.id)
    ).all()
    expired = 0
    for credit_entry in due:
        left = credit_entry.remaining
        session.execute(
            update(PointsAccount)
            .where(PointsAccount.contact_id == credit_entry.contact_id)
            .values(balance=PointsAccount.balance - left, updated_at=now)
        )
        credit_entry.remaining = 0
        session.add(
            LedgerEntry(
                contact_id=credit_entry.contact_id,
                challenge_key=None,
                kind="expire",
                points=-left,
                source_key=f"expire:{credit_entry.id}",
                reason=f"{left} points of entry {credit_entry.id} ({credit_entry.reason}) expired",
                created_at=now,
            )
        )
        expired += left
    session.flush()
    return expired


def balance(session: Session, contact_id: int) -> int:
    value = session.scalar(
        select(PointsAccount.balance).where(PointsAccount.contact_id == contact_id)
    )
    return int(value or 0)


@dataclass(frozen=True, slots=True)
class StatementLine:
    when: datetime
    kind: str
    points: int
    balance: int
    reason: str
    actor: str
    challenge: str | None


def statement(session: Session, contact_id: int) -> list[StatementLine]:
    """The balance explained line by line, as the participant sees it."""
    running = 0
    lines = []
    for entry in session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.contact_id == contact_id)
        .order_by(LedgerEntry.created_at, LedgerEntry.id)
    ):
        running += entry.points
        lines.append(
            StatementLine(
                entry.created_at,
                entry.kind,
                entry.points,
                running,
                entry.reason,
                entry.actor,
                entry.challenge_key,
            )
        )
    return lines


def challenge_points(
    session: Session, challenge_key: str, contact_ids: set[int] | None = None
) -> dict[int, int]:
    query = (
        select(LedgerEntry.contact_id, func.sum(LedgerEntry.points))
        .where(LedgerEntry.challenge_key == challenge_key, LedgerEntry.kind.in_(RANKED_KINDS))  # type: ignore[attr-defined]
        .group_by(LedgerEntry.contact_id)
    )
    if contact_ids is not None:
        query = query.where(LedgerEntry.contact_id.in_(sorted(contact_ids)))  # type: ignore[attr-defined]
    return {cid: int(points or 0) for cid, points in session.execute(query)}


def sales_points(session: Session, challenge_key: str, contact_ids: set[int]) -> dict[int, int]:
    """Points from sales only (bonuses do not count toward the objective)."""
    query = (
        select(LedgerEntry.contact_id, func.sum(LedgerEntry.points))
        .where(LedgerEntry.challenge_key == challenge_key, LedgerEntry.kind.in_(SALES_KINDS))  # type: ignore[attr-defined]
        .where(LedgerEntry.contact_id.in_(sorted(contact_ids)))  # type: ignore[attr-defined]
        .group_by(LedgerEntry.contact_id)
    )
    return {cid: int(points or 0) for cid, points in session.execute(query)}
