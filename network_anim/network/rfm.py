"""RFM scoring of companies from their approved sales: pure functions, no database.

For every company with at least one approved sale in the lookback window:

- **R**ecency: whole days from its last sale to the as-of moment (fewer is better);
- **F**requency: number of sales; **M**onetary: their total amount (EUR excl. VAT).

Each measure is scored 1..5 by quintile among those companies, using the *mid-rank*
percentile ``p = (below + equal / 2) / n`` and ``score = floor(5 p) + 1``, with ``below``
counting companies strictly worse and ``equal`` those with the same value (the company
itself included). So equal values always get the same score, the result never depends on
row order, ten distinct values give exactly two per score, and a network too small for
quintiles still scores sensibly: one company scores 3 (nothing to compare it with), two
score 2 and 4, three score 1, 3 and 5. Amounts are compared to the cent, so sums that
differ only by float noise count as equal.

F and M are merged into one FM score, ``(F + M + 1) // 2`` (the mean, halves rounded up),
and the (R, FM) pair names the segment (rows: R, columns: FM)::

         FM=1            2               3               4           5
    R=5  new             potential       potential       champions   champions
    R=4  promising       potential       potential       loyal       loyal
    R=3  about_to_sleep  about_to_sleep  need_attention  loyal       loyal
    R=2  hibernating     hibernating     at_risk         at_risk     cant_lose
    R=1  lost            hibernating     at_risk         at_risk     cant_lose

This is the usual R x F grid of RFM practice (champions bought recently and often;
cant_lose bought often and a lot but long ago...). A company without an approved sale in
the window is ``inactive``, with no scores.
"""

from __future__ import annotations

import calendar
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from network_anim.domain import RFM_INACTIVE, RFM_SEGMENTS

SCHEME = "rfm"
INACTIVE = RFM_INACTIVE
SEGMENTS = RFM_SEGMENTS

# _GRID[r - 1][fm - 1]
_GRID: tuple[tuple[str, ...], ...] = (
    ("lost", "hibernating", "at_risk", "at_risk", "cant_lose"),
    ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"),
    ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    ("promising", "potential", "potential", "loyal", "loyal"),
    ("new", "potential", "potential", "champions", "champions"),
)


@dataclass(frozen=True)
class Activity:
    """A company's approved sales in the window (frequency 0: none, recency unknown)."""

    company_id: int
    recency_days: int | None
    frequency: int
    monetary: float


@dataclass(frozen=True)
class RfmScore:
    company_id: int
    segment: str
    recency_days: int | None
    frequency: int
    monetary: float
    r_score: int | None
    f_score: int | None
    m_score: int | None


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months earlier (31 May - 3 → 28 Feb)."""
    if months < 0:
        raise ValueError("months must not be negative")
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def segment_for(r_score: int, fm_score: int) -> str:
    if not (1 <= r_score <= 5 and 1 <= fm_score <= 5):
        raise ValueError(f"scores must be within 1..5, got R={r_score} FM={fm_score}")
    return _GRID[r_score - 1][fm_score - 1]


def fm_score(f_score: int, m_score: int) -> int:
    return (f_score + m_score + 1) // 2


def quintile_scores(values: Sequence[float]) -> list[int]:
    """Score each value 1..5 by its mid-rank percentile among ``values`` (higher is better)."""
    ordered = sorted(values)
    n = len(ordered)
    scores = []
    for value in values:
        below = bisect_left(ordered, value)
        equal = bisect_right(ordered, value) - below
        # floor(5 * (below + equal / 2) / n) + 1, in integers so ties never drift apart;
        # below + equal / 2 < n, so the score never exceeds 5.
        scores.append((5 * (2 * below + equal)) // (2 * n) + 1)
    return scores


def score_companies(activities: Sequence[Activity]) -> list[RfmScore]:
    """Scores and segment of every company, in the order given."""
    ids = [a.company_id for a in activities]
    if len(set(ids)) != len(ids):
        raise ValueError("each company must appear once")
    active = [a for a in activities if a.frequency > 0]
    for activity in active:
        if activity.recency_days is None or activity.recency_days < 0:
            raise ValueError(
                f"company {activity.company_id}: an active company needs recency_days >= 0"
            )
    # Negated recency: the most recent sale ranks highest.
    r_scores = quintile_scores([-float(a.recency_days or 0) for a in active])
    f_scores = quintile_scores([float(a.frequency) for a in active])
    m_scores = quintile_scores([round(a.monetary, 2) for a in active])
    scored = {
        a.company_id: RfmScore(
            company_id=a.company_id,
            segment=segment_for(r, fm_score(f, m)),
            recency_days=a.recency_days,
            frequency=a.frequency,
            monetary=a.monetary,
            r_score=r,
            f_score=f,
            m_score=m,
        )
        for a, r, f, m in zip(active, r_scores, f_scores, m_scores, strict=True)
    }
    return [
        scored.get(a.company_id)
        or RfmScore(
            company_id=a.company_id,
            segment=INACTIVE,
            recency_days=None,
            frequency=0,
            monetary=0.0,
            r_score=None,
            f_score=None,
            m_score=None,
        )
        for a in activities
    ]


@dataclass(frozen=True)
class SegmentSummary:
    segment: str
    companies: int
    share: float  # of all companies scored
    median_recency_days: float | None
    median_frequency: float | None
    median_monetary: float | None
    total_monetary: float


def summarize(scores: Sequence[RfmScore]) -> list[SegmentSummary]:
    """One line per segment present, best segment first."""
    from statistics import median

    total = len(scores)
    lines = []
    for segment in SEGMENTS:
        members = [s for s in scores if s.segment == segment]
        if not members:
            continue
        active = segment != INACTIVE
        lines.append(
            SegmentSummary(
                segment=segment,
                companies=len(members),
                share=len(members) / total,
                median_recency_days=(
                    median(s.recency_days or 0 for s in members) if active else None
                ),
                median_frequency=median(s.frequency for s in members) if active else None,
                median_monetary=median(s.monetary for s in members) if active else None,
                total_monetary=sum(s.monetary for s in members),
            )
        )
    return lines
