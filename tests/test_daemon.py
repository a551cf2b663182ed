"""The daemon for real: APScheduler ticks, firings recorded in the occurrence table, locks,
restarts, reload, plan = demo."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from network_anim.app import open_app
from network_anim.campaigns.scheduled import catch_up, register_campaigns
from network_anim.clock import SimulatedClock
from network_anim.daemon.service import FIRING_JOB, Daemon
from network_anim.db.models import Delivery, Occurrence
from network_anim.errors import UserError
from tests.conftest import SAMPLE_NETWORK, use_smtp, write_config
from tests.peers.smtp_server import SmtpPeer

PARIS = ZoneInfo("Europe/Paris")

FAST_TICKS = """
[daemon]
dispatch_seconds = 0.2
sequence_seconds = 0.2
trigger_minutes = 0.01
leader_check_seconds = 0.2
"""


def _scheduled(when: str) -> str:
    return f"""
[[campaigns]]
id = "news"
name = "News"
kind = "newsletter"
audience = "all"
schedule = {{ {when} }}
[[campaigns.steps]]
name = "news"
template = "welcome"
urgency = "reminder"
kind = "operational"
"""


def _config(
    tmp_path: Path, database_url: str, campaigns: str, smtp: SmtpPeer | None = None
) -> Path:
    text = write_config(tmp_path, database_url, example_campaigns=False).read_text()
    # The example's own [daemon] section gives way to FAST_TICKS (the header, not a mention).
    text = text[: text.index("\n[daemon]\n") + 1] + text[text.index("\n[channels.email]\n") + 1 :]
    path = tmp_path / "netanim.toml"
    path.write_text(text + FAST_TICKS + campaigns, encoding="utf-8")
    if smtp is not None:
        use_smtp(path, smtp)
    return path


def _import(cli, config: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config)).code == 0


async def _run_until(daemon: Daemon, condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    task = asyncio.create_task(daemon.run())
    try:
        for _ in range(int(timeout / 0.1)):
            await asyncio.sleep(0.1)
            if task.done():
                task.result()
            if condition():
                return
        raise AssertionError("condition not reached in time")
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, 10) == 0


async def test_scheduled_firing_goes_out_once_across_a_restart(
    tmp_path: Path, database_url: str, smtp_server: SmtpPeer, cli, monkeypatch
) -> None:
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    soon = (datetime.now(PARIS) + timedelta(seconds=2)).replace(microsecond=0, tzinfo=None)
    config = _config(tmp_path, database_url, _scheduled(f"date = {soon.isoformat()}"), smtp_server)
    _import(cli, config)
    first = Daemon(config)
    await _run_until(first, lambda: len(smtp_server.messages) >= 11)
    assert len(smtp_server.messages) == 11
    deliveries = _count_deliveries(config)
    # Restart: the occurrence table says it fired; the firing is not planned again.
    second = Daemon(config)
    await _run_until(second, lambda: second._leader, timeout=10)
    await asyncio.sleep(0.5)
    assert len(smtp_server.messages) == 11
    assert _count_deliveries(config) == deliveries
    app = open_app(config)
    with Session(app.engine) as session:
        assert session.scalar(select(func.count()).select_from(Occurrence)) == 1
        # Every row went out, but those waiting for their legal window (a promotional SMS
        # planned after 20:00 in Paris waits for the next morning): the test runs on the
        # real clock, at any hour.
        waiting = {
            (d.status, d.due_at > datetime.now(UTC))
            for d in session.scalars(select(Delivery))
            if d.status != "sent"
        }
        assert waiting <= {("pending", True)}
    app.close()


async def test_a_firing_wakes_the_daemon_without_waiting_for_the_trigger_tick(
    tmp_path: Path, database_url: str, smtp_server: SmtpPeer, cli, monkeypatch
) -> None:
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    soon = (datetime.now(PARIS) + timedelta(seconds=3)).replace(microsecond=0, tzinfo=None)
    config = _config(tmp_path, database_url, _scheduled(f"date = {soon.isoformat()}"), smtp_server)
    # An hour between trigger ticks: only the wake-up at the fire time can plan it.
    config.write_text(
        config.read_text().replace("trigger_minutes = 0.01", "trigger_minutes = 60"),
        encoding="utf-8",
    )
    _import(cli, config)
    daemon = Daemon(config)
    await _run_until(daemon, lambda: len(smtp_server.messages) >= 11, timeout=15)
    app = open_app(config)
    with Session(app.engine) as session:
        occurrence = session.scalars(select(Occurrence)).one()
        assert occurrence.status == "planned"
    app.close()


def _count_deliveries(config: Path) -> dict[str, int]:
    app = open_app(config)
    with Session(app.engine) as session:
        rows = session.execute(select(Delivery.channel, func.count()).group_by(Delivery.channel))
        counts = {channel: n for channel, n in rows}
    app.close()
    return counts


async def test_second_daemon_on_one_sqlite_file_refuses(tmp_path: Path, cli, monkeypatch) -> None:
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    url = f"sqlite:///{tmp_path / 'one.db'}"
    config = _config(tmp_path, url, "")
    assert cli("init", "-c", str(config)).code == 0
    first = Daemon(config)
    task = asyncio.create_task(first.run())
    await asyncio.sleep(0.5)
    with pytest.raises(UserError, match=r"another netanim daemon .* is already running"):
        await Daemon(config).run()
    first.stop()
    assert await asyncio.wait_for(task, 10) == 0


def test_daemon_down_past_the_grace_period_records_a_missed_firing(
    tmp_path: Path, database_url: str, cli, monkeypatch
) -> None:
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    config = _config(tmp_path, database_url, _scheduled('cron = "0 9 * * *"'))
    _import(cli, config)
    monday_8 = datetime(2026, 11, 30, 8, 0, tzinfo=PARIS)
    app = open_app(config, clock=SimulatedClock(monday_8))
    register_campaigns(app)
    campaign = app.config.campaign("news")
    grace = timedelta(minutes=60)
    app.clock.set(monday_8 + timedelta(hours=1, minutes=5))  # 09:05: within grace
    assert catch_up(app, campaign, grace=grace).planned["news"] == 1
    assert catch_up(app, campaign, grace=grace).planned["news"] == 0  # a restart replays nothing
    app.clock.set(monday_8 + timedelta(days=2, hours=4))  # Wednesday 12:00: down since Monday
    stats = catch_up(app, campaign, grace=grace)
    # Tuesday 09:00 and Wednesday 09:00 (three hours late) are both past the grace period.
    assert stats.missed["news"] == 2 and stats.planned["news"] == 0
    app.close()
    listed = json.loads(cli("outbox", "-c", str(config), "--status", "missed", "--json").out)
    assert [(r["id"], r["key"]) for r in listed] == [("occ-3", "news"), ("occ-2", "news")]
    assert "daemon down" in listed[0]["last_error"]
    retried = cli("outbox", "retry", "occ-2", "-c", str(config))
    assert retried.code == 0 and "1 missed firing(s) planned: 15 deliveries" in retried.out
    assert cli("outbox", "retry", "occ-2", "-c", str(config)).code == 1  # not missed any more


async def test_reload_keeps_running_config_when_the_new_one_is_broken(
    tmp_path: Path, cli, monkeypatch
) -> None:
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", _scheduled('cron = "0 9 * * *"'))
    assert cli("init", "-c", str(config)).code == 0
    daemon = Daemon(config)
    task = asyncio.create_task(daemon.run())
    for _ in range(50):
        await asyncio.sleep(0.1)
        if daemon._leader:
            break
    good = config.read_text()
    config.write_text(good.replace('urgency = "reminder"', 'urgency = "urgnet"'))
    assert await daemon.reload() is False
    assert daemon.app.config.campaign("news") is not None  # the running config stays
    config.write_text(good.replace('id = "news"', 'id = "news2"'))
    assert await daemon.reload() is True
    assert daemon.app.config.campaign("news2") is not None
    # Woken at the reloaded schedule's next 09:00 (Paris), whatever the trigger tick does.
    wake = daemon._ticks.get_job(FIRING_JOB).next_run_time.astimezone(PARIS)
    assert (wake.hour, wake.minute) == (9, 0) and wake > datetime.now(PARIS)
    daemon.stop()
    assert await asyncio.wait_for(task, 10) == 0


async def test_scheduler_role_moves_to_another_daemon(
    tmp_path: Path, postgres_url: str, cli, monkeypatch
) -> None:
    """Two daemons on one PostgreSQL: one scheduler; when it stops, the other takes over."""
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    config = _config(tmp_path, postgres_url, _scheduled('cron = "0 9 * * *"'))
    first, second = Daemon(config), Daemon(config)
    t1 = asyncio.create_task(first.run())
    for _ in range(50):
        await asyncio.sleep(0.1)
        if first._leader:
            break
    t2 = asyncio.create_task(second.run())
    await asyncio.sleep(1.0)
    assert first._leader and not second._leader
    first.stop()
    assert await asyncio.wait_for(t1, 10) == 0
    loop = asyncio.get_running_loop()
    stopped = loop.time()
    for _ in range(50):
        await asyncio.sleep(0.1)
        if second._leader:
            break
    assert second._leader and loop.time() - stopped < 2.0
    second.stop()
    assert await asyncio.wait_for(t2, 10) == 0


def test_sigterm_stops_the_process_cleanly_and_sighup_reloads(
    tmp_path: Path, cli, monkeypatch
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'p.db'}", _scheduled('cron = "0 9 * * *"'))
    assert cli("init", "-c", str(config)).code == 0
    log = tmp_path / "daemon.log"
    env = {**os.environ, "COLUMNS": "200"}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "network_anim", "daemon", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 20
        while "scheduler role taken" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "scheduler role taken" in log.read_text()
        assert cli("reload", "-c", str(config)).code == 0
        while "config reloaded" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text()
    assert "config reloaded" in text and "stopped" in text and "Traceback" not in text
    assert not (tmp_path / "var" / "daemon.pid").exists()


async def test_a_tick_skipped_while_its_previous_run_goes_on_is_not_logged(caplog) -> None:
    """max_instances = 1 skips a dispatch tick due during a long drain, on purpose: the
    real APScheduler must not warn about it every interval (other warnings still show)."""
    import logging

    from network_anim.daemon.service import TICK_LOG, tick_scheduler

    caplog.set_level(logging.INFO, logger="apscheduler")
    runs = 0

    async def long_drain() -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.4)

    scheduler = tick_scheduler()
    scheduler.add_job(long_drain, "interval", seconds=0.05, max_instances=1, coalesce=True)
    scheduler.start()
    await asyncio.sleep(0.6)
    scheduler.shutdown(wait=False)
    TICK_LOG.warning("another warning")
    assert 1 <= runs <= 2  # the ticks due while a run goes on were skipped
    assert "maximum number of running instances" not in caplog.text
    assert "another warning" in caplog.text


async def test_a_stop_lets_the_trigger_tick_in_flight_finish(
    tmp_path: Path, database_url: str, cli, monkeypatch, caplog
) -> None:
    """A SIGTERM while the leader's first trigger tick runs the challenge upkeep: the
    stop waits for it (APScheduler's shutdown used to cancel it, logging a traceback)."""
    import logging
    import threading
    import time

    import network_anim.daemon.service as service

    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    config = _config(tmp_path, database_url, "")
    _import(cli, config)
    started, finished = threading.Event(), threading.Event()
    real_upkeep = service.challenge_tick

    def slow_upkeep(app):  # type: ignore[no-untyped-def]
        started.set()
        time.sleep(0.5)  # a large network's upkeep takes this long and more
        real_upkeep(app)
        finished.set()

    monkeypatch.setattr(service, "challenge_tick", slow_upkeep)
    caplog.set_level(logging.INFO)
    await _run_until(Daemon(config), started.is_set)
    assert finished.is_set()
    assert "raised an exception" not in caplog.text and "CancelledError" not in caplog.text
