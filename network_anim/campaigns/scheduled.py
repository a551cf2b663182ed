"""Scheduled campaigns: when each fires (APScheduler's own triggers), and what a firing
does: plan every step for the audience, once per scheduled time.

A firing is recorded in the ``occurrence`` table, unique per (campaign, scheduled time),
in the same transaction as its outbox rows: a restart, a second daemon or a replay never
plans it twice. A firing found later than the grace period (the daemon was down) is
recorded as ``missed`` and waits for an operator instead of going out late.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.app import App
from network_anim.campaigns.timing import step_due
from network_anim.config.settings import Campaign as CampaignConfig
from network_anim.config.settings import Schedule
from network_anim.db.models import Campaign, Occurrence
from network_anim.errors import UserError
from network_anim.planning.messages import contact_variables, step_request
from network_anim.planning.planner import plan_in_session

PLANNED, MISSED = "planned", "missed"
_MAX_FIRINGS_PER_CALL = 1000  # a schedule every minute over a long outage stays bounded


@dataclass
class FiringStats:
    planned: Counter[str] = field(default_factory=Counter)
    missed: Counter[str] = field(default_factory=Counter)
    deliveries: int = 0
    # Campaign id -> why a firing could not be planned (it stays unplanned: retried).
    errors: dict[str, str] = field(default_factory=dict)

    def add(self, other: FiringStats) -> None:
        self.planned.update(other.planned)
        self.missed.update(other.missed)
        self.deliveries += other.deliveries
        self.errors.update(other.errors)


def make_trigger(schedule: Schedule, timezone: str) -> BaseTrigger:
    zone = ZoneInfo(timezone)
    if schedule.cron is not None:
        trigger = CronTrigger.from_crontab(schedule.cron, timezone=zone)
        trigger.start_date = _localise(schedule.start, zone) if schedule.start else None
        trigger.end_date = _localise(schedule.end, zone) if schedule.end else None
        return trigger
    if schedule.date is not None:
        return DateTrigger(run_date=_localise(schedule.date, zone), timezone=zone)
    assert schedule.interval_days is not None
    start = _localise(schedule.start, zone) if schedule.start else None
    end = _localise(schedule.end, zone) if schedule.end else None
    return IntervalTrigger(
        days=schedule.interval_days, start_date=start, end_date=end, timezone=zone
    )


def _localise(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def fire_times(trigger: BaseTrigger, after: datetime, until: datetime) -> list[datetime]:
    """Every fire time in (after, until], as APScheduler computes them."""
    times: list[datetime] = []
    previous: datetime | None = None
    moment = trigger.get_next_fire_time(None, after)
    while moment is not None and moment <= until and len(times) < _MAX_FIRINGS_PER_CALL:
        if moment > after:
            times.append(moment)
        previous = moment
        moment = trigger.get_next_fire_time(previous, moment + timedelta(microseconds=1))
    return times


def next_fire_time(trigger: BaseTrigger, after: datetime) -> datetime | None:
    moment = trigger.get_next_fire_time(None, after)
    while moment is not None and moment <= after:
        moment = trigger.get_next_fire_time(moment, moment + timedelta(microseconds=1))
    return moment


def scheduled_campaigns(app: App) -> list[CampaignConfig]:
    return [c for c in app.config.campaigns if c.schedule is not None]


def register_campaigns(app: App) -> None:
    """Record each configured campaign once: its first sight is where its calendar starts,
    so adding a campaign never replays its past firings."""
    now = app.clock.now()
    with Session(app.engine) as session, session.begin():
        known = set(session.scalars(select(Campaign.key)))
        for campaign in app.config.campaigns:
            if campaign.id not in known:
                session.add(
                    Campaign(
                        key=campaign.id, name=campaign.name, kind=campaign.kind, created_at=now
                    )
                )


def catch_up(app: App, campaign: CampaignConfig, *, grace: timedelta) -> FiringStats:
    """Fire every scheduled time of ``campaign`` up to now that has not been handled yet."""
    assert campaign.schedule is not None
    stats = FiringStats()
    now = app.clock.now()
    trigger = make_trigger(campaign.schedule, app.config.engine.timezone)
    with Session(app.engine) as session:
        since = session.scalar(
            select(func.max(Occurrence.scheduled_for)).where(Occurrence.campaign_key == campaign.id)
        ) or session.scalar(select(Campaign.created_at).where(Campaign.key == campaign.id))
    if since is None:
        return stats  # not registered yet: register_campaigns runs first
    for scheduled_for in fire_times(trigger, since, now):
        if now - scheduled_for > grace:
            stats.missed[campaign.id] += record_missed(app, campaign, scheduled_for, now)
        else:
            try:
                planned = fire(app, campaign, scheduled_for)
            except UserError as exc:
                # Nothing was written: the next catch-up tries again while within grace.
                stats.errors[campaign.id] = exc.render()
                break
            if planned is not None:
                stats.planned[campaign.id] += 1
                stats.deliveries += planned
    return stats


def fire(app: App, campaign: CampaignConfig, scheduled_for: datetime) -> int | None:
    """Plan every step of one firing; ``None`` if this firing was already handled."""
    now = app.clock.now()
    with Session(app.engine) as session, session.begin():
        if _already(session, campaign.id, scheduled_for):
            return None
        session.add(
            Occurrence(
                campaign_key=campaign.id,
                scheduled_for=scheduled_for,
                status=PLANNED,
                planned_at=now,
                created_at=now,
            )
        )
        # The unique (campaign, time) row is written first: a second daemon firing the
        # same time fails here and plans nothing.
        session.flush()
        return _plan_steps(app, session, campaign, scheduled_for)


def _plan_steps(
    app: App, session: Session, campaign: CampaignConfig, scheduled_for: datetime
) -> int:
    """Every step of one firing, in the caller's transaction (its occurrence row's)."""
    total = 0
    personal = contact_variables(app, session, campaign, None)
    for step in campaign.steps:
        request = step_request(
            app,
            session,
            campaign,
            step,
            occurrence=occurrence_key(scheduled_for),
            due_at=step_due(step, scheduled_for, app.config.engine.timezone),
            personal=personal,
        )
        total += sum(plan_in_session(app, session, request).new_rows.values())
    return total


def occurrence_key(scheduled_for: datetime) -> str:
    """A firing's part of its deliveries' idempotency keys."""
    return scheduled_for.astimezone(ZoneInfo("UTC")).strftime("%Y%m%dT%H%MZ")


def _already(session: Session, campaign_key: str, scheduled_for: datetime) -> bool:
    return (
        session.scalar(
            select(Occurrence.id).where(
                Occurrence.campaign_key == campaign_key, Occurrence.scheduled_for == scheduled_for
            )
        )
        is not None
    )


def record_missed(
    app: App, campaign: CampaignConfig, scheduled_for: datetime, now: datetime
) -> int:
    with Session(app.engine) as session, session.begin():
        if _already(session, campaign.id, scheduled_for):
            return 0
        late = now - scheduled_for
        session.add(
            Occurrence(
                campaign_key=campaign.id,
                scheduled_for=scheduled_for,
                status=MISSED,
                detail=f"found {late} late (daemon down?): run `netanim outbox retry` to send it now",
                created_at=now,
            )
        )
    return 1


def replay_missed(app: App, occurrence_id: int) -> int:
    """An operator decided a missed firing should go out now after all."""
    with Session(app.engine) as session, session.begin():
        occurrence = session.get(Occurrence, occurrence_id)
        if occurrence is None or occurrence.status != MISSED:
            raise UserError(f"occurrence {occurrence_id} is not a missed firing")
        campaign = app.config.campaign(occurrence.campaign_key)
        if campaign is None:
            raise UserError(f"campaign {occurrence.campaign_key!r} is no longer in the config")
        occurrence.status, occurrence.planned_at = PLANNED, app.clock.now()
        return _plan_steps(app, session, campaign, occurrence.scheduled_for)
