"""Bounce and complaint rates per campaign and channel in the report, and the warnings
(issue 15): terminal table, --json, HTML page, and the daemon's log line. Real sends
(the file transport), real feedback applied, both databases."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.bounces.apply import apply_feedback
from network_anim.bounces.events import DeliveryRef, FeedbackEvent, FeedbackKind
from network_anim.clock import SimulatedClock
from network_anim.db.models import Campaign, Delivery, Message
from network_anim.reports.bounce_rates import log_rate_warnings
from network_anim.reports.build import build_report
from tests.conftest import SAMPLE_NETWORK, STOCK_ALERT, run_at

REMINDER = ("--urgency", "reminder", *STOCK_ALERT[2:])
WEDNESDAY = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _emails(app: App, occurrence: str) -> list[Delivery]:
    with Session(app.engine) as session:
        return list(
            session.scalars(
                select(Delivery)
                .join(Message, Message.id == Delivery.message_id)  # type: ignore[arg-type]
                .where(Message.occurrence == occurrence, Delivery.channel == "email")
                .where(Delivery.sent_at.is_not(None))  # type: ignore[union-attr]
                .order_by(Delivery.id)
            )
        )


def _about(row: Delivery, kind: FeedbackKind, key: str) -> FeedbackEvent:
    # The original's Message-ID, as an ARF report or a DSN quotes it.
    ref = DeliveryRef(message_id=f"<{row.key_hash}@example.com>")
    return FeedbackEvent(kind=kind, source="test", key=key, ref=ref, status="5.1.1")


@pytest.fixture
def history(app: App, cli, config_path: Path, clock: SimulatedClock) -> list[Delivery]:  # type: ignore[no-untyped-def]
    """One reminder by email to the sample network; of its sent emails, two bounce for
    good, one soft, and one is reported as spam (twice: counted once)."""
    assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path)).code == 0
    assert run_at(cli, config_path, WEDNESDAY, *REMINDER, "--id", "r1", "--json").code == 0
    emails = _emails(app, "r1")
    assert len(emails) == 11  # the sample network's reachable email addresses
    clock.set(WEDNESDAY + timedelta(hours=2))
    stats = apply_feedback(
        app,
        [
            _about(emails[0], FeedbackKind.HARD_BOUNCE, "h0"),
            _about(emails[1], FeedbackKind.HARD_BOUNCE, "h1"),
            _about(emails[2], FeedbackKind.SOFT_BOUNCE, "s2"),
            _about(emails[3], FeedbackKind.COMPLAINT, "c3"),
            _about(emails[3], FeedbackKind.COMPLAINT, "c3-again"),  # a second report
            _about(emails[4], FeedbackKind.AUTO_REPLY, "a4"),
        ],
    )
    assert stats.bounced == 3 and stats.unresolved == 0
    return emails


def test_rates_and_warnings_in_the_report_and_its_json(
    app: App, cli, config_path: Path, history: list[Delivery]
) -> None:
    report = build_report(app)
    [line] = [r for r in report.bounce_rates if r.channel == "email"]
    assert (line.campaign, line.sent) == ("broadcast", 11)
    assert (line.hard_bounces, line.soft_bounces, line.complaints) == (2, 1, 1)
    assert (line.hard_bounce_rate, line.soft_bounce_rate, line.complaint_rate) == (
        0.1818,
        0.0909,
        0.0909,
    )
    # The contacts without email got the reminder by SMS or letter: nothing came back.
    others = [r for r in report.bounce_rates if r.channel != "email"]
    assert {r.channel for r in others} == {"print", "sms"}
    assert all(r.sent and r.hard_bounce_rate == r.complaint_rate == 0.0 for r in others)
    assert [(w.kind, w.rate, w.threshold) for w in report.warnings] == [
        ("complaint", 0.0909, 0.003),
        ("hard_bounce", 0.1818, 0.02),
    ]
    assert report.warnings[0].message == (
        "campaign broadcast, email: complaint rate 9.09 % (1 of 11 sent) is above 0.3 % "
        "([bounces] complaint_rate_warning)"
    )
    # Bounced rows (hard or soft) are not delivered in the funnel.
    [email_total] = [r for r in report.funnel_totals if r.channel == "email"]
    assert email_total.sent == 11 and email_total.delivered == 8

    document = json.loads(cli("report", "-c", str(config_path), "--json").out)
    assert [r for r in document["bounce_rates"] if r["channel"] == "email"] == [
        {
            "campaign": "broadcast",
            "channel": "email",
            "sent": 11,
            "hard_bounces": 2,
            "soft_bounces": 1,
            "complaints": 1,
            "hard_bounce_rate": 0.1818,
            "soft_bounce_rate": 0.0909,
            "complaint_rate": 0.0909,
        }
    ]
    assert [w["kind"] for w in document["warnings"]] == ["complaint", "hard_bounce"]
    assert "bounces" in document["definitions"]


def test_terminal_table_html_page_and_the_daemon_s_log_line(
    app: App,
    cli,
    config_path: Path,
    history: list[Delivery],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = cli("report", "-c", str(config_path)).out
    assert "Bounces and complaints" in table
    assert "2 (18.2 %)" in table and "1 (9.1 %)" in table
    assert "Warning: campaign broadcast, email: hard-bounce rate 18.18 % (2 of 11 sent)" in table

    target = tmp_path / "report.html"
    assert cli("report", "-c", str(config_path), "--html", str(target)).code == 0
    page = target.read_text(encoding="utf-8")
    assert 'id="bounces-table"' in page and "Rebonds et plaintes" in page
    assert "taux de plaintes de 9,09" in page.replace("\u202f", " ").replace("\xa0", " ")

    with caplog.at_level(logging.WARNING, logger="network_anim.reports.bounce_rates"):
        warnings = log_rate_warnings(app)
    assert [w.kind for w in warnings] == ["complaint", "hard_bounce"]
    assert [r.getMessage() for r in caplog.records] == [w.message for w in warnings]
    # Only deliveries due since a later moment: nothing to warn about.
    assert log_rate_warnings(app, since=WEDNESDAY + timedelta(days=1)) == ()


def test_the_daemon_s_bounce_tick_logs_each_excess_once(
    app: App,
    config_path: Path,
    history: list[Delivery],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without a bounce mailbox (webhooks feed the rates), the scheduler role's holder
    logs the campaigns past a threshold at its bounce tick, once while they stay so."""
    import asyncio

    from network_anim.daemon.service import Daemon

    daemon = Daemon(config_path)
    daemon.app = app
    logger = "network_anim.reports.bounce_rates"
    with caplog.at_level(logging.WARNING, logger=logger):
        asyncio.run(daemon.bounce_tick())  # not the role's holder: nothing
        assert [r for r in caplog.records if r.name == logger] == []
        daemon._leader = True
        asyncio.run(daemon.bounce_tick())
        asyncio.run(daemon.bounce_tick())  # still above: not repeated
    logged = [r.getMessage() for r in caplog.records if r.name == logger]
    assert logged == [
        "campaign broadcast, email: complaint rate 9.09 % (1 of 11 sent) is above 0.3 % "
        "([bounces] complaint_rate_warning)",
        "campaign broadcast, email: hard-bounce rate 18.18 % (2 of 11 sent) is above 2 % "
        "([bounces] hard_bounce_rate_warning)",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == logger)


def test_under_the_thresholds_no_warning(
    app: App, history: list[Delivery], monkeypatch: pytest.MonkeyPatch, config_path: Path
) -> None:
    from network_anim.app import open_app

    monkeypatch.setenv("NETANIM_BOUNCES_COMPLAINT_RATE_WARNING", "0.1")  # 9.09 % is under
    monkeypatch.setenv("NETANIM_BOUNCES_HARD_BOUNCE_RATE_WARNING", "0.25")
    relaxed = open_app(config_path, clock=app.clock)
    try:
        report = build_report(relaxed)
        assert report.warnings == ()
        assert report.bounce_rates[0].complaint_rate == 0.0909
    finally:
        relaxed.close()
    with Session(app.engine) as session:
        assert session.scalars(select(Campaign.key)).all() == ["broadcast"]
