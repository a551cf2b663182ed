"""Every email can be traced back (issue 15): its envelope sender names its delivery.

Sent through the real SMTP peer (aiosmtpd): what the relay receives as MAIL FROM and in
the headers is what a bounce comes back with.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.bounces.clues import verp_token
from network_anim.compose.bounce_token import key_hash_of, token_for
from network_anim.compose.links import LinkSigner
from network_anim.db.models import Contact, Delivery
from tests.conftest import SAMPLE_NETWORK, STOCK_ALERT, WEDNESDAY_MORNING, run_at, use_smtp
from tests.peers.smtp_server import SmtpPeer

HELENE = "helene.dupre@tsl.example"
REMINDER = ("--urgency", "reminder", *STOCK_ALERT[2:])
TOKEN = re.compile(r"^[a-z2-7]{45}$")


def _send(cli, config_path: Path, smtp_server: SmtpPeer, app: App) -> Delivery:  # type: ignore[no-untyped-def]
    use_smtp(config_path, smtp_server)
    assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path)).code == 0
    result = run_at(cli, config_path, WEDNESDAY_MORNING, *REMINDER, "--id", "v", "--json")
    assert result.code == 0, result
    assert json.loads(result.out)["outcomes"]["email"]["sent"] >= 1
    with Session(app.engine) as session:
        return session.scalars(
            select(Delivery)
            .join(Contact, Contact.id == Delivery.contact_id)  # type: ignore[arg-type]
            .where(Contact.email == HELENE, Delivery.channel == "email")
        ).one()


def test_verp_envelope_and_delivery_header_reach_the_relay(
    app: App, cli, config_path: Path, smtp_server: SmtpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETANIM_BOUNCES_VERP_DOMAIN", "bounces.example.com")
    delivery = _send(cli, config_path, smtp_server, app)
    [received] = smtp_server.received_for(HELENE)
    local, _, domain = received.mail_from.partition("@")
    assert domain == "bounces.example.com" and local.startswith("bounces+")
    assert len(local) <= 64  # RFC 5321's limit of a local part
    token = local.removeprefix("bounces+")
    assert TOKEN.match(token)  # lower case only: an MTA folding case changes nothing
    message = received.message()
    assert message["X-Netanim-Delivery"] == token
    assert message["Return-Path"] is None  # the receiving MTA writes it from MAIL FROM
    # The token leads back to this delivery, as the sources' parser reads it.
    assert verp_token(received.mail_from, "bounces") == token
    assert key_hash_of(app.signer, token) == delivery.key_hash
    assert message["Message-ID"] == f"<{delivery.key_hash}@example.com>"
    # Every other contact's email has its own envelope address.
    senders = {r.mail_from for r in smtp_server.messages}
    assert len(senders) == len(smtp_server.messages) > 1


def test_plain_return_path_when_verp_is_off(
    app: App, cli, config_path: Path, smtp_server: SmtpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETANIM_BOUNCES_RETURN_PATH", "retours@example.com")
    _send(cli, config_path, smtp_server, app)
    [received] = smtp_server.received_for(HELENE)
    assert received.mail_from == "retours@example.com"
    assert TOKEN.match(received.message()["X-Netanim-Delivery"])


def test_the_sender_s_address_when_neither_is_set(
    app: App, cli, config_path: Path, smtp_server: SmtpPeer
) -> None:
    _send(cli, config_path, smtp_server, app)
    [received] = smtp_server.received_for(HELENE)
    assert received.mail_from == "animation@example.com"


def test_token_round_trip_key_rotation_and_forgeries() -> None:
    old, new = b"o" * 32, b"n" * 32
    key_hash = "0123456789abcdef" * 2
    token = token_for(LinkSigner(old, "https://x"), key_hash)
    assert TOKEN.match(token)
    rotated = LinkSigner(new, "https://x", previous=[old])
    assert key_hash_of(rotated, token) == key_hash  # sent before the rotation: still ours
    assert key_hash_of(rotated, token.upper()) == key_hash
    assert key_hash_of(LinkSigner(new, "https://x"), token) is None  # another key
    other = key_hash.replace("0", "f", 1)
    altered = token_for(LinkSigner(b"x" * 32, "https://x"), other)
    assert key_hash_of(rotated, altered) is None
    for bad in ("", "not-a-token", token[:-2], token + "a", token[:-1] + "7"):
        assert key_hash_of(rotated, bad) is None
    # A token of another purpose (an unsubscribe link's) never passes as a bounce token.
    signer = LinkSigner(old, "https://x")
    assert key_hash_of(signer, signer.sign("unsubscribe", [1, "email"])) is None


def test_an_unusable_envelope_setting_is_a_user_error_naming_it() -> None:
    from network_anim.compose.bounce_token import envelope_sender
    from network_anim.config.settings import BounceSettings
    from network_anim.errors import UserError

    token = token_for(LinkSigner(b"k" * 32, "https://x"), "ab" * 16)
    with pytest.raises(UserError, match=r"bounces\.verp_local_part"):
        envelope_sender(
            BounceSettings(verp_domain="b.example", verp_local_part="r" * 19), "", token
        )
    assert (
        len(
            envelope_sender(
                BounceSettings(verp_domain="b.example", verp_local_part="r" * 18), "", token
            ).split("@")[0]
        )
        == 64
    )
    with pytest.raises(UserError, match=r"bounces\.return_path"):
        envelope_sender(BounceSettings(return_path="not an address"), "", token)
