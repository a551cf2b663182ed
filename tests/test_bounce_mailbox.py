"""The bounce mailbox against a real IMAP server (dovecot on 127.0.0.1, tests/peers):
messages are read by UID, handed over, then filed into the processed and unreadable
folders (created as needed), with MOVE or with COPY + EXPUNGE, over plain IMAP, STARTTLS
or implicit TLS; a poll stopped half-way files what it handled and leaves the rest."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from network_anim.bounces.events import FeedbackEvent
from network_anim.bounces.mailbox import MailboxUnavailable, poll_mailbox
from network_anim.bounces.reports import read_report
from network_anim.config.settings import BounceMailbox
from network_anim.errors import UserError

if TYPE_CHECKING:
    from tests.peers.imap_server import ImapPeer

pytest_plugins = ["tests.peers.imap_server"]

CORPUS = Path(__file__).parent / "data" / "bounces"
ENV = {"NETANIM_BOUNCE_IMAP_USER": "bounces", "NETANIM_BOUNCE_IMAP_PASSWORD": "s3cret-imap"}


def settings_for(peer: ImapPeer, **overrides: object) -> BounceMailbox:
    values: dict[str, object] = {
        "host": peer.host,
        "port": peer.port,
        "security": "none",
        "timeout": 10.0,
    }
    values.update(overrides)
    return BounceMailbox(**values)


def deliver(peer: ImapPeer, *names: str) -> None:
    for name in names:
        peer.append("INBOX", (CORPUS / name).read_bytes())


class Collector:
    def __init__(self, fail_on: int | None = None) -> None:
        self.events: list[FeedbackEvent] = []
        self.calls = 0
        self.fail_on = fail_on

    def __call__(self, raw: bytes) -> None:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("database down")
        self.events.extend(read_report(raw))


def test_poll_files_messages_and_a_second_poll_reads_nothing(imap_server: ImapPeer) -> None:
    deliver(imap_server, "postfix_user_unknown.eml", "autoreply_fr.eml", "malformed_binary.eml")
    handle = Collector()
    stats = poll_mailbox(settings_for(imap_server), handle, environ=ENV)
    assert (stats.read, stats.processed, stats.unreadable) == (3, 2, 1)
    assert [e.kind.value for e in handle.events] == ["hard_bounce", "auto_reply"]
    assert [uid for uid, _ in stats.problems] == ["3"]  # dovecot strips the NULs: any reason
    assert imap_server.messages("INBOX") == []
    assert len(imap_server.messages("netanim/processed")) == 2
    unreadable = imap_server.messages("netanim/unreadable")
    assert len(unreadable) == 1 and b"PNG" in unreadable[0]
    # What IMAP returns reads exactly as the file does (CRLF line ends and all).
    processed = imap_server.messages("netanim/processed")
    assert read_report(processed[0]) == read_report(
        (CORPUS / "postfix_user_unknown.eml").read_bytes()
    )

    again = Collector()
    stats = poll_mailbox(settings_for(imap_server), again, environ=ENV)
    assert (stats.read, again.calls) == (0, 0)


def test_a_poll_stopped_half_way_files_what_it_handled(imap_server: ImapPeer) -> None:
    deliver(
        imap_server, "exim_permanent.eml", "qmail_two_recipients.eml", "gmail_address_not_found.eml"
    )
    with pytest.raises(RuntimeError, match="database down"):
        poll_mailbox(settings_for(imap_server), Collector(fail_on=2), environ=ENV)
    assert len(imap_server.messages("netanim/processed")) == 1
    assert len(imap_server.messages("INBOX")) == 2  # the failed one and the one after it
    handle = Collector()
    stats = poll_mailbox(settings_for(imap_server), handle, environ=ENV)
    assert stats.processed == 2
    assert {e.ref.recipient for e in handle.events} == {
        "paul.petit@example.net",
        "claire.moreau@example.net",
        "thomas.roux@example.com",
    }


def test_a_server_without_move_gets_copy_and_expunge(imap_server_factory) -> None:
    peer = imap_server_factory(move=False)
    deliver(peer, "sendmail_headers_only.eml", "not_a_report.eml")
    stats = poll_mailbox(settings_for(peer), Collector(), environ=ENV)
    assert (stats.processed, stats.unreadable) == (1, 1)
    assert peer.messages("INBOX") == []
    assert len(peer.messages("netanim/processed")) == 1
    assert len(peer.messages("netanim/unreadable")) == 1


def test_custom_folders(imap_server: ImapPeer) -> None:
    imap_server.append("Bounces", (CORPUS / "mailbox_full_soft.eml").read_bytes())
    settings = settings_for(
        imap_server, folder="Bounces", processed_folder="Done", unreadable_folder="Odd"
    )
    assert poll_mailbox(settings, Collector(), environ=ENV).processed == 1
    assert len(imap_server.messages("Done")) == 1
    assert imap_server.messages("Bounces") == []


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls(imap_server_factory, security: str) -> None:
    peer = imap_server_factory(tls=True)
    deliver(peer, "yahoo_no_account.eml")
    port = peer.ssl_port if security == "ssl" else peer.port
    settings = settings_for(peer, security=security, port=port)
    handle = Collector()
    assert poll_mailbox(settings, handle, environ=ENV, ssl_context=peer.ssl_context).processed == 1
    assert handle.events[0].ref.recipient == "nathalie.blanc@yahoo.example.net"
    # The system's trust store does not know the test's certificate: refused, not read.
    deliver(peer, "yahoo_no_account.eml")
    with pytest.raises(MailboxUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        poll_mailbox(settings, Collector(), environ=ENV)


def test_a_missing_variable_names_it(imap_server: ImapPeer) -> None:
    with pytest.raises(UserError, match="NETANIM_BOUNCE_IMAP_PASSWORD is not set"):
        poll_mailbox(
            settings_for(imap_server),
            Collector(),
            environ={"NETANIM_BOUNCE_IMAP_USER": "bounces"},
        )


def test_a_wrong_password_is_a_user_error_without_the_secret(imap_server: ImapPeer) -> None:
    env = {**ENV, "NETANIM_BOUNCE_IMAP_PASSWORD": "wrong-one"}
    with pytest.raises(UserError, match="refused the login") as caught:
        poll_mailbox(settings_for(imap_server), Collector(), environ=env)
    assert "wrong-one" not in str(caught.value)


def test_a_server_down_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the test connects
    settings = BounceMailbox(host="127.0.0.1", port=port, security="none", timeout=2.0)
    with pytest.raises(MailboxUnavailable):
        poll_mailbox(settings, Collector(), environ=ENV)
