"""Step delays as channel managers write them: "4h", "3d", "2bd" (business days)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from network_anim.config.calendar import is_public_holiday

_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(h|d|bd)\s*$")
Unit = Literal["h", "d", "bd"]


@dataclass(frozen=True, slots=True)
class Delay:
    amount: float
    unit: Unit

    def __str__(self) -> str:
        amount = int(self.amount) if self.amount == int(self.amount) else self.amount
        return f"{amount}{self.unit}"

    def after(self, moment: datetime, timezone: str, country: str = "FR") -> datetime:
        """``moment`` plus this delay; business days skip weekends and public holidays
        where the contact is, and keep the local time of day."""
        if self.unit == "h":
            return moment + timedelta(hours=self.amount)
        if self.unit == "d":
            return moment + timedelta(days=self.amount)
        zone = ZoneInfo(timezone)
        local = moment.astimezone(zone)
        day, remaining = local.date(), int(self.amount)
        while remaining > 0:
            day += timedelta(days=1)
            if day.weekday() < 5 and not is_public_holiday(day, timezone, country):
                remaining -= 1
        return datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=zone).astimezone(
            moment.tzinfo
        )


def parse_delay(text: str) -> Delay:
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(
            f"{text!r} is not a delay: write a number and a unit, h (hours), d (days) or "
            "bd (business days), e.g. '4h', '3d', '2bd'"
        )
    amount, unit = float(match.group(1)), match.group(2)
    if unit == "bd" and amount != int(amount):
        raise ValueError(f"{text!r}: business days are whole days")
    return Delay(amount, unit)  # type: ignore[arg-type]
