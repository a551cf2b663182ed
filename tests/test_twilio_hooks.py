"""Twilio webhooks over both databases: signatures checked on the configured public URL,
status callbacks deduplicated and only moving forward, inbound keywords."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import Session
from twilio.request_validator import RequestValidator

from network_anim.app import App, open_app
from network_anim.challenges.upkeep import sync_challenges
from network_anim.clock import SimulatedClock
from network_anim.db.models import (
    Campaign,
    Consent,
    Contact,
    Delivery,
    Event,
    Message,
    Participant,
)
from network_anim.web.app import create_app
from network_anim.web.twilio_hooks import moves_forward, normalise
from tests.conftest import REPO

AUTH_TOKEN = "twilio-test-auth-token-0123456789"
STATUS = "/hooks/twilio/status"
INBOUND = "/hooks/twilio/inbound"
HELENE = "+33612345678"  # C0001 in examples/network.csv, SMS consent given


@dataclass
class Hooks:
    client: httpx.AsyncClient
    app: App
    public: str  # the base URL Twilio was given ([engine] base_url)

    def sign(self, path: str, params: dict[str, str], *, url: str | None = None) -> str:
        return RequestValidator(AUTH_TOKEN).compute_signature(url or self.public + path, params)

    async def post(
        self, path: str, params: dict[str, str], *, signature: str | None = None
    ) -> httpx.Response:
        headers = {"X-Twilio-Signature": signature or self.sign(path, params)}
        return await self.client.post(path, data=params, headers=headers)

    async def inbound(self, body: str, *, sid: str, sender: str = HELENE) -> httpx.Response:
        params = {
            "MessageSid": sid,
            "AccountSid": "AC0123",
            "From": sender,
            "To": "+33700000001",
            "Body": body,
            "NumMedia": "0",
        }
        return await self.post(INBOUND, params)

    async def status(self, sid: str, status: str, error: str = "") -> httpx.Response:
        params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC0123"}
        if error:
            params["ErrorCode"] = error
        return await self.post(STATUS, params)


async def _hooks(app: App, client_base: str) -> AsyncIterator[Hooks]:
    fastapi_app = create_app(app)
    async with fastapi_app.router.lifespan_context(fastapi_app):
        transport = httpx.ASGITransport(app=fastapi_app)
        async with httpx.AsyncClient(transport=transport, base_url=client_base) as client:
            yield Hooks(client, app, app.config.engine.base_url)


@pytest.fixture
async def hooks(network: App, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Hooks]:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    async for value in _hooks(network, "http://testserver"):
        yield value


def contact_id(app: App, external_id: str) -> int:
    with Session(app.engine) as session:
        found = session.scalar(select(Contact.id).where(Contact.external_id == external_id))
    assert found is not None
    return found


def sms_delivery(app: App, sid: str, contact: str = "C0001") -> int:
    now = app.clock.now()
    cid = contact_id(app, contact)
    with Session(app.engine) as session, session.begin():
        campaign = Campaign(key=f"c-{sid}", name="t", kind="broadcast", created_at=now)
        session.add(campaign)
        session.flush()
        message = Message(
            campaign_id=campaign.id,  # type: ignore[arg-type]
            step="s",
            occurrence="o",
            urgency="urgent",
            kind="marketing",
            template="stock-alert",
            created_at=now,
        )
        session.add(message)
        session.flush()
        delivery = Delivery(
            idempotency_key=f"k-{sid}",
            message_id=message.id,  # type: ignore[arg-type]
            contact_id=cid,
            channel="sms",
            status="sent",
            due_at=now,
            created_at=now,
            updated_at=now,
            sent_at=now - timedelta(minutes=5),
            provider_id=sid,
            extra={"post_id": 0, "segments": 1},
        )
        session.add(delivery)
        session.flush()
        return delivery.id  # type: ignore[return-value]


def delivery_extra(app: App, delivery_id: int) -> dict:
    with Session(app.engine) as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        return dict(delivery.extra)


def events(app: App, type_: str | None = None) -> list[Event]:
    with Session(app.engine) as session:
        query = select(Event).order_by(Event.id)
        if type_ is not None:
            query = query.where(Event.type == type_)
        return list(session.scalars(query))


def sms_basis(app: App, external_id: str = "C0001") -> tuple[str, str] | None:
    with Session(app.engine) as session:
        row = session.scalar(
            select(Consent).where(
                Consent.contact_id == contact_id(app, external_id), Consent.channel == "sms"
            )
        )
        return (row.basis, row.source) if row else None


def reply_of(response: httpx.Response) -> str | None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    text = response.text
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    if "<Response />" in text or "<Response/>" in text:
        return None
    assert "<Response><Message>" in text and text.endswith("</Message></Response>")
    return text.split("<Message>", 1)[1].rsplit("</Message>", 1)[0]


# -- signatures ----------------------------------------------------------------------------


async def test_requests_without_a_valid_signature_are_refused(hooks: Hooks) -> None:
    delivery = sms_delivery(hooks.app, "SM0001")
    params = {"MessageSid": "SM0001", "MessageStatus": "delivered"}
    wrong_token = RequestValidator("another-token").compute_signature(hooks.public + STATUS, params)
    cases = [
        await hooks.client.post(STATUS, data=params),  # no header at all
        await hooks.post(STATUS, params, signature="bm90IGEgc2lnbmF0dXJl"),
        await hooks.post(STATUS, params, signature=wrong_token),
        # signed, then a parameter changed on the way
        await hooks.client.post(
            STATUS,
            data={**params, "MessageStatus": "failed"},
            headers={"X-Twilio-Signature": hooks.sign(STATUS, params)},
        ),
        # signed for the other endpoint
        await hooks.post(STATUS, params, signature=hooks.sign(INBOUND, params)),
        await hooks.client.post(INBOUND, data={"From": HELENE, "Body": "STOP"}),
    ]
    assert [r.status_code for r in cases] == [403] * len(cases)
    assert events(hooks.app) == []
    assert "provider_status" not in delivery_extra(hooks.app, delivery)
    assert sms_basis(hooks.app) == ("consent", "test")
    ok = await hooks.post(STATUS, params)
    assert ok.status_code == 204


async def test_no_auth_token_in_the_environment_refuses_everything(
    hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = {"From": HELENE, "Body": "STOP", "MessageSid": "SM1"}
    signature = hooks.sign(INBOUND, params)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    response = await hooks.post(INBOUND, params, signature=signature)
    assert response.status_code == 503
    assert sms_basis(hooks.app) == ("consent", "test")


def _app_with_base_url(app: App, config_path: Path, tmp_path: Path, base_url: str) -> App:
    text = config_path.read_text(encoding="utf-8")
    assert 'base_url = "http://localhost:8000"' in text
    path = tmp_path / "public.toml"
    path.write_text(text.replace("http://localhost:8000", base_url), encoding="utf-8")
    return open_app(path, clock=SimulatedClock(app.clock.now()))


@pytest.mark.parametrize(
    ("public", "internal"),
    [
        # TLS ends at the proxy, which talks plain HTTP to us on another host and port.
        ("https://anim.example.com", "http://127.0.0.1:8000"),
        # Public URL in plain HTTP on a port; the client side of the proxy speaks HTTPS.
        ("http://anim.example.com:8080/netanim", "https://proxy.internal"),
    ],
)
async def test_signature_is_checked_on_the_public_url_from_config(
    network: App,
    config_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    public: str,
    internal: str,
) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    app = _app_with_base_url(network, config_path, tmp_path, public)
    try:
        sms_delivery(app, "SM0100")
        async for hooks in _hooks(app, internal):
            assert hooks.public == public
            params = {"MessageSid": "SM0100", "MessageStatus": "sent"}
            # What Twilio signs: the public URL it was given.
            ok = await hooks.post(STATUS, params, signature=hooks.sign(STATUS, params))
            assert ok.status_code == 204
            # A signature of the URL this process sees is not Twilio's.
            seen = hooks.sign(STATUS, params, url=internal + STATUS)
            assert (await hooks.post(STATUS, params, signature=seen)).status_code == 403
            # A query string is part of what is signed.
            query = STATUS + "?tenant=a"
            good = hooks.sign(query, params)
            assert (await hooks.post(query, params, signature=good)).status_code == 204
            assert (
                await hooks.post(STATUS + "?tenant=b", params, signature=good)
            ).status_code == 403
    finally:
        app.close()


# -- status callbacks ----------------------------------------------------------------------


async def test_status_callbacks_are_deduplicated_and_only_move_forward(hooks: Hooks) -> None:
    delivery = sms_delivery(hooks.app, "SM0200")
    steps = [
        ("sent", "sent"),
        ("queued", "sent"),  # late: recorded, no step back
        ("delivered", "delivered"),
        ("delivered", "delivered"),  # twice
        ("sent", "delivered"),  # twice and late
        ("sending", "delivered"),
        ("failed", "delivered"),  # delivered is final
    ]
    for status, expected in steps:
        response = await hooks.status("SM0200", status)
        assert response.status_code == 204
        assert delivery_extra(hooks.app, delivery)["provider_status"] == expected, status
    recorded = events(hooks.app)
    assert sorted(e.dedupe_key for e in recorded) == sorted(
        f"twilio:SM0200:{s}" for s in ("sent", "queued", "delivered", "sending", "failed")
    )
    assert {e.type for e in recorded} == {
        "provider_sent",
        "provider_queued",
        "provider_sending",
        "delivered",
        "bounced",
    }
    assert all(e.delivery_id == delivery and e.channel == "sms" for e in recorded)
    extra = delivery_extra(hooks.app, delivery)
    assert extra["segments"] == 1  # the rest of extra kept


async def test_failure_is_final_and_carrier_opt_out_updates_consent(hooks: Hooks) -> None:
    delivery = sms_delivery(hooks.app, "SM0300")
    await hooks.status("SM0300", "undelivered", error="21610")
    await hooks.status("SM0300", "delivered")
    await hooks.status("SM0300", "sent")
    extra = delivery_extra(hooks.app, delivery)
    assert (extra["provider_status"], extra["provider_error"]) == ("undelivered", "21610")
    assert sms_basis(hooks.app) == ("opted_out", "twilio")


async def test_unknown_message_sid_is_acknowledged_and_ignored(hooks: Hooks) -> None:
    response = await hooks.status("SM_UNKNOWN", "delivered")
    assert response.status_code == 204
    assert events(hooks.app) == []
    missing = await hooks.post(STATUS, {"MessageSid": "SM1"})
    assert missing.status_code == 400


def test_status_order() -> None:
    assert moves_forward(None, "queued")
    assert moves_forward("queued", "sending") and moves_forward("sending", "sent")
    assert moves_forward("sent", "delivered") and moves_forward("sent", "undelivered")
    assert not moves_forward("delivered", "sent")
    assert not moves_forward("failed", "delivered") and not moves_forward("delivered", "failed")
    assert not moves_forward("sent", "read-receipt-of-the-future")


# -- inbound SMS ---------------------------------------------------------------------------

STOP_VARIANTS = [
    "STOP",
    "stop",
    "  Stop ",
    "STOPALL",
    "Stop All",
    "UNSUBSCRIBE",
    "end",
    "QUIT",
    "Cancel",
    "OPTOUT",
    "opt-out",
    "ARRET",
    "ARRÊT",
    "  Arrêt ",
    "arrêt !",
]


@pytest.mark.parametrize(
    ("body", "word"),
    [("  Arrêt ", "arret"), ("Stop All", "stopall"), ("OPT OUT.", "optout"), ("pbx", "pbx")],
)
def test_normalise(body: str, word: str) -> None:
    assert normalise(body) == word


async def test_every_stop_variant_opts_out_and_start_opts_back_in(hooks: Hooks) -> None:
    sms = hooks.app.config.channels.sms
    for number, variant in enumerate(STOP_VARIANTS):
        stop = reply_of(await hooks.inbound(variant, sid=f"SMstop{number}"))
        assert stop is not None and sms.sender_name in stop and "START" in stop, variant
        assert sms_basis(hooks.app) == ("opted_out", "sms-stop"), variant
        start = reply_of(await hooks.inbound("start", sid=f"SMstart{number}"))
        assert start is not None and sms.stop_mention in start
        assert sms_basis(hooks.app) == ("consent", "sms-start"), variant
    assert len(events(hooks.app, "unsubscribed")) == len(STOP_VARIANTS)
    assert len(events(hooks.app, "resubscribed")) == len(STOP_VARIANTS)
    assert events(hooks.app, "replied") == []


async def test_a_retried_stop_does_not_undo_a_later_start(hooks: Hooks) -> None:
    await hooks.inbound("STOP", sid="SMa")
    await hooks.inbound("START", sid="SMb")
    again = reply_of(await hooks.inbound("STOP", sid="SMa"))  # Twilio retrying the first one
    assert again is not None
    assert sms_basis(hooks.app) == ("consent", "sms-start")
    assert len(events(hooks.app, "unsubscribed")) == 1


async def test_help_names_the_sender_and_the_stop_mention(hooks: Hooks) -> None:
    sms = hooks.app.config.channels.sms
    answer = reply_of(await hooks.inbound(" help ", sid="SMh"))
    assert answer is not None
    assert sms.sender_name in answer and sms.stop_mention in answer
    assert sms_basis(hooks.app) == ("consent", "test")


async def test_other_text_is_a_reply_tied_to_the_last_sms(hooks: Hooks) -> None:
    delivery = sms_delivery(hooks.app, "SM0400")
    assert reply_of(await hooks.inbound("Oui, je serai là jeudi", sid="SMr")) is None
    assert reply_of(await hooks.inbound("Oui, je serai là jeudi", sid="SMr")) is None  # retried
    [replied] = events(hooks.app, "replied")
    assert (replied.contact_id, replied.channel) == (contact_id(hooks.app, "C0001"), "sms")
    assert replied.delivery_id == delivery
    assert replied.data["body"] == "Oui, je serai là jeudi"
    assert sms_basis(hooks.app) == ("consent", "test")


async def test_unknown_number_gets_an_empty_answer_and_nothing_is_recorded(
    hooks: Hooks, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="network_anim.web.twilio_hooks")
    assert reply_of(await hooks.inbound("STOP", sid="SMu", sender="+33699999999")) is None
    assert events(hooks.app) == []
    assert sms_basis(hooks.app) == ("consent", "test")
    assert "+3369999****" in caplog.text and "+33699999999" not in caplog.text


def with_objectives(app: App) -> None:
    """The example config names examples/objectives.csv, next to the config file."""
    target = app.loaded.base_dir / "examples" / "objectives.csv"
    target.parent.mkdir(exist_ok=True)
    shutil.copy(REPO / "examples" / "objectives.csv", target)
    sync_challenges(app)


async def test_challenge_keyword_registers_the_sender(hooks: Hooks) -> None:
    app = hooks.app
    with_objectives(app)
    challenge = app.config.challenge("pbx-2027")
    assert challenge.sms_keyword == "PBX"
    answer = reply_of(await hooks.inbound(" pbx ", sid="SMp1"))
    assert answer is not None and "inscription" in answer and challenge.name in answer
    again = reply_of(await hooks.inbound("PBX", sid="SMp2"))
    assert again is not None
    with Session(app.engine) as session:
        rows = list(session.scalars(select(Participant)))
    assert [(p.contact_id, p.via, p.challenge_key) for p in rows] == [
        (contact_id(app, "C0001"), "sms", "pbx-2027")
    ]
    assert [e.data["outcome"] for e in events(app, "sms_keyword")] == ["registered", "registered"]


async def test_challenge_keyword_after_the_end_registers_nobody(hooks: Hooks) -> None:
    app = hooks.app
    assert isinstance(app.clock, SimulatedClock)
    app.clock.set(datetime(2027, 5, 3, 9, 0, tzinfo=UTC))
    with_objectives(app)
    answer = reply_of(await hooks.inbound("PBX", sid="SMp3"))
    assert answer is not None and "terminé" in answer
    with Session(app.engine) as session:
        assert session.scalar(select(func.count()).select_from(Participant)) == 0


async def test_undelivered_sms_goes_on_by_the_next_channel(hooks: Hooks) -> None:
    from network_anim.db.models import Message, Post

    delivery_id = sms_delivery(hooks.app, "SM0400")
    with Session(hooks.app.engine) as session, session.begin():
        delivery = session.get(Delivery, delivery_id)
        message = session.get(Message, delivery.message_id)
        message.variables = {"product": "Routeur X200", "quantity": 40}
        post = Post(
            message_id=message.id, title="Disponible", body="...", created_at=hooks.app.clock.now()
        )
        session.add(post)
        session.flush()
        delivery.fallback = ["email"]
        delivery.extra = {**delivery.extra, "post_id": post.id}
    await hooks.status("SM0400", "undelivered", error="30003")
    with Session(hooks.app.engine) as session:
        rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert [(r.channel, r.status) for r in rows] == [("sms", "failed"), ("email", "pending")]
    assert rows[0].last_error == "Twilio: undelivered (error 30003)"
    assert rows[1].parent_id == rows[0].id and "Routeur X200" in rows[1].subject
    await hooks.status("SM0400", "failed")  # a later final status plans nothing more
    with Session(hooks.app.engine) as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 2
