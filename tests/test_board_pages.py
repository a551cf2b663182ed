"""The index-driven pages of the individual board (top N, around a viewer) give exactly
the rows of the full ranking, on both backends: checked against a ranking computed here
in Python from the same points, for every viewer and every N, on boards full of ties
(in points and in names), negative and zero totals, participants without any entry and
anonymous ones, for the whole challenge and its month and week."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from network_anim.app import App
from network_anim.challenges import board_pages, totals
from network_anim.challenges import leaderboard as board_module
from network_anim.challenges.leaderboard import ANONYMOUS, leaderboard
from network_anim.db.models import Challenge, Company, Contact, LedgerEntry, Participant
from tests.conftest import WEDNESDAY_MORNING

KEY = "pbx-2027"
NOW = WEDNESDAY_MORNING  # Wednesday 2026-11-25; its ISO week starts on the 23rd
# One date per view: counted by the whole challenge only, by the month too, by all three.
DATES = {
    "whole": datetime(2026, 10, 14, 9, 0, tzinfo=UTC),
    "month": datetime(2026, 11, 4, 9, 0, tzinfo=UTC),
    "week": datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
}
VIEWS = ("whole", "month", "week")
# The views an entry made at each date counts for.
COUNTED_BY = {"whole": ("whole",), "month": ("whole", "month"), "week": VIEWS}
LAST_NAMES = ("Bernard", "Durand", "Martin", "Petit")
FIRST_NAMES = ("Anne", "Bruno", "Chloe")


def build_board(app: App, seed: int, size: int) -> list[dict[str, Any]]:
    """``size`` participants with random points in a few values (ties), some negative,
    some exactly zero, a few without any entry; written with one commit, then the totals
    rebuilt as ``verify --repair`` would."""
    pick = random.Random(seed)
    people: list[dict[str, Any]] = []
    with Session(app.engine) as session:
        session.add(
            Challenge(
                key=KEY,
                name="Challenge",
                starts_at=DATES["whole"] - timedelta(days=30),
                ends_at=NOW + timedelta(days=60),
                created_at=NOW,
            )
        )
        company = Company(external_id="CO-A", name="Alpha", created_at=NOW, updated_at=NOW)
        session.add(company)
        session.flush()
        entry = 0
        for index in range(size):
            contact = Contact(
                external_id=f"K{index:03d}",
                company_id=company.id,
                first_name=pick.choice(FIRST_NAMES),
                last_name=pick.choice(LAST_NAMES),
                level="seller",
                created_at=NOW,
                updated_at=NOW,
            )
            session.add(contact)
            session.flush()
            public = pick.random() > 0.15
            session.add(
                Participant(
                    challenge_key=KEY,
                    contact_id=contact.id,
                    registered_at=NOW,
                    via="cli",
                    public=public,
                )
            )
            points = dict.fromkeys(VIEWS, 0)
            for view, at in DATES.items():
                if pick.random() < 0.2:
                    continue  # no entry at this date
                value = pick.choice((-20, -5, 5, 10, 10, 20, 20, 20, 35, 50, 50, 80))
                entry += 1
                session.add(
                    LedgerEntry(
                        contact_id=contact.id,
                        challenge_key=KEY,
                        kind="adjust" if value < 0 else "earn",
                        points=value,
                        remaining=max(value, 0),
                        source_key=f"t:{entry}",
                        created_at=at,
                    )
                )
                for counted in COUNTED_BY[view]:
                    points[counted] += value
            if index % 11 == 0 and points["whole"]:  # a total brought back to exactly 0
                entry += 1
                back = -points["whole"]
                session.add(
                    LedgerEntry(
                        contact_id=contact.id,
                        challenge_key=KEY,
                        kind="adjust",
                        points=back,
                        remaining=0,
                        source_key=f"t:{entry}",
                        created_at=DATES["week"],
                    )
                )
                for counted in COUNTED_BY["week"]:
                    points[counted] += back
            people.append(
                {
                    "ext": contact.external_id,
                    "id": contact.id,
                    "first": contact.first_name,
                    "last": contact.last_name,
                    "public": public,
                    "points": points,
                }
            )
        session.commit()
    with Session(app.engine) as session, session.begin():
        totals.rebuild(session, KEY, app.config.engine.timezone)
    return people


def expected_board(people: list[dict[str, Any]], view: str) -> list[tuple[int, str, int]]:
    """(rank, external id, points) best first, as the leaderboard's rules say."""
    order = sorted(people, key=lambda p: (-p["points"][view], p["last"], p["first"], p["id"]))
    return [
        (
            1 + sum(1 for o in people if o["points"][view] > p["points"][view]),
            p["ext"],
            p["points"][view],
        )
        for p in order
    ]


def shown(rows: list[Any], people: list[dict[str, Any]], viewer: str | None = None) -> list[Any]:
    """Rows as (rank, id, points); an anonymous row's id recovered from its position is
    not possible, so anonymous rows must say so and are compared by rank and points."""
    by_ext = {p["ext"]: p for p in people}
    result = []
    for row in rows:
        if row.subject is None:
            assert row.name == ANONYMOUS and row.company is None
            result.append((row.rank, None, row.points))
        else:
            person = by_ext[row.subject]
            assert row.public or row.subject == viewer
            assert row.name == f"{person['first']} {person['last']}"
            result.append((row.rank, row.subject, row.points))
    return result


def masked(
    expected: list[tuple[int, str, int]], people: list[dict[str, Any]], viewer: str | None = None
) -> list[Any]:
    public = {p["ext"]: p["public"] for p in people}
    return [(r, e if public[e] or e == viewer else None, pts) for r, e, pts in expected]


def window(board: list[tuple[int, str, int]], viewer: str) -> list[tuple[int, str, int]]:
    at = next(i for i, (_, ext, _) in enumerate(board) if ext == viewer)
    first = max(0, min(at - 2, len(board) - 5))
    return board[first : first + 5]


@pytest.fixture
def slices(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every slice the leaderboard asked ``ranked_individuals`` for (None: full board)."""
    asked: list[Any] = []
    real = board_pages.ranked_individuals

    def spy(challenge_key: str, bucket: tuple[str, str], part: Any) -> Any:
        asked.append(part)
        return real(challenge_key, bucket, part)

    monkeypatch.setattr(board_module.board_pages, "ranked_individuals", spy)
    return asked


@pytest.mark.parametrize("seed", [1, 2])
def test_pages_equal_the_full_ranking(app: App, slices: list[Any], seed: int):
    people = build_board(app, seed, 40)
    for view in VIEWS:
        board = expected_board(people, view)
        for limit in range(1, len(board) + 1):
            rows = leaderboard(app, KEY, period=view, now=NOW, limit=limit)  # type: ignore[arg-type]
            assert shown(rows, people) == masked(board[:limit], people), (view, limit)
        for person in people:
            viewer = person["ext"]
            rows = leaderboard(app, KEY, period=view, now=NOW, around=viewer)  # type: ignore[arg-type]
            assert shown(rows, people, viewer) == masked(window(board, viewer), people, viewer), (
                view,
                viewer,
            )
            assert [r.viewer for r in rows].count(True) == 1
    # Both ways were taken: slices for the pages among scorers, the full board elsewhere.
    assert any(part is None for part in slices)
    assert sum(part is not None for part in slices) > len(slices) // 3
    assert any(part is not None and part.above > 0 for part in slices)


def test_a_page_reads_only_its_slice(app: App, slices: list[Any]):
    """Around a mid-table viewer, the ranked rows are the few of its slice, and their
    positions start after the participants above it."""
    people = build_board(app, 3, 60)
    board = expected_board(people, "whole")
    middle = board[len(board) // 3][1]
    rows = leaderboard(app, KEY, now=NOW, around=middle)
    part = slices[-1]
    assert part is not None and part.high is not None
    inside = [e for e in board if part.low <= e[2] <= part.high]
    assert part.above == sum(1 for e in board if e[2] > part.high)
    assert len(inside) < len(board) // 2
    assert [r.rank for r in rows] == [e[0] for e in window(board, middle)]
