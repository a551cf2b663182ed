"""The points ledger and the rewards shop: idempotent, explainable, never negative."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.app import App
from network_anim.challenges.ledger import (
    InsufficientPoints,
    balance,
    credit,
    debit,
    expire_due,
    statement,
)
from network_anim.challenges.rewards import cancel, export_fulfilment, redeem, sync_rewards
from network_anim.db.models import Contact, LedgerEntry, PointsAccount, Redemption, Reward
from network_anim.errors import UserError


def _contact(app: App, external_id: str = "C0002") -> int:
    with Session(app.engine) as session:
        return session.scalars(select(Contact.id).where(Contact.external_id == external_id)).one()


def _credit(app: App, contact: int, points: int, key: str, **kw) -> None:  # type: ignore[no-untyped-def]
    with Session(app.engine) as session, session.begin():
        credit(
            session,
            contact_id=contact,
            points=points,
            kind="earn",
            source_key=key,
            now=app.clock.now(),
            **kw,
        )


def test_credits_are_idempotent_and_the_balance_is_explained(network: App) -> None:
    julien = _contact(network)
    _credit(network, julien, 300, "sale:1:pbx", reason="sale F-1")
    _credit(network, julien, 300, "sale:1:pbx", reason="sale F-1 again")  # same source: nothing
    _credit(network, julien, 200, "sale:2:pbx", reason="sale F-2")
    with Session(network.engine) as session, session.begin():
        debit(
            session,
            contact_id=julien,
            points=450,
            kind="redeem",
            source_key="redeem:1",
            now=network.clock.now(),
            reason="gift",
        )
        assert balance(session, julien) == 50
        lines = statement(session, julien)
    assert [(line.points, line.balance) for line in lines] == [(300, 300), (200, 500), (-450, 50)]
    assert [line.reason for line in lines] == ["sale F-1", "sale F-2", "gift"]


def test_a_debit_never_makes_a_balance_negative(network: App) -> None:
    julien = _contact(network)
    _credit(network, julien, 100, "s1")
    with Session(network.engine) as session, session.begin(), pytest.raises(InsufficientPoints):
        debit(
            session,
            contact_id=julien,
            points=101,
            kind="redeem",
            source_key="r1",
            now=network.clock.now(),
        )
    with Session(network.engine) as session, session.begin():
        entry = debit(
            session,
            contact_id=julien,
            points=150,
            kind="adjust",
            source_key="fix1",
            now=network.clock.now(),
            reason="correction",
            partial=True,
        )
        assert entry is not None and entry.points == -100 and "only 100 left" in entry.reason
        assert balance(session, julien) == 0


def test_expiry_takes_only_what_is_left_of_the_oldest_credits(network: App, clock) -> None:
    julien = _contact(network)
    start = clock.now()
    _credit(network, julien, 100, "old", expires_at=start + timedelta(days=30))
    clock.advance(timedelta(days=10))
    _credit(network, julien, 100, "new", expires_at=start + timedelta(days=90))
    with Session(network.engine) as session, session.begin():
        # Spending 130 uses the old credit first (100), then 30 of the new one.
        debit(
            session, contact_id=julien, points=130, kind="redeem", source_key="r", now=clock.now()
        )
    clock.advance(timedelta(days=25))
    with Session(network.engine) as session, session.begin():
        assert expire_due(session, clock.now()) == 0  # the old credit was used up
    clock.advance(timedelta(days=60))
    with Session(network.engine) as session, session.begin():
        assert expire_due(session, clock.now()) == 70  # what is left of the new one
        assert expire_due(session, clock.now()) == 0
        assert balance(session, julien) == 0
        total = session.scalar(
            select(func.sum(LedgerEntry.points)).where(LedgerEntry.contact_id == julien)
        )
    assert total == 0


def test_redeem_cancel_and_export(network: App, tmp_path: Path) -> None:
    sync_rewards(network)
    julien = _contact(network)
    _credit(network, julien, 3000, "s1")
    gift = redeem(network, julien, "casque-audio")
    with Session(network.engine) as session:
        assert balance(session, julien) == 500
        assert session.scalars(select(Reward.stock).where(Reward.key == "casque-audio")).one() == 29
    with pytest.raises(InsufficientPoints, match="balance 500, 2500 needed"):
        redeem(network, julien, "casque-audio")
    with Session(network.engine) as session:  # the failed attempt took no stock
        assert session.scalars(select(Reward.stock).where(Reward.key == "casque-audio")).one() == 29
    cancel(network, gift.id)
    with Session(network.engine) as session:
        assert balance(session, julien) == 3000
        assert session.scalars(select(Reward.stock).where(Reward.key == "casque-audio")).one() == 30
    redeem(network, julien, "coffret-gourmand")
    summary = export_fulfilment(network, tmp_path / "fulfilment.csv")
    text = summary.path.read_text(encoding="utf-8-sig")
    assert summary.lines == 1 and "Coffret gourmand" in text and "Julien Garnier" in text
    with pytest.raises(UserError, match="cannot be cancelled"):
        with Session(network.engine) as session:
            exported = session.scalars(
                select(Redemption.id).where(Redemption.status == "exported")
            ).one()
        cancel(network, exported)
    with pytest.raises(UserError, match="unknown gift"):
        redeem(network, julien, "yacht")


def test_fifty_concurrent_redemptions_never_overdraw_nor_oversell(network: App) -> None:
    sync_rewards(network)
    julien = _contact(network)
    _credit(network, julien, 800 * 10, "s1")  # enough for 10 "coffret-gourmand" (stock 100)
    thomas = _contact(network, "C0006")
    _credit(network, thomas, 12000 * 50, "s2")  # enough for 50 week-ends (stock 5)

    def attempt(args: tuple[int, str]) -> str:
        try:
            redeem(network, *args)
            return "ok"
        except UserError as exc:
            return exc.summary

    # On SQLite writers queue up (one at a time); on PostgreSQL the 50 really race.
    with ThreadPoolExecutor(max_workers=25) as pool:
        results = list(
            pool.map(attempt, [(julien, "coffret-gourmand")] * 50 + [(thomas, "weekend")] * 50)
        )
    julien_results, thomas_results = results[:50], results[50:]
    assert julien_results.count("ok") == 10
    assert all("not enough points" in r for r in julien_results if r != "ok")
    assert thomas_results.count("ok") == 5
    assert all("out of stock" in r for r in thomas_results if r != "ok")
    with Session(network.engine) as session:
        assert balance(session, julien) == 0
        assert balance(session, thomas) == 12000 * 45
        stocks = dict(session.execute(select(Reward.key, Reward.stock)).all())
        assert stocks["coffret-gourmand"] == 90 and stocks["weekend"] == 0
        assert session.scalar(select(func.count()).select_from(Redemption)) == 15
        ledger_sum = session.scalar(
            select(func.sum(LedgerEntry.points)).where(LedgerEntry.contact_id == julien)
        )
        assert ledger_sum == session.scalar(
            select(PointsAccount.balance).where(PointsAccount.contact_id == julien)
        )
