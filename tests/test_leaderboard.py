"""Leaderboards on both backends: ranks and ties, anonymous rows, teams (total and
average), month and week views, the window around a viewer, movement since a snapshot,
and the ``leaderboard`` command. Rows are inserted by hand: no scoring code involved."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from sqlalchemy import event
from sqlmodel import Session

from network_anim.app import App
from network_anim.challenges import totals
from network_anim.challenges.leaderboard import (
    ANONYMOUS,
    Row,
    leaderboard,
    period_bounds,
    take_snapshot,
)
from network_anim.db.models import Challenge, Company, Contact, LedgerEntry, Participant
from network_anim.errors import UserError
from tests.conftest import WEDNESDAY_MORNING, write_config

KEY = "pbx-2027"  # config.example.toml: average team ranking, one team per company
NOW = WEDNESDAY_MORNING  # Wednesday 2026-11-25 10:00 UTC, 11:00 in Paris
EARLIER = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

EXTRA_CHALLENGES = """
[[challenges]]
id = "sprint-total"
name = "Sprint (total)"
audience = "all"
start = 2026-09-01
end = 2026-12-31
team_ranking = "total"

[challenges.scoring]
points_per_unit = 1

[[challenges]]
id = "sprint-named"
name = "Sprint (named teams)"
audience = "all"
start = 2026-09-01
end = 2026-12-31
team_ranking = "average"
teams = [
  { key = "nord", name = "Équipe Nord", companies = ["CO-A", "CO-B"] },
  { key = "sud", name = "Équipe Sud", companies = ["CO-C"] },
]

[challenges.scoring]
points_per_unit = 1

[[challenges]]
id = "solo"
name = "Solo"
audience = "all"
start = 2026-09-01
end = 2026-12-31
modes = ["individual"]

[challenges.scoring]
points_per_unit = 1
"""


@pytest.fixture
def config_path(tmp_path: Path, database_url: str) -> Path:
    return write_config(tmp_path, database_url, EXTRA_CHALLENGES)


class Network:
    """Companies, contacts, participants and ledger entries written straight to tables."""

    def __init__(self, app: App) -> None:
        self.app = app
        for challenge in app.config.challenges:  # their rows, as sync_challenges makes them
            self._add(
                Challenge(
                    key=challenge.id,
                    name=challenge.name,
                    starts_at=EARLIER,
                    ends_at=NOW + timedelta(days=60),
                    created_at=EARLIER,
                )
            )
        self.companies: dict[str, int] = {}
        self.contacts: dict[str, int] = {}
        self._entries = 0

    def _add(self, row: Any) -> Any:
        with Session(self.app.engine) as session:
            session.add(row)
            session.commit()
            session.refresh(row)
        # Rows written straight to the tables bypass the ledger's running totals:
        # rebuild them from the ledger, as `netanim challenge verify --repair` would.
        with Session(self.app.engine) as session, session.begin():
            for challenge in self.app.config.challenges:
                totals.rebuild(session, challenge.id, self.app.config.engine.timezone)
        return row

    def company(self, ext: str, name: str) -> None:
        row = self._add(Company(external_id=ext, name=name, created_at=NOW, updated_at=NOW))
        self.companies[ext] = row.id

    def person(
        self,
        ext: str,
        first: str,
        last: str,
        company: str,
        *,
        challenge: str | None = KEY,
        public: bool = True,
        points: int | None = None,
    ) -> None:
        if company not in self.companies:
            self.company(company, f"Société {company}")
        row = self._add(
            Contact(
                external_id=ext,
                company_id=self.companies[company],
                first_name=first,
                last_name=last,
                level="seller",
                created_at=NOW,
                updated_at=NOW,
            )
        )
        self.contacts[ext] = row.id
        if challenge is not None:
            self.join(ext, challenge, public=public)
        if points:
            self.entry(ext, points, challenge=challenge or KEY)

    def join(self, ext: str, challenge: str = KEY, *, public: bool = True) -> None:
        self._add(
            Participant(
                challenge_key=challenge,
                contact_id=self.contacts[ext],
                registered_at=NOW,
                via="cli",
                public=public,
            )
        )

    def entry(
        self,
        ext: str,
        points: int,
        *,
        challenge: str | None = KEY,
        kind: str = "earn",
        at: datetime = EARLIER,
    ) -> None:
        self._entries += 1
        self._add(
            LedgerEntry(
                contact_id=self.contacts[ext],
                challenge_key=challenge,
                kind=kind,
                points=points,
                remaining=max(points, 0),
                source_key=f"test:{self._entries}",
                created_at=at,
            )
        )


@pytest.fixture
def net(app: App) -> Network:
    return Network(app)


def summary(rows: list[Row]) -> list[tuple[int, str | None, int | float]]:
    return [(r.rank, r.subject, r.points) for r in rows]


@pytest.fixture
def podium(net: Network) -> Network:
    """Five participants (a tie for second, one without points), a non-participant with
    points, and entries that must not count: redemptions, refunds, expiry, other
    challenges."""
    net.company("CO-A", "Alpha Réseaux")
    net.company("CO-B", "Bêta Distribution")
    net.company("CO-C", "Gamma Services")
    net.person("K1", "Anne", "Martin", "CO-A", points=100)
    net.person("K2", "Bruno", "Durand", "CO-A", points=50)
    net.person("K3", "Chloé", "Bernard", "CO-B")
    net.entry("K3", 30)
    net.entry("K3", 20, kind="bonus")
    net.person("K4", "David", "Petit", "CO-B", points=15)
    net.entry("K4", -5, kind="adjust")
    net.person("K5", "Emma", "Roux", "CO-C")  # registered, no points yet
    net.person("K6", "Fabien", "Moreau", "CO-C", challenge=None)  # not a participant
    net.entry("K6", 500)
    # Not challenge points: redemptions, refunds and expiry, even carrying the key...
    net.entry("K5", -80, kind="redeem")
    net.entry("K5", 300, kind="refund")
    net.entry("K4", -40, kind="expire")
    net.entry("K2", 400, challenge=None)  # ...points outside any challenge...
    net.entry("K4", 999, challenge="other-challenge")  # ...or of another challenge.
    return net


# -- individual ranking ---------------------------------------------------------------------


def test_ranks_descending_with_shared_ranks_and_zero_points_last(app: App, podium: Network):
    rows = leaderboard(app, KEY, now=NOW)

    assert summary(rows) == [
        (1, "K1", 100),
        (2, "K3", 50),  # tie shown by name: Bernard before Durand
        (2, "K2", 50),
        (4, "K4", 10),  # standard competition ranking: 1, 2, 2, 4
        (5, "K5", 0),  # registered: listed, after everyone with points
    ]
    first = rows[0]
    assert (first.name, first.company, first.members, first.movement) == (
        "Anne Martin",
        "Alpha Réseaux",
        None,
        None,
    )
    assert all(isinstance(r.points, int) for r in rows)
    assert all(r.public and not r.viewer for r in rows)


def test_redemptions_refunds_and_expiry_never_change_a_ranking(app: App, podium: Network):
    before = summary(leaderboard(app, KEY, now=NOW))
    podium.entry("K1", -100, kind="redeem")
    podium.entry("K5", 1000, kind="refund")
    podium.entry("K3", -50, kind="expire")

    assert summary(leaderboard(app, KEY, now=NOW)) == before


def test_limit_keeps_the_top_rows(app: App, podium: Network):
    assert [r.subject for r in leaderboard(app, KEY, now=NOW, limit=2)] == ["K1", "K3"]
    with pytest.raises(ValueError):
        leaderboard(app, KEY, now=NOW, limit=0)


def test_empty_board_and_unknown_challenge(app: App):
    assert leaderboard(app, KEY, now=NOW) == []
    with pytest.raises(UserError, match="unknown challenge"):
        leaderboard(app, "no-such-challenge", now=NOW)
    with pytest.raises(ValueError, match="scope"):
        leaderboard(app, KEY, scope="company", now=NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="period"):
        leaderboard(app, KEY, period="year", now=NOW)  # type: ignore[arg-type]


def test_the_board_reads_running_totals_never_the_ledger(app: App, podium: Network):
    """The totals' check, the viewer's lookup, the slice's bounds (board_pages), then one
    query over the running totals."""
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement.lower())

    event.listen(app.engine, "before_cursor_execute", record)
    try:
        rows = leaderboard(app, KEY, now=NOW, around="K4")
    finally:
        event.remove(app.engine, "before_cursor_execute", record)

    selects = [s for s in statements if "select" in s]
    assert 3 <= len(selects) <= 7
    board = selects[-1]
    assert "challengetotal" in board
    assert "rank() over" in board and "row_number() over" in board
    assert not [s for s in selects if "ledgerentry" in s]
    assert len(rows) == 5


# -- opting out of public ranking ------------------------------------------------------------


def test_anonymous_participant_keeps_rank_and_sees_themselves(app: App, net: Network):
    net.person("K1", "Anne", "Martin", "CO-A", points=100)
    net.person("K2", "Bruno", "Durand", "CO-A", points=50)
    net.person("K3", "Chloé", "Bernard", "CO-B", points=50, public=False)
    net.person("K4", "David", "Petit", "CO-B", points=10, public=False)

    rows = leaderboard(app, KEY, now=NOW)
    assert [(r.rank, r.subject, r.name, r.company, r.public) for r in rows] == [
        (1, "K1", "Anne Martin", "Société CO-A", True),
        (2, None, ANONYMOUS, None, False),
        (2, "K2", "Bruno Durand", "Société CO-A", True),
        (4, None, ANONYMOUS, None, False),
    ]
    assert [r.points for r in rows] == [100, 50, 50, 10]

    mine = leaderboard(app, KEY, now=NOW, around="K3")
    me = [r for r in mine if r.viewer]
    assert len(me) == 1
    assert (me[0].rank, me[0].subject, me[0].name, me[0].company, me[0].public) == (
        2,
        "K3",
        "Chloé Bernard",
        "Société CO-B",
        False,
    )
    others = [r for r in mine if not r.public and not r.viewer]
    assert [(r.subject, r.name) for r in others] == [(None, ANONYMOUS)]  # K4 stays hidden


# -- around me -------------------------------------------------------------------------------


@pytest.fixture
def ten(net: Network) -> Network:
    for i in range(1, 11):
        net.person(f"P{i:02d}", "Joueur", f"Numéro {i:02d}", "CO-A", points=110 - 10 * i)
    return net


@pytest.mark.parametrize(
    ("viewer", "shown"),
    [
        ("P01", range(1, 6)),  # at the top: the viewer and the four below
        ("P02", range(1, 6)),
        ("P03", range(1, 6)),
        ("P05", range(3, 8)),  # two above, me, two below
        ("P08", range(6, 11)),
        ("P09", range(6, 11)),
        ("P10", range(6, 11)),  # at the bottom: the four above and the viewer
    ],
)
def test_five_around_me_stays_five_at_the_edges(app: App, ten: Network, viewer: str, shown: range):
    rows = leaderboard(app, KEY, now=NOW, around=viewer, limit=1)  # limit ignored
    assert [r.subject for r in rows] == [f"P{i:02d}" for i in shown]
    assert [r.rank for r in rows] == list(shown)
    assert [r.subject for r in rows if r.viewer] == [viewer]


def test_around_on_a_small_board_and_with_ties(app: App, net: Network):
    net.person("A", "Ana", "Arnaud", "CO-A", points=30)
    net.person("B", "Ben", "Blanc", "CO-A", points=30)
    net.person("C", "Cid", "Caron", "CO-A")
    assert [r.subject for r in leaderboard(app, KEY, now=NOW, around="C")] == ["A", "B", "C"]
    assert [r.rank for r in leaderboard(app, KEY, now=NOW, around="B")] == [1, 1, 3]


def test_around_someone_who_is_not_a_participant(app: App, podium: Network):
    with pytest.raises(UserError, match="not a participant"):
        leaderboard(app, KEY, now=NOW, around="K6")
    with pytest.raises(UserError, match="not a participant"):
        leaderboard(app, KEY, now=NOW, around="nobody")


# -- teams -----------------------------------------------------------------------------------


@pytest.fixture
def squads(net: Network) -> Network:
    """Teams of unequal sizes, in three challenges (same entries in each):
    CO-A 3 members (100, 0, 21), CO-B 1 (60), CO-C 2 (45, 47), CO-D 1 (45)."""
    for ext, name in (("CO-A", "Alpha"), ("CO-B", "Bêta"), ("CO-C", "Gamma"), ("CO-D", "Delta")):
        net.company(ext, name)
    people = [
        ("A1", "CO-A", 100),
        ("A2", "CO-A", 0),
        ("A3", "CO-A", 21),
        ("B1", "CO-B", 60),
        ("C1", "CO-C", 45),
        ("C2", "CO-C", 47),
        ("D1", "CO-D", 45),
    ]
    for ext, company, _ in people:
        net.person(ext, "Membre", ext, company, challenge=None)
    for challenge in (KEY, "sprint-total", "sprint-named"):
        for ext, _, points in people:
            net.join(ext, challenge)
            if points:
                net.entry(ext, points, challenge=challenge)
    net.entry("A2", -500, challenge="sprint-total", kind="redeem")
    return net


def test_team_total_favours_big_teams(app: App, squads: Network):
    rows = leaderboard(app, "sprint-total", scope="team", now=NOW)
    assert [(r.rank, r.subject, r.name, r.members, r.points) for r in rows] == [
        (1, "CO-A", "Alpha", 3, 121),
        (2, "CO-C", "Gamma", 2, 92),
        (3, "CO-B", "Bêta", 1, 60),
        (4, "CO-D", "Delta", 1, 45),
    ]
    assert all(isinstance(r.points, int) and r.company is None for r in rows)


def test_team_average_per_member_evens_out_sizes(app: App, squads: Network):
    rows = leaderboard(app, KEY, scope="team", now=NOW)
    assert [(r.rank, r.subject, r.members) for r in rows] == [
        (1, "CO-B", 1),
        (2, "CO-C", 2),
        (3, "CO-D", 1),
        (4, "CO-A", 3),  # zero-point member counted: 121 / 3
    ]
    assert [r.points for r in rows] == pytest.approx([60.0, 46.0, 45.0, 121 / 3])
    assert all(isinstance(r.points, float) for r in rows)


def test_named_teams_group_companies(app: App, squads: Network):
    rows = leaderboard(app, "sprint-named", scope="team", now=NOW)
    # Nord = CO-A + CO-B: 181 / 4 members; Sud = CO-C: 92 / 2; CO-D is in no team.
    assert [(r.rank, r.subject, r.name, r.members) for r in rows] == [
        (1, "sud", "Équipe Sud", 2),
        (2, "nord", "Équipe Nord", 4),
    ]
    assert [r.points for r in rows] == pytest.approx([46.0, 45.25])

    mine = leaderboard(app, "sprint-named", scope="team", now=NOW, around="B1")
    assert [(r.subject, r.viewer) for r in mine] == [("sud", False), ("nord", True)]
    with pytest.raises(UserError, match="no team"):
        leaderboard(app, "sprint-named", scope="team", now=NOW, around="D1")


def test_team_around_shows_the_viewers_team(app: App, squads: Network):
    rows = leaderboard(app, "sprint-total", scope="team", now=NOW, around="D1")
    assert [(r.subject, r.viewer) for r in rows] == [
        ("CO-A", False),
        ("CO-C", False),
        ("CO-B", False),
        ("CO-D", True),
    ]


def test_team_ranking_needs_the_team_mode(app: App, net: Network):
    net.person("S1", "Solo", "Un", "CO-A", challenge="solo", points=5)
    assert summary(leaderboard(app, "solo", now=NOW)) == [(1, "S1", 5)]
    with pytest.raises(UserError, match="no team ranking"):
        leaderboard(app, "solo", scope="team", now=NOW)


# -- periods ---------------------------------------------------------------------------------


def test_period_bounds_are_local_calendar_month_and_iso_week(app: App):
    assert period_bounds(app, "whole", NOW) is None
    # Paris is UTC+1 in November: local midnights are 23:00 UTC the day before.
    assert period_bounds(app, "month", NOW) == (
        datetime(2026, 10, 31, 23, 0, tzinfo=UTC),
        datetime(2026, 11, 30, 23, 0, tzinfo=UTC),
    )
    assert period_bounds(app, "week", NOW) == (
        datetime(2026, 11, 22, 23, 0, tzinfo=UTC),  # Monday 23 November, 00:00 in Paris
        datetime(2026, 11, 29, 23, 0, tzinfo=UTC),
    )
    # Across the change to winter time (Sunday 25 October 2026).
    october = datetime(2026, 10, 28, 12, 0, tzinfo=UTC)
    assert period_bounds(app, "month", october) == (
        datetime(2026, 9, 30, 22, 0, tzinfo=UTC),
        datetime(2026, 10, 31, 23, 0, tzinfo=UTC),
    )
    assert period_bounds(app, "week", october)[0] == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)


def test_month_and_week_views_let_late_starters_win(app: App, net: Network):
    net.person("EARLY", "Eve", "Ancienne", "CO-A")
    net.person("LATE", "Léo", "Tardif", "CO-A")
    net.person("IDLE", "Ivan", "Calme", "CO-A")

    def at(day: int, hour: int, minute: int = 30, month: int = 11) -> datetime:
        return datetime(2026, month, day, hour, minute, tzinfo=UTC)

    net.entry("EARLY", 1000, at=at(31, 22, month=10))  # 31 Oct 23:30 in Paris: October
    net.entry("EARLY", 7, at=at(31, 23, month=10))  # 1 Nov 00:30 in Paris: this month
    net.entry("EARLY", 3, at=at(22, 22))  # Sunday 22 Nov 23:30 in Paris: last week
    net.entry("EARLY", 5, at=at(22, 23))  # Monday 23 Nov 00:30 in Paris: this week
    net.entry("EARLY", 50, at=at(30, 23))  # 1 Dec 00:30 in Paris: not this month
    net.entry("LATE", 12, at=at(24, 9))
    net.entry("LATE", -100, kind="redeem", at=at(24, 10))

    assert summary(leaderboard(app, KEY, now=NOW)) == [
        (1, "EARLY", 1065),
        (2, "LATE", 12),
        (3, "IDLE", 0),
    ]
    assert summary(leaderboard(app, KEY, period="month", now=NOW)) == [
        (1, "EARLY", 15),
        (2, "LATE", 12),
        (3, "IDLE", 0),
    ]
    assert summary(leaderboard(app, KEY, period="week", now=NOW)) == [
        (1, "LATE", 12),
        (2, "EARLY", 5),
        (3, "IDLE", 0),
    ]


def test_team_month_view(app: App, squads: Network):
    squads.entry("D1", 1000, challenge="sprint-total", at=NOW - timedelta(hours=1))
    rows = leaderboard(app, "sprint-total", scope="team", period="month", now=NOW)
    # EARLIER (2 November) is in the month as well: only D1's new entry changes.
    assert [(r.subject, r.points) for r in rows] == [
        ("CO-D", 1045),
        ("CO-A", 121),
        ("CO-C", 92),
        ("CO-B", 60),
    ]
    week = leaderboard(app, "sprint-total", scope="team", period="week", now=NOW)
    assert [(r.subject, r.points) for r in week] == [
        ("CO-D", 1000),
        ("CO-A", 0),
        ("CO-B", 0),
        ("CO-C", 0),
    ]
    assert [r.rank for r in week] == [1, 2, 2, 2]


# -- movement --------------------------------------------------------------------------------


def test_movement_since_the_latest_snapshot_before_now(app: App, net: Network):
    for ext, points in (("A", 40), ("B", 30), ("C", 20), ("D", 10)):
        net.person(ext, "X", ext, "CO-A", points=points)
    t1, t2, t3, t4 = (NOW + timedelta(days=d) for d in range(1, 5))

    assert [r.movement for r in leaderboard(app, KEY, now=t1)] == [None] * 4  # no snapshot
    assert take_snapshot(app, KEY, "individual", t1) == 4

    net.entry("D", 100, at=t1 + timedelta(hours=1))
    net.person("E", "X", "E", "CO-A")  # registered after the snapshot
    rows = leaderboard(app, KEY, now=t2)
    assert [(r.subject, r.rank, r.movement) for r in rows] == [
        ("D", 1, 3),  # 4th -> 1st: up three places
        ("A", 2, -1),
        ("B", 3, -1),
        ("C", 4, -1),
        ("E", 5, None),  # not ranked then
    ]

    assert take_snapshot(app, KEY, "individual", t3) == 5
    # A snapshot taken after `now` is not "the latest before now".
    assert [r.movement for r in leaderboard(app, KEY, now=t2)] == [3, -1, -1, -1, None]
    assert [r.movement for r in leaderboard(app, KEY, now=t4)] == [0, 0, 0, 0, 0]
    # Other views keep their own snapshots.
    assert {r.movement for r in leaderboard(app, KEY, period="month", now=t4)} == {None}
    assert {r.movement for r in leaderboard(app, KEY, scope="team", now=t4)} == {None}


def test_team_snapshot_and_movement(app: App, squads: Network):
    t1, t2 = NOW + timedelta(days=1), NOW + timedelta(days=2)
    assert take_snapshot(app, KEY, "team", t1) == 4
    squads.entry("A2", 200, at=t1 + timedelta(hours=1))  # CO-A: 321 / 3 = 107
    rows = leaderboard(app, KEY, scope="team", now=t2)
    assert [(r.subject, r.movement) for r in rows] == [
        ("CO-A", 3),
        ("CO-B", -1),
        ("CO-C", -1),
        ("CO-D", -1),
    ]


# -- the command -----------------------------------------------------------------------------


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run the command mounted on a throwaway group, as `netanim` would run it."""
    from network_anim.cli.common import run_cli
    from network_anim.cli.leaderboard_cmd import leaderboard as command

    monkeypatch.setenv("COLUMNS", "200")

    @click.group()
    def challenge() -> None:
        """Throwaway group."""

    challenge.add_command(command)

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            run_cli(challenge, ["leaderboard", *args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_cli_json_schema(app: App, podium: Network, config_path: Path, run):  # type: ignore[no-untyped-def]
    podium.person("K7", "Gaël", "Secret", "CO-C", public=False, points=1)
    code, out, err = run(KEY, "-c", str(config_path), "--json")
    assert code == 0, err
    board = json.loads(out)
    assert set(board) == {
        "challenge",
        "name",
        "scope",
        "period",
        "from",
        "to",
        "team_ranking",
        "around",
        "rows",
    }
    assert (board["challenge"], board["scope"], board["period"]) == (KEY, "individual", "whole")
    assert board["from"] is None and board["to"] is None
    assert board["rows"][0] == {
        "rank": 1,
        "id": "K1",
        "name": "Anne Martin",
        "company": "Alpha Réseaux",
        "points": 100,
        "members": None,
        "movement": None,
        "public": True,
        "viewer": False,
    }
    assert [r["rank"] for r in board["rows"]] == [1, 2, 2, 4, 5, 6]
    assert board["rows"][4]["id"] is None and board["rows"][4]["name"] == ANONYMOUS

    code, out, _ = run(KEY, "-c", str(config_path), "--json", "--around", "K7", "--limit", "1")
    mine = json.loads(out)["rows"]
    assert [r["id"] for r in mine] == ["K3", "K2", "K4", "K7", "K5"]
    assert [r["viewer"] for r in mine] == [False, False, False, True, False]

    code, out, _ = run(KEY, "-c", str(config_path), "--json", "--team", "--period", "month")
    teams = json.loads(out)
    assert (teams["scope"], teams["team_ranking"]) == ("team", "average")
    assert teams["from"] and teams["to"]
    assert {r["id"] for r in teams["rows"]} == {"CO-A", "CO-B", "CO-C"}
    assert all(isinstance(r["members"], int) for r in teams["rows"])


def test_cli_table(app: App, podium: Network, config_path: Path, run):  # type: ignore[no-untyped-def]
    code, out, err = run(KEY, "-c", str(config_path), "--limit", "3")
    assert code == 0, err
    assert "Challenge PBX 2027" in out
    assert "Anne Martin" in out and "Chloé Bernard" in out and "Bruno Durand" in out
    assert "David Petit" not in out  # 4th: beyond --limit 3

    code, out, _ = run(KEY, "-c", str(config_path), "--team")
    assert code == 0
    assert "members" in out and "Alpha Réseaux" in out and "75.0" in out  # (100 + 50) / 2


def test_cli_errors_and_help(app: App, podium: Network, config_path: Path, run):  # type: ignore[no-untyped-def]
    code, _, err = run("nope", "-c", str(config_path))
    assert code == 1 and "unknown challenge" in err
    code, _, err = run(KEY, "-c", str(config_path), "--around", "K6")
    assert code == 1 and "not a participant" in err
    code, _, err = run(KEY, "-c", str(config_path), "--period", "year")
    assert code == 2
    code, out, _ = run("--help")
    assert code == 0
    assert "Example:" in out and "--around CONTACT_ID" in out and "--period" in out
