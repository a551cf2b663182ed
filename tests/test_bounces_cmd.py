"""``netanim bounces process``: saved DSNs read and applied (both databases), unreadable
files named and skipped with exit 1, the same file twice changes nothing, and the help's
examples run as written in a ``netanim new`` project."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.channels.email_mime import key_hash
from network_anim.clock import SimulatedClock
from network_anim.db.models import Contact, Delivery
from tests.conftest import SAMPLE_NETWORK, STOCK_ALERT, run_at

HELENE = "helene.dupre@tsl.example"  # C0001: email, mobile with SMS consent, Paris
REMINDER = ("--urgency", "reminder", *STOCK_ALERT[2:])  # email, then SMS, then print
FRIDAY_10_PARIS = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
FRIDAY_11_PARIS = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
CORPUS = Path(__file__).parent / "data" / "bounces"


def dsn_for(sent: bytes, recipient: str, *, report_id: str = "<dsn-1@relay.example.net>") -> bytes:
    """A Postfix-shaped DSN about ``sent`` (an email as the engine wrote it), addressed
    to its envelope sender, returning its headers: what the relay mails back."""
    head = sent.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("utf-8")
    return_path = next(
        line.split(":", 1)[1].strip().strip("<>")
        for line in head.splitlines()
        if line.lower().startswith("return-path:")
    )
    return f"""Return-Path: <>
Delivered-To: {return_path}
Date: Fri, 27 Nov 2026 11:00:02 +0100 (CET)
From: MAILER-DAEMON@relay.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {return_path}
Auto-Submitted: auto-replied
Message-Id: {report_id}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain; charset=us-ascii

This is the mail system at host relay.example.net.

<{recipient}>: host mx.tsl.example[192.0.2.9] said: 550 5.1.1 <{recipient}>:
    Recipient address rejected: User unknown (in reply to RCPT TO command)

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.net
Arrival-Date: Fri, 27 Nov 2026 10:00:01 +0100 (CET)

Final-Recipient: rfc822; {recipient}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown

--B1
Content-Type: text/rfc822-headers

{head}

--B1--
""".encode()


def send_reminder(
    cli, config_path: Path, app: App, occurrence: str, at: datetime = FRIDAY_10_PARIS
):  # type: ignore[no-untyped-def]
    """The reminder broadcast (sent at once by the file transport): its message id and
    the bytes of Hélène's email, as the relay was given them."""
    result = run_at(cli, config_path, at, *REMINDER, "--id", occurrence, "--json")
    assert result.code == 0, result
    message_id = json.loads(result.out)["message_id"]
    [email] = [r for r in helene_rows(app, message_id) if r.channel == "email"]
    outbox = config_path.parent / "var" / "outbox" / "email"
    return message_id, (outbox / f"{key_hash(email.idempotency_key)[:32]}.eml").read_bytes()


def helene_rows(app: App, message_id: int) -> list[Delivery]:
    with Session(app.engine) as session:
        return list(
            session.scalars(
                select(Delivery)
                .join(Contact, Contact.id == Delivery.contact_id)  # type: ignore[arg-type]
                .where(Contact.external_id == "C0001", Delivery.message_id == message_id)
                .order_by(Delivery.id)
            )
        )


@pytest.fixture
def imported(cli, config_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("NETANIM_BOUNCES_VERP_DOMAIN", "bounces.example.com")
    assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path)).code == 0
    return config_path


def process_at(cli, config_path: Path, moment: datetime, *args: str):  # type: ignore[no-untyped-def]
    import network_anim.app as app_module

    original = app_module.open_app

    def at_moment(*a, **kw):  # type: ignore[no-untyped-def]
        kw["clock"] = SimulatedClock(moment)
        return original(*a, **kw)

    app_module.open_app = at_moment
    try:
        return cli("bounces", "process", "-c", str(config_path), *args)
    finally:
        app_module.open_app = original


def test_a_dsn_file_bounces_the_email_and_plans_the_sms(
    cli, imported: Path, app: App, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    message_id, sent = send_reminder(cli, imported, app, "cmd-1")
    assert b"bounces+" in sent.split(b"\n", 1)[0]  # the VERP envelope sender comes first
    dsn = tmp_path / "dsn.eml"
    dsn.write_bytes(dsn_for(sent, HELENE))
    junk = tmp_path / "junk.eml"
    junk.write_bytes((CORPUS / "malformed_binary.eml").read_bytes())

    result = process_at(cli, imported, FRIDAY_11_PARIS, str(dsn), str(junk), "--json")
    assert result.code == 1, result  # one file was unreadable
    assert f"{junk}: unreadable, skipped: binary data" in result.err
    summary = json.loads(result.out)
    [read, skipped] = summary["files"]
    assert read["events"][0]["kind"] == "hard_bounce" and skipped["unreadable"]
    applied = summary["applied"]
    assert applied["applied"] == {"hard_bounce": 1} and applied["bounced"] == 1
    assert applied["fallbacks"] == {"sms": 1} and applied["forged_tokens"] == 0

    email, sms = helene_rows(app, message_id)
    assert email.status == "bounced" and sms.channel == "sms" and sms.parent_id == email.id
    with Session(app.engine) as session:
        helene = session.scalars(select(Contact).where(Contact.external_id == "C0001")).one()
        assert helene.email_invalid_at == FRIDAY_11_PARIS

    again = process_at(cli, imported, FRIDAY_11_PARIS, str(dsn), "--json")
    assert again.code == 0, again
    assert json.loads(again.out)["applied"]["duplicates"] == 1
    assert [r.status for r in helene_rows(app, message_id)] == [email.status, sms.status]
    assert len(helene_rows(app, message_id)) == 2


def test_a_folder_is_read_file_by_file(cli, imported: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "saved"
    folder.mkdir()
    for name in ("autoreply_fr.eml", "delayed_postfix.eml", "not_a_report.eml"):
        (folder / name).write_bytes((CORPUS / name).read_bytes())
    result = cli("bounces", "process", "-c", str(imported), str(folder))
    assert result.code == 1, result
    assert "delayed: no bounce" in result.out
    assert "not_a_report.eml: unreadable, skipped" in result.err
    assert "1 auto_reply" in result.out


def test_a_missing_file_is_a_usage_error(cli, imported: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("bounces", "process", "-c", str(imported), str(tmp_path / "nope.eml"))
    assert result.code == 2 and "does not exist" in result.err


def test_the_help_examples_run_as_written(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    help_text = cli("bounces", "process", "--help").out
    block = help_text[help_text.index("Example") :].split("\n\n")[0].splitlines()[1:]
    examples = [line.strip() for line in block]
    assert examples[0] == "netanim init"
    assert sum(line.startswith("netanim bounces process") for line in examples) == 2
    monkeypatch.chdir(tmp_path)
    assert cli("new", "proj").code == 0
    monkeypatch.chdir(tmp_path / "proj")
    for line in examples:
        result = cli(*line.split()[1:])
        assert result.code == 0, (line, result)
