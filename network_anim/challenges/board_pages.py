"""The individual board as SQL: the whole ranking, or only the slice of it a page shows.

A page of the board (the top N, the five around a viewer) needs the rows of a small
range of points, not the whole ranking. Rank is ``1 + the number of participants with more
points``, and positions follow (points desc, last name, first name, id); so ranking only the
participants whose points lie in [low, high] gives every row of that range its exact rank
and position once offset by the count of participants above ``high``. Both bounds and that
count are read from the ``ix_challengetotal_rank`` index (challenge, period, bucket,
points), never from the whole table.

The slice is used only where participants without a totals row (0 points, not in the
index) cannot be part of it: every row of the slice has positive points. Otherwise
(a board with fewer than N scorers, a viewer at or near 0 points, the full board) the
whole ranking is computed, over the totals (one row per participant), as before.

Example::

    bounds = top_slice(session, "pbx-2027", ("whole", ""), 50)
    ranked = ranked_individuals("pbx-2027", ("whole", ""), bounds)  # bounds None: whole board
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.sql import Select
from sqlmodel import Session

from network_anim.db.models import ChallengeTotal, Company, Contact, Participant

_totals = ChallengeTotal.__table__  # type: ignore[attr-defined]
_participant = Participant.__table__  # type: ignore[attr-defined]
_contact = Contact.__table__  # type: ignore[attr-defined]
_company = Company.__table__  # type: ignore[attr-defined]

# Rows of the window around a viewer that must lie inside the slice: two above (the
# page starts two above the viewer) and four below (at the top of the board the page is
# the viewer and the four after).
_NEEDED_ABOVE = 2
_NEEDED_BELOW = 4
_NO_HIGHER = 2**31 - 1  # points are a 32-bit integer column


@dataclass(frozen=True, slots=True)
class Slice:
    """Participants with ``low <= points <= high`` (``high`` None: no upper bound):
    ``size`` of them, ``above`` participants with more points than ``high``."""

    low: int
    high: int | None
    above: int
    size: int


def participants() -> Any:
    """Participants with their contact and company rows."""
    return _participant.join(_contact, _contact.c.id == _participant.c.contact_id).join(
        _company, _company.c.id == _contact.c.company_id
    )


def ranked_individuals(challenge_key: str, bucket: tuple[str, str], part: Slice | None) -> Select:
    """Participants with their points, rank (ties shared), display position ``pos`` and
    ``total``, the last position the ranked rows reach (the board's size when ``part`` is
    None, the whole board ranked)."""
    if part is None:
        in_bucket = and_(*_in_bucket(challenge_key, bucket))
        joined = participants().outerjoin(
            _totals, in_bucket & (_totals.c.contact_id == _participant.c.contact_id)
        )
        points = func.coalesce(_totals.c.points, 0)
        offset = 0
    else:
        # The slice's rows first, from the points index. LIMIT size cuts nothing (size is
        # their count, read in the same snapshot) but tells the planner how few rows come:
        # without it, it guesses from the whole table's points and may scan participants.
        in_slice = [*_in_bucket(challenge_key, bucket), _totals.c.points >= part.low]
        if part.high is not None:
            in_slice.append(_totals.c.points <= part.high)
        rows = (
            select(_totals.c.contact_id, _totals.c.points)
            .where(*in_slice)
            .order_by(_totals.c.points.desc())
            # Written into the SQL: a prepared statement's generic plan would not know it.
            .limit(bindparam("slice_size", max(part.size, 1), literal_execute=True))
            .subquery("slice")
        )
        joined = participants().join(rows, rows.c.contact_id == _participant.c.contact_id)
        points = rows.c.points
        offset = part.above
    order = (points.desc(), _contact.c.last_name, _contact.c.first_name, _contact.c.id)
    return (
        select(
            _contact.c.external_id.label("subject"),
            _contact.c.id.label("contact_id"),
            _contact.c.first_name,
            _contact.c.last_name,
            _company.c.name.label("company"),
            _participant.c.public,
            points.label("points"),
            (func.rank().over(order_by=points.desc()) + offset).label("rank"),
            (func.row_number().over(order_by=order) + offset).label("pos"),
            (func.count().over() + offset).label("total"),
        )
        .select_from(joined)
        .where(_participant.c.challenge_key == challenge_key)
    )


def top_slice(
    session: Session, challenge_key: str, bucket: tuple[str, str], limit: int
) -> Slice | None:
    """The slice holding the top ``limit`` rows: every participant with at least the
    points of the ``limit``-th best. None when that row has no positive points (or the
    board has fewer rows): zero-point participants may then be on the page."""
    low = _nth_points(challenge_key, bucket, "desc", limit - 1)
    found = session.execute(
        select(
            low.label("low"), _count(challenge_key, bucket, _totals.c.points >= low).label("size")
        )
    ).one()
    if found.low is None or found.low <= 0:
        return None
    return Slice(low=int(found.low), high=None, above=0, size=int(found.size))


def around_slice(
    session: Session, challenge_key: str, bucket: tuple[str, str], contact_id: int
) -> Slice | None:
    """A slice holding the five rows around a viewer: from the points of the second
    participant above them to those of the fourth below, ties included. None when the
    viewer or the fourth below has no positive points. One statement: its bounds and
    counts come from one snapshot."""
    mine = (
        select(_totals.c.points)
        .where(*_in_bucket(challenge_key, bucket), _totals.c.contact_id == contact_id)
        .scalar_subquery()
    )
    low = _nth_points(challenge_key, bucket, "desc", _NEEDED_BELOW - 1, _totals.c.points < mine)
    high = _nth_points(challenge_key, bucket, "asc", _NEEDED_ABOVE - 1, _totals.c.points > mine)
    above = _count(challenge_key, bucket, _totals.c.points > high).label("above")
    inside = _count(
        challenge_key,
        bucket,
        _totals.c.points >= low,
        # Without a high bound, no bound: the largest points there can be. A NULL test
        # here instead would keep the index from bounding the count's range.
        _totals.c.points <= func.coalesce(high, _NO_HIGHER),
    ).label("size")
    found = session.execute(
        select(mine.label("mine"), low.label("low"), high.label("high"), above, inside)
    ).one()
    if found.mine is None or found.mine <= 0 or found.low is None or found.low <= 0:
        return None
    return Slice(
        low=int(found.low),
        high=None if found.high is None else int(found.high),
        above=int(found.above),  # 0 without a high bound: nobody is above "> NULL"
        size=int(found.size),
    )


def _count(challenge_key: str, bucket: tuple[str, str], *conditions: Any) -> Any:
    return (
        select(func.count())
        .where(*_in_bucket(challenge_key, bucket), *conditions)
        .scalar_subquery()
    )


def _in_bucket(challenge_key: str, bucket: tuple[str, str]) -> tuple[Any, ...]:
    period, key = bucket
    return (
        _totals.c.challenge_key == challenge_key,
        _totals.c.period == period,
        _totals.c.bucket == key,
    )


def _nth_points(
    challenge_key: str, bucket: tuple[str, str], direction: str, skip: int, *conditions: Any
) -> Any:
    """The points of the row ``skip`` rows into the bucket's index, walked in
    ``direction`` (a scalar subquery; NULL past the end)."""
    order = _totals.c.points.desc() if direction == "desc" else _totals.c.points.asc()
    return (
        select(_totals.c.points)
        .where(*_in_bucket(challenge_key, bucket), *conditions)
        .order_by(order)
        .offset(skip)
        .limit(1)
        .scalar_subquery()
    )


__all__ = ["Slice", "around_slice", "participants", "ranked_individuals", "top_slice"]
