"""``netanim daemon``: the service that runs campaigns on their calendar for months.

Every daemon runs the ticks (dispatch, sequence steps) on an APScheduler instance with a
memory job store: they claim work with row locks, so any number may run them. One daemon
only — the holder of the scheduler role (a PostgreSQL advisory lock, or the single
SQLite daemon) — also fires the scheduled campaigns: ``campaigns.scheduled.catch_up``
plans every fire time since the last one recorded in the ``occurrence`` table (or
records it missed), woken at the next fire time and by the periodic trigger tick. The
table is the only record of what fired (docs/architecture.md, "Firing").
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from network_anim.app import App, open_app
from network_anim.bounces.intake import poll_bounce_mailbox
from network_anim.bounces.mailbox import MailboxUnavailable
from network_anim.campaigns.scheduled import (
    catch_up,
    make_trigger,
    next_fire_time,
    register_campaigns,
    scheduled_campaigns,
)
from network_anim.campaigns.sequences import enrol_by_triggers, tick
from network_anim.challenges.standings import variable_sources
from network_anim.challenges.upkeep import challenge_tick
from network_anim.daemon.locks import SchedulerRole, SqliteInstanceLock, SqliteRole
from network_anim.db.engine import is_sqlite
from network_anim.engine.checks import config_problems
from network_anim.errors import UserError
from network_anim.network.rfm_store import stale_rfm_warnings
from network_anim.outbox.dispatcher import Dispatcher, DispatchStats, RetryPolicy
from network_anim.outbox.liveness import Liveness, liveness_for
from network_anim.outbox.rate_limit import RateLimits
from network_anim.outbox.sending import worker_id
from network_anim.outbox.transports import ConfiguredTransports, configured_rates
from network_anim.planning.fallbacks import drain_with_fallbacks
from network_anim.reports.bounce_rates import log_rate_warnings, warning_key
from network_anim.webhooks.feed import run_feed
from network_anim.webhooks.sender import WebhookSender

log = logging.getLogger("netanim.daemon")


class _SkippedTickFilter(logging.Filter):
    """Drops APScheduler's "skipped: maximum number of running instances" warning for
    the daemon's interval ticks: a tick due while its previous run still goes is skipped
    on purpose (that run, a long drain say, does the work), and logging it every
    ``dispatch_seconds`` buried the log (171 lines in a 35 s drain)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in str(record.msg)


# The tick scheduler's own logger (a child of "apscheduler", so the CLI's level applies):
# the campaign scheduler keeps APScheduler's, where a skipped campaign run is news.
TICK_LOG = logging.getLogger("apscheduler.scheduler.ticks")
TICK_LOG.addFilter(_SkippedTickFilter())


def tick_scheduler() -> AsyncIOScheduler:
    """The scheduler of the daemon's interval ticks (dispatch, sequences, leader, triggers)."""
    return AsyncIOScheduler(jobstores={"default": MemoryJobStore()}, timezone=UTC, logger=TICK_LOG)


# The one-off tick job that wakes the scheduler role's holder at the next fire time.
FIRING_JOB = "firings"


def _in_flight(
    tick: Callable[[Daemon], Awaitable[None]],
) -> Callable[[Daemon], Awaitable[None]]:
    """Counts the tick in ``Daemon._busy`` while it runs, so a stop lets it finish:
    APScheduler's shutdown would cancel it halfway (a batch claimed and not recorded, a
    firing planned in part)."""

    @functools.wraps(tick)
    async def counted(daemon: Daemon) -> None:
        daemon._busy += 1
        try:
            await tick(daemon)
        finally:
            daemon._busy -= 1

    return counted


class Daemon:
    def __init__(self, config_path: Path, *, db_url: str | None = None) -> None:
        self.config_path = config_path
        self.db_url = db_url
        self.app: App | None = None
        self.worker = worker_id()
        self._stop = asyncio.Event()
        self._ticks: AsyncIOScheduler | None = None
        # Holding the scheduler role: this daemon fires the scheduled campaigns.
        self._leader = False
        self._dispatcher: Dispatcher | None = None
        self._instance_lock: SqliteInstanceLock | None = None
        self._role: SchedulerRole | SqliteRole | None = None
        self._pid_file: Path | None = None
        self._liveness: Liveness | None = None
        # Rate warnings logged at the previous bounce tick: logged again only once gone.
        self._rate_warnings_logged: frozenset[tuple[str, str, str]] = frozenset()
        # Webhook subscribers skipped for their secret: logged again only once changed.
        self._webhook_problems: list[str] = []

    # -- life cycle -----------------------------------------------------------------

    async def run(self) -> int:
        app = self.app = open_app(
            self.config_path, db_url=self.db_url, variables=variable_sources()
        )
        from network_anim.db.schema_version import ensure_schema

        ensure_schema(app.engine)
        problems = config_problems(
            app.config,
            app.templates,
            app.loaded.base_dir,
            today=app.clock.now().date(),
            sources=app.variables,
        )
        if problems:
            raise UserError(f"{self.config_path}: {len(problems)} problem(s)", problems)
        if is_sqlite(app.engine):
            self._instance_lock = SqliteInstanceLock(Path(app.engine.url.database or "netanim.db"))
            self._instance_lock.acquire()
            self._role = SqliteRole()
        else:
            self._role = SchedulerRole(app.engine)
        self._liveness = liveness_for(app.engine, self.worker)
        self._liveness.start()
        self._write_pid(app)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        settings = app.config.daemon
        transports = ConfiguredTransports(app)
        self._dispatcher = Dispatcher(
            app,
            transports,
            worker_id=self.worker,
            lease=timedelta(minutes=settings.lease_minutes),
            batch_size=settings.batch_size,
            retry=RetryPolicy(max_attempts=settings.max_attempts),
            resend_safe=transports.resend_safe,
            dead_owners=self._liveness.dead,
            rate_limits=RateLimits(configured_rates(app)),
        )
        try:
            async with self._dispatcher:
                await asyncio.to_thread(register_campaigns, app)
                self._start_ticks()
                log.info("daemon %s started on %s", self.worker, _safe_url(app))
                for warning in await asyncio.to_thread(stale_rfm_warnings, app):
                    log.warning(warning)
                await self._stop.wait()
                log.info("stopping: no new claims, finishing the sends in flight")
                self._dispatcher.stop_claiming()
                await self._shutdown_schedulers()
        finally:
            self._release()
        log.info("daemon %s stopped", self.worker)
        return 0

    def stop(self) -> None:
        self._stop.set()

    def _start_ticks(self) -> None:
        assert self.app is not None
        settings = self.app.config.daemon
        ticks = tick_scheduler()
        every = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        ticks.add_job(
            self.dispatch_tick,
            "interval",
            seconds=settings.dispatch_seconds,
            id="dispatch",
            **every,
        )
        ticks.add_job(
            self.sequence_tick,
            "interval",
            seconds=settings.sequence_seconds,
            id="sequences",
            **every,
        )
        ticks.add_job(
            self.leader_tick,
            "interval",
            seconds=settings.leader_check_seconds,
            id="leader",
            **every,
        )
        ticks.add_job(
            self.trigger_tick, "interval", minutes=settings.trigger_minutes, id="triggers", **every
        )
        ticks.add_job(
            self.bounce_tick,
            "interval",
            minutes=self.app.config.bounces.poll_minutes,
            id="bounces",
            **every,
        )
        ticks.add_job(
            self.webhook_tick,
            "interval",
            seconds=settings.dispatch_seconds,
            id="webhooks",
            **every,
        )
        ticks.start()
        self._ticks = ticks
        # First round now rather than one interval from now.
        for job in ticks.get_jobs():
            job.modify(next_run_time=self.app.clock.now())

    async def _shutdown_schedulers(self) -> None:
        """Stop starting ticks, let the ones running finish (a dispatch batch in flight is
        sent and recorded), then shut down. APScheduler's shutdown cancels running jobs,
        which would leave claimed rows behind: so it comes last."""
        if self._ticks is not None:
            self._ticks.pause()
        self._leader = False
        for _ in range(1200):  # at most a minute: a send is bounded by the SMTP timeout
            if not self._busy:
                break
            await asyncio.sleep(0.05)
        if self._ticks is not None:
            self._ticks.shutdown(wait=False)

    def _release(self) -> None:
        if self._liveness is not None:
            self._liveness.stop()
        if self._role is not None:
            self._role.release()
        if self._instance_lock is not None:
            self._instance_lock.release()
        if self._pid_file is not None:
            self._pid_file.unlink(missing_ok=True)

    def _write_pid(self, app: App) -> None:
        app.data_dir.mkdir(parents=True, exist_ok=True)
        self._pid_file = app.data_dir / "daemon.pid"
        self._pid_file.write_text(str(os.getpid()), encoding="utf-8")

    # -- ticks --------------------------------------------------------------------------

    # Ticks running now: a stop waits for them (see _shutdown_schedulers).
    _busy = 0

    @_in_flight
    async def dispatch_tick(self) -> None:
        if self._stop.is_set() or self._dispatcher is None or self.app is None:
            return
        try:
            dispatcher = self._dispatcher

            async def drain() -> DispatchStats:
                # A stop between two rounds (fallbacks planned meanwhile): claim nothing.
                return DispatchStats() if self._stop.is_set() else await dispatcher.drain()

            # Fallbacks of what failed are planned (router, windows, caps) and sent if due.
            stats = await drain_with_fallbacks(self.app, drain)
            if stats.total:
                log.info("dispatch: %s", _outcomes(stats.outcomes))
            if stats.fallbacks or stats.fallbacks_held:
                log.info(
                    "fallbacks planned: %s; held: %s",
                    dict(stats.fallbacks),
                    dict(stats.fallbacks_held),
                )
        except Exception:
            log.exception("dispatch tick failed; next tick retries")

    @_in_flight
    async def webhook_tick(self) -> None:
        """What happened since the last tick into the webhook outbox, then the due rows
        POSTed (docs/webhooks.md); read at each tick, so a reload adding one starts it."""
        if self._stop.is_set() or self.app is None or not self.app.config.webhooks:
            return
        try:
            queued = await asyncio.to_thread(run_feed, self.app)
            sender = WebhookSender(self.app, worker_id=self.worker, stopping=self._stop.is_set)
            stats = await sender.send_due()
            if queued or stats.outcomes:
                log.info("webhooks: queued %s; %s", dict(queued), dict(stats.outcomes))
            if stats.problems != self._webhook_problems:
                for problem in stats.problems:
                    log.error("webhooks: subscriber skipped: %s", problem)
                self._webhook_problems = stats.problems
        except Exception:
            log.exception("webhook tick failed; next tick retries")

    @_in_flight
    async def sequence_tick(self) -> None:
        if self._stop.is_set() or self.app is None:
            return
        try:
            stats = await asyncio.to_thread(tick, self.app)
            for campaign, error in stats.errors.items():
                log.error("sequence %s: steps not planned: %s", campaign, error)
            if sum(stats.steps.values()):
                log.info("sequences: %s", dict(stats.steps))
        except Exception:
            log.exception("sequence tick failed; next tick retries")

    @_in_flight
    async def bounce_tick(self) -> None:
        """Read the bounce mailbox when [bounces.mailbox] names a host (read at each tick,
        so a reload that sets one starts the polling), then log the campaigns past a
        complaint or hard-bounce rate threshold (webhooks feed them too, with or without
        a mailbox). Any daemon may read the mailbox: a message two daemons read at once
        is applied once (event keys) and moved once; only the scheduler role's holder
        logs the rates, so several daemons do not repeat them."""
        if self._stop.is_set() or self.app is None:
            return
        if self.app.config.bounces.mailbox.host:
            await self._read_bounce_mailbox(self.app)
        if self._leader:
            await self._log_rate_warnings(self.app)

    async def _read_bounce_mailbox(self, app: App) -> None:
        try:
            done = await asyncio.to_thread(poll_bounce_mailbox, app)
            if done.mailbox.read:
                log.info(
                    "bounce mailbox: %d read, %d unreadable (moved to %s); applied %s, "
                    "%d already known, fallbacks %s",
                    done.mailbox.read,
                    done.mailbox.unreadable,
                    app.config.bounces.mailbox.unreadable_folder,
                    dict(done.feedback.applied),
                    done.feedback.duplicates,
                    dict(done.feedback.fallbacks),
                )
        except MailboxUnavailable as exc:
            log.warning("bounce mailbox unavailable, next tick retries: %s", exc)
        except UserError as exc:
            log.error("bounce mailbox: %s", exc.render())
        except Exception:
            log.exception("bounce tick failed; next tick retries")

    async def _log_rate_warnings(self, app: App) -> None:
        try:
            warnings = await asyncio.to_thread(
                log_rate_warnings, app, already_logged=self._rate_warnings_logged
            )
        except Exception:
            log.exception("bounce rates not computed; next tick retries")
            return
        self._rate_warnings_logged = frozenset(warning_key(w) for w in warnings)

    @_in_flight
    async def trigger_tick(self) -> None:
        if self._stop.is_set() or self.app is None or not self._leader:
            return
        try:
            await asyncio.to_thread(challenge_tick, self.app)
            stats = await asyncio.to_thread(enrol_by_triggers, self.app)
            if sum(stats.enrolled.values()):
                log.info("enrolled: %s", dict(stats.enrolled))
        except Exception:
            log.exception("trigger tick failed; next tick retries")
        # Also a firing round: should a wake-up be lost, a firing waits one tick at most.
        await self.firing_tick()

    @_in_flight
    async def firing_tick(self) -> None:
        """Fire every scheduled campaign whose time has come (``catch_up`` reads what
        already fired from the occurrence table), then sleep until the next fire time."""
        if self._stop.is_set() or self.app is None or not self._leader:
            return
        try:
            for campaign in scheduled_campaigns(self.app):
                await self.fire(campaign.id)
        except Exception:
            log.exception("firing round failed; the next round retries")
        finally:
            self._wake_at_next_firing()

    def _wake_at_next_firing(self) -> None:
        """One date job on the tick scheduler at the earliest next fire time: only a
        wake-up, so it lives in memory; a restart computes it again from the config."""
        if self._ticks is None or self.app is None or not self._leader or self._stop.is_set():
            return
        now = self.app.clock.now()
        timezone = self.app.config.engine.timezone
        upcoming = [
            moment
            for campaign in scheduled_campaigns(self.app)
            if campaign.schedule is not None
            and (moment := next_fire_time(make_trigger(campaign.schedule, timezone), now))
        ]
        if not upcoming:
            if self._ticks.get_job(FIRING_JOB) is not None:
                self._ticks.remove_job(FIRING_JOB)
            return
        self._ticks.add_job(
            self.firing_tick,
            "date",
            run_date=min(upcoming),
            id=FIRING_JOB,
            replace_existing=True,
            # Late by any amount (a suspended laptop): run anyway, catch_up judges lateness.
            misfire_grace_time=None,
        )

    @_in_flight
    async def leader_tick(self) -> None:
        """Hold, take or lose the scheduler role; only its holder fires campaigns."""
        if self._stop.is_set() or self._role is None:
            return
        if self._leader:
            if not await asyncio.to_thread(self._role.still_held):
                log.warning("scheduler role lost (lock connection broken): no more firings here")
                self._leader = False
                if self._ticks is not None and self._ticks.get_job(FIRING_JOB) is not None:
                    self._ticks.remove_job(FIRING_JOB)
            return
        if await asyncio.to_thread(self._role.try_acquire):
            log.info("scheduler role taken by %s", self.worker)
            self._leader = True
            await self.trigger_tick()

    async def fire(self, campaign_key: str) -> None:
        app = self.app
        if app is None or self._stop.is_set():
            return
        campaign = app.config.campaign(campaign_key)
        if campaign is None or campaign.schedule is None:
            return
        grace = timedelta(minutes=app.config.daemon.misfire_grace_minutes)
        stats = await asyncio.to_thread(catch_up, app, campaign, grace=grace)
        for key, error in stats.errors.items():
            log.error("campaign %s: firing not planned: %s", key, error)
        for key, count in stats.missed.items():
            log.warning(
                "campaign %s: %d firing(s) missed (daemon down?): see netanim outbox --status missed",
                key,
                count,
            )
        if stats.planned:
            log.info("campaign %s fired: %d deliveries planned", campaign_key, stats.deliveries)

    # -- reload ---------------------------------------------------------------------------

    def request_reload(self) -> None:
        asyncio.get_running_loop().create_task(self.reload())

    async def reload(self) -> bool:
        """Re-read the config. A broken one is reported and the running one stays."""
        assert self.app is not None
        try:
            fresh = await asyncio.to_thread(open_app, self.config_path, db_url=self.db_url)
            problems = await asyncio.to_thread(
                lambda: config_problems(
                    fresh.config,
                    fresh.templates,
                    fresh.loaded.base_dir,
                    today=self.app.clock.now().date(),  # type: ignore[union-attr]
                    sources=self.app.variables,  # type: ignore[union-attr]
                )
            )
            if problems:
                raise UserError(f"{self.config_path}: {len(problems)} problem(s)", problems)
        except UserError as exc:
            log.error("reload refused, the running config stays: %s", exc.render())
            return False
        if fresh.database_url != self.app.database_url:
            log.warning(
                "reload: a new database URL needs a restart; keeping %s", _safe_url(self.app)
            )
        self.app.replace_config(fresh.loaded, fresh.definitions)
        await asyncio.to_thread(register_campaigns, self.app)
        self._wake_at_next_firing()  # the schedules may have changed
        log.info("config reloaded from %s", self.config_path)
        for warning in await asyncio.to_thread(stale_rfm_warnings, self.app):
            log.warning(warning)
        return True


def _safe_url(app: App) -> str:
    return app.engine.url.render_as_string(hide_password=True)


def _outcomes(outcomes: Any) -> str:
    return ", ".join(f"{ch} {outcome} {n}" for (ch, outcome), n in sorted(outcomes.items()))
