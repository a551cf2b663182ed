"""Challenge leaderboards: individual and team rankings, period views, rank movement.

Everything is computed by the database, from the running totals ``totals`` keeps in each
ledger entry's transaction (one row per participant or company and period bucket), never
from the ledger itself. A page of the individual board (the top N, the five around a
viewer) ranks only the slice of participants its rows can come from, found in the
totals' points index (``board_pages``); the full ranking, with the window functions
``RANK()`` / ``ROW_NUMBER()``, is the fallback where participants without points could be
on the page, and what snapshots and standings use. Only the rows shown come back to
Python; taking a snapshot is one ``INSERT ... SELECT``.

Challenge points are the sum of a participant's ``earn``, ``bonus`` and ``adjust``
entries carrying the challenge's key; redemptions, refunds and expiry are not
challenge-scoped and never move a ranking. Ties share a rank (1, 2, 2, 4) and are shown by
name, then id; participants without points are listed last: they registered.

Example::

    from network_anim.challenges.leaderboard import leaderboard, take_snapshot

    top = leaderboard(app, "pbx-2027", limit=10)
    mine = leaderboard(app, "pbx-2027", period="month", around="C0002")
    teams = leaderboard(app, "pbx-2027", scope="team")
    take_snapshot(app, "pbx-2027", "individual", app.clock.now())  # after a digest
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Float, Integer, String, case, cast, func, insert, literal, select, text
from sqlalchemy.sql import Select
from sqlmodel import Session

from network_anim.challenges import board_pages, totals
from network_anim.db.models import (
    Company,
    CompanyTotal,
    Contact,
    LeaderboardSnapshot,
    Participant,
)
from network_anim.db.types import UTCDateTime
from network_anim.errors import UserError

Scope = Literal["individual", "team"]
Period = Literal["whole", "month", "week"]

SCOPES: tuple[str, ...] = ("individual", "team")
PERIODS: tuple[str, ...] = ("whole", "month", "week")
# Ledger kinds that count for a challenge; redeem, refund and expire never do.
CHALLENGE_KINDS: tuple[str, ...] = ("earn", "bonus", "adjust")
ANONYMOUS = "Participant anonyme"
# The window shown around a viewer: two above, the viewer, two below (kept at five rows
# at the top and bottom of the board).
AROUND_ABOVE = 2
AROUND_SIZE = 5

_company_totals = CompanyTotal.__table__  # type: ignore[attr-defined]
_participant = Participant.__table__  # type: ignore[attr-defined]
_contact = Contact.__table__  # type: ignore[attr-defined]
_company = Company.__table__  # type: ignore[attr-defined]
_snapshot = LeaderboardSnapshot.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Row:
    """One line of a leaderboard.

    ``subject`` is the contact's external id (individual) or the team key (team); it is
    ``None``, like ``company``, on the row of a participant who opted out of public
    ranking (``name`` is then "Participant anonyme"), unless that participant is the
    viewer. ``points`` is an int, or a float for teams ranked on their average.
    ``movement`` is previous rank - current rank since the latest snapshot (+3: up three
    places), ``None`` when there is no snapshot or the subject was not in it.
    """

    rank: int
    subject: str | None
    name: str
    company: str | None
    points: int | float
    members: int | None
    movement: int | None
    public: bool
    viewer: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "id": self.subject,
            "name": self.name,
            "company": self.company,
            "points": self.points,
            "members": self.members,
            "movement": self.movement,
            "public": self.public,
            "viewer": self.viewer,
        }


LeaderboardRow = Row


def period_bounds(app: Any, period: str, now: datetime) -> tuple[datetime, datetime] | None:
    """The UTC interval [start, end) of the current calendar month or ISO week of ``now``
    in the [engine] time zone; ``None`` for the whole challenge."""
    _check_period(period, now)
    if period == "whole":
        return None
    return totals.period_bounds(_zone(app), period, now)


def _bucket(app: Any, period: str, now: datetime) -> tuple[str, str]:
    """The (period, bucket) of the running totals a view at ``now`` reads."""
    _check_period(period, now)
    return period, totals.bucket(_zone(app), period, now)


def _check_period(period: str, now: datetime) -> None:
    _check_choice("period", period, PERIODS)
    if now.tzinfo is None:
        raise ValueError("naive datetime: give an aware one (clock.now())")


def _zone(app: Any) -> ZoneInfo:
    return ZoneInfo(app.config.engine.timezone)


def leaderboard(
    app: Any,
    challenge_key: str,
    *,
    scope: Scope = "individual",
    period: Period = "whole",
    now: datetime | None = None,
    around: str | None = None,
    limit: int | None = None,
) -> list[Row]:
    """The ranking of a challenge, best first.

    ``around``: a contact's external id; the result is then the five rows around that
    viewer (individual) or the viewer's team (team): two above, the viewer, two below,
    shifted to stay five rows at either end of the board; ``limit`` is then ignored.
    ``limit``: the top N rows (ties at the cut are cut). ``now`` defaults to the app's
    clock and anchors the period and the snapshot used for ``movement``.
    """
    _check_choice("scope", scope, SCOPES)
    _check_choice("period", period, PERIODS)
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    challenge = _challenge(app, challenge_key, scope)
    now = now or app.clock.now()
    with _reading(app, challenge.id) as session:
        bucket = _bucket(app, period, now)
        viewer: str | None = None
        part: board_pages.Slice | None = None
        if around is not None:
            viewer, viewer_id = _viewer_subject(session, challenge, scope, around)
            if scope == "individual":
                part = board_pages.around_slice(session, challenge.id, bucket, viewer_id)
        elif limit is not None and scope == "individual":
            part = board_pages.top_slice(session, challenge.id, bucket, limit)
        ranked = _ranked(challenge, scope, bucket, part).cte("ranked")
        page = select(ranked)
        if viewer is not None:
            # First position shown: two above the viewer, within [1, total - 4]. A scalar
            # subquery is computed once (PostgreSQL InitPlan), never once per row.
            mine = ranked.alias("mine")
            above = mine.c.pos - AROUND_ABOVE
            last_start = mine.c.total - (AROUND_SIZE - 1)
            lowest = case((above < last_start, above), else_=last_start)
            first = (
                select(case((lowest < 1, 1), else_=lowest))
                .where(mine.c.subject == viewer)
                .scalar_subquery()
            )
            page = page.where((ranked.c.pos - first).between(0, AROUND_SIZE - 1))
        elif limit is not None:
            page = page.order_by(ranked.c.pos).limit(limit)
        shown = page.subquery("page")
        previous = _previous_ranks(challenge.id, _scope_tag(scope, period), now)
        query = (
            select(shown, previous.c.rank.label("previous_rank"))
            .select_from(shown.outerjoin(previous, previous.c.subject == shown.c.subject))
            .order_by(shown.c.pos)
        )
        records = session.execute(query).mappings().all()
    return [_row(r, scope, around, viewer) for r in records]


def take_snapshot(
    app: Any,
    challenge_key: str,
    scope: Scope,
    now: datetime | None = None,
    *,
    period: Period = "whole",
) -> int:
    """Store every current rank of a leaderboard (one ``INSERT ... SELECT``) so later
    leaderboards show each row's movement since; returns the number of rows stored.

    A period view has its own snapshots (scope stored as ``individual:month``...)."""
    with Session(app.engine) as session:
        stored = snapshot_in(session, app, challenge_key, scope, now, period=period)
        session.commit()
    return stored


def snapshot_in(
    session: Session,
    app: Any,
    challenge_key: str,
    scope: Scope,
    now: datetime | None = None,
    *,
    period: Period = "whole",
) -> int:
    """``take_snapshot`` inside the caller's transaction (a digest firing: its snapshot
    and its deliveries commit together, or neither does)."""
    _check_choice("scope", scope, SCOPES)
    _check_choice("period", period, PERIODS)
    challenge = _challenge(app, challenge_key, scope)
    now = now or app.clock.now()
    totals.ensure_built(session, challenge.id, app.config.engine.timezone)
    ranked = _ranked(challenge, scope, _bucket(app, period, now)).subquery("ranked")
    points = ranked.c.points
    if scope == "team" and challenge.team_ranking == "average":
        points = func.round(points)
    source = select(
        literal(challenge.id, String()),
        literal(_scope_tag(scope, period), String()),
        ranked.c.subject,
        ranked.c.rank,
        cast(points, Integer),
        literal(now, UTCDateTime()),
    )
    statement = (
        insert(_snapshot)
        .from_select(["challenge_key", "scope", "subject", "rank", "points", "taken_at"], source)
        .execution_options(preserve_rowcount=True)  # INSERT rowcount is opt-in since 2.0.28
    )
    return int(session.execute(statement).rowcount or 0)


@dataclass(frozen=True, slots=True)
class Standing:
    """A participant's line of the individual board, as ``leaderboard`` shows it."""

    contact_id: int
    rank: int
    points: int
    participants: int
    # previous rank - rank since the latest snapshot; None without one (as Row.movement).
    movement: int | None


def standings(
    session: Session,
    app: Any,
    challenge_key: str,
    now: datetime,
    contact_ids: Collection[int] | None = None,
) -> dict[int, Standing]:
    """Contact id -> standing on the whole-challenge individual board at ``now``: the
    same ranking query as ``leaderboard``, restricted after ranking to ``contact_ids``
    (``None``: every participant). One query, whatever the number of contacts."""
    challenge = app.config.challenge(challenge_key)
    totals.ensure_built(session, challenge.id, app.config.engine.timezone)
    ranked = _ranked(challenge, "individual", ("whole", "")).cte("ranked")
    previous = _previous_ranks(challenge.id, _scope_tag("individual", "whole"), now)
    query = select(
        ranked.c.contact_id,
        ranked.c.rank,
        ranked.c.points,
        ranked.c.total,
        previous.c.rank.label("previous_rank"),
    ).select_from(ranked.outerjoin(previous, previous.c.subject == ranked.c.subject))
    if contact_ids is not None:
        query = query.where(ranked.c.contact_id.in_(sorted(contact_ids)))
    return {
        int(contact_id): Standing(
            contact_id=int(contact_id),
            rank=int(rank),
            points=int(points),
            participants=int(total),
            movement=None if before is None else int(before) - int(rank),
        )
        for contact_id, rank, points, total, before in session.execute(query)
    }


# -- queries --------------------------------------------------------------------------------


def _ranked(
    challenge: Any, scope: str, bucket: tuple[str, str], part: board_pages.Slice | None = None
) -> Select:
    """Every subject with points, rank (ties shared), display position and board size;
    ``part``: only that slice of the individual board (see ``board_pages``)."""
    if scope == "team":
        return _ranked_teams(challenge, bucket)
    return board_pages.ranked_individuals(challenge.id, bucket, part)


def _ranked_teams(challenge: Any, bucket: tuple[str, str]) -> Select:
    """Teams from their companies' running totals: participants are counted on each
    company's whole-challenge row, points come from the bucket's row (none: 0)."""
    period, key = bucket
    whole = _company_totals.alias("whole")
    joined = whole.join(_company, _company.c.id == whole.c.company_id)
    points: Any = whole.c.points
    if period != "whole":  # the whole-challenge row is the bucket's own row otherwise
        in_bucket = _company_totals.alias("in_bucket")
        joined = joined.outerjoin(
            in_bucket,
            (in_bucket.c.company_id == whole.c.company_id)
            & (in_bucket.c.challenge_key == whole.c.challenge_key)
            & (in_bucket.c.period == period)
            & (in_bucket.c.bucket == key),
        )
        points = func.coalesce(in_bucket.c.points, 0)
    team_key, team_name = _team_columns(challenge)
    companies = select(
        team_key.label("team_key"),
        team_name.label("team_name"),
        whole.c.members,
        points.label("points"),
    ).select_from(joined)
    companies = companies.where(
        whole.c.challenge_key == challenge.id,
        whole.c.period == "whole",
        whole.c.bucket == "",
        whole.c.members > 0,
    )
    if challenge.teams:
        listed = [company for team in challenge.teams for company in team.companies]
        companies = companies.where(_company.c.external_id.in_(listed))
    company = companies.subquery("companies")
    # Named teams add their companies up; without them each company is its own team and
    # a GROUP BY would only sort every company for nothing.
    grouped = bool(challenge.teams)
    points = func.sum(company.c.points) if grouped else company.c.points
    members = func.sum(company.c.members) if grouped else company.c.members
    name = func.min(company.c.team_name) if grouped else company.c.team_name
    score = points if challenge.team_ranking == "total" else cast(points, Float) / members
    query = select(
        company.c.team_key.label("subject"),
        name.label("name"),
        members.label("members"),
        score.label("points"),
    )
    teams = (query.group_by(company.c.team_key) if grouped else query).subquery("teams")
    order = (teams.c.points.desc(), teams.c.name, teams.c.subject)
    return select(
        teams,
        func.rank().over(order_by=teams.c.points.desc()).label("rank"),
        func.row_number().over(order_by=order).label("pos"),
        func.count().over().label("total"),
    )


def _team_columns(challenge: Any) -> tuple[Any, Any]:
    """Team key and name of a participant: the challenge's named teams (by company
    external id), else the company itself."""
    if not challenge.teams:
        return _company.c.external_id, _company.c.name
    keys: dict[str, str] = {}
    names: dict[str, str] = {}
    for team in challenge.teams:
        for company in team.companies:
            keys.setdefault(company, team.key)
            names.setdefault(company, team.name)
    return (
        case(keys, value=_company.c.external_id),
        case(names, value=_company.c.external_id),
    )


def _previous_ranks(challenge_key: str, tag: str, now: datetime) -> Any:
    """Ranks of the latest snapshot taken before ``now``."""
    latest = (
        select(func.max(_snapshot.c.taken_at))
        .where(
            _snapshot.c.challenge_key == challenge_key,
            _snapshot.c.scope == tag,
            _snapshot.c.taken_at < now,
        )
        .scalar_subquery()
    )
    return (
        select(_snapshot.c.subject, _snapshot.c.rank)
        .where(
            _snapshot.c.challenge_key == challenge_key,
            _snapshot.c.scope == tag,
            _snapshot.c.taken_at == latest,
        )
        .subquery("previous")
    )


@contextmanager
def _reading(app: Any, challenge_key: str) -> Iterator[Session]:
    """A session whose statements (a page's slice bounds, then its rows) read one
    snapshot of built totals: on PostgreSQL a repeatable-read transaction (SQLite's
    BEGIN IMMEDIATE gives one already). The totals are built first if they are not,
    in their own transaction (the first board after an upgrade)."""
    zone = app.config.engine.timezone
    with Session(app.engine) as session:
        _one_snapshot(session)
        if not totals.is_built(session, challenge_key, zone):
            session.rollback()
            with Session(app.engine) as builder, builder.begin():
                totals.ensure_built(builder, challenge_key, zone)
            _one_snapshot(session)
        yield session


def _one_snapshot(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # For this transaction only: nothing to reset when the connection goes back.
        session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))


def _viewer_subject(session: Session, challenge: Any, scope: str, contact: str) -> tuple[str, int]:
    """The subject shown around a viewer (the contact itself, or the contact's team) and
    the viewer's contact id."""
    found = session.execute(
        select(_company.c.external_id, _contact.c.id)
        .select_from(board_pages.participants())
        .where(_participant.c.challenge_key == challenge.id, _contact.c.external_id == contact)
    ).first()
    if found is None:
        raise UserError(
            f"contact {contact!r} is not a participant of challenge {challenge.id!r}",
            ["give the external id of a registered participant (netanim challenge register)"],
        )
    company, contact_id = found
    if scope == "individual":
        return contact, contact_id
    if not challenge.teams:
        return company, contact_id
    for team in challenge.teams:
        if company in team.companies:
            return team.key, contact_id
    raise UserError(
        f"contact {contact!r} belongs to no team of challenge {challenge.id!r}",
        [f"company {company!r} is listed in no [[challenges.teams]] entry"],
    )


def _row(record: Any, scope: str, around: str | None, viewer: str | None) -> Row:
    previous = record["previous_rank"]
    movement = None if previous is None else int(previous) - int(record["rank"])
    points = record["points"]
    points = float(points) if isinstance(points, float) else int(points)
    if scope == "team":
        return Row(
            rank=int(record["rank"]),
            subject=record["subject"],
            name=record["name"],
            company=None,
            points=points,
            members=int(record["members"]),
            movement=movement,
            public=True,
            viewer=record["subject"] == viewer,
        )
    public = bool(record["public"])
    is_viewer = around is not None and record["subject"] == around
    if public or is_viewer:
        name = f"{record['first_name'] or ''} {record['last_name']}".strip()
        subject, company = record["subject"], record["company"]
    else:
        name, subject, company = ANONYMOUS, None, None
    return Row(
        rank=int(record["rank"]),
        subject=subject,
        name=name,
        company=company,
        points=points,
        members=None,
        movement=movement,
        public=public,
        viewer=is_viewer,
    )


# -- helpers --------------------------------------------------------------------------------


def _challenge(app: Any, challenge_key: str, scope: str) -> Any:
    challenge = app.config.challenge(challenge_key)
    if scope not in challenge.modes:
        raise UserError(
            f"challenge {challenge_key!r} has no {scope} ranking",
            [f"its modes: {', '.join(challenge.modes)}"],
        )
    return challenge


def _scope_tag(scope: str, period: str) -> str:
    return scope if period == "whole" else f"{scope}:{period}"


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


__all__ = [
    "ANONYMOUS",
    "CHALLENGE_KINDS",
    "LeaderboardRow",
    "Row",
    "Standing",
    "leaderboard",
    "period_bounds",
    "snapshot_in",
    "standings",
    "take_snapshot",
]
