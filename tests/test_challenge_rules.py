"""Rules that change: the hidden rehearsal, re-scoring by compensating entries, reviews."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.app import open_app
from network_anim.challenges.awarding import review
from network_anim.challenges.rescoring import dry_run, recompute
from network_anim.challenges.sales_csv import read_sales_csv
from network_anim.challenges.sales_import import import_sales, sales_context
from network_anim.challenges.upkeep import sync_challenges
from network_anim.clock import SimulatedClock
from network_anim.db.models import Contact, LedgerEntry, Sale
from network_anim.errors import UserError
from network_anim.network.importer import import_network
from network_anim.network.network_csv import ImportDefaults, read_network_csv
from tests.conftest import REPO, SAMPLE_NETWORK

APRIL = datetime(2027, 4, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def rules_app(config_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    (config_path.parent / "examples").mkdir(exist_ok=True)
    (config_path.parent / "examples" / "objectives.csv").write_text(
        (REPO / "examples" / "objectives.csv").read_text(encoding="utf-8"), encoding="utf-8"
    )
    app = open_app(config_path, clock=SimulatedClock(APRIL))
    import_network(
        app.engine,
        read_network_csv(SAMPLE_NETWORK, ImportDefaults()),
        now=datetime(2026, 6, 1, tzinfo=UTC),
        source="test",
    )
    sync_challenges(app)
    yield app
    app.close()


def _import_example_sales(app) -> list[int]:  # type: ignore[no-untyped-def]
    records = read_sales_csv(REPO / "examples" / "sales.csv", sales_context(app))
    return import_sales(app, records, source="sales.csv", declared_by="import").sale_ids


def _challenge_points(app) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with Session(app.engine) as session:
        return dict(
            session.execute(
                select(Contact.external_id, func.sum(LedgerEntry.points))
                .join(Contact, Contact.id == LedgerEntry.contact_id)
                .where(LedgerEntry.challenge_key == "pbx-2027")
                .group_by(Contact.external_id)
            ).all()
        )


def test_rehearsal_and_recompute_after_a_rule_change(rules_app, cli, config_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = rules_app
    ids = _import_example_sales(app)
    # The rehearsal scores approved sales only: nothing is approved yet.
    assert (
        dry_run(
            app, "pbx-2027", start=datetime(2027, 1, 4).date(), end=datetime(2027, 4, 30).date()
        )
        == {}
    )
    with Session(app.engine) as session, session.begin():
        contacts = session.scalars(
            select(Contact).where(Contact.external_id.in_(["C0002", "C0007"]))
        ).all()
        from network_anim.challenges.registration import register

        register(app, session, app.config.challenge("pbx-2027"), list(contacts), via="cli")
    review(app, ids, approve=True)
    before = _challenge_points(app)
    assert before and all(v > 0 for v in before.values())
    rehearsed = dry_run(
        app, "pbx-2027", start=datetime(2027, 1, 4).date(), end=datetime(2027, 4, 30).date()
    )
    with Session(app.engine) as session:
        by_id = dict(session.execute(select(Contact.id, Contact.external_id)).all())
        entries = session.scalar(select(func.count()).select_from(LedgerEntry))
    earned = {by_id[c]: p for c, p in rehearsed.items() if by_id[c] in before}
    # Rehearsal of the same rules gives the sales points (bonuses come on top).
    with Session(app.engine) as session:
        sales_only = dict(
            session.execute(
                select(Contact.external_id, func.sum(LedgerEntry.points))
                .join(Contact, Contact.id == LedgerEntry.contact_id)
                .where(LedgerEntry.kind == "earn")
                .group_by(Contact.external_id)
            ).all()
        )
    assert earned == sales_only
    assert recompute(app, "pbx-2027").changed_sales == 0  # same rules: nothing to compensate

    # The manager doubles the PBX points: recompute adds compensating entries only.
    text = config_path.read_text(encoding="utf-8").replace(
        "pbx = { points_per_unit = 150 }", "pbx = { points_per_unit = 300 }"
    )
    config_path.write_text(text, encoding="utf-8")
    changed = open_app(config_path, clock=SimulatedClock(APRIL))
    result = recompute(changed, "pbx-2027", actor="anne.manager")
    assert result.changed_sales > 0 and result.points_delta > 0
    with Session(changed.engine) as session:
        pbx_units = dict(
            session.execute(
                select(Contact.external_id, func.sum(Sale.quantity))
                .join(Contact, Contact.id == Sale.contact_id)
                .where(Sale.product.like("PBX-%"), Sale.status == "approved")
                .group_by(Contact.external_id)
            ).all()
        )
        adjust = session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "adjust")).all()
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == entries + len(
            adjust
        )
    assert all(e.actor == "anne.manager" and "rules changed" in e.reason for e in adjust)
    after = _challenge_points(changed)
    for contact, units in pbx_units.items():
        if contact in before:
            # 150 more per PBX unit (the March boost doubles it again for its fortnight).
            assert after[contact] - before[contact] >= 150 * units
    assert recompute(changed, "pbx-2027").changed_sales == 0  # idempotent once applied
    # The balance explains it line by line.
    statement = cli("points", "balance", "C0002", "-c", str(config_path), "--json")
    lines = json.loads(statement.out)["entries"]
    assert lines[-1]["balance"] == json.loads(statement.out)["balance"]
    assert any(line["kind"] == "adjust" for line in lines)
    changed.close()


def test_claims_review_through_the_cli(rules_app, cli, config_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = rules_app
    ids = _import_example_sales(app)
    pending = json.loads(
        cli("challenge", "claims", "pbx-2027", "-c", str(config_path), "--json").out
    )
    assert sorted(p["id"] for p in pending) == sorted(ids)
    rejected = cli(
        "challenge", "claims", "pbx-2027", "--reject", str(ids[0]), "-c", str(config_path)
    )
    assert rejected.code == 1 and "needs a --reason" in rejected.err
    assert (
        cli(
            "challenge",
            "claims",
            "pbx-2027",
            "--reject",
            str(ids[0]),
            "--reason",
            "invoice not found",
            "-c",
            str(config_path),
        ).code
        == 0
    )
    with Session(app.engine) as session:
        sale = session.get(Sale, ids[0])
        assert sale.status == "rejected" and sale.review_reason == "invoice not found"
    again = cli("challenge", "claims", "pbx-2027", "--approve", str(ids[0]), "-c", str(config_path))
    assert again.code == 1 and "not pending" in again.err
    with pytest.raises(UserError, match="unknown sale"):
        review(app, [99999], approve=True)
    kpis = json.loads(cli("challenge", "kpis", "pbx-2027", "-c", str(config_path), "--json").out)
    assert kpis["companies_targeted"] == 8 and kpis["participants"] == 0
    board = cli("challenge", "leaderboard", "pbx-2027", "-c", str(config_path), "--json")
    assert board.code == 0 and json.loads(board.out)["rows"] == []
