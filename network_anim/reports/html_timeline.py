"""The timeline of the HTML report per day, or per week when the period is long (120
daily points are mostly noise): one list of buckets shared by the charts and the tables,
so both show the same sums. Days without activity count as zero, so a line drops to the
ground on a quiet week instead of skipping it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from network_anim.reports.model import TimelinePoint

# A timeline longer than this is summed per week (weeks start on Monday).
WEEKLY_AFTER_DAYS = 45


@dataclass(frozen=True)
class Buckets:
    weekly: bool
    starts: tuple[date, ...]  # first day of each bucket
    sent: dict[str, tuple[int, ...]]  # channel -> messages sent per bucket
    opened_human: dict[str, tuple[int, ...]]  # channel -> human opens per bucket
    opened_machine: tuple[int, ...]  # every channel

    @property
    def unit(self) -> str:
        return "semaine" if self.weekly else "jour"


def bucket_timeline(timeline: Sequence[TimelinePoint]) -> Buckets | None:
    """The timeline summed per bucket; None when it is empty."""
    if not timeline:
        return None
    first = min(p.day for p in timeline)
    last = max(p.day for p in timeline)
    weekly = (last - first).days > WEEKLY_AFTER_DAYS

    def start_of(day: date) -> date:
        return day - timedelta(days=day.weekday()) if weekly else day

    step = timedelta(days=7 if weekly else 1)
    starts: list[date] = []
    current = start_of(first)
    while current <= last:
        starts.append(current)
        current += step
    index = {start: i for i, start in enumerate(starts)}
    sent: dict[str, list[int]] = {}
    opened: dict[str, list[int]] = {}
    machine = [0] * len(starts)
    for point in timeline:
        i = index[start_of(point.day)]
        sent.setdefault(point.channel, [0] * len(starts))[i] += point.sent
        opened.setdefault(point.channel, [0] * len(starts))[i] += point.opened_human
        machine[i] += point.opened_machine
    return Buckets(
        weekly=weekly,
        starts=tuple(starts),
        sent={c: tuple(v) for c, v in sent.items()},
        opened_human={c: tuple(v) for c, v in opened.items()},
        opened_machine=tuple(machine),
    )


__all__ = ["WEEKLY_AFTER_DAYS", "Buckets", "bucket_timeline"]
