"""What a bounce, a complaint or an unsubscribe request does (issue 15), both databases.

The emails are really sent (the file transport writes what the SMTP transport would
send, its Return-Path first); each test reads the token back from the email as a bounce
would carry it, builds the FeedbackEvent a source would give (the sources have their own
tests), applies it, and checks what the contact receives next, by which channel, when.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message as EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.bounces.apply import apply_feedback
from network_anim.bounces.events import DeliveryRef, FeedbackEvent, FeedbackKind
from network_anim.channels.email_mime import key_hash
from network_anim.clock import SimulatedClock
from network_anim.db.models import Consent, Contact, Delivery, Event, Feedback
from network_anim.network.importer import import_network
from network_anim.network.network_csv import ImportDefaults, read_network_csv
from tests.conftest import SAMPLE_NETWORK, STOCK_ALERT, WELCOME, run_at

HELENE = "helene.dupre@tsl.example"  # C0001: personal email, mobile, SMS consent, Paris
HELENE_MOBILE = "+33612345678"
VERP_DOMAIN = "bounces.example.com"
REMINDER = ("--urgency", "reminder", *STOCK_ALERT[2:])  # email, then SMS, then print
FRIDAY_19_PARIS = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
FRIDAY_2130_PARIS = datetime(2026, 11, 27, 20, 30, tzinfo=UTC)
SATURDAY_08_PARIS = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def verp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETANIM_BOUNCES_VERP_DOMAIN", VERP_DOMAIN)


def _import(cli, config_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path)).code == 0


def _eml(config_path: Path, key: str) -> EmailMessage:
    path = config_path.parent / "var" / "outbox" / "email" / f"{key_hash(key)[:32]}.eml"
    return message_from_bytes(path.read_bytes())


def _helene_rows(app: App, message_id: int) -> list[Delivery]:
    with Session(app.engine) as session:
        return list(
            session.scalars(
                select(Delivery)
                .join(Contact, Contact.id == Delivery.contact_id)  # type: ignore[arg-type]
                .where(Contact.external_id == "C0001", Delivery.message_id == message_id)
                .order_by(Delivery.id)
            )
        )


def _helene(app: App) -> Contact:
    with Session(app.engine) as session:
        contact = session.scalars(select(Contact).where(Contact.external_id == "C0001")).one()
        session.expunge(contact)
        return contact


def _sms_sent(config_path: Path) -> list[dict[str, str]]:
    path = config_path.parent / "var" / "outbox" / "sms" / "sms.jsonl"
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["to"] == HELENE_MOBILE]


def _send_reminder(cli, config_path: Path, app: App, at: datetime, occurrence: str):  # type: ignore[no-untyped-def]
    result = run_at(cli, config_path, at, *REMINDER, "--id", occurrence, "--json")
    assert result.code == 0, result
    message_id = json.loads(result.out)["message_id"]
    [email] = _helene_rows(app, message_id)
    assert email.channel == "email" and email.status == "sent"
    return message_id, email


def _bounce(
    email: EmailMessage, key: str, kind: FeedbackKind, status: str, words: str
) -> FeedbackEvent:
    """The event a DSN about ``email`` gives: the token of its envelope address."""
    envelope = email["Return-Path"].strip("<>")
    token = envelope.split("@")[0].split("+", 1)[1]
    return FeedbackEvent(
        kind=kind,
        source="dsn",
        key=key,
        ref=DeliveryRef(token=token, recipient=HELENE),
        status=status,
        diagnostic=words,
    )


def test_hard_bounce_bounces_the_email_plans_the_sms_in_its_window_and_marks_the_address(
    app: App, cli, config_path: Path, clock: SimulatedClock
) -> None:
    _import(cli, config_path)
    message_id, email = _send_reminder(cli, config_path, app, FRIDAY_19_PARIS, "bounce")
    sent = _eml(config_path, email.idempotency_key)
    assert sent["Return-Path"].startswith("<bounces+") and VERP_DOMAIN in sent["Return-Path"]

    clock.set(FRIDAY_2130_PARIS)  # the DSN comes back two and a half hours later
    words = "550 5.1.1 <helene.dupre@tsl.example>: Recipient address rejected: User unknown"
    dsn = _bounce(sent, "dsn:hard-1", FeedbackKind.HARD_BOUNCE, "5.1.1", words)
    stats = apply_feedback(app, [dsn])
    assert stats.applied == {"hard_bounce": 1} and stats.bounced == 1
    assert stats.marked_invalid == 1 and stats.fallbacks == {"sms": 1}

    email_row, sms = _helene_rows(app, message_id)
    assert email_row.status == "bounced" and "User unknown" in email_row.last_error
    assert not email_row.fallback_due
    # Friday 21:30 in Paris: promotional SMS wait for Saturday 08:00 (window, quiet hours).
    assert sms.channel == "sms" and sms.status == "pending" and sms.parent_id == email_row.id
    assert sms.due_at == SATURDAY_08_PARIS
    assert sms.reason.startswith("fallback: email failed (bounced: 550 5.1.1")
    assert "deferred to Sat 2026-11-28 08:00 Europe/Paris" in sms.reason
    with Session(app.engine) as session:
        events = session.scalars(select(Event.type).where(Event.delivery_id == email_row.id))
        assert "bounced" in list(events)  # the reports count it as not delivered
    helene = _helene(app)
    assert helene.email_invalid_at == FRIDAY_2130_PARIS
    assert helene.email_invalid_reason == words

    # Nothing goes by SMS on Friday night; Saturday 08:00 she gets the reminder's words.
    run_at(cli, config_path, FRIDAY_2130_PARIS + timedelta(minutes=5), command="dispatch")
    assert _sms_sent(config_path) == []
    run_at(cli, config_path, SATURDAY_08_PARIS, command="dispatch")
    [received] = _sms_sent(config_path)
    assert datetime.fromisoformat(received["at"]) == SATURDAY_08_PARIS
    assert "Routeur X200 de nouveau disponible, 40 unités" in received["body"]

    # The next broadcast routes her without email, and --explain says why.
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    result = run_at(cli, config_path, monday, *WELCOME, "--id", "after", "--explain", "--json")
    assert result.code == 0, result
    summary = json.loads(result.out)
    [explained] = [e for e in summary["explain"] if e["contact"] == "C0001"]
    text = json.dumps(explained, ensure_ascii=False)
    assert f"email invalid since 2026-11-27: {words}" in text
    channels = [r.channel for r in _helene_rows(app, summary["message_id"])]
    assert "email" not in channels and "print" in channels  # not urgent: print stands in


def test_the_same_dsn_twice_is_one_event_and_changes_nothing_more(
    app: App, cli, config_path: Path, clock: SimulatedClock
) -> None:
    _import(cli, config_path)
    message_id, email = _send_reminder(cli, config_path, app, FRIDAY_19_PARIS, "twice")
    clock.set(FRIDAY_2130_PARIS)
    dsn = _bounce(
        _eml(config_path, email.idempotency_key),
        "dsn:same",
        FeedbackKind.HARD_BOUNCE,
        "5.1.1",
        "550 5.1.1 user unknown",
    )
    first = apply_feedback(app, [dsn, dsn])  # twice in one batch
    clock.advance(timedelta(hours=1))
    second = apply_feedback(app, [dsn])  # and again, read from another source later
    assert first.applied == {"hard_bounce": 1} and first.duplicates == 1
    assert second.applied == {} and second.duplicates == 1 and second.fallbacks == {}
    with Session(app.engine) as session:
        assert len(session.scalars(select(Feedback)).all()) == 1
        [row] = session.scalars(select(Feedback)).all()
        assert row.received_at == FRIDAY_2130_PARIS and row.kind == "hard_bounce"
    assert [r.channel for r in _helene_rows(app, message_id)] == ["email", "sms"]
    assert _helene(app).email_invalid_at == FRIDAY_2130_PARIS  # the first report's date


def test_a_forged_token_is_ignored_as_a_clue(
    app: App, cli, config_path: Path, clock: SimulatedClock
) -> None:
    _import(cli, config_path)
    message_id, email = _send_reminder(cli, config_path, app, FRIDAY_19_PARIS, "forged")
    real = _bounce(
        _eml(config_path, email.idempotency_key), "x", FeedbackKind.HARD_BOUNCE, "5.1.1", ""
    )
    assert real.ref.token is not None
    token = real.ref.token
    # One character of the hash changed: the MAC no longer matches; no recipient either.
    forged_token = token[:5] + ("a" if token[5] != "a" else "b") + token[6:]
    forged = FeedbackEvent(
        kind=FeedbackKind.HARD_BOUNCE,
        source="dsn",
        key="dsn:forged",
        ref=DeliveryRef(token=forged_token),
        status="5.1.1",
    )
    stats = apply_feedback(app, [forged])
    assert stats.forged_tokens == 1 and stats.unresolved == 1 and stats.bounced == 0
    [row] = _helene_rows(app, message_id)
    assert row.status == "sent"
    assert _helene(app).email_invalid_at is None
    # The genuine token, in upper case as some MTAs write local parts, still verifies.
    upper = FeedbackEvent(
        kind=FeedbackKind.AUTO_REPLY, source="dsn", key="auto", ref=DeliveryRef(token.upper())
    )
    auto = apply_feedback(app, [upper])
    assert auto.forged_tokens == 0 and auto.unresolved == 0 and auto.applied == {"auto_reply": 1}
    with Session(app.engine) as session:
        reply = session.scalars(select(Feedback).where(Feedback.key == "auto")).one()
        assert reply.delivery_id == row.id and reply.outcome == "recorded"
    [row] = _helene_rows(app, message_id)
    assert row.status == "sent"  # an out-of-office is not a bounce


def test_soft_bounces_retry_later_then_become_hard_after_soft_to_hard(
    app: App, cli, config_path: Path, clock: SimulatedClock
) -> None:
    _import(cli, config_path)
    wednesday = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    message_id, email = _send_reminder(cli, config_path, app, wednesday, "soft")
    full = "452 4.2.2 mailbox full"

    def soft(row: Delivery, key: str) -> FeedbackEvent:
        return _bounce(
            _eml(config_path, row.idempotency_key), key, FeedbackKind.SOFT_BOUNCE, "4.2.2", full
        )

    clock.set(wednesday + timedelta(minutes=30))
    first = apply_feedback(app, [soft(email, "soft-1")])
    assert first.retries == 1 and first.marked_invalid == 0
    original, retry = _helene_rows(app, message_id)
    assert original.status == "bounced" and retry.channel == "email"
    assert retry.status == "pending" and retry.parent_id == original.id
    assert retry.due_at == clock.now() + timedelta(hours=1)  # the first retry: an hour later
    assert retry.reason.startswith(
        "retry: email soft-bounced (soft bounce: 452 4.2.2 mailbox full)"
    )
    # A second report of the same send (the relay's "still failing") plans no second retry.
    again = apply_feedback(app, [soft(email, "soft-1-bis")])
    assert again.retries == 0
    assert len(_helene_rows(app, message_id)) == 2

    run_at(cli, config_path, retry.due_at, command="dispatch")
    original, retry = _helene_rows(app, message_id)
    assert retry.status == "sent"
    resent = _eml(config_path, retry.idempotency_key)
    assert "Routeur X200" in resent["Subject"]

    clock.set(retry.due_at + timedelta(minutes=20))
    second = apply_feedback(app, [soft(retry, "soft-2")])
    assert second.retries == 1
    *_, retry2 = _helene_rows(app, message_id)
    assert retry2.due_at == clock.now() + timedelta(hours=2)  # backing off
    run_at(cli, config_path, retry2.due_at, command="dispatch")

    clock.set(retry2.due_at + timedelta(minutes=20))
    third = apply_feedback(app, [soft(retry2, "soft-3")])
    # The third soft bounce in 14 days: a hard one. No more email, the SMS goes instead.
    assert third.retries == 0 and third.marked_invalid == 1 and third.fallbacks == {"sms": 1}
    rows = _helene_rows(app, message_id)
    assert [r.channel for r in rows] == ["email", "email", "email", "sms"]
    assert rows[2].status == "bounced" and rows[3].parent_id == rows[2].id
    helene = _helene(app)
    assert helene.email_invalid_reason == "3 soft bounces in 14 days (last: 452 4.2.2 mailbox full)"


def test_complaint_stops_marketing_email_but_operational_email_still_goes(
    app: App, cli, config_path: Path, clock: SimulatedClock
) -> None:
    _import(cli, config_path)
    wednesday = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    _, email = _send_reminder(cli, config_path, app, wednesday, "spam")
    clock.set(wednesday + timedelta(hours=3))
    arf = FeedbackEvent(
        kind=FeedbackKind.COMPLAINT,
        source="arf",
        key="arf:1",
        ref=DeliveryRef(message_id=_eml(config_path, email.idempotency_key)["Message-ID"]),
    )
    stats = apply_feedback(app, [arf])
    assert stats.applied == {"complaint": 1} and stats.opted_out == 1
    with Session(app.engine) as session:
        consents = {
            c.channel: (c.basis, c.source)
            for c in session.scalars(select(Consent).where(Consent.contact_id == email.contact_id))
        }
        assert consents["email:marketing"] == ("opted_out", "complaint")
        types = list(session.scalars(select(Event.type).where(Event.delivery_id == email.id)))
        assert "complained" in types
    [row] = _helene_rows(app, email.message_id)
    assert row.status == "sent"  # delivered, and complained about: not a bounce

    later = wednesday + timedelta(days=1)
    promo = run_at(cli, config_path, later, *REMINDER, "--id", "promo-2", "--explain", "--json")
    summary = json.loads(promo.out)
    [explained] = [e for e in summary["explain"] if e["contact"] == "C0001"]
    assert "opted out of marketing email" in json.dumps(explained)
    assert [r.channel for r in _helene_rows(app, summary["message_id"])] == ["sms"]

    notice = run_at(
        cli, config_path, later, *REMINDER, "--kind", "operational", "--id", "notice", "--json"
    )
    assert notice.code == 0, notice
    message_id = json.loads(notice.out)["message_id"]
    [operational] = _helene_rows(app, message_id)
    assert operational.channel == "email" and operational.status == "sent"
    received = _eml(config_path, operational.idempotency_key)
    assert received["To"].endswith(f"<{HELENE}>") and "Routeur X200" in received["Subject"]


def test_unsubscribe_request_opts_out_of_email_like_the_one_click_link(
    app: App, cli, config_path: Path, clock: SimulatedClock
) -> None:
    _import(cli, config_path)
    request = FeedbackEvent(
        kind=FeedbackKind.UNSUBSCRIBE,
        source="mailto",
        key="unsub:1",
        ref=DeliveryRef(recipient=HELENE.upper()),  # only the address: no delivery
    )
    stats = apply_feedback(app, [request])
    assert stats.opted_out == 1 and stats.unresolved == 0
    with Session(app.engine) as session:
        helene = session.scalars(select(Contact).where(Contact.external_id == "C0001")).one()
        consent = session.scalars(
            select(Consent).where(Consent.contact_id == helene.id, Consent.channel == "email")
        ).one()
        assert (consent.basis, consent.source) == ("opted_out", "unsubscribe:mailto")
        [event] = session.scalars(
            select(Event).where(Event.contact_id == helene.id, Event.type == "unsubscribed")
        ).all()
        assert event.occurred_at == clock.now() and event.channel == "email"
    notice = run_at(
        cli, config_path, clock.now(), *REMINDER, "--kind", "operational", "--id", "n", "--json"
    )
    [row] = _helene_rows(app, json.loads(notice.out)["message_id"])
    assert row.channel == "sms"  # no email at all now, operational included


def test_import_with_a_new_address_clears_the_mark_the_same_address_keeps_it(
    app: App, cli, config_path: Path, clock: SimulatedClock, tmp_path: Path
) -> None:
    _import(cli, config_path)
    hard = FeedbackEvent(
        kind=FeedbackKind.HARD_BOUNCE,
        source="dsn",
        key="dsn:import",
        ref=DeliveryRef(recipient=HELENE),
        status="5.1.1",
        diagnostic="user unknown",
    )
    assert apply_feedback(app, [hard]).marked_invalid == 1
    marked_at = _helene(app).email_invalid_at
    assert marked_at == clock.now()

    def reimport(csv: Path) -> None:
        clock.advance(timedelta(days=1))
        import_network(
            app.engine,
            read_network_csv(csv, ImportDefaults()),
            now=clock.now(),
            source="test",
        )

    reimport(SAMPLE_NETWORK)  # the same address: it would bounce again
    helene = _helene(app)
    assert (
        helene.email_invalid_at == marked_at and helene.email_invalid_reason == "5.1.1 user unknown"
    )

    changed = tmp_path / "network-new-address.csv"
    changed.write_text(
        SAMPLE_NETWORK.read_text(encoding="utf-8").replace(HELENE, "h.dupre@tsl.example"),
        encoding="utf-8",
    )
    reimport(changed)
    helene = _helene(app)
    assert helene.email == "h.dupre@tsl.example"
    assert helene.email_invalid_at is None and helene.email_invalid_reason == ""
