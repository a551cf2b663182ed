"""Numbers and dates as a French reader writes them: ``12 345``, ``55,1 %``, ``1 234,50 €``,
``7 déc. 2026``. The HTML report and its charts use these, never ``str(x)``.

Thousands are separated by a narrow no-break space (U+202F) and units by a no-break space
(U+00A0), so a figure never breaks across two lines of a table cell or a chart label.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo

THIN = "\u202f"  # narrow no-break space: thousands separator, before % and :
NBSP = "\u00a0"  # no-break space: before €, between a number and its unit
MINUS = "\u2212"  # a real minus sign: the hyphen looks like a dash in proportional fonts
NONE = "–"  # a rate whose denominator is 0, or any value not computable

_MONTHS = (
    "janv.",
    "févr.",
    "mars",
    "avr.",
    "mai",
    "juin",
    "juil.",
    "août",
    "sept.",
    "oct.",
    "nov.",
    "déc.",
)


def number(value: float, decimals: int = 0) -> str:
    """``1234.5`` → ``1 234,5`` (with ``decimals=1``)."""
    text = f"{abs(value):,.{decimals}f}".replace(",", THIN).replace(".", ",")
    # values rounding to zero are not shown negative ("−0,0")
    return f"{MINUS}{text}" if value < 0 and not _zero(text) else text


def _zero(text: str) -> bool:
    return all(c in "0," + THIN for c in text)


def integer(value: float) -> str:
    return number(round(value), 0)


def percent(rate: float | None, decimals: int = 1) -> str:
    """A fraction as a percentage: ``0.5512`` → ``55,1 %``; None → ``–``."""
    if rate is None:
        return NONE
    return f"{number(rate * 100, decimals)}{THIN}%"


def points_delta(delta: float | None, decimals: int = 1) -> str:
    """A difference of two rates in percentage points: ``0.032`` → ``+3,2 pts``."""
    if delta is None:
        return NONE
    text = number(delta * 100, decimals)
    sign = "+" if delta > 0 and not _zero(text) else ""
    return f"{sign}{text}{NBSP}pts"


def euros(amount: float | None, decimals: int = 2) -> str:
    """``1234.5`` → ``1 234,50 €``; None → ``–``."""
    if amount is None:
        return NONE
    return f"{number(amount, decimals)}{NBSP}€"


def compact(value: float) -> str:
    """An axis label: ``12 000`` → ``12 k``, ``2 500 000`` → ``2,5 M``; small values whole."""
    magnitude = abs(value)
    if magnitude >= 1_000_000:
        return f"{number(value / 1_000_000, 1 if magnitude < 10_000_000 else 0)}{NBSP}M"
    if magnitude >= 10_000:
        return f"{number(value / 1000, 0)}{NBSP}k"
    if magnitude >= 100 or value == int(value):
        return integer(value)
    return number(value, 1 if magnitude >= 1 else 2)


def day(value: date) -> str:
    """``7 déc. 2026``."""
    return f"{value.day}{NBSP}{_MONTHS[value.month - 1]} {value.year}"


def short_day(value: date) -> str:
    """``7 déc.``: an axis tick, where the year is given elsewhere."""
    return f"{value.day}{NBSP}{_MONTHS[value.month - 1]}"


def moment(value: datetime, zone: tzinfo) -> str:
    """``7 déc. 2026 à 08:30`` in ``zone``."""
    local = value.astimezone(zone)
    return f"{day(local.date())} à {local:%H:%M}"


__all__ = [
    "MINUS",
    "NBSP",
    "NONE",
    "THIN",
    "compact",
    "day",
    "euros",
    "integer",
    "moment",
    "number",
    "percent",
    "points_delta",
    "short_day",
]
