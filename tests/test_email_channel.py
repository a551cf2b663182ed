"""Email channel: message building, SMTP outcome classification, SMTP and file transports.

SMTP tests run the production transport against a real aiosmtpd server on 127.0.0.1
(tests/peers/smtp_server.py, fixtures registered in tests/conftest.py) and assert on
the bytes it received.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPConnectTimeoutError,
    SMTPDataError,
    SMTPReadTimeoutError,
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from network_anim.channels.contract import Outbound, Recipient, SendResult
from network_anim.channels.email_file import FileEmailTransport
from network_anim.channels.email_mime import build_email, message_id_for
from network_anim.channels.email_smtp import SmtpTransport, classify_smtp_error
from network_anim.clock import SimulatedClock
from network_anim.config.settings import EmailSettings
from network_anim.domain import Outcome
from tests.peers.smtp_server import (
    MAILBOX_UNAVAILABLE,
    SERVICE_CLOSING,
    TRY_LATER,
    Fault,
    SmtpPeer,
    make_tls_contexts,
)

SENDER = "Animation réseau <animation@example.com>"
# The engine clock every transport dates its messages with (the Date: header).
SENT_AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
CLOCK = SimulatedClock(SENT_AT)


# Every SMTP test runs twice: against a server that answers one command at a time, and
# against one offering PIPELINING, where the transport writes MAIL, RCPT and DATA at once
# (the faults then hit a pipelined envelope).
@pytest.fixture(params=[False, True], ids=["plain", "pipelining"])
def pipelining(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def smtp_server(pipelining: bool) -> Iterator[SmtpPeer]:
    with SmtpPeer(pipelining=pipelining) as peer:
        yield peer


@pytest.fixture
def smtp_server_factory(pipelining: bool) -> Iterator[Callable[..., SmtpPeer]]:
    peers: list[SmtpPeer] = []

    def start(**options: Any) -> SmtpPeer:
        peer = SmtpPeer(pipelining=pipelining, **options).start()
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        peer.stop()


UNSUBSCRIBE = (
    "<mailto:unsubscribe@example.com?subject=unsubscribe-4f2a9c>, "
    "<https://portal.example.com/unsubscribe/4f2a9c7be1d04a55a0c3d2e1f6a7b8c9>"
)
TEXT = (
    "Bonjour Hélène,\n\n"
    "Votre challenge « Été 2025 » avance : 12 ventes, déjà 3 000 points.\n"
    ".Une ligne qui commence par un point\n"
    "From here, a line mbox readers like to mangle\n"
    "Trailing spaces stay   \n"
    "Une très longue ligne " + "é" * 300 + "\n"
)
HTML = "<p>Bonjour Hélène,</p>\n<p>Votre challenge « Été 2025 » avance&nbsp;: 12 ventes.</p>\n"


def outbound(
    n: int = 1,
    *,
    email_address: str | None = "helene.dupre@example.fr",
    name: str = "Hélène Dupré",
    subject: str = "Relance : votre challenge « Été » se termine",
    text: str = TEXT,
    html: str | None = HTML,
    key: str | None = None,
) -> Outbound:
    return Outbound(
        delivery_id=n,
        idempotency_key=key or f"challenge-ete:relance:2025-06-01:{n}",
        channel="email",
        recipient=Recipient(
            contact_id=n, external_id=f"C{n:04d}", display_name=name, email=email_address
        ),
        subject=subject,
        text=text,
        html=html,
        headers={
            "List-Unsubscribe": UNSUBSCRIBE,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    for part in message.walk():
        assert not part.defects, part.defects
    return message


def body_text(part: EmailMessage) -> str:
    # CRLF is the canonical line end inside MIME text; compare with "\n".
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def settings_for(peer: SmtpPeer, **overrides: object) -> EmailSettings:
    values: dict[str, object] = {
        "transport": "smtp",
        "sender": SENDER,
        "reply_to": "Support <support@example.com>",
        "host": peer.host,
        "port": peer.port,
        "timeout": 2.0,
    }
    values.update(overrides)
    return EmailSettings.model_validate(values)


# --------------------------------------------------------------------------------------
# build_email
# --------------------------------------------------------------------------------------


def test_build_email_is_multipart_alternative_with_both_parts_round_tripping() -> None:
    raw = build_email(outbound(), sender=SENDER, reply_to="support@example.com", date=SENT_AT)

    assert raw.isascii()  # 7-bit clean: every non-ASCII character is encoded
    lines = raw.split(b"\r\n")
    assert b"\n" not in b"".join(lines)  # CRLF only, no bare LF
    assert max(len(line) for line in lines) <= 78
    message = parse(raw)
    assert message.get_content_type() == "multipart/alternative"
    plain, html = list(message.iter_parts())
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    for part in (plain, html):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert body_text(plain) == TEXT
    assert body_text(html) == HTML


def test_build_email_headers() -> None:
    item = outbound()
    when = datetime(2025, 6, 2, 8, 30, tzinfo=UTC)
    raw = build_email(item, sender=SENDER, reply_to="support@example.com", date=when)
    message = parse(raw)

    assert message["Subject"] == item.subject
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n")[0]  # encoded words, not raw 8-bit
    assert str(message["From"]) == "Animation réseau <animation@example.com>"
    assert message["To"].addresses[0].display_name == "Hélène Dupré"
    assert message["To"].addresses[0].addr_spec == "helene.dupre@example.fr"
    assert str(message["Reply-To"]) == "support@example.com"
    assert message["Date"].datetime == when
    assert message["MIME-Version"] == "1.0"
    # The planner's unsubscribe pair arrives verbatim (RFC 8058 needs both).
    assert message["List-Unsubscribe"] == UNSUBSCRIBE
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.parametrize(
    "value",
    [
        "<https://portal.example.com/unsubscribe/" + "a" * 120 + ">",
        "<mailto:u@example.com?subject=" + "b" * 90 + ">,  <https://p.example.com/u/1>",
        " <https://p.example.com/u/leading-space>",
    ],
)
def test_build_email_keeps_long_header_values_verbatim(value: str) -> None:
    item = replace(outbound(), headers={"List-Unsubscribe": value})
    raw = build_email(item, sender=SENDER, date=SENT_AT)

    header_lines = raw.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert all(line.strip() for line in header_lines)  # no whitespace-only fold line
    # Unfolding (dropping each CRLF) gives the value back byte for byte.
    unfolded = raw.split(b"\r\n\r\n")[0].replace(b"\r\n", b"").decode()
    assert f"List-Unsubscribe: {value}" in unfolded
    assert parse(raw)["List-Unsubscribe"] == value.lstrip()


def test_build_email_message_id_is_deterministic_per_idempotency_key() -> None:
    first = parse(build_email(outbound(key="k-1"), sender=SENDER, date=SENT_AT))["Message-ID"]
    again = parse(build_email(outbound(key="k-1", text="changed"), sender=SENDER, date=SENT_AT))[
        "Message-ID"
    ]
    other = parse(build_email(outbound(key="k-2"), sender=SENDER, date=SENT_AT))["Message-ID"]

    assert first == again == message_id_for("k-1", sender=SENDER)
    assert first != other
    assert first.startswith("<") and first.endswith("@example.com>")


def test_build_email_same_input_same_bytes() -> None:
    when = datetime(2025, 6, 2, 8, 30, tzinfo=UTC)
    assert build_email(outbound(), sender=SENDER, date=when) == build_email(
        outbound(), sender=SENDER, date=when
    )


def test_build_email_text_only_is_single_part_and_exact() -> None:
    text = "Pas de version HTML. Dernière ligne sans retour"
    message = parse(build_email(outbound(html=None, text=text), sender=SENDER, date=SENT_AT))

    assert not message.is_multipart()
    assert message.get_content_type() == "text/plain"
    assert body_text(message) == text


def test_build_email_encodes_names_and_international_domains() -> None:
    raw = build_email(
        outbound(name="Dupré, Hélène", email_address="contact@café.example"),
        sender=SENDER,
        date=SENT_AT,
    )
    message = parse(raw)

    address = message["To"].addresses[0]
    assert address.display_name == "Dupré, Hélène"
    assert address.addr_spec == "contact@xn--caf-dma.example"


def test_build_email_neutralises_header_injection() -> None:
    item = outbound(subject="Bonjour\r\nBcc: victim@example.com", name="Eve\nBcc: x@example.com")
    message = parse(build_email(item, sender=SENDER, date=SENT_AT))

    assert message["Bcc"] is None
    assert message["Subject"] == "Bonjour Bcc: victim@example.com"


def test_build_email_folds_line_breaks_in_header_values() -> None:
    item = replace(outbound(), headers={"X-Campaign": "ete\r\nBcc: victim@example.com"})
    message = parse(build_email(item, sender=SENDER, date=SENT_AT))

    assert message["Bcc"] is None
    assert message["X-Campaign"] == "ete Bcc: victim@example.com"


@pytest.mark.parametrize(
    "headers",
    [{"Bad Name": "x"}, {"Message-ID": "<forged@example.com>"}, {"Content-Type": "text/plain"}],
)
def test_build_email_refuses_malformed_or_reserved_headers(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        build_email(replace(outbound(), headers=headers), sender=SENDER, date=SENT_AT)


def test_build_email_refuses_missing_or_unsafe_address() -> None:
    with pytest.raises(ValueError, match="no email address"):
        build_email(outbound(email_address=None), sender=SENDER, date=SENT_AT)
    with pytest.raises(ValueError):
        build_email(
            outbound(email_address="a@b.example> NOTIFY=NEVER"), sender=SENDER, date=SENT_AT
        )


# --------------------------------------------------------------------------------------
# classify_smtp_error
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "data_sent", "outcome", "in_detail"),
    [
        (SMTPRecipientRefused(421, "4.3.2 closing", "a@x"), False, Outcome.DEFERRED, "421"),
        (SMTPRecipientRefused(450, "4.2.1 busy", "a@x"), False, Outcome.DEFERRED, "450"),
        (SMTPRecipientRefused(451, "4.3.0 later", "a@x"), False, Outcome.DEFERRED, "451"),
        (SMTPRecipientRefused(452, "4.2.2 full", "a@x"), False, Outcome.DEFERRED, "452"),
        (
            SMTPRecipientRefused(550, "5.1.1 mailbox unavailable", "a@x"),
            False,
            Outcome.FAILED,
            "550 5.1.1 mailbox unavailable",
        ),
        (SMTPRecipientRefused(551, "5.1.6 moved", "a@x"), False, Outcome.FAILED, "551"),
        (SMTPRecipientRefused(553, "5.1.3 bad address", "a@x"), False, Outcome.FAILED, "553"),
        (
            SMTPRecipientsRefused([SMTPRecipientRefused(550, "5.1.1 unknown", "a@x")]),
            False,
            Outcome.FAILED,
            "550 5.1.1 unknown",
        ),
        (SMTPDataError(554, "5.7.1 rejected as spam"), True, Outcome.FAILED, "554 5.7.1"),
        (SMTPDataError(451, "4.3.0 local error"), True, Outcome.DEFERRED, "451 4.3.0"),
        (SMTPDataError(552, "5.3.4 too big"), False, Outcome.FAILED, "552"),
        (SMTPServerDisconnected("Connection lost"), False, Outcome.DEFERRED, "lost"),
        (SMTPServerDisconnected("Connection lost"), True, Outcome.UNKNOWN, "lost"),
        (SMTPReadTimeoutError("Timed out"), False, Outcome.DEFERRED, "timed out"),
        (SMTPReadTimeoutError("Timed out"), True, Outcome.UNKNOWN, "timed out"),
        (ConnectionResetError("reset by peer"), True, Outcome.UNKNOWN, "reset"),
        (SMTPResponseException(-1, "Malformed SMTP response"), True, Outcome.UNKNOWN, "-1"),
        (SMTPConnectError("Error connecting: refused"), False, Outcome.DEFERRED, "refused"),
        (SMTPConnectTimeoutError("Timed out connecting"), False, Outcome.DEFERRED, "Timed out"),
        (SMTPSenderRefused(553, "5.7.1 not owner", "a@x"), False, Outcome.DEFERRED, "sender"),
        (SMTPSenderRefused(552, "5.3.4 too big", "a@x"), False, Outcome.FAILED, "552"),
        (SMTPResponseException(530, "5.7.0 auth required"), False, Outcome.DEFERRED, "530"),
        (ssl.SSLCertVerificationError(1, "verify failed"), False, Outcome.DEFERRED, "TLS"),
        (ValueError("Address contains characters"), False, Outcome.FAILED, "Address"),
    ],
)
def test_classify_smtp_error(
    exc: BaseException, data_sent: bool, outcome: Outcome, in_detail: str
) -> None:
    result = classify_smtp_error(exc, data_sent=data_sent)

    assert result.outcome is outcome
    assert in_detail in result.detail
    assert result.retry_after is None


def test_classify_authentication_error_points_at_credentials() -> None:
    exc = SMTPAuthenticationError(535, "5.7.8 Authentication credentials invalid")
    result = classify_smtp_error(exc, data_sent=False)

    assert result.outcome is Outcome.DEFERRED  # a config problem keeps the fallback intact
    assert "535 5.7.8 Authentication credentials invalid" in result.detail
    assert "username_env" in result.detail and "password_env" in result.detail


# --------------------------------------------------------------------------------------
# SmtpTransport against a real server
# --------------------------------------------------------------------------------------


async def test_smtp_delivers_a_batch_over_few_reused_connections(
    smtp_server: SmtpPeer, pipelining: bool
) -> None:
    items = [outbound(n, email_address=f"seller{n}@example.fr") for n in range(20)]

    async with SmtpTransport(settings_for(smtp_server), clock=CLOCK, concurrency=3) as transport:
        results = await transport.send_batch(items)
        sessions = [session for session in transport._clients if session is not None]
        # The envelope goes in one write exactly when the server offers PIPELINING.
        assert sessions and all(session.pipelining is pipelining for session in sessions)
        opened_by_first_batch = smtp_server.connections
        more = await transport.send_batch([outbound(99, email_address="late@example.fr")])

    assert [r.outcome for r in results] == [Outcome.SENT] * 20
    assert more[0].outcome is Outcome.SENT
    assert 1 <= opened_by_first_batch <= 3 < len(items)
    assert smtp_server.connections == opened_by_first_batch  # second batch reused one
    assert smtp_server.quits == opened_by_first_batch  # QUIT on exit, per session
    assert len(smtp_server.messages) == 21
    for n, result in enumerate(results):
        (received,) = smtp_server.received_for(f"seller{n}@example.fr")
        assert received.mail_from == "animation@example.com"
        message = received.message()
        assert message["Message-ID"] == result.provider_id
        assert message["Message-ID"] == message_id_for(items[n].idempotency_key, sender=SENDER)
        assert message["List-Unsubscribe"] == UNSUBSCRIBE
        assert message["Reply-To"].addresses[0].addr_spec == "support@example.com"
        plain, html = list(message.iter_parts())
        # Dot-stuffing and line ends survived the wire: the text is exactly the input.
        assert body_text(plain) == TEXT
        assert body_text(html) == HTML
    assert "250" in results[0].detail


async def test_smtp_received_bytes_are_what_build_email_made(smtp_server: SmtpPeer) -> None:
    item = outbound(html=None, text=".\n..\nline\n.")
    async with SmtpTransport(settings_for(smtp_server), clock=CLOCK, concurrency=1) as transport:
        (result,) = await transport.send_batch([item])

    assert result.outcome is Outcome.SENT
    (received,) = smtp_server.messages
    expected = build_email(
        item, sender=SENDER, reply_to="Support <support@example.com>", date=SENT_AT
    )
    # Byte-identical, Date included: the transport dates the message with the engine clock.
    assert received.data.rstrip(b"\r\n") == expected.rstrip(b"\r\n")
    assert body_text(received.message()) == ".\n..\nline\n."


async def test_both_transports_date_each_message_with_the_engine_clock(
    smtp_server: SmtpPeer, tmp_path: Path
) -> None:
    """A simulated run's emails carry their simulated send time, not the machine's."""
    clock = SimulatedClock(datetime(2027, 3, 15, 6, 0, tzinfo=UTC))
    smtp = SmtpTransport(settings_for(smtp_server), clock=clock, concurrency=1)
    files = FileEmailTransport(tmp_path, sender=SENDER, clock=clock)
    async with smtp, files:
        await smtp.send_batch([outbound(1)])
        (first,) = await files.send_batch([outbound(1)])
        clock.advance(timedelta(days=31, hours=2))
        await smtp.send_batch([outbound(2)])
        (second,) = await files.send_batch([outbound(2)])

    sent = [message.message()["Date"] for message in smtp_server.messages]
    written = [parse(Path(str(r.provider_id)).read_bytes())["Date"] for r in (first, second)]
    for dates in (sent, written):
        assert dates == ["Mon, 15 Mar 2027 06:00:00 +0000", "Thu, 15 Apr 2027 08:00:00 +0000"]


@pytest.mark.parametrize(
    ("fault", "outcome", "code"),
    [
        (SERVICE_CLOSING, Outcome.DEFERRED, "421 4.3.2"),
        (TRY_LATER, Outcome.DEFERRED, "451 4.3.0 try again later"),
        (MAILBOX_UNAVAILABLE, Outcome.FAILED, "550 5.1.1 mailbox unavailable"),
        (Fault.at_data("451 4.7.1 greylisted"), Outcome.DEFERRED, "451 4.7.1 greylisted"),
        (Fault.at_data("554 5.7.1 rejected as spam"), Outcome.FAILED, "554 5.7.1"),
    ],
)
async def test_smtp_refusals_map_to_outcomes(
    smtp_server: SmtpPeer, fault: Fault, outcome: Outcome, code: str
) -> None:
    smtp_server.fail("refused@example.fr", fault)
    items = [
        outbound(1, email_address="ok1@example.fr"),
        outbound(2, email_address="refused@example.fr"),
        outbound(3, email_address="ok3@example.fr"),
    ]
    async with SmtpTransport(settings_for(smtp_server), clock=CLOCK, concurrency=1) as transport:
        results = await transport.send_batch(items)

    assert [r.outcome for r in results] == [Outcome.SENT, outcome, Outcome.SENT]
    assert code in results[1].detail
    assert results[1].provider_id is None
    assert not smtp_server.received_for("refused@example.fr")
    assert len(smtp_server.received_for("ok3@example.fr")) == 1


async def test_smtp_reconnects_after_421_and_next_message_goes_through(
    smtp_server: SmtpPeer,
) -> None:
    smtp_server.fail("busy@example.fr", Fault.at_rcpt("421 4.7.0 too busy", close=True, times=1))
    transport = SmtpTransport(settings_for(smtp_server), clock=CLOCK, concurrency=1)
    async with transport:
        (first,) = await transport.send_batch([outbound(1, email_address="busy@example.fr")])
        (second,) = await transport.send_batch([outbound(2, email_address="busy@example.fr")])

    assert first.outcome is Outcome.DEFERRED and "421 4.7.0 too busy" in first.detail
    assert second.outcome is Outcome.SENT
    assert smtp_server.connections == 2  # the server hung up, the transport dialled again
    assert len(smtp_server.received_for("busy@example.fr")) == 1


async def test_smtp_connection_dropped_after_data_is_unknown(smtp_server: SmtpPeer) -> None:
    smtp_server.fail("lost@example.fr", Fault.drop_after_data())
    items = [
        outbound(1, email_address="a@example.fr"),
        outbound(2, email_address="lost@example.fr"),  # on the session opened for a@
        outbound(3, email_address="b@example.fr"),
    ]
    async with SmtpTransport(settings_for(smtp_server), clock=CLOCK, concurrency=1) as transport:
        results = await transport.send_batch(items)

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.UNKNOWN, Outcome.SENT]
    assert "after the message data was sent" in results[1].detail
    # The server did get the whole message, exactly once: no automatic resend.
    assert len(smtp_server.received_for("lost@example.fr")) == 1
    assert smtp_server.connections == 2  # a fresh session for b@


async def test_smtp_no_reply_after_data_within_timeout_is_unknown(smtp_server: SmtpPeer) -> None:
    smtp_server.fail("slow@example.fr", Fault.hang_after_data(5.0))
    settings = settings_for(smtp_server, timeout=0.3)
    async with SmtpTransport(settings, clock=CLOCK, concurrency=1) as transport:
        (result,) = await transport.send_batch([outbound(1, email_address="slow@example.fr")])

    assert result.outcome is Outcome.UNKNOWN
    assert "timed out" in result.detail


async def test_smtp_server_not_listening_defers_everything(smtp_server: SmtpPeer) -> None:
    settings = settings_for(smtp_server)
    smtp_server.stop()
    items = [outbound(n, email_address=f"s{n}@example.fr") for n in range(5)]
    started = time.monotonic()
    async with SmtpTransport(settings, clock=CLOCK, concurrency=2) as transport:
        results = await transport.send_batch(items)

    assert [r.outcome for r in results] == [Outcome.DEFERRED] * 5
    assert all(str(settings.port) in r.detail for r in results)
    # The first refusal stops the others from each trying (and waiting) again.
    assert sum("not attempted" in r.detail for r in results) >= 3
    assert time.monotonic() - started < 2.0


async def test_smtp_reconnects_after_the_server_closed_an_idle_session(
    smtp_server_factory: Callable[..., SmtpPeer],
) -> None:
    peer = smtp_server_factory(idle_timeout=0.2)
    async with SmtpTransport(settings_for(peer), clock=CLOCK, concurrency=1) as transport:
        (first,) = await transport.send_batch([outbound(1, email_address="a@example.fr")])
        await asyncio.sleep(0.4)  # the server times the session out meanwhile
        (second,) = await transport.send_batch([outbound(2, email_address="b@example.fr")])

    assert (first.outcome, second.outcome) == (Outcome.SENT, Outcome.SENT)
    assert peer.connections == 2
    assert len(peer.messages) == 2


async def test_smtp_retries_once_when_a_reused_session_dies_at_mail(
    smtp_server: SmtpPeer,
) -> None:
    async with SmtpTransport(settings_for(smtp_server), clock=CLOCK, concurrency=1) as transport:
        (first,) = await transport.send_batch([outbound(1, email_address="a@example.fr")])
        # The server hangs up on the next MAIL FROM without answering: nothing was sent.
        smtp_server.fail_all(Fault.drop_at_mail(times=1))
        (second,) = await transport.send_batch([outbound(2, email_address="b@example.fr")])

    assert (first.outcome, second.outcome) == (Outcome.SENT, Outcome.SENT), second.detail
    assert smtp_server.connections == 2
    assert len(smtp_server.received_for("b@example.fr")) == 1


async def test_smtp_fresh_session_dying_at_mail_is_deferred_not_retried(
    smtp_server: SmtpPeer,
) -> None:
    smtp_server.fail_all(Fault.drop_at_mail(times=1))
    async with SmtpTransport(settings_for(smtp_server), clock=CLOCK, concurrency=1) as transport:
        (result,) = await transport.send_batch([outbound(1)])

    assert result.outcome is Outcome.DEFERRED
    assert smtp_server.connections == 1


async def test_smtp_recipient_without_address_fails_without_connecting(
    smtp_server: SmtpPeer,
) -> None:
    async with SmtpTransport(settings_for(smtp_server), clock=CLOCK) as transport:
        (result,) = await transport.send_batch([outbound(email_address=None)])

    assert result == SendResult(Outcome.FAILED, detail="no email address")
    assert smtp_server.connections == 0


async def test_smtp_results_follow_input_order_with_mixed_outcomes(smtp_server: SmtpPeer) -> None:
    smtp_server.fail("bad@example.fr", MAILBOX_UNAVAILABLE)
    smtp_server.fail("later@example.fr", TRY_LATER)
    addresses = ["bad@example.fr", "a@example.fr", None, "later@example.fr", "b@example.fr"] * 3
    items = [outbound(n, email_address=a) for n, a in enumerate(addresses)]
    async with SmtpTransport(settings_for(smtp_server), clock=CLOCK, concurrency=4) as transport:
        results = await transport.send_batch(items)

    expected = {
        "bad@example.fr": Outcome.FAILED,
        "a@example.fr": Outcome.SENT,
        None: Outcome.FAILED,
        "later@example.fr": Outcome.DEFERRED,
        "b@example.fr": Outcome.SENT,
    }
    assert [r.outcome for r in results] == [expected[a] for a in addresses]


async def test_smtp_login_with_good_and_bad_credentials(
    smtp_server_factory: Callable[..., SmtpPeer],
) -> None:
    peer = smtp_server_factory(credentials=("relay-user", "s3cret"))
    settings = settings_for(peer, username_env="SMTP_USER", password_env="SMTP_PASSWORD")

    async with SmtpTransport(
        settings, clock=CLOCK, username="relay-user", password="s3cret"
    ) as good:
        (ok,) = await good.send_batch([outbound(1)])
    items = [outbound(n, email_address=f"s{n}@example.fr") for n in range(3)]
    async with SmtpTransport(settings, clock=CLOCK, username="relay-user", password="wrong") as bad:
        refused = await bad.send_batch(items)

    assert ok.outcome is Outcome.SENT
    assert [r.outcome for r in refused] == [Outcome.DEFERRED] * 3
    assert "535" in refused[0].detail and "password_env" in refused[0].detail
    assert len(peer.messages) == 1


@pytest.mark.parametrize("security", ["starttls", "ssl"])
async def test_smtp_over_tls(smtp_server_factory: Callable[..., SmtpPeer], security: str) -> None:
    pytest.importorskip("cryptography")
    server_context, client_context = make_tls_contexts()
    if security == "starttls":
        peer = smtp_server_factory(starttls=server_context)
    else:
        peer = smtp_server_factory(implicit_tls=server_context)
    settings = settings_for(peer, security=security)

    async with SmtpTransport(settings, clock=CLOCK, tls_context=client_context) as transport:
        (result,) = await transport.send_batch([outbound(1)])

    assert result.outcome is Outcome.SENT, result.detail
    assert peer.messages[0].tls
    assert body_text(next(peer.messages[0].message().iter_parts())) == TEXT


async def test_smtp_tls_with_untrusted_certificate_defers(
    smtp_server_factory: Callable[..., SmtpPeer],
) -> None:
    pytest.importorskip("cryptography")
    server_context, _ = make_tls_contexts()
    peer = smtp_server_factory(starttls=server_context)

    async with SmtpTransport(settings_for(peer, security="starttls"), clock=CLOCK) as transport:
        (result,) = await transport.send_batch([outbound(1)])

    assert result.outcome is Outcome.DEFERRED
    assert not peer.messages


# --------------------------------------------------------------------------------------
# FileEmailTransport
# --------------------------------------------------------------------------------------


async def test_file_transport_writes_parseable_eml_and_overwrites_on_retry(
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "var" / "outbox" / "email"  # created by the transport
    transport = FileEmailTransport(
        outbox, sender=SENDER, reply_to="support@example.com", clock=CLOCK
    )
    items = [outbound(1), outbound(2, email_address=None), outbound(3, html=None)]

    async with transport:
        results = await transport.send_batch(items)
        (retry,) = await transport.send_batch([outbound(1, text="Deuxième essai.\n")])

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.FAILED, Outcome.SENT]
    assert results[1].detail == "no email address"
    files = sorted(outbox.iterdir())
    assert len(files) == 2  # the retry replaced its file; no temporary file left behind
    assert retry.provider_id == results[0].provider_id
    first = Path(str(results[0].provider_id))
    assert first.suffix == ".eml" and first.parent == outbox
    message = parse(first.read_bytes())
    assert message["Message-ID"] == message_id_for(items[0].idempotency_key, sender=SENDER)
    assert body_text(next(message.iter_parts())) == "Deuxième essai.\n"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    third = parse(Path(str(results[2].provider_id)).read_bytes())
    assert body_text(third) == TEXT


async def test_file_transport_write_error_defers(tmp_path: Path) -> None:
    transport = FileEmailTransport(tmp_path, sender=SENDER, clock=CLOCK)
    # Something that cannot be replaced by a file sits where the message should go.
    transport.path_for(outbound(1).idempotency_key).mkdir()
    async with transport:
        (result,) = await transport.send_batch([outbound(1)])

    assert result.outcome is Outcome.DEFERRED
    assert "cannot write" in result.detail
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == []  # no stray temp file


@settings(max_examples=300, deadline=None)
@given(subject=st.text(min_size=1, max_size=300).filter(lambda t: not t.isascii()))
def test_non_ascii_subjects_fold_at_78_columns_and_decode_back(subject: str) -> None:
    from network_anim.channels.email_mime import _single_line

    item = Outbound(
        delivery_id=1,
        idempotency_key="k",
        channel="email",
        recipient=Recipient(
            contact_id=1, external_id="c", display_name="Zoé", email="z@example.com"
        ),
        subject=subject,
        text="t",
    )
    raw = build_email(item, sender="Animation réseau <a@example.com>", date=SENT_AT)
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in header_block.split(b"\r\n"))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(parsed["Subject"]) == _single_line(subject)
