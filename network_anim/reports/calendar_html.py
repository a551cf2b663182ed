"""The campaign calendar of a plan: one self-contained HTML page (inline CSS and a small
inline script, no URL) that shows a period month by month, week by week, each day's
messages by channel and campaign with their cost, the messages a legal send window or
quiet hours held back, and the firings missed; a click on a day lists its messages.

Days are the engine's time zone's. Everything a day cell shows is added up here, in
Python, so the page stays light for a large plan; the messages themselves travel as
JSON in a ``<script type="application/json">`` element (their repeated texts stored
once) and the script lists a day's only when it is clicked.

Example::

    sent, report = plan_period(config, url, start, end)
    page = render_calendar(sent, report.missed_firings, timezone="Europe/Paris",
                           start=start, end=end, generated=app.clock.now())
    Path("calendar.html").write_text(page, encoding="utf-8")
"""

from __future__ import annotations

import calendar as weeks_of
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from network_anim.reports import fr_format
from network_anim.reports.charts import channel_colour
from network_anim.reports.html import _environment
from network_anim.reports.html_labels import channel_label, ordered_channels
from network_anim.reports.html_view import Tile

TEMPLATE = "calendar.html.j2"
WEEKDAYS = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")
_WEEKDAY_NAMES = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_MONTH_NAMES = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
# A day cell names this many campaigns, then "+N".
_CAMPAIGNS_SHOWN = 3
# Heat levels of a day cell (0: nothing sent), by its share of the busiest day.
_HEAT_LEVELS = 4


class PlannedMessage(Protocol):
    """What the calendar reads of a message (engine.simulation.SentMessage)."""

    @property
    def when(self) -> datetime: ...
    @property
    def contact(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def campaign(self) -> str: ...
    @property
    def step(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def cost(self) -> float: ...
    @property
    def deferred_from(self) -> datetime | None: ...


class Missed(Protocol):
    """A firing found too late (engine.simulation.MissedFiring)."""

    @property
    def when(self) -> datetime: ...
    @property
    def campaign(self) -> str: ...
    @property
    def detail(self) -> str: ...


# -- the figures --------------------------------------------------------------------------------


@dataclass
class Tally:
    count: int = 0
    cost: float = 0.0

    def add(self, cost: float) -> None:
        self.count += 1
        self.cost += cost


@dataclass(frozen=True)
class MissedView:
    time: str  # HH:MM, engine time zone
    campaign: str
    detail: str


@dataclass
class Day:
    day: date
    total: Tally = field(default_factory=Tally)
    channels: dict[str, Tally] = field(default_factory=dict)
    campaigns: dict[str, Tally] = field(default_factory=dict)
    # Messages going out this day after being held back (from this day or an earlier one).
    deferred: int = 0
    # Messages meant for this day that go out on a later day.
    held_for_later: int = 0
    missed: list[MissedView] = field(default_factory=list)

    def add(self, message: PlannedMessage) -> None:
        self.total.add(message.cost)
        self.channels.setdefault(message.channel, Tally()).add(message.cost)
        self.campaigns.setdefault(message.campaign, Tally()).add(message.cost)


@dataclass
class Calendar:
    """A plan's figures, per local day and in total."""

    timezone: str
    first: date  # the period's first and last local days
    last: date
    days: dict[date, Day]
    total: Tally
    channels: dict[str, Tally]
    campaigns: dict[str, Tally]
    deferred: int
    missed: int


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def build_calendar(
    messages: Iterable[PlannedMessage],
    missed: Iterable[Missed],
    *,
    timezone: str,
    start: datetime,
    end: datetime,
) -> Calendar:
    zone = ZoneInfo(timezone)
    days: dict[date, Day] = {}
    total, channels, campaigns = Tally(), dict[str, Tally](), dict[str, Tally]()
    deferred = 0

    def day_of(moment: datetime) -> Day:
        day = local_day(moment, zone)
        return days.setdefault(day, Day(day))

    for m in messages:
        sending = day_of(m.when)
        sending.add(m)
        total.add(m.cost)
        channels.setdefault(m.channel, Tally()).add(m.cost)
        campaigns.setdefault(m.campaign, Tally()).add(m.cost)
        if m.deferred_from is not None:
            deferred += 1
            sending.deferred += 1
            meant = day_of(m.deferred_from)
            if meant is not sending:
                meant.held_for_later += 1
    missed_count = 0
    for firing in missed:
        missed_count += 1
        day_of(firing.when).missed.append(
            MissedView(f"{firing.when.astimezone(zone):%H:%M}", firing.campaign, firing.detail)
        )
    # The end is exclusive: --to 2027-04-01 (its midnight) ends with 31 March.
    last = local_day(end - timedelta(microseconds=1), zone)
    return Calendar(
        timezone=timezone,
        first=local_day(start, zone),
        last=last,
        days=days,
        total=total,
        channels=channels,
        campaigns=campaigns,
        deferred=deferred,
        missed=missed_count,
    )


# -- what the page shows --------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelChip:
    channel: str
    label: str
    colour: str
    count: int
    share: float  # of the day's messages, for the day's stacked bar


@dataclass(frozen=True)
class Cell:
    iso: str
    number: int
    label: str  # "Mardi 8 décembre 2026"
    in_period: bool
    heat: int
    messages: int
    count: str
    cost: str
    chips: tuple[ChannelChip, ...]
    campaigns: tuple[str, ...]
    more_campaigns: int
    deferred: int
    held_for_later: int
    missed: tuple[MissedView, ...]

    @property
    def empty(self) -> bool:
        return not (self.messages or self.missed or self.held_for_later)


@dataclass(frozen=True)
class Month:
    title: str
    weeks: tuple[tuple[Cell | None, ...], ...]  # Monday first; None: another month's day


@dataclass(frozen=True)
class Row:
    label: str
    colour: str | None
    count: str
    cost: str
    share: float  # of the largest row, for its bar


@dataclass(frozen=True)
class CalendarPage:
    title: str
    period: str
    generated: str
    timezone: str
    tiles: tuple[Tile, ...]
    channels: tuple[Row, ...]
    campaigns: tuple[Row, ...]
    months: tuple[Month, ...]
    data: Markup  # the messages, as JSON safe inside a <script> element


def long_day(day: date) -> str:
    """``Mardi 8 décembre 2026``: a day as a heading."""
    weekday = _WEEKDAY_NAMES[day.weekday()].capitalize()
    return f"{weekday} {day.day} {_MONTH_NAMES[day.month - 1]} {day.year}"


def calendar_page(
    cal: Calendar, messages: Sequence[PlannedMessage], generated: datetime
) -> CalendarPage:
    zone = ZoneInfo(cal.timezone)
    return CalendarPage(
        title="Calendrier des envois",
        period=f"Du {fr_format.day(cal.first)} au {fr_format.day(cal.last)}",
        generated=fr_format.moment(generated, zone),
        timezone=cal.timezone,
        tiles=_tiles(cal),
        channels=_rows({c: cal.channels[c] for c in ordered_channels(cal.channels)}, coloured=True),
        campaigns=_rows(dict(sorted(cal.campaigns.items(), key=lambda kv: -kv[1].count))),
        months=_months(cal),
        data=_embedded(messages, cal, zone),
    )


def _tiles(cal: Calendar) -> tuple[Tile, ...]:
    busy = sum(1 for d in cal.days.values() if d.total.count)
    return (
        Tile(
            "Messages",
            fr_format.integer(cal.total.count),
            f"sur {fr_format.integer(busy)} jours d'envoi",
        ),
        Tile(
            "Coût estimé",
            fr_format.euros(cal.total.cost),
            f"{fr_format.euros(cal.total.cost / cal.total.count, 3)} par message"
            if cal.total.count
            else "aucun envoi",
        ),
        Tile(
            "Reportés",
            fr_format.integer(cal.deferred),
            "retenus par une fenêtre légale d'envoi ou les heures calmes",
        ),
        Tile(
            "Déclenchements manqués",
            fr_format.integer(cal.missed),
            "trouvés après le délai de grâce : rien n'est parti",
        ),
    )


def _rows(tallies: dict[str, Tally], *, coloured: bool = False) -> tuple[Row, ...]:
    top = max((t.count for t in tallies.values()), default=0) or 1
    return tuple(
        Row(
            channel_label(name) if coloured else name,
            channel_colour(name) if coloured else None,
            fr_format.integer(t.count),
            fr_format.euros(t.cost),
            t.count / top,
        )
        for name, t in tallies.items()
    )


def _months(cal: Calendar) -> tuple[Month, ...]:
    # The period, and any day outside it that has something (a firing missed before it).
    first = min([cal.first, *cal.days])
    last = max([cal.last, *cal.days])
    busiest = max((d.total.count for d in cal.days.values()), default=0)
    months = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        grid = weeks_of.Calendar(firstweekday=0).monthdatescalendar(year, month)
        weeks = tuple(
            tuple(_cell(cal, d, busiest) if d.month == month else None for d in week)
            for week in grid
        )
        months.append(Month(f"{_MONTH_NAMES[month - 1]} {year}", weeks))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return tuple(months)


def _cell(cal: Calendar, day: date, busiest: int) -> Cell:
    data = cal.days.get(day) or Day(day)
    count = data.total.count
    names = sorted(data.campaigns, key=lambda c: -data.campaigns[c].count)
    return Cell(
        iso=day.isoformat(),
        number=day.day,
        label=long_day(day),
        in_period=cal.first <= day <= cal.last,
        heat=-(-count * _HEAT_LEVELS // busiest) if count else 0,  # ceiling: 1 message shows
        messages=count,
        count=fr_format.integer(count) if count else "",
        cost=fr_format.euros(data.total.cost) if count else "",
        chips=tuple(
            ChannelChip(
                c,
                channel_label(c),
                channel_colour(c),
                data.channels[c].count,
                data.channels[c].count / count,
            )
            for c in ordered_channels(data.channels)
        ),
        campaigns=tuple(names[:_CAMPAIGNS_SHOWN]),
        more_campaigns=max(0, len(names) - _CAMPAIGNS_SHOWN),
        deferred=data.deferred,
        held_for_later=data.held_for_later,
        missed=tuple(data.missed),
    )


def _embedded(messages: Sequence[PlannedMessage], cal: Calendar, zone: ZoneInfo) -> Markup:
    """Each day's messages as rows of indexes into one list of texts: a reason or a
    campaign repeats thousands of times in a large plan and is stored once."""
    texts: dict[str, int] = {}

    def text(value: str) -> int:
        return texts.setdefault(value, len(texts))

    days: dict[str, list[list[object]]] = {}
    for m in sorted(messages, key=lambda m: m.when):
        local = m.when.astimezone(zone)
        held = (
            text(f"prévu le {fr_format.moment(m.deferred_from, zone)}")
            if m.deferred_from is not None
            else -1
        )
        days.setdefault(local.date().isoformat(), []).append(
            [
                f"{local:%H:%M}",
                text(m.contact),
                text(m.name),
                text(m.campaign),
                text(m.step),
                text(m.channel),
                round(m.cost, 4),
                text(m.reason),
                held,
            ]
        )
    channels = {c: [channel_label(c), channel_colour(c)] for c in {m.channel for m in messages}}
    missed = {
        day.isoformat(): [[m.time, m.campaign, m.detail] for m in data.missed]
        for day, data in cal.days.items()
        if data.missed
    }
    payload = {"texts": list(texts), "channels": channels, "days": days, "missed": missed}
    # htmlsafe: <, >, & and ' written as \\u escapes, so no text ends the <script> element.
    return htmlsafe_json_dumps(payload, dumps=_compact_json)


def _compact_json(value: object, **kwargs: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def render_calendar(
    messages: Sequence[PlannedMessage],
    missed: Sequence[Missed],
    *,
    timezone: str,
    start: datetime,
    end: datetime,
    generated: datetime,
) -> str:
    """The whole page as text (write it with ``encoding="utf-8"``)."""
    cal = build_calendar(messages, missed, timezone=timezone, start=start, end=end)
    page = calendar_page(cal, messages, generated)
    return _environment().get_template(TEMPLATE).render(page=page, weekdays=WEEKDAYS)


__all__ = ["Calendar", "Day", "Tally", "build_calendar", "calendar_page", "render_calendar"]
