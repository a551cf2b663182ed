"""A four-month challenge end to end on a simulated clock, as DESIGN.md §1 tells it: 43
distributors and ~400 sellers, launch by paper mailing then email, registrations, sales
declared in three batches and approved, milestones, monthly reminders, redemptions,
results. The KPIs are checked against figures computed here, independently of the engine.
"""

from __future__ import annotations

import asyncio
import csv
import random
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App, open_app
from network_anim.challenges.awarding import review
from network_anim.challenges.kpis import kpis
from network_anim.challenges.registration import register
from network_anim.challenges.rewards import redeem, sync_rewards
from network_anim.challenges.sales_csv import read_sales_csv
from network_anim.challenges.sales_import import import_sales, sales_context
from network_anim.challenges.standings import variable_sources
from network_anim.clock import SimulatedClock
from network_anim.db.models import Campaign, Contact, Delivery, Message, Participant
from network_anim.demo.network import generate_network_csv
from network_anim.engine.simulation import simulate
from network_anim.network.importer import import_network
from network_anim.network.network_csv import ImportDefaults, parse_network_csv
from network_anim.outbox.transports import ConfiguredTransports
from tests.conftest import REPO, write_config

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2027, 1, 1, 8, 0, tzinfo=PARIS)
PRICES = {"PBX-S40": 1250.0, "PBX-S80": 2400.0, "DECT-D12": 89.0, "RTR-X200": 390.0}
FAMILY = {"PBX-S40": "pbx", "PBX-S80": "pbx", "DECT-D12": "accessories", "RTR-X200": "network"}


def expected_points(sku: str, quantity: int, amount: float, sold: date) -> int:
    """The rules of config.example.toml, written out again by hand."""
    family = FAMILY[sku]
    if family == "pbx":
        points = 150 * quantity * (2 if date(2027, 3, 1) <= sold <= date(2027, 3, 15) else 1)
    elif family == "accessories":
        points = 0.05 * amount
    else:
        points = 0.1 * amount
    return int(points + 0.5)


@pytest.fixture
def challenge_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    example = (REPO / "config.example.toml").read_text(encoding="utf-8")
    challenge_part = example[example.index("# Products partners sell") :]
    config = write_config(
        tmp_path, f"sqlite:///{tmp_path / 'e2e.db'}", challenge_part, example_campaigns=False
    )
    from network_anim.db.engine import make_engine
    from network_anim.db.migrate import upgrade

    upgrade(make_engine(f"sqlite:///{tmp_path / 'e2e.db'}"))
    text = generate_network_csv(companies=43, contacts=400, seed=43)
    network = parse_network_csv(text, source="generated", defaults=ImportDefaults())
    app = open_app(config, clock=SimulatedClock(START), variables=variable_sources())
    import_network(app.engine, network, now=START - timedelta(days=200), source="generated")
    # Objectives: every seller of the 10 first companies aims at 1,000 points by the end.
    sellers = [c for c in network.contacts if c.level.value == "seller"]
    chosen = [c.external_id for c in sellers if int(c.company_external_id[1:]) <= 10]
    (tmp_path / "examples").mkdir()
    with (tmp_path / "examples" / "objectives.csv").open("w", encoding="utf-8") as handle:
        handle.write("challenge_id;scope;subject;due;target\n")
        for external_id in chosen:
            handle.write(f"pbx-2027;participant;{external_id};2027-02-28;400\n")
            handle.write(f"pbx-2027;participant;{external_id};2027-04-30;1000\n")
    yield app, network, chosen
    app.close()


def _advance(app: App, until: datetime) -> None:
    transports = ConfiguredTransports(app)
    asyncio.run(
        simulate(
            app, until, transports, grace=timedelta(hours=1), resend_safe=transports.resend_safe
        )
    )


def _declare(app: App, folder: Path, batch: int, rows: list[tuple]) -> list[int]:
    """A sales file as sellers would send it, imported then approved by the manager."""
    path = folder / f"sales-{batch}.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["invoice_ref", "contact_id", "sku", "quantity", "amount", "sold_at"])
        writer.writerows(rows)
    records = read_sales_csv(path, sales_context(app))
    summary = import_sales(app, records, source=path.name, declared_by="import")
    assert summary.pending == len(rows)  # approval = true: nothing earns before review
    review(app, summary.sale_ids, approve=True, actor="manager")
    return summary.sale_ids


def _sent(app: App, campaign_key: str, step: str | None = None) -> list[tuple[str, str]]:
    with Session(app.engine) as session:
        query = (
            select(Contact.external_id, Delivery.channel)
            .join(Contact, Contact.id == Delivery.contact_id)
            .join(Message, Message.id == Delivery.message_id)
            .join(Campaign, Campaign.id == Message.campaign_id)
            .where(Campaign.key == campaign_key, Delivery.status == "sent")
        )
        if step:
            query = query.where(Message.step == step)
        return list(session.execute(query).all())


def test_four_month_challenge(challenge_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app, network, with_objectives = challenge_app
    rng = random.Random(2027)
    companies = {c.external_id for c in network.companies}

    # Launch on Monday 4 January: letters first, then the email two business days later.
    _advance(app, datetime(2027, 1, 8, 18, 0, tzinfo=PARIS))
    letters = _sent(app, "pbx-2027-launch", "letter")
    printed = [c for c, channel in letters if channel == "print"]
    # Letters to all but those without a postal basis (they get the email instead).
    no_print = {
        c.external_id
        for c in network.contacts
        if c.consents.get("print") is None or c.consents["print"].value == "opted_out"
    }
    assert set(printed) == {c.external_id for c in network.contacts} - no_print
    references = []
    for export in (tmp_path / "var/exports/print").glob("addresses-*.csv"):
        with export.open(encoding="utf-8-sig") as handle:
            references += [row["reference"] for row in csv.DictReader(handle, delimiter=";")]
    assert len([r for r in references if r.startswith("pbx-2027-launch:letter:")]) == len(printed)
    assert {c for c, _ in _sent(app, "pbx-2027-launch", "email")}

    # Registrations: every seller of 42 of the 43 companies, over the first weeks.
    holdout = sorted(companies)[-1]
    sellers = [
        c
        for c in network.contacts
        if c.level.value == "seller" and c.company_external_id != holdout
    ]
    registered = rng.sample(sellers, k=int(len(sellers) * 0.6)) + [
        c for c in sellers if c.external_id in with_objectives
    ]
    first_seller = {}
    for seller in sellers:
        first_seller.setdefault(seller.company_external_id, seller)  # one per company at least
    registered = list({c.external_id: c for c in [*registered, *first_seller.values()]}.values())
    with Session(app.engine) as session, session.begin():
        rows = session.scalars(
            select(Contact).where(Contact.external_id.in_([c.external_id for c in registered]))
        ).all()
        register(app, session, app.config.challenge("pbx-2027"), list(rows), via="portal")
    _advance(app, datetime(2027, 1, 31, 20, 0, tzinfo=PARIS))

    # Three batches of sales, each approved at the end of its month.
    points: dict[str, int] = defaultdict(int)
    amounts_during = 0.0
    invoices = 0
    for batch, (first, last, approve_at) in enumerate(
        [
            (date(2027, 1, 4), date(2027, 1, 31), datetime(2027, 2, 1, 10, tzinfo=PARIS)),
            (date(2027, 2, 1), date(2027, 3, 15), datetime(2027, 3, 16, 10, tzinfo=PARIS)),
            (date(2027, 3, 16), date(2027, 4, 20), datetime(2027, 4, 21, 10, tzinfo=PARIS)),
        ],
        start=1,
    ):
        _advance(app, approve_at)
        rows = []
        for contact in rng.sample(registered, k=len(registered) // 2):
            sku = rng.choice(sorted(PRICES))
            quantity = rng.randint(1, 4)
            amount = round(PRICES[sku] * quantity * rng.uniform(0.8, 1.1), 2)
            sold = first + timedelta(days=rng.randint(0, (last - first).days))
            invoices += 1
            rows.append(
                (
                    f"F{batch}-{invoices:05d}",
                    contact.external_id,
                    sku,
                    quantity,
                    amount,
                    sold.isoformat(),
                )
            )
            points[contact.external_id] += expected_points(sku, quantity, amount, sold)
            amounts_during += amount
        _declare(app, tmp_path, batch, rows)

    # Redemptions by the three best (they can afford the casque at 2,500 points or a box).
    _advance(app, datetime(2027, 4, 26, 9, tzinfo=PARIS))
    sync_rewards(app)
    with Session(app.engine) as session:
        ids = dict(session.execute(select(Contact.external_id, Contact.id)).all())
    best = sorted(points, key=lambda ext: -points[ext])[:3]
    redeemed = 0
    for external_id in best:
        gift, cost = (
            ("casque-audio", 2500) if points[external_id] >= 2500 else ("coffret-gourmand", 800)
        )
        if points[external_id] >= cost:
            redeem(app, ids[external_id], gift)
            redeemed += cost
    _advance(app, datetime(2027, 5, 3, 12, tzinfo=PARIS))

    # Milestone bonuses, computed here from the objectives: 200 at half, 500 at 100 %.
    bonuses = {
        ext: (200 if points[ext] >= 500 else 0) + (500 if points[ext] >= 1000 else 0)
        for ext in with_objectives
        if ext in {c.external_id for c in registered}
    }
    milestone_messages = {c for c, _ in _sent(app, "pbx-2027-milestone")}
    assert milestone_messages == {ext for ext, bonus in bonuses.items() if bonus}

    # Monthly reminders (first Mondays of February, March, April) reached the registered
    # by email; invitations went to the others; results after the end.
    reminders = _sent(app, "pbx-2027-reminder")
    assert {ch for _, ch in reminders} >= {"email"}
    assert {c for c, _ in reminders} <= {c.external_id for c in registered}
    with Session(app.engine) as session:
        reminder_days = sorted(
            {
                m.occurrence[:8]
                for m in session.scalars(
                    select(Message).join(Campaign).where(Campaign.key == "pbx-2027-reminder")
                )
            }
        )
    assert reminder_days == ["20270201", "20270301", "20270405"]
    invited = {c for c, _ in _sent(app, "pbx-2027-invitation")}
    assert invited and not invited & {c.external_id for c in registered}
    assert _sent(app, "pbx-2027-results")
    assert {c for c, _ in _sent(app, "pbx-2027-welcome", "confirmation")} == {
        c.external_id for c in registered
    }

    figures = kpis(app, "pbx-2027")
    targeted_companies = {c.company_external_id for c in network.contacts}
    assert figures["companies_targeted"] == len(targeted_companies) == 43
    assert figures["companies_registered"] == len({c.company_external_id for c in registered}) == 42
    assert figures["participants"] == len(registered)
    assert figures["active_participants"] == len([e for e, p in points.items() if p > 0])
    assert figures["points_issued"] == sum(points.values()) + sum(bonuses.values())
    assert figures["points_redeemed"] == redeemed
    assert figures["sales_during"] == pytest.approx(amounts_during, abs=0.01)
    assert figures["sales_baseline"] == 0.0
    assert figures["attainment"] == {
        ext: round(points[ext] / 1000, 4)
        for ext in with_objectives
        if ext in {c.external_id for c in registered}
    }
    with Session(app.engine) as session:
        assert session.scalar(select(Participant.id).where(Participant.via == "portal")) is not None

    # The leaderboard: sales points plus milestone bonuses, ties sharing a rank.
    from network_anim.challenges.leaderboard import leaderboard

    totals = {
        c.external_id: points[c.external_id] + bonuses.get(c.external_id, 0) for c in registered
    }
    board = leaderboard(app, "pbx-2027", scope="individual", limit=10)
    assert len(board) == 10 and board[0].points == max(totals.values())
    for row in board:
        # Competition ranking, computed independently: 1 + how many scored more.
        assert row.rank == 1 + sum(1 for value in totals.values() if value > row.points)
        if row.public:
            assert totals[row.subject] == row.points
    # Weekly digests went out on Thursdays with each participant's rank.
    digests = _sent(app, "pbx-2027-digest")
    assert digests and {c for c, _ in digests} <= set(totals)
