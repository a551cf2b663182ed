"""Run the engine on a simulated clock: the same firing, sequence and dispatch code the
daemon runs, stepping from one due moment to the next instead of waiting for it.

``netanim plan`` runs it on a throwaway copy of the database with transports that only
record; ``netanim demo`` runs it on the demo database with the file transports.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from apscheduler.triggers.base import BaseTrigger
from sqlalchemy import Engine, func, insert, select
from sqlmodel import Session, SQLModel

from network_anim.app import App
from network_anim.campaigns.scheduled import (
    MISSED,
    FiringStats,
    catch_up,
    make_trigger,
    next_fire_time,
    register_campaigns,
    scheduled_campaigns,
)
from network_anim.campaigns.sequences import ACTIVE, SequenceStats, enrol_by_triggers, tick
from network_anim.challenges.upkeep import challenge_tick, sync_challenges
from network_anim.channels.contract import Transport

# The transport of a dry run: accepts everything, keeps what it was given.
from network_anim.channels.recording import RecordingTransport
from network_anim.clock import SimulatedClock
from network_anim.db.engine import make_engine
from network_anim.db.migrate import upgrade
from network_anim.db.models import Campaign, Contact, Delivery, Enrolment, Message, Occurrence
from network_anim.domain import DeliveryStatus
from network_anim.outbox.dispatcher import Dispatcher, DispatchStats
from network_anim.planning.fallbacks import drain_with_fallbacks

# Trigger scans (no sale for N days...) depend on time passing, not on a due row: the
# simulation looks at least once a day, as the daemon's periodic scan would.
_MAX_STEP = timedelta(days=1)
_MIN_STEP = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class MissedFiring:
    """A scheduled firing found too late (past the misfire grace): nothing went out."""

    when: datetime  # the time it was scheduled for
    campaign: str
    detail: str


@dataclass
class SimulationReport:
    start: datetime
    end: datetime
    steps: int = 0
    firings: FiringStats = field(default_factory=FiringStats)
    sequences: SequenceStats = field(default_factory=SequenceStats)
    dispatch: DispatchStats = field(default_factory=DispatchStats)
    # The firings this run recorded as missed, in time order (firings.missed counts them).
    missed_firings: list[MissedFiring] = field(default_factory=list)


async def simulate(
    app: App,
    until: datetime,
    transports: Mapping[str, Transport],
    *,
    grace: timedelta,
    resend_safe: Callable[[str], bool] = lambda channel: True,
    on_step: Callable[[datetime], None] | None = None,
) -> SimulationReport:
    clock = app.clock
    if not isinstance(clock, SimulatedClock):
        raise TypeError("simulate() needs an App built on a SimulatedClock")
    report = SimulationReport(start=clock.now(), end=until)
    known_occurrences = _last_occurrence_id(app.engine)
    register_campaigns(app)
    sync_challenges(app)
    campaigns = scheduled_campaigns(app)
    triggers = {
        c.id: make_trigger(c.schedule, app.config.engine.timezone) for c in campaigns if c.schedule
    }
    dispatcher = Dispatcher(
        app,
        transports,
        worker_id="simulation",
        resend_safe=resend_safe,
        # Seeded: the same plan gives the same calendar, retries included.
        rng=random.Random(0),
    )
    async with dispatcher:
        while True:
            challenge_tick(app, sync=False)  # synced once above: the config does not change
            for campaign in campaigns:
                report.firings.add(catch_up(app, campaign, grace=grace))
            report.sequences.add(enrol_by_triggers(app))
            report.sequences.add(tick(app))
            report.dispatch.add(await drain_with_fallbacks(app, dispatcher.drain))
            report.steps += 1
            if on_step is not None:
                on_step(clock.now())
            upcoming = _next_moment(app, triggers.values(), clock.now())
            if upcoming > until:
                clock.set(until)
                report.missed_firings = _missed_since(app.engine, known_occurrences)
                return report
            clock.set(upcoming)


def _next_moment(app: App, triggers: Iterable[BaseTrigger], now: datetime) -> datetime:
    candidates = [now + _MAX_STEP]
    for trigger in triggers:
        fire = next_fire_time(trigger, now)
        if fire is not None:
            candidates.append(fire)
    with Session(app.engine) as session:
        for due in (
            session.scalar(
                select(func.min(Enrolment.next_due_at)).where(
                    Enrolment.status == ACTIVE, Enrolment.next_due_at > now
                )
            ),
            session.scalar(
                select(func.min(Delivery.due_at)).where(
                    Delivery.status == DeliveryStatus.PENDING.value, Delivery.due_at > now
                )
            ),
        ):
            if due is not None:
                candidates.append(due)
    return max(min(candidates), now + _MIN_STEP)


def _last_occurrence_id(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.max(Occurrence.id))) or 0


def _missed_since(engine: Engine, after_id: int) -> list[MissedFiring]:
    with Session(engine) as session:
        rows = session.scalars(
            select(Occurrence)
            .where(Occurrence.id > after_id, Occurrence.status == MISSED)  # type: ignore[operator]
            .order_by(Occurrence.scheduled_for, Occurrence.campaign_key)
        ).all()
    return [MissedFiring(o.scheduled_for, o.campaign_key, o.detail) for o in rows]


# -- a throwaway copy for dry runs ----------------------------------------------------------


def copy_database(source: Engine, target_path: Path) -> str:
    """Copy every table of ``source`` into a new SQLite file; returns its URL."""
    url = f"sqlite:///{target_path}"
    target = make_engine(url)
    upgrade(target)
    with source.connect() as src, target.begin() as dst:
        for table in SQLModel.metadata.sorted_tables:
            batch: list[dict[str, object]] = []
            for row in src.execute(select(table)).mappings():
                batch.append(dict(row))
                if len(batch) >= 5000:
                    dst.execute(insert(table), batch)
                    batch = []
            if batch:
                dst.execute(insert(table), batch)
    target.dispose()
    return url


# -- what went out --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SentMessage:
    when: datetime
    contact: str
    name: str
    campaign: str
    step: str
    channel: str
    reason: str
    cost: float
    # Held back by a legal send window or quiet hours: the moment it was meant for
    # (``when`` is the moment it goes out); None when it went out as planned.
    deferred_from: datetime | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "when": self.when.isoformat(),
            "contact": self.contact,
            "name": self.name,
            "campaign": self.campaign,
            "step": self.step,
            "channel": self.channel,
            "reason": self.reason,
            "cost": round(self.cost, 4),
            "deferred_from": self.deferred_from.isoformat() if self.deferred_from else None,
        }


def deferred_from(extra: Mapping[str, object]) -> datetime | None:
    """When a delivery the router held back was meant to go out, as the planner noted it
    in the row; None for one that goes out as planned."""
    noted = extra.get("deferred_from")
    return datetime.fromisoformat(noted) if isinstance(noted, str) else None


def sent_between(engine: Engine, start: datetime, end: datetime) -> list[SentMessage]:
    with Session(engine) as session:
        rows = session.execute(
            select(Delivery, Contact, Message.step, Campaign.key)
            .join(Contact, Contact.id == Delivery.contact_id)  # type: ignore[arg-type]
            .join(Message, Message.id == Delivery.message_id)  # type: ignore[arg-type]
            .join(Campaign, Campaign.id == Message.campaign_id)  # type: ignore[arg-type]
            .where(Delivery.status == DeliveryStatus.SENT.value)
            .where(Delivery.sent_at >= start, Delivery.sent_at <= end)  # type: ignore[operator]
            .order_by(Delivery.sent_at, Contact.external_id, Delivery.channel)
        ).all()
    return [
        SentMessage(
            when=d.sent_at,  # type: ignore[arg-type]
            contact=c.external_id,
            name=f"{c.first_name} {c.last_name}".strip(),
            campaign=campaign,
            step=step,
            channel=d.channel,
            reason=d.reason,
            cost=d.cost if d.cost is not None else d.cost_estimate,
            deferred_from=deferred_from(d.extra),
        )
        for d, c, step, campaign in rows
    ]


def plan_period(
    config_path: Path | None,
    database_url: str,
    start: datetime,
    end: datetime,
    *,
    on_step: Callable[[datetime], None] | None = None,
) -> tuple[list[SentMessage], SimulationReport]:
    """What would go out between ``start`` and ``end``: the real engine on a copy of the
    database, with transports that only record. The real database is only read."""
    import asyncio
    import tempfile

    from network_anim.app import open_app
    from network_anim.challenges.standings import variable_sources

    source = make_engine(database_url)
    try:
        with tempfile.TemporaryDirectory(prefix="netanim-plan-") as folder:
            copy_url = copy_database(source, Path(folder) / "plan.db")
            app = open_app(
                config_path,
                db_url=copy_url,
                clock=SimulatedClock(start),
                variables=variable_sources(),
            )
            try:
                transports = {
                    channel: RecordingTransport(keep=False) for channel in app.definitions
                }
                grace = timedelta(minutes=app.config.daemon.misfire_grace_minutes)
                report = asyncio.run(simulate(app, end, transports, grace=grace, on_step=on_step))
                return sent_between(app.engine, start, end), report
            finally:
                app.close()
    finally:
        source.dispose()
