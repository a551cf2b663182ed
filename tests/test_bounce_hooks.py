"""``POST /hooks/bounces/ses|postmark|sendgrid`` on the real web app, both databases: a
signed notification bounces its delivery (found by its token or by the provider's
message id), a retry changes nothing, forged signatures and wrong credentials are
refused (403/401) and change nothing, an unconfigured webhook refuses everything."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update
from sqlmodel import Session

from network_anim.app import App
from network_anim.channels.email_mime import key_hash
from network_anim.compose.bounce_token import token_for
from network_anim.db.models import Contact, Delivery
from network_anim.web.app import create_app
from network_anim.web.bounce_hooks import CertificateCache
from tests.conftest import write_config
from tests.test_bounce_providers import (
    BOUNCE,
    MAIL,
    PM_BOUNCE,
    SG_EVENTS,
    TOPIC,
    SendGridSigner,
    SnsSigner,
    basic,
    notification,
)
from tests.test_web_tracking import Sent, make_delivery

POSTMARK_SECRET = "pm-hook-secret-91b2"
HELENE = "helene.dupre@tsl.example"


@pytest.fixture
def config_path(tmp_path: Path, database_url: str) -> Path:
    """The example config with the SES topic accepted."""
    path = write_config(tmp_path, database_url)
    text = path.read_text(encoding="utf-8")
    line = '# ses_topic_arns = ["arn:aws:sns:eu-west-1:123456789012:ses-feedback"]'
    assert line in text
    path.write_text(text.replace(line, f'ses_topic_arns = ["{TOPIC}"]'), encoding="utf-8")
    return path


@dataclass
class Hooks:
    client: httpx.AsyncClient
    app: App
    sns: SnsSigner
    sendgrid: SendGridSigner


@pytest.fixture
async def hooks(network: App, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Hooks]:
    sns, sendgrid = SnsSigner(), SendGridSigner()
    monkeypatch.setenv(network.config.bounces.postmark_token_env, POSTMARK_SECRET)
    monkeypatch.setenv(network.config.bounces.sendgrid_public_key_env, sendgrid.public_key_text)
    fastapi_app = create_app(network)
    # The test's own SNS certificate instead of a fetch from AWS.
    fastapi_app.state.sns_certificates = CertificateCache(sns.fetch)
    async with fastapi_app.router.lifespan_context(fastapi_app):
        transport = httpx.ASGITransport(app=fastapi_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Hooks(client, network, sns, sendgrid)


def delivery(app: App, sent: Sent) -> Delivery:
    with Session(app.engine) as session:
        row = session.get(Delivery, sent.delivery_id)
        assert row is not None
        session.expunge(row)
        return row


def helene_invalid(app: App) -> bool:
    with Session(app.engine) as session:
        contact = session.scalars(select(Contact).where(Contact.email == HELENE)).one()
        return contact.email_invalid_at is not None


def with_token(app: App, sent: Sent) -> str:
    """The delivery's signed token, as the sender writes it into the email."""
    digest = key_hash(sent.key)[:32]
    with Session(app.engine) as session, session.begin():
        session.execute(
            update(Delivery).where(Delivery.id == sent.delivery_id).values(key_hash=digest)
        )
    return token_for(app.signer, digest)


def ses_bounce(token: str) -> dict:
    mail = {
        **MAIL,
        "destination": [HELENE],
        "headers": [{"name": "X-Netanim-Delivery", "value": token}],
        "commonHeaders": {},
    }
    payload = json.loads(json.dumps(BOUNCE))
    payload["mail"] = mail
    payload["bounce"]["bouncedRecipients"][0]["emailAddress"] = HELENE
    return payload


async def test_ses_bounce_then_retry(hooks: Hooks) -> None:
    sent = make_delivery(hooks.app)
    body = json.dumps(hooks.sns.sign(notification(ses_bounce(with_token(hooks.app, sent)))))
    answer = await hooks.client.post("/hooks/bounces/ses", content=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["applied"] == {"hard_bounce": 1}
    assert delivery(hooks.app, sent).status == "bounced"
    assert helene_invalid(hooks.app)
    retry = await hooks.client.post("/hooks/bounces/ses", content=body)
    assert retry.status_code == 200 and retry.json()["duplicates"] == 1
    assert hooks.sns.fetched.count(hooks.sns.fetched[0]) == 1  # the certificate is cached


async def test_ses_forged_is_refused_and_changes_nothing(hooks: Hooks) -> None:
    sent = make_delivery(hooks.app)
    impostor = SnsSigner()
    # The impostor's certificate is not the one the SNS URL serves: its signature fails.
    body = json.dumps(impostor.sign(notification(ses_bounce(with_token(hooks.app, sent)))))
    answer = await hooks.client.post("/hooks/bounces/ses", content=body)
    assert answer.status_code == 403
    other_topic = notification(ses_bounce("x"))
    other_topic["TopicArn"] = "arn:aws:sns:eu-west-1:999999999999:elsewhere"
    answer = await hooks.client.post(
        "/hooks/bounces/ses", content=json.dumps(hooks.sns.sign(other_topic))
    )
    assert answer.status_code == 403 and "ses_topic_arns" in answer.text
    assert (await hooks.client.post("/hooks/bounces/ses", content=b"{oops")).status_code == 400
    assert delivery(hooks.app, sent).status == "sent"
    assert not helene_invalid(hooks.app)


async def test_postmark_bounce_by_provider_id(hooks: Hooks) -> None:
    sent = make_delivery(hooks.app, provider_id="883953f4-6105-42a2-a16a-77a8eac79483")
    record = {**PM_BOUNCE, "Email": HELENE, "Metadata": {}}
    wrong = await hooks.client.post(
        "/hooks/bounces/postmark", json=record, headers=basic("netanim", "guess")
    )
    assert wrong.status_code == 401
    assert delivery(hooks.app, sent).status == "sent"
    answer = await hooks.client.post(
        "/hooks/bounces/postmark", json=record, headers=basic("netanim", POSTMARK_SECRET)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["bounced"] == 1
    assert delivery(hooks.app, sent).status == "bounced"


async def test_sendgrid_signed_batch(hooks: Hooks) -> None:
    sent = make_delivery(hooks.app, provider_id="14c5d75ce93")
    events = [{**SG_EVENTS[0], "email": HELENE, "netanim_delivery": None, "smtp-id": None}]
    events += SG_EVENTS[5:]  # deferred, dropped for another address, delivered
    body = json.dumps(events).encode()
    forged = hooks.sendgrid.headers(body.replace(b"bounce", b"blocked", 1))
    answer = await hooks.client.post("/hooks/bounces/sendgrid", content=body, headers=forged)
    assert answer.status_code == 403
    assert delivery(hooks.app, sent).status == "sent"
    answer = await hooks.client.post(
        "/hooks/bounces/sendgrid", content=body, headers=hooks.sendgrid.headers(body)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["applied"] == {"hard_bounce": 2}
    assert delivery(hooks.app, sent).status == "bounced"


async def test_unconfigured_webhooks_refuse_everything(
    hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(hooks.app.config.bounces.postmark_token_env)
    monkeypatch.setenv(hooks.app.config.bounces.sendgrid_public_key_env, "not a key")
    answer = await hooks.client.post(
        "/hooks/bounces/postmark", json=PM_BOUNCE, headers=basic("netanim", POSTMARK_SECRET)
    )
    assert answer.status_code == 403 and "not configured" in answer.text
    body = json.dumps(SG_EVENTS).encode()
    answer = await hooks.client.post(
        "/hooks/bounces/sendgrid", content=body, headers=hooks.sendgrid.headers(body)
    )
    assert answer.status_code == 403 and "not configured" in answer.text
