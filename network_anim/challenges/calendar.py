"""A challenge's calendar: its first and last moment, a moment's day, in the engine's zone."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from network_anim.app import App
from network_anim.config.settings import ChallengeConfig


def window(app: App, challenge: ChallengeConfig) -> tuple[datetime, datetime]:
    """First and last moment of the challenge, both days included, in the engine's zone."""
    zone = ZoneInfo(app.config.engine.timezone)
    return (
        datetime.combine(challenge.start, time(0), tzinfo=zone),
        datetime.combine(challenge.end + timedelta(days=1), time(0), tzinfo=zone)
        - timedelta(microseconds=1),
    )


def local_day(app: App, moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(app.config.engine.timezone)).date()
