"""When a channel may legally be used, in the recipient's own time zone.

French rules for commercial SMS: Monday to Saturday 08:00-20:00, never on Sundays or
public holidays; overseas departments have their own holidays (abolition of slavery...).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from network_anim.config.channel_defs import WEEKDAYS, SendWindow

# Overseas departments and collectivities keep their own public holidays; the contact's
# time zone is the most reliable hint we have of where they are.
_SUBDIVISION_BY_ZONE = {
    "America/Guadeloupe": "GP",
    "America/Martinique": "MQ",
    "America/Cayenne": "GY",
    "Indian/Reunion": "RE",
    "Indian/Mayotte": "YT",
    "America/St_Barthelemy": "BL",
    "America/Marigot": "MF",
    "Pacific/Noumea": "NC",
    "Pacific/Tahiti": "PF",
    "Pacific/Wallis": "WF",
}
_LOOKAHEAD_DAYS = 21


@lru_cache(maxsize=128)
def _holidays(country: str, subdivision: str | None, year: int) -> holidays.HolidayBase | None:
    try:
        return holidays.country_holidays(country, subdiv=subdivision, years=year)
    except NotImplementedError:  # a country the library does not know: weekdays only
        return None


def _calendar(day: date, timezone: str, country: str) -> holidays.HolidayBase | None:
    subdivision = _SUBDIVISION_BY_ZONE.get(timezone) if country == "FR" else None
    return _holidays(country, subdivision, day.year)


def is_public_holiday(day: date, timezone: str, country: str = "FR") -> bool:
    """A public holiday where the contact is: their company's country, and for France
    the overseas department their time zone points to."""
    calendar = _calendar(day, timezone, country)
    return calendar is not None and day in calendar


def holiday_name(day: date, timezone: str, country: str = "FR") -> str | None:
    calendar = _calendar(day, timezone, country)
    return None if calendar is None else calendar.get(day)


def _day_open(window: SendWindow, day: date, timezone: str, country: str) -> bool:
    if WEEKDAYS[day.weekday()] not in window.days:
        return False
    return not (window.skip_public_holidays and is_public_holiday(day, timezone, country))


def next_opening(
    window: SendWindow, moment: datetime, timezone: str, country: str = "FR"
) -> datetime | None:
    """``None`` if ``moment`` is inside the window, else the next time it opens (UTC).

    Raises ``ValueError`` if the window never opens in the next three weeks (a window
    with no day in it is a configuration mistake, not something to wait for).
    """
    zone = ZoneInfo(timezone)
    local = moment.astimezone(zone)
    for offset in range(_LOOKAHEAD_DAYS):
        day = local.date() + timedelta(days=offset)
        if not _day_open(window, day, timezone, country):
            continue
        opens = datetime.combine(day, window.start, tzinfo=zone)
        closes = datetime.combine(day, window.end, tzinfo=zone)
        if offset == 0 and opens <= local < closes:
            return None
        if local < opens:
            return opens.astimezone(UTC)
    raise ValueError(f"send window {window.days} {window.start}-{window.end} never opens")


def in_quiet_hours(start: time, end: time, moment: datetime, timezone: str) -> datetime | None:
    """``None`` outside quiet hours, else when they end (UTC). Hours may span midnight."""
    zone = ZoneInfo(timezone)
    local = moment.astimezone(zone)
    now = local.time()
    spans_midnight = start > end
    inside = (now >= start or now < end) if spans_midnight else (start <= now < end)
    if not inside:
        return None
    end_day = local.date() + timedelta(days=1) if spans_midnight and now >= start else local.date()
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)


def describe_local(moment: datetime, timezone: str) -> str:
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{WEEKDAYS[local.weekday()].capitalize()} {local:%Y-%m-%d %H:%M} {timezone}"
