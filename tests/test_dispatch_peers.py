"""The dispatcher against real peers: an SMTP server and a Twilio stand-in that fail on
purpose. Each failure class must be handled as DESIGN.md §2 says: transient → retry later,
permanent → the router's next channel, unknowable → `unknown`, never resent, opt-out →
consent updated."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.db.models import Consent, Contact, Delivery, Event
from network_anim.demo.network import generate_network_csv
from tests.conftest import SAMPLE_NETWORK, STOCK_ALERT, WELCOME, run_at, use_smtp, use_twilio
from tests.peers.smtp_server import Fault, SmtpPeer
from tests.peers.twilio_standin import TwilioStandin

HELENE, JULIEN, SOPHIE, THOMAS = (
    "helene.dupre@tsl.example",
    "julien.garnier@tsl.example",
    "sophie.lambert@tsl.example",
    "t.lefebvre@nrd.example",
)


def _rows(app: App) -> dict[tuple[str, str], Delivery]:
    with Session(app.engine) as session:
        rows = session.execute(select(Delivery, Contact.external_id).join(Contact)).all()
        return {(ext, d.channel): d for d, ext in rows}


def test_smtp_failures_are_classified(
    app: App, cli, config_path: Path, smtp_server: SmtpPeer, clock
) -> None:
    use_smtp(config_path, smtp_server)
    assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path)).code == 0
    smtp_server.fail(HELENE, Fault.at_rcpt("550 5.1.1 mailbox unavailable"))
    smtp_server.fail(JULIEN, Fault.at_rcpt("421 4.3.2 closing", close=True))
    smtp_server.fail(SOPHIE, Fault.at_rcpt("451 4.3.0 try again later"))
    smtp_server.fail(THOMAS, Fault.drop_after_data())
    result = run_at(
        cli,
        config_path,
        clock.now(),
        *WELCOME,
        "--id",
        "w1",
        "--json",
    )
    assert result.code == 0, result
    rows = _rows(app)
    # 550: permanent → failed, and the message moved to the info fallback (print).
    assert rows[("C0001", "email")].status == "failed"
    assert "550" in rows[("C0001", "email")].last_error
    letter = rows[("C0001", "print")]
    assert letter.status == "sent" and letter.parent_id == rows[("C0001", "email")].id
    assert letter.reason.startswith("fallback: email failed (550")
    # 421 and 451: transient → pending, retried later with backoff; no fallback yet.
    for contact, code in (("C0002", "421"), ("C0003", "451")):
        row = rows[(contact, "email")]
        assert row.status == "pending" and code in row.last_error and row.attempts == 1
        assert row.due_at > clock.now() + timedelta(seconds=29)
        assert (contact, "print") not in rows
    # Connection lost after DATA: the server may have it → unknown, never resent.
    assert rows[("C0006", "email")].status == "unknown"
    accepted = {r.rcpt_tos[0] for r in smtp_server.messages}
    assert {HELENE, JULIEN, SOPHIE}.isdisjoint(accepted)
    assert len([r for r in smtp_server.messages if r.rcpt_tos[0] != THOMAS]) == 7
    # One SMTP session carried many messages (plus a reconnect after the 421 close).
    assert smtp_server.connections < 7

    # Hours later the faults are gone: the retries go through, the unknown one does not.
    smtp_server.faults.clear()
    later = clock.now() + timedelta(hours=2)
    dispatched = run_at(cli, config_path, later, command="dispatch")
    assert json.loads(dispatched.out)["outcomes"] == {"email": {"sent": 2}}
    rows = _rows(app)
    assert rows[("C0002", "email")].status == "sent" and rows[("C0003", "email")].status == "sent"
    assert rows[("C0006", "email")].status == "unknown"
    delivered = [r.rcpt_tos[0] for r in smtp_server.messages]
    assert delivered.count(THOMAS) == 1 and delivered.count(JULIEN) == 1


def test_transient_failures_end_dead_after_max_attempts(
    app: App, cli, config_path: Path, smtp_server: SmtpPeer, clock
) -> None:
    use_smtp(config_path, smtp_server)
    assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path)).code == 0
    smtp_server.fail(HELENE, Fault.at_rcpt("451 4.3.0 try again later"))
    run_at(
        cli,
        config_path,
        clock.now(),
        "--urgency",
        "reminder",
        "--template",
        "welcome",
        "--id",
        "r1",
    )
    moment = clock.now()
    for _ in range(8):
        moment += timedelta(hours=7)  # past the largest backoff step
        run_at(cli, config_path, moment, command="dispatch")
    row = _rows(app)[("C0001", "email")]
    assert row.status == "dead" and row.attempts == 6
    assert "gave up after 6 attempts" in row.last_error


def test_twilio_outcomes(
    app: App,
    cli,
    config_path: Path,
    twilio_standin: TwilioStandin,
    clock,
    monkeypatch,
    tmp_path: Path,
) -> None:
    use_twilio(config_path, twilio_standin, monkeypatch)
    assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path)).code == 0
    twilio_standin.faults = {
        "+33623456789": (400, 21610),  # C0002 replied STOP
        "+33667890123": 429,  # C0006: too many requests
        "+33678901234": 500,  # C0007: Twilio error: may or may not have been queued
        "+33689012345": (400, 21211),  # C0009: invalid number
    }
    result = run_at(
        cli,
        config_path,
        clock.now(),
        *STOCK_ALERT,
        "--id",
        "s1",
        "--json",
    )
    assert result.code == 0, result
    rows = _rows(app)
    assert rows[("C0001", "sms")].status == "sent" and rows[
        ("C0001", "sms")
    ].provider_id.startswith("SM")
    # STOP → opted_out, consent recorded, and the message falls back to email.
    assert rows[("C0002", "sms")].status == "opted_out"
    assert rows[("C0002", "email")].status == "sent"
    with Session(app.engine) as session:
        consent = session.scalars(
            select(Consent)
            .join(Contact)
            .where(Contact.external_id == "C0002", Consent.channel == "sms")
        ).one()
        assert consent.basis == "opted_out" and consent.source == "provider"
    assert rows[("C0006", "sms")].status == "pending" and "429" in rows[("C0006", "sms")].last_error
    assert rows[("C0007", "sms")].status == "unknown"
    assert rows[("C0009", "sms")].status == "failed" and rows[("C0009", "email")].status == "sent"
    # What Twilio received: the form the spec asks for, with the accents intact.
    sent = {r.form["To"]: r for r in twilio_standin.requests}
    body = sent["+33612345678"].form["Body"]
    assert body.startswith("Animation Réseau : Routeur X200 de nouveau disponible, 40 unités")
    assert "STOP au 36180" in body and "/p/" in body
    assert sent["+33612345678"].form["From"] == "+33700000001"
    assert (
        sent["+33612345678"].form["StatusCallback"] == "http://localhost:8000/hooks/twilio/status"
    )
    # A later broadcast never uses SMS for the contact who opted out.
    again = json.loads(
        run_at(
            cli,
            config_path,
            clock.now(),
            *STOCK_ALERT,
            "--id",
            "s2",
            "--json",
            "--explain",
        ).out
    )
    julien = next(e for e in again["explain"] if e["contact"] == "C0002")
    assert "sms" not in julien["channels"]
    with Session(app.engine) as session:
        events = session.scalars(select(Event.type).where(Event.channel == "sms")).all()
    assert {"sent", "opted_out", "failed", "deferred", "unknown"} <= set(events)


def test_missing_twilio_credentials_is_reported_before_claiming(
    app: App, cli, config_path: Path, twilio_standin: TwilioStandin, monkeypatch, clock
) -> None:
    use_twilio(config_path, twilio_standin, monkeypatch)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path)).code == 0
    result = run_at(
        cli,
        config_path,
        clock.now(),
        "--urgency",
        "urgent",
        "--template",
        "stock-alert",
        "--var",
        "product=X",
        "--var",
        "quantity=1",
        "--id",
        "s1",
    )
    assert result.code == 1 and "TWILIO_AUTH_TOKEN is not set" in result.err
    assert {d.status for d in _rows(app).values()} == {"pending"}


async def test_no_email_is_accepted_after_a_result_could_not_be_recorded(
    database_url: str, config_path: Path, cli, smtp_server: SmtpPeer, monkeypatch
) -> None:
    """PostgreSQL records each result before the next final "." (no journal there): when
    the database refuses a recording mid-batch, the sessions stop, so what the relay took
    but nobody recorded stays within max_unrecorded (1) and the next worker sends the rest
    once (at most one duplicate)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite notes results in its sent journal (tests/test_sent_journal.py)")
    from sqlalchemy.exc import OperationalError

    from network_anim.app import open_app
    from network_anim.outbox.dispatcher import Dispatcher
    from network_anim.outbox.recording import Recorder
    from network_anim.outbox.transports import ConfiguredTransports
    from tests.test_sent_journal import _plan_emails, outbox_and_sent_events, received_ids

    use_smtp(config_path, smtp_server)
    network = config_path.parent / "network.csv"
    network.write_text(generate_network_csv(companies=12, contacts=150, seed=7), encoding="utf-8")
    assert cli("import", "network", str(network), "-c", str(config_path)).code == 0
    app = open_app(config_path)
    try:
        expected = _plan_emails(app, "refused")
        recordings = 0
        record_sent = Recorder.record_sent

        async def refuse_the_third(self: Recorder, *args: object) -> set[int]:
            nonlocal recordings
            recordings += 1
            if recordings == 3:
                raise OperationalError("UPDATE delivery", {}, Exception("connection lost"))
            return await record_sent(self, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(Recorder, "record_sent", refuse_the_third)
        transports = ConfiguredTransports(app)
        async with Dispatcher(
            app, transports, worker_id="w1", resend_safe=transports.resend_safe
        ) as first:
            with pytest.raises(OperationalError):
                await first.drain()
        monkeypatch.setattr(Recorder, "record_sent", record_sent)
        recorded = outbox_and_sent_events(app)[0]["sent"]
        assert recorded == 2
        assert len(smtp_server.messages) <= recorded + 1  # the refused one, at most
        survivor = Dispatcher(
            app,
            transports,
            worker_id="w2",
            resend_safe=transports.resend_safe,
            dead_owners=lambda owners: owners - {"w2"},  # w1 is gone
        )
        async with survivor:
            await survivor.drain()
        statuses = outbox_and_sent_events(app)[0]
    finally:
        app.close()
    received = received_ids(smtp_server)
    assert statuses == {"sent": len(expected)}
    assert set(received) == set(expected.values())
    assert sum(received.values()) - len(expected) <= 1
