"""WhatsApp end to end on the Twilio stand-in with the official client, SQLite and PostgreSQL.

The contact who gets WhatsApp is C0004 (Yannick Bernard, a craftsman with a shared
mailbox, examples/network.csv) once a WhatsApp consent is recorded; nobody else has one.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.channels.contract import Outbound, Recipient
from network_anim.channels.whatsapp import build_whatsapp_params, session_refusal
from network_anim.config.settings import WhatsappSettings
from network_anim.db.models import Consent, Contact, Delivery
from network_anim.domain import LawfulBasis, Outcome
from network_anim.web.events import set_consent
from network_anim.web.twilio_hooks import apply_status, handle_inbound
from tests.conftest import SAMPLE_NETWORK, STOCK_ALERT, run_at, use_twilio
from tests.peers.twilio_standin import TwilioStandin
from tests.test_twilio_hooks import INBOUND, Hooks, hooks, sms_delivery  # noqa: F401

YANNICK = "+33645678901"  # C0004
SID = "HX" + "0123456789abcdef" * 2
TEMPLATE = f"""
[channels.whatsapp.templates.stock-alert]
content_sid = "{SID}"
variables = ["contact.first_name", "product", "quantity"]
"""


def use_whatsapp(config_path: Path, standin: TwilioStandin, monkeypatch, *, template: bool) -> None:  # type: ignore[no-untyped-def]
    """SMS and WhatsApp on the stand-in; urgent messages by WhatsApp, else SMS, then email
    (the routing config.example.toml suggests)."""
    use_twilio(config_path, standin, monkeypatch)
    text = config_path.read_text(encoding="utf-8")
    text = text.replace(
        'transport = "file"\ndirectory = "var/outbox/whatsapp"', 'transport = "twilio"'
    )
    old = '[routing.urgencies.urgent]\nsend = ["sms"]\nfallback = ["email"]'
    assert old in text
    text = text.replace(
        old, '[routing.urgencies.urgent]\nsend = ["whatsapp"]\nfallback = ["sms", "email"]'
    )
    config_path.write_text(text + (TEMPLATE if template else ""), encoding="utf-8")


def _import_with_consent(app: App, cli, config_path: Path) -> int:  # type: ignore[no-untyped-def]
    assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path)).code == 0
    with Session(app.engine) as session, session.begin():
        contact = session.scalars(select(Contact).where(Contact.external_id == "C0004")).one()
        set_consent(
            session,
            contact_id=contact.id or 0,
            channel="whatsapp",
            basis=LawfulBasis.CONSENT,
            source="test",
            now=app.clock.now(),
        )
        return contact.id or 0


def _rows(app: App) -> dict[tuple[str, str], list[Delivery]]:
    rows: dict[tuple[str, str], list[Delivery]] = {}
    with Session(app.engine) as session:
        for external_id, delivery in session.execute(
            select(Contact.external_id, Delivery).join(Contact).order_by(Delivery.id)
        ):
            rows.setdefault((external_id, delivery.channel), []).append(delivery)
    return rows


def _to(standin: TwilioStandin, address: str) -> list[dict[str, str]]:
    return [r.form for r in standin.requests if r.form["To"] == address]


def test_broadcast_sends_the_approved_template_to_the_opted_in_contact_only(
    app: App, cli, config_path: Path, twilio_standin: TwilioStandin, clock, monkeypatch
) -> None:
    use_whatsapp(config_path, twilio_standin, monkeypatch, template=True)
    _import_with_consent(app, cli, config_path)
    result = run_at(cli, config_path, clock.now(), *STOCK_ALERT, "--id", "wa1", "--json")
    assert result.code == 0, result

    [form] = _to(twilio_standin, f"whatsapp:{YANNICK}")
    assert form["From"] == "whatsapp:+14155238886"
    assert form["ContentSid"] == SID and "Body" not in form
    assert json.loads(form["ContentVariables"]) == {
        "1": "Yannick",
        "2": "Routeur X200",
        "3": "40",
    }
    assert form["StatusCallback"].endswith("/hooks/twilio/status")
    rows = _rows(app)
    [row] = rows[("C0004", "whatsapp")]
    assert row.status == "sent" and row.provider_id and row.provider_id.startswith("SM")
    assert ("C0004", "sms") not in rows  # WhatsApp carried it: no SMS as well
    # Everyone else has no WhatsApp consent: SMS, as before.
    whatsapp = {key[0] for key in rows if key[1] == "whatsapp"}
    assert whatsapp == {"C0004"}
    assert _to(twilio_standin, "+33612345678")  # C0001 got the SMS
    assert not [r for r in twilio_standin.requests if r.form["To"] == "whatsapp:+33612345678"]

    # Twilio's delivery receipt, then the report's funnel has its WhatsApp line.
    assert (
        apply_status(app, sid=row.provider_id, status="delivered", error_code="", now=clock.now())
        == "applied"
    )
    from network_anim.reports.build import build_report

    totals = {r.channel: r for r in build_report(app).funnel_totals}
    assert totals["whatsapp"].sent == 1 and totals["whatsapp"].delivered == 1
    assert totals["whatsapp"].open_rate is None  # no pixel in a WhatsApp message


def test_free_text_goes_inside_the_24h_session_and_falls_back_to_sms_outside(
    app: App, cli, config_path: Path, twilio_standin: TwilioStandin, clock, monkeypatch
) -> None:
    use_whatsapp(config_path, twilio_standin, monkeypatch, template=False)
    _import_with_consent(app, cli, config_path)
    # Yannick wrote to us on WhatsApp two hours ago: the session is open.
    handle_inbound(
        app,
        sender=f"whatsapp:{YANNICK}",
        body="Bonjour",
        sid="SMin1",
        now=clock.now() - timedelta(hours=2),
    )
    assert run_at(cli, config_path, clock.now(), *STOCK_ALERT, "--id", "wa2").code == 0
    [form] = _to(twilio_standin, f"whatsapp:{YANNICK}")
    assert "Routeur X200" in form["Body"] and "ContentSid" not in form
    assert _rows(app)[("C0004", "whatsapp")][0].status == "sent"

    # 30 hours later the session is closed: no call, the message goes by SMS instead.
    later = clock.now() + timedelta(hours=30)
    assert run_at(cli, config_path, later, *STOCK_ALERT, "--id", "wa3").code == 0
    assert len(_to(twilio_standin, f"whatsapp:{YANNICK}")) == 1  # nothing more on WhatsApp
    rows = _rows(app)
    refused = rows[("C0004", "whatsapp")][1]
    assert refused.status == "failed" and "outside the WhatsApp session" in refused.last_error
    [sms] = rows[("C0004", "sms")]
    assert sms.status == "sent" and sms.parent_id == refused.id
    [text] = _to(twilio_standin, YANNICK)
    assert "Routeur X200" in text["Body"]


async def test_stop_on_whatsapp_opts_out_of_whatsapp_only(hooks: Hooks) -> None:  # noqa: F811
    params = {
        "MessageSid": "SMwa-stop",
        "AccountSid": "AC0123",
        "From": f"whatsapp:{YANNICK}",
        "To": "whatsapp:+14155238886",
        "Body": "STOP",
        "NumMedia": "0",
    }
    response = await hooks.post(INBOUND, params)
    assert response.status_code == 200 and "WhatsApp" in response.text
    with Session(hooks.app.engine) as session:
        bases = dict(
            session.execute(
                select(Consent.channel, Consent.basis)
                .join(Contact)
                .where(Contact.external_id == "C0004")
            ).all()
        )
    assert bases["whatsapp"] == LawfulBasis.OPTED_OUT.value
    assert bases["sms"] == LawfulBasis.CONSENT.value  # the SMS consent is untouched


async def test_undelivered_status_fails_the_whatsapp_row_and_plans_the_fallback(
    hooks: Hooks,  # noqa: F811
) -> None:
    from network_anim.db.models import Message, Post

    delivery_id = sms_delivery(hooks.app, "SMwa0400", contact="C0004")
    with Session(hooks.app.engine) as session, session.begin():
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        message = session.get(Message, delivery.message_id)
        assert message is not None
        message.variables = {"product": "Routeur X200", "quantity": 40}
        post = Post(
            message_id=message.id, title="Disponible", body="...", created_at=hooks.app.clock.now()
        )
        session.add(post)
        session.flush()
        delivery.channel = "whatsapp"
        delivery.fallback = ["sms"]
        delivery.extra = {"post_id": post.id}
    assert (await hooks.status("SMwa0400", "undelivered", error="63016")).status_code == 204
    with Session(hooks.app.engine) as session:
        rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert (rows[0].channel, rows[0].status) == ("whatsapp", "failed")
    assert rows[0].last_error == "Twilio: undelivered (error 63016)"
    assert [r.channel for r in rows[1:]] == ["sms"] and rows[1].parent_id == rows[0].id


# -- the pure part -----------------------------------------------------------------------


def _item(**extra: object) -> Outbound:
    recipient = Recipient(contact_id=1, external_id="C1", display_name="Y", phone=YANNICK)
    return Outbound(1, "k1", "whatsapp", recipient, text="Bonjour", extra=extra)


def test_params_use_whatsapp_addresses_and_the_messaging_service_when_set() -> None:
    settings = WhatsappSettings(messaging_service_sid="MG" + "ab" * 16)
    params = build_whatsapp_params(_item(content_sid=SID, content_variables={"1": "é"}), settings)
    assert params == {
        "to": f"whatsapp:{YANNICK}",
        "content_sid": SID,
        "content_variables": '{"1": "é"}',
        "messaging_service_sid": "MG" + "ab" * 16,
    }


@pytest.mark.parametrize(
    ("hours_ago", "template", "refused"),
    [(None, False, True), (23.9, False, False), (24.1, False, True), (None, True, False)],
)
def test_session_rule(hours_ago: float | None, template: bool, refused: bool, clock) -> None:
    now = clock.now()
    last = None if hours_ago is None else now - timedelta(hours=hours_ago)
    item = _item(content_sid=SID) if template else _item()
    result = session_refusal(item, last, now, WhatsappSettings())
    assert (result is not None) is refused
    if result is not None:
        assert result.outcome is Outcome.FAILED and "[channels.whatsapp.templates]" in result.detail


async def test_the_daemon_sends_a_scheduled_urgent_message_by_whatsapp(
    tmp_path: Path, database_url: str, twilio_standin: TwilioStandin, cli, monkeypatch
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from network_anim.app import open_app
    from network_anim.daemon.service import Daemon
    from tests.test_daemon import _config, _run_until

    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    soon = (datetime.now(ZoneInfo("Europe/Paris")) + timedelta(seconds=2)).replace(
        microsecond=0, tzinfo=None
    )
    campaign = f"""
[[campaigns]]
id = "restock-wa"
name = "Restock"
kind = "broadcast"
audience = "all"
schedule = {{ date = {soon.isoformat()} }}
vars = {{ product = "Routeur X200", quantity = 40 }}
[[campaigns.steps]]
name = "alert"
template = "stock-alert"
urgency = "urgent"
kind = "operational"
"""
    config = _config(tmp_path, database_url, campaign)
    use_whatsapp(config, twilio_standin, monkeypatch, template=True)
    app = open_app(config)
    try:
        _import_with_consent(app, cli, config)
    finally:
        app.close()
    daemon = Daemon(config)
    await _run_until(daemon, lambda: bool(_to(twilio_standin, f"whatsapp:{YANNICK}")))
    [form] = _to(twilio_standin, f"whatsapp:{YANNICK}")
    assert form["ContentSid"] == SID
    assert json.loads(form["ContentVariables"])["2"] == "Routeur X200"
