"""When a step is due: its delay after a base time, then its own window, in the
contact's time zone (or the engine's, for a campaign step that goes to everyone)."""

from __future__ import annotations

from datetime import datetime

from network_anim.config.calendar import next_opening
from network_anim.config.channel_defs import SendWindow
from network_anim.config.settings import Step


def step_due(step: Step, base: datetime, timezone: str, country: str = "FR") -> datetime:
    moment = step.parsed_delay.after(base, timezone, country)
    if step.window is None:
        return moment
    window = SendWindow(
        days=step.window.days,
        start=step.window.start,
        end=step.window.end,
        skip_public_holidays=True,
    )
    return next_opening(window, moment, timezone, country) or moment
