"""Fallbacks are planned by the planner (issue 13): after an SMTP 550 or a Twilio
"undelivered" callback, the next channel goes through the router like any delivery:
consent read again, the legal window in the contact's zone, quiet hours, frequency caps.
Real peers (aiosmtpd, the Twilio webhook app), both databases."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App, open_app
from network_anim.clock import SimulatedClock
from network_anim.db.models import Consent, Contact, Delivery, Message, Post
from network_anim.domain import Urgency
from network_anim.planning.fallbacks import plan_fallbacks
from tests.conftest import (
    REPO,
    SAMPLE_NETWORK,
    STOCK_ALERT,
    run_at,
    use_smtp,
    write_config,
)
from tests.peers.smtp_server import Fault, SmtpPeer
from tests.test_twilio_hooks import AUTH_TOKEN, _hooks, sms_delivery

HELENE = "helene.dupre@tsl.example"  # C0001: personal email, mobile, SMS consent, Paris
PARIS = ZoneInfo("Europe/Paris")
SUNDAY_11_PARIS = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
MONDAY_08_PARIS = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
# A promotional reminder: email, then SMS, then print.
REMINDER = ("--urgency", "reminder", *STOCK_ALERT[2:])


def _rows(app: App, external_id: str = "C0001") -> dict[str, Delivery]:
    with Session(app.engine) as session:
        rows = session.scalars(
            select(Delivery)
            .join(Contact, Contact.id == Delivery.contact_id)  # type: ignore[arg-type]
            .where(Contact.external_id == external_id)
            .order_by(Delivery.id)
        ).all()
    return {f"{r.message_id}:{r.channel}": r for r in rows}


def _of_message(rows: dict[str, Delivery], message_id: int) -> dict[str, Delivery]:
    return {r.channel: r for r in rows.values() if r.message_id == message_id}


def _sms_file(config_path: Path) -> list[dict[str, str]]:
    path = config_path.parent / "var" / "outbox" / "sms" / "sms.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_sunday_reminder_refused_by_smtp_falls_back_to_sms_on_monday_8(
    app: App, cli, config_path: Path, smtp_server: SmtpPeer
) -> None:
    use_smtp(config_path, smtp_server)
    assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path)).code == 0
    smtp_server.fail(HELENE, Fault.at_rcpt("550 5.1.1 mailbox unavailable"))

    result = run_at(cli, config_path, SUNDAY_11_PARIS, *REMINDER, "--id", "sun", "--json")
    assert result.code == 0, result
    summary = json.loads(result.out)
    assert summary["fallbacks"] == {"sms": 1} and summary["fallbacks_held"] == {}
    rows = _of_message(_rows(app), summary["message_id"])
    assert rows["email"].status == "failed" and "550" in rows["email"].last_error
    sms = rows["sms"]
    # Promotional SMS wait for the legal window: Monday 08:00 in Paris, not that Sunday.
    assert sms.status == "pending" and sms.parent_id == rows["email"].id
    assert sms.due_at == MONDAY_08_PARIS
    assert sms.due_at.astimezone(PARIS).strftime("%a %H:%M") == "Mon 08:00"
    assert sms.reason.startswith("fallback: email failed (550 5.1.1 mailbox unavailable")
    assert (
        "outside the legal sms window (Sun 2026-11-29 11:00 Europe/Paris): "
        "deferred to Mon 2026-11-30 08:00 Europe/Paris" in sms.reason
    )
    assert sms.fallback == ["print"]  # still there if the SMS fails too
    assert not rows["email"].fallback_due  # planned: nothing left for the next run
    assert _sms_file(config_path) == []  # nothing by SMS on a Sunday, fallback or not

    # Later that Sunday a dispatch sends nothing by SMS.
    sunday_evening = run_at(
        cli, config_path, datetime(2026, 11, 29, 18, 0, tzinfo=UTC), command="dispatch"
    )
    assert "sms" not in json.loads(sunday_evening.out)["outcomes"]
    assert _sms_file(config_path) == []

    # The operator sees the fallback and why it waits.
    listed = cli("outbox", "-c", str(config_path), "--status", "pending", "--json")
    [row] = [r for r in json.loads(listed.out) if r["id"] == str(sms.id)]
    assert row["reason"] == sms.reason and row["due_at"] == MONDAY_08_PARIS.isoformat()

    # `plan --explain` over Monday shows the fallback going out at 08:00 with its reason.
    (config_path.parent / "examples").mkdir()
    shutil.copy(REPO / "examples" / "objectives.csv", config_path.parent / "examples")
    planned = cli(
        "plan",
        str(config_path),
        "--from",
        "2026-11-29T12:00",
        "--to",
        "2026-11-30T12:00",
        "--explain",
    )
    assert planned.code == 0, planned
    assert "2026-11-30 08:00" in planned.out and "fallback: email failed" in planned.out

    # Monday 08:00: Hélène receives the reminder by SMS, the real words of the message.
    monday = run_at(cli, config_path, MONDAY_08_PARIS, command="dispatch")
    assert json.loads(monday.out)["outcomes"]["sms"]["sent"] >= 1
    [received] = [r for r in _sms_file(config_path) if r["to"] == "+33612345678"]
    assert received["idempotency_key"] == sms.idempotency_key
    assert datetime.fromisoformat(received["at"]) == MONDAY_08_PARIS
    body = received["body"]
    assert "Routeur X200 de nouveau disponible, 40 unités" in body
    assert "STOP" in body and "{{" not in body


def test_a_fallback_over_the_frequency_cap_is_held(
    app: App, cli, config_path: Path, smtp_server: SmtpPeer, clock
) -> None:
    use_smtp(config_path, smtp_server)
    assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path)).code == 0
    # The reminder is planned while Hélène's SMS cap is free (SMS is its first fallback);
    # her server answers 451 for now, so the email waits for a retry.
    smtp_server.fail(HELENE, Fault.at_rcpt("451 4.3.0 try again later"))
    planned = run_at(cli, config_path, clock.now(), *REMINDER, "--id", "reminder", "--json")
    message_id = json.loads(planned.out)["message_id"]
    email = _of_message(_rows(app), message_id)["email"]
    assert email.status == "pending" and email.fallback == ["sms", "print"]
    # Meanwhile two promotional SMS reach her: the cap (2 in 7 days) is full.
    for occurrence in ("alert-1", "alert-2"):
        sent = run_at(cli, config_path, clock.now(), *STOCK_ALERT, "--id", occurrence, "--json")
        assert json.loads(sent.out)["outcomes"]["sms"]["sent"] >= 1
    helene_sms = [r for r in _sms_file(config_path) if r["to"] == "+33612345678"]
    assert len(helene_sms) == 2

    # The retry is refused for good: the SMS fallback would be her third this week.
    smtp_server.faults.clear()
    smtp_server.fail(HELENE, Fault.at_rcpt("550 5.1.1 mailbox unavailable"))
    later = run_at(cli, config_path, clock.now() + timedelta(hours=2), command="dispatch")
    summary = json.loads(later.out)
    assert summary["outcomes"]["email"] == {"failed": 1}
    assert summary["fallbacks"] == {} and summary["fallbacks_held"] == {"sms": 1}
    rows = _of_message(_rows(app), message_id)
    # Held: no SMS and no letter (moving a capped message on would defeat the cap).
    assert set(rows) == {"email"}
    failed = rows["email"]
    assert failed.status == "failed" and not failed.fallback_due
    assert failed.last_error.startswith("550 5.1.1 mailbox unavailable")
    assert failed.last_error.endswith(
        "; fallback held: sms: frequency cap reached: 2 sms in 7 days (max 2)"
    )
    assert [r for r in _sms_file(config_path) if r["to"] == "+33612345678"] == helene_sms

    shown = cli("outbox", "-c", str(config_path), "--status", "failed")
    assert shown.code == 0
    assert "fallback held: sms: frequency cap reached: 2 sms in 7 days (max 2)" in " ".join(
        shown.out.split()
    )
    # Nothing is planned later either: the hold is final.
    assert plan_fallbacks(app).planned == {}
    assert set(_of_message(_rows(app), message_id)) == {"email"}


def test_a_failure_left_unplanned_by_a_crash_is_planned_by_the_next_dispatch(
    app: App, cli, config_path: Path, smtp_server: SmtpPeer, clock
) -> None:
    """The send loop without the planning stage stands for a process that died right
    after recording the failure; a contact who opted out of SMS meanwhile gets a letter."""
    from network_anim.outbox.sending import send_due
    from network_anim.planning.planner import MessageRequest, plan_message

    use_smtp(config_path, smtp_server)
    assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path)).code == 0
    smtp_server.fail(HELENE, Fault.at_rcpt("550 5.1.1 mailbox unavailable"))
    app = open_app(config_path, clock=clock)  # the fixture's app predates use_smtp
    request = MessageRequest(
        campaign_key="stock",
        campaign_name="Stock",
        campaign_kind="broadcast",
        step="once",
        occurrence="o1",
        audience=app.config.audience("all"),
        urgency=Urgency.REMINDER,
        template="stock-alert",
        variables={"product": "Routeur X200", "quantity": 40},
    )
    message_id = plan_message(app, request).message_id
    assert message_id is not None
    stats = asyncio.run(send_due(app, message_id=message_id))
    assert stats.fallbacks == {}
    rows = _of_message(_rows(app), message_id)
    assert set(rows) == {"email"} and rows["email"].fallback_due

    with Session(app.engine) as session, session.begin():
        consent = session.scalars(
            select(Consent).where(
                Consent.contact_id == rows["email"].contact_id, Consent.channel == "sms"
            )
        ).one()
        consent.basis = "opted_out"

    dispatched = run_at(cli, config_path, clock.now(), command="dispatch")
    assert json.loads(dispatched.out)["fallbacks"] == {"print": 1}
    rows = _of_message(_rows(app), message_id)
    assert set(rows) == {"email", "print"} and not rows["email"].fallback_due
    letter = rows["print"]
    assert letter.status == "sent" and letter.parent_id == rows["email"].id
    assert letter.idempotency_key == f"{rows['email'].idempotency_key}>print"
    assert "fallback to print (sms: opted out of sms" in letter.reason
    assert letter.body_text.startswith("Madame,")  # Mme Dupré's letter, not a template
    assert "Routeur X200 est de nouveau disponible (40 unités)" in letter.body_text
    # Idempotent: a second pass plans nothing, even with the row marked again.
    with Session(app.engine) as session, session.begin():
        session.get(Delivery, rows["email"].id).fallback_due = True  # type: ignore[union-attr]
    again = plan_fallbacks(app)
    assert again.planned == {} and len(_of_message(_rows(app), message_id)) == 2
    app.close()


# -- a Twilio "undelivered" callback on a Sunday ------------------------------------------


@pytest.fixture
def windowed_app(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> App:
    """The sample network with a deployment rule in channels/: promotional email only on
    weekdays, 09:00-18:00 (a policy choice, written as the channel's send window)."""
    channels = shutil.copytree(REPO / "channels", tmp_path / "channels")
    email = channels / "email.toml"
    email.write_text(
        email.read_text(encoding="utf-8") + '\n[send_window]\napplies_to = ["marketing"]\n'
        'days = ["mon", "tue", "wed", "thu", "fri"]\nstart = "09:00"\nend = "18:00"\n',
        encoding="utf-8",
    )
    config = write_config(tmp_path, database_url)
    config.write_text(
        config.read_text(encoding="utf-8").replace(str(REPO / "channels"), str(channels)),
        encoding="utf-8",
    )
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    app = open_app(config, clock=SimulatedClock(SUNDAY_11_PARIS))
    from network_anim.network.importer import import_network
    from network_anim.network.network_csv import ImportDefaults, read_network_csv

    import_network(
        app.engine,
        read_network_csv(SAMPLE_NETWORK, ImportDefaults()),
        now=app.clock.now(),
        source="test",
    )
    yield app  # type: ignore[misc]
    app.close()


async def test_undelivered_sms_on_a_sunday_falls_back_inside_the_next_channel_window(
    windowed_app: App,
) -> None:
    app = windowed_app
    assert app.definitions["email"].send_window is not None
    delivery_id = sms_delivery(app, "SM0700")
    with Session(app.engine) as session, session.begin():
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        message = session.get(Message, delivery.message_id)
        assert message is not None
        message.variables = {"product": "Routeur X200", "quantity": 40}
        post = Post(
            message_id=message.id, title="Disponible", body="...", created_at=app.clock.now()
        )
        session.add(post)
        session.flush()
        delivery.fallback = ["email"]
        delivery.extra = {**delivery.extra, "post_id": post.id}

    async for hooks in _hooks(app, "http://testserver"):
        response = await hooks.status("SM0700", "undelivered", error="30003")
        assert response.status_code == 204
        await hooks.status("SM0700", "failed")  # the later final status plans nothing more

    with Session(app.engine) as session:
        rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert [(r.channel, r.status) for r in rows] == [("sms", "failed"), ("email", "pending")]
    failed, email = rows
    assert not failed.fallback_due and email.parent_id == failed.id
    # Sunday 11:00 in Paris: the email waits for Monday 09:00, its window's opening.
    assert email.due_at == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert email.reason.startswith("fallback: sms failed (Twilio: undelivered (error 30003))")
    assert "deferred to Mon 2026-11-30 09:00 Europe/Paris" in email.reason
    assert "Routeur X200" in email.subject and "Hélène" in email.body_text
