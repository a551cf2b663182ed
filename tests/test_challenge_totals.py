"""Running leaderboard totals (issue 18): every ledger path keeps them equal to what the
ledger says, in the engine's time zone, under concurrent approvals, and `netanim
challenge verify` finds (and repairs) any difference. Both backends."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlmodel import Session

from network_anim.app import App
from network_anim.challenges import totals
from network_anim.challenges.leaderboard import leaderboard
from network_anim.challenges.ledger import credit, debit, expire_due
from network_anim.challenges.registration import register
from network_anim.challenges.upkeep import sync_challenges
from network_anim.db.models import Challenge, ChallengeTotal, CompanyTotal, Contact

REPO = Path(__file__).resolve().parent.parent
KEY = "pbx-2027"  # config.example.toml: teams are companies, ranked on their average
ZONE = "Europe/Paris"


def _ids(app: App, *external_ids: str) -> list[int]:
    with Session(app.engine) as session:
        found = dict(
            session.execute(
                select(Contact.external_id, Contact.id).where(Contact.external_id.in_(external_ids))
            ).all()
        )
    return [found[e] for e in external_ids]


def _register(app: App, *external_ids: str) -> None:
    with Session(app.engine) as session, session.begin():
        contacts = list(
            session.scalars(select(Contact).where(Contact.external_id.in_(external_ids)))
        )
        register(app, session, app.config.challenge(KEY), contacts, via="cli")


def _earn(app: App, contact: int, points: int, key: str, at: datetime, kind: str = "earn") -> None:
    _post(
        app,
        credit,
        contact,
        points,
        key,
        at,
        kind=kind,
        challenge_key=KEY,
        expires_at=at + timedelta(days=40),
    )


def _take(app: App, contact: int, points: int, key: str, at: datetime, kind: str) -> None:
    _post(
        app,
        debit,
        contact,
        points,
        key,
        at,
        kind=kind,
        challenge_key=KEY if kind == "adjust" else None,
    )


def _post(
    app: App, post: Any, contact: int, points: int, key: str, at: datetime, **kw: Any
) -> None:
    with Session(app.engine) as session, session.begin():
        post(session, contact_id=contact, points=points, source_key=key, now=at, **kw)


def _differences(app: App) -> list[totals.Difference]:
    with Session(app.engine) as session:
        return totals.differences(session, KEY, ZONE)


def _whole(app: App) -> dict[str | None, int | float]:
    return {r.subject: r.points for r in leaderboard(app, KEY, now=MARCH_9)}


# Paris times: 1 March 00:30 is still February in UTC (23:30 on the 28th).
FEB_26 = datetime(2027, 2, 26, 9, 0, tzinfo=UTC)  # a Friday
MARCH_1_PARIS = datetime(2027, 2, 28, 23, 30, tzinfo=UTC)  # Monday 1 March, 00:30 in Paris
MARCH_9 = datetime(2027, 3, 9, 15, 0, tzinfo=UTC)  # a Tuesday


@pytest.fixture
def challenge(network: App, config_path: Path) -> App:
    (config_path.parent / "examples").mkdir(exist_ok=True)
    (config_path.parent / "examples" / "objectives.csv").write_bytes(
        (REPO / "examples" / "objectives.csv").read_bytes()
    )
    sync_challenges(network)
    _register(network, "C0002", "C0003", "C0006")
    return network


def test_every_ledger_path_keeps_the_totals_the_ledger_gives(challenge: App) -> None:
    app = challenge
    julien, sophie, c6, outsider = _ids(app, "C0002", "C0003", "C0006", "C0007")
    _earn(app, julien, 300, "s1", FEB_26)
    _earn(app, julien, 50, "b1", MARCH_1_PARIS, kind="bonus")
    _earn(app, sophie, 120, "s2", MARCH_9)
    _take(app, sophie, 20, "a1", MARCH_9, kind="adjust")  # a correction: counts, negative
    _take(app, julien, 100, "r1", MARCH_9, kind="redeem")  # spending: never ranked
    _earn(app, c6, 80, "s3", MARCH_9)
    _earn(app, outsider, 500, "s4", FEB_26)  # before registering: joins the totals then
    with Session(app.engine) as session, session.begin():
        expire_due(session, FEB_26 + timedelta(days=60))  # expiry: never ranked either
    _register(app, "C0007")

    assert _differences(app) == []
    assert _whole(app) == {"C0007": 500, "C0002": 350, "C0003": 100, "C0006": 80}
    # Julien's bonus came at 00:30 on 1 March in Paris: March, and the week of 1 March.
    march = leaderboard(app, KEY, period="month", now=MARCH_9)
    assert {r.subject: r.points for r in march} == {
        "C0003": 100,
        "C0006": 80,
        "C0002": 50,
        "C0007": 0,
    }
    week_of_1 = leaderboard(app, KEY, period="week", now=MARCH_1_PARIS + timedelta(days=2))
    assert next((r.subject, r.points) for r in week_of_1) == ("C0002", 50)
    teams = {
        r.subject: (r.points, r.members) for r in leaderboard(app, KEY, scope="team", now=MARCH_9)
    }
    # D001: Julien 350 + Sophie 100 over 2; D003: 80 + 500 over 2.
    assert teams == {"D003": (290.0, 2), "D001": (225.0, 2)}


def test_a_time_zone_change_rebuilds_the_buckets(challenge: App) -> None:
    app = challenge
    (julien,) = _ids(app, "C0002")
    _earn(app, julien, 40, "s1", MARCH_1_PARIS)
    with Session(app.engine) as session, session.begin():
        # As if the totals had been cut in UTC: 23:30 on 28 February is February there.
        totals.rebuild(session, KEY, "UTC")
        assert session.scalar(select(Challenge.totals_zone).where(Challenge.key == KEY)) == "UTC"
    march = leaderboard(app, KEY, period="month", now=MARCH_9)  # the config says Paris
    assert next((r.subject, r.points) for r in march) == ("C0002", 40)
    with Session(app.engine) as session:
        assert session.scalar(select(Challenge.totals_zone).where(Challenge.key == KEY)) == ZONE
    assert _differences(app) == []
    # Once more in the same process: a board read since knows Paris built, and a rebuild
    # in another zone makes it ask again.
    leaderboard(app, KEY, now=MARCH_9)
    with Session(app.engine) as session, session.begin():
        totals.rebuild(session, KEY, "UTC")
    march = leaderboard(app, KEY, period="month", now=MARCH_9)
    assert next((r.subject, r.points) for r in march) == ("C0002", 40)
    with Session(app.engine) as session:
        assert session.scalar(select(Challenge.totals_zone).where(Challenge.key == KEY)) == ZONE


def test_verify_names_a_difference_and_repair_rebuilds(
    challenge: App, cli, config_path: Path
) -> None:  # type: ignore[no-untyped-def]
    app = challenge
    julien, c6 = _ids(app, "C0002", "C0006")
    _earn(app, julien, 300, "s1", MARCH_9)
    _earn(app, c6, 80, "s2", MARCH_9)
    assert cli("challenge", "verify", KEY, "-c", str(config_path)).code == 0

    with Session(app.engine) as session, session.begin():
        session.execute(
            update(ChallengeTotal)
            .where(ChallengeTotal.contact_id == julien, ChallengeTotal.period == "week")
            .values(points=ChallengeTotal.points + 7)
        )
        session.execute(
            update(CompanyTotal).where(CompanyTotal.period == "whole").values(members=9)
        )
    found = cli("challenge", "verify", KEY, "-c", str(config_path))
    assert found.code == 1
    assert "3 difference(s)" in found.out
    assert "points 307 / sales 300" in found.out and "points 300 / sales 300" in found.out
    assert "run again with --repair" in found.out

    repaired = cli("challenge", "verify", KEY, "--repair", "--json", "-c", str(config_path))
    assert repaired.code == 0
    assert '"repaired": true' in repaired.out
    assert cli("challenge", "verify", KEY, "-c", str(config_path)).code == 0
    assert _whole(app)["C0002"] == 300


def test_concurrent_approvals_for_one_participant_lose_nothing(
    challenge: App, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: nothing runs concurrently")
    app = challenge
    julien, sophie = _ids(app, "C0002", "C0003")

    def approvals(worker: int) -> None:
        for n in range(20):
            who = julien if n % 4 else sophie
            _earn(app, who, worker + n + 1, f"w{worker}:{n}", MARCH_9)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(approvals, range(6)))

    expected_julien = sum(w + n + 1 for w in range(6) for n in range(20) if n % 4)
    expected_sophie = sum(w + n + 1 for w in range(6) for n in range(20) if not n % 4)
    board = _whole(app)
    assert board["C0002"] == expected_julien and board["C0003"] == expected_sophie
    teams = {r.subject: r.points for r in leaderboard(app, KEY, scope="team", now=MARCH_9)}
    assert teams["D001"] == (expected_julien + expected_sophie) / 2
    assert _differences(app) == []
