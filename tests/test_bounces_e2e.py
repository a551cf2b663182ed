"""Issue 15's "Done when", with real peers, both databases: the engine sends through a
local SMTP server that accepts; a DSN for one recipient lands in the IMAP mailbox
(dovecot); the daemon's bounce tick reads it; the delivery is bounced, the fallback SMS
planned within the legal window and sent to the Twilio stand-in, the contact's email
marked invalid; the next broadcast routes that contact without email, with the reason.
The same DSN delivered again changes nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.clock import SimulatedClock
from network_anim.daemon.service import Daemon
from network_anim.db.models import Contact
from tests.conftest import SAMPLE_NETWORK, WELCOME, run_at, use_smtp, use_twilio, write_config
from tests.test_bounces_cmd import HELENE, REMINDER, dsn_for, helene_rows

if TYPE_CHECKING:
    from tests.peers.imap_server import ImapPeer

pytest_plugins = ["tests.peers.imap_server"]

HELENE_MOBILE = "+33612345678"
FRIDAY_10_PARIS = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
FRIDAY_11_PARIS = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
MONDAY_10_PARIS = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
def config_path(  # type: ignore[no-untyped-def]
    tmp_path: Path,
    database_url: str,
    smtp_server,
    twilio_standin,
    imap_server: ImapPeer,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    path = write_config(tmp_path, database_url)
    use_smtp(path, smtp_server)
    use_twilio(path, twilio_standin, monkeypatch)
    monkeypatch.setenv("NETANIM_BOUNCES_VERP_DOMAIN", "bounces.example.com")
    monkeypatch.setenv("NETANIM_BOUNCES_MAILBOX_HOST", imap_server.host)
    monkeypatch.setenv("NETANIM_BOUNCES_MAILBOX_PORT", str(imap_server.port))
    monkeypatch.setenv("NETANIM_BOUNCES_MAILBOX_SECURITY", "none")
    monkeypatch.setenv("NETANIM_BOUNCE_IMAP_USER", imap_server.user)
    monkeypatch.setenv("NETANIM_BOUNCE_IMAP_PASSWORD", imap_server.password)
    return path


def test_a_dsn_in_the_mailbox_closes_the_loop(  # type: ignore[no-untyped-def]
    cli,
    config_path: Path,
    app: App,
    clock: SimulatedClock,
    smtp_server,
    twilio_standin,
    imap_server: ImapPeer,
) -> None:
    assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path)).code == 0
    result = run_at(cli, config_path, FRIDAY_10_PARIS, *REMINDER, "--id", "e2e", "--json")
    assert result.code == 0, result
    message_id = json.loads(result.out)["message_id"]
    [received] = [m for m in smtp_server.messages if HELENE in m.rcpt_tos]
    assert received.mail_from.startswith("bounces+")  # VERP: the token is the envelope
    sent = f"Return-Path: <{received.mail_from}>\r\n".encode() + received.data
    imap_server.append("INBOX", dsn_for(sent, HELENE))

    clock.set(FRIDAY_11_PARIS)  # the DSN is read an hour later, by the daemon's tick
    daemon = Daemon(config_path)
    daemon.app = app
    asyncio.run(daemon.bounce_tick())

    assert imap_server.messages("INBOX") == []
    assert len(imap_server.messages("netanim/processed")) == 1
    email, sms = helene_rows(app, message_id)
    assert email.status == "bounced" and "User unknown" in (email.last_error or "")
    assert sms.channel == "sms" and sms.parent_id == email.id and sms.status == "pending"
    due = sms.due_at.astimezone(ZoneInfo("Europe/Paris"))
    assert due.weekday() < 5 and 8 <= due.hour < 20  # Friday, within the legal window
    with Session(app.engine) as session:
        helene = session.scalars(select(Contact).where(Contact.email == HELENE)).one()
        assert helene.email_invalid_at == FRIDAY_11_PARIS

    dispatched = run_at(cli, config_path, max(due, FRIDAY_11_PARIS), command="dispatch")
    assert dispatched.code == 0, dispatched
    [sms_request] = [r for r in twilio_standin.requests if r.form.get("To") == HELENE_MOBILE]
    assert "Routeur X200" in sms_request.form["Body"]

    # The same DSN again (the relay sent it twice): read, and nothing changes.
    imap_server.append("INBOX", dsn_for(sent, HELENE))
    asyncio.run(daemon.bounce_tick())
    assert len(imap_server.messages("netanim/processed")) == 2
    assert len(helene_rows(app, message_id)) == 2

    nxt = run_at(
        cli, config_path, MONDAY_10_PARIS, *WELCOME, "--id", "after", "--explain", "--json"
    )
    assert nxt.code == 0, nxt
    summary = json.loads(nxt.out)
    [explained] = [e for e in summary["explain"] if e["contact"] == "C0001"]
    assert "email invalid since 2026-11-27" in json.dumps(explained, ensure_ascii=False)
    assert "email" not in [r.channel for r in helene_rows(app, summary["message_id"])]


def test_the_tick_survives_a_mailbox_down_and_unreadable_mail(  # type: ignore[no-untyped-def]
    config_path: Path, app: App, imap_server: ImapPeer, caplog: pytest.LogCaptureFixture
) -> None:
    imap_server.append("INBOX", b"\x00\x01 not a message at all")
    daemon = Daemon(config_path)
    daemon.app = app
    asyncio.run(daemon.bounce_tick())
    assert len(imap_server.messages("netanim/unreadable")) == 1
    imap_server.stop()
    asyncio.run(daemon.bounce_tick())  # logged, not raised: the next tick retries
    assert "bounce mailbox unavailable, next tick retries" in caplog.text
