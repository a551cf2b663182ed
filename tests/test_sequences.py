"""Nurturing sequences on a simulated clock, sending through the real SMTP test server
and the Twilio stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App, open_app
from network_anim.clock import SimulatedClock
from network_anim.db.models import Contact, Delivery, Enrolment, Event, Message, Sale
from network_anim.network_csv import ImportDefaults, read_network_csv
from network_anim.network_import import import_network
from network_anim.sequences import enrol
from network_anim.simulation import simulate
from network_anim.transports import ConfiguredTransports
from tests.conftest import SAMPLE_NETWORK, use_smtp, use_twilio, write_config
from tests.peers.smtp_server import Fault, SmtpPeer
from tests.peers.twilio_standin import TwilioStandin

PARIS = ZoneInfo("Europe/Paris")
FRIDAY_EVENING = datetime(2026, 12, 18, 17, 0, tzinfo=PARIS)

FOUR_STEPS = """
[[campaigns]]
id = "seq"
name = "Four steps"
kind = "nurture"
audience = "all"
enrol = { on = ["manual"] }
exit_on = ["converted", "unsubscribed"]

[[campaigns.steps]]
name = "s1"
template = "welcome"
urgency = "reminder"
window = { days = ["mon", "tue", "wed", "thu", "fri"], start = "09:00", end = "12:00" }

[[campaigns.steps]]
name = "s2"
template = "portal-tour"
urgency = "reminder"
delay = "4bd"

[[campaigns.steps]]
name = "s3"
template = "first-steps"
urgency = "reminder"
delay = "3d"
window = { days = ["tue", "wed", "thu"], start = "14:00", end = "16:00" }
unopened = { after_days = 2, urgency = "urgent" }

[[campaigns.steps]]
name = "s4"
template = "check-in"
urgency = "reminder"
delay = "1bd"
"""


@pytest.fixture
def sequence_app(
    tmp_path: Path,
    database_url: str,
    smtp_server: SmtpPeer,
    twilio_standin: TwilioStandin,
    monkeypatch: pytest.MonkeyPatch,
):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    config = write_config(tmp_path, database_url, FOUR_STEPS, example_campaigns=False)
    # No frequency caps here: the test is about the calendar, not about pressure.
    config.write_text(
        config.read_text().replace("max = 3\nper_days = 7", "max = 99\nper_days = 7"),
        encoding="utf-8",
    )
    use_smtp(config, smtp_server)
    use_twilio(config, twilio_standin, monkeypatch)
    app = open_app(config, clock=SimulatedClock(FRIDAY_EVENING))
    import_network(
        app.engine,
        read_network_csv(SAMPLE_NETWORK, ImportDefaults()),
        now=FRIDAY_EVENING - timedelta(days=30),
        source="test",
    )
    yield app
    app.close()


def _enrol(app: App, *external_ids: str) -> None:
    campaign = app.config.campaign("seq")
    assert campaign is not None
    with Session(app.engine) as session, session.begin():
        contacts = session.scalars(
            select(Contact).where(Contact.external_id.in_(external_ids))
        ).all()
        enrol(app, session, campaign, contacts, trigger="manual")


def _run(app: App, until: datetime) -> None:
    transports = ConfiguredTransports(app)
    asyncio.run(
        simulate(
            app, until, transports, grace=timedelta(hours=1), resend_safe=transports.resend_safe
        )
    )


def _sent(app: App, external_id: str) -> dict[str, tuple[str, datetime]]:
    """step -> (channel, when sent, Paris time) for one contact."""
    with Session(app.engine) as session:
        rows = session.execute(
            select(Message.step, Delivery.channel, Delivery.sent_at)
            .join(Message, Message.id == Delivery.message_id)
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(Contact.external_id == external_id, Delivery.status == "sent")
            .order_by(Delivery.sent_at)
        ).all()
    return {step: (channel, when.astimezone(PARIS)) for step, channel, when in rows}


def test_four_steps_land_on_business_days_and_windows(
    sequence_app: App, smtp_server: SmtpPeer
) -> None:
    app = sequence_app
    _enrol(app, "C0001")
    # C0001 opens every email (as the pixel would record it), so no branch.
    _run_with_opens(app, "C0001", until=FRIDAY_EVENING + timedelta(days=30))
    sent = _sent(app, "C0001")
    assert {step: when for step, (_, when) in sent.items()} == {
        # Friday 17:00 is outside Mon-Fri 09:00-12:00: Monday 09:00.
        "s1": datetime(2026, 12, 21, 9, 0, tzinfo=PARIS),
        # 4 business days: Tue 22, Wed 23, Thu 24, (Fri 25 is Christmas), Mon 28.
        "s2": datetime(2026, 12, 28, 9, 0, tzinfo=PARIS),
        # 3 days: Thu 31 09:00, then the Tue-Thu 14:00-16:00 window: Thu 31 14:00.
        "s3": datetime(2026, 12, 31, 14, 0, tzinfo=PARIS),
        # 1 business day: Fri 1 January is a holiday, so Monday 4.
        "s4": datetime(2027, 1, 4, 14, 0, tzinfo=PARIS),
    }
    assert all(channel == "email" for channel, _ in sent.values())
    received = [m for m in smtp_server.messages if m.rcpt_tos == ("helene.dupre@tsl.example",)]
    assert len(received) == 4
    with Session(app.engine) as session:
        enrolment = session.scalars(select(Enrolment)).one()
    assert enrolment.status == "completed" and enrolment.step_index == 3


def _run_with_opens(app: App, external_id: str, *, until: datetime) -> None:
    """Simulate day by day, recording a human open for each email sent the day before."""
    clock = app.clock
    assert isinstance(clock, SimulatedClock)
    while clock.now() < until:
        _run(app, min(until, clock.now() + timedelta(days=1)))
        with Session(app.engine) as session, session.begin():
            for delivery in session.scalars(
                select(Delivery)
                .join(Contact, Contact.id == Delivery.contact_id)
                .where(
                    Contact.external_id == external_id,
                    Delivery.channel == "email",
                    Delivery.status == "sent",
                )
            ):
                seen = session.scalar(
                    select(Event.id).where(Event.delivery_id == delivery.id, Event.type == "opened")
                )
                if seen is None:
                    session.add(
                        Event(
                            occurred_at=clock.now(),
                            type="opened",
                            channel="email",
                            contact_id=delivery.contact_id,
                            delivery_id=delivery.id,
                        )
                    )


def test_unopened_email_sends_the_next_step_by_sms(
    sequence_app: App, twilio_standin: TwilioStandin
) -> None:
    app = sequence_app
    _enrol(app, "C0002")  # Julien: personal email and a mobile
    _run(app, FRIDAY_EVENING + timedelta(days=30))
    sent = _sent(app, "C0002")
    assert sent["s2"][0] == "email"
    # s3 is due Thu 31 14:00; the s2 email (Mon 28) was never opened, and 2 days have
    # passed: s3 takes the "urgent" urgency, so the router sends it by SMS.
    channel, when = sent["s3~urgent"]
    assert channel == "sms" and when == datetime(2026, 12, 31, 14, 0, tzinfo=PARIS)
    assert [r.form["To"] for r in twilio_standin.requests] == ["+33623456789"]
    # s4 has no branch: back to email.
    assert sent["s4"][0] == "email"


def test_a_machine_open_does_not_count_as_opened(sequence_app: App) -> None:
    app = sequence_app
    _enrol(app, "C0002")
    _run(app, datetime(2026, 12, 29, 9, 0, tzinfo=PARIS))
    with Session(app.engine) as session, session.begin():
        email = session.scalars(select(Delivery).where(Delivery.channel == "email")).all()[-1]
        session.add(
            Event(
                occurred_at=app.clock.now(),
                type="opened",
                channel="email",
                machine=True,
                contact_id=email.contact_id,
                delivery_id=email.id,
            )
        )
    _run(app, FRIDAY_EVENING + timedelta(days=30))
    assert "s3~urgent" in _sent(app, "C0002")


def test_a_sale_ends_the_sequence(sequence_app: App) -> None:
    app = sequence_app
    _enrol(app, "C0006", "C0007")
    _run(app, datetime(2026, 12, 22, 9, 0, tzinfo=PARIS))  # s1 sent on Monday
    with Session(app.engine) as session, session.begin():
        thomas = session.scalars(select(Contact).where(Contact.external_id == "C0006")).one()
        session.add(
            Sale(
                company_id=thomas.company_id,
                contact_id=thomas.id,
                invoice_ref="F-1",
                amount=1200.0,
                sold_at=app.clock.now(),
                created_at=app.clock.now(),
            )
        )
    _run(app, FRIDAY_EVENING + timedelta(days=30))
    assert set(_sent(app, "C0006")) == {"s1"}
    assert {"s1", "s2", "s4"} <= set(_sent(app, "C0007"))
    with Session(app.engine) as session:
        rows = {e.contact_id: e for e in session.scalars(select(Enrolment))}
        statuses = sorted((e.status, e.exit_reason) for e in rows.values())
    assert statuses == [("completed", ""), ("exited", "converted")]


def test_re_enrolling_an_active_contact_is_a_no_op(sequence_app: App) -> None:
    app = sequence_app
    _enrol(app, "C0001")
    app.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    _enrol(app, "C0001")
    with Session(app.engine) as session:
        enrolment = session.scalars(select(Enrolment)).one()
    assert enrolment.enrolled_at == FRIDAY_EVENING.astimezone(UTC)


def test_smtp_failures_during_a_sequence(sequence_app: App, smtp_server: SmtpPeer) -> None:
    app = sequence_app
    smtp_server.fail("helene.dupre@tsl.example", Fault.at_rcpt("550 5.1.1 no such user"))
    smtp_server.fail("julien.garnier@tsl.example", Fault.at_rcpt("451 4.3.0 try later", times=1))
    _enrol(app, "C0001", "C0002")
    _run(app, datetime(2026, 12, 21, 12, 0, tzinfo=PARIS))
    with Session(app.engine) as session:
        rows = session.execute(
            select(Contact.external_id, Delivery.channel, Delivery.status, Delivery.attempts)
            .join(Contact, Contact.id == Delivery.contact_id)
            .order_by(Delivery.id)
        ).all()
    # 550: permanent, the reminder falls back to SMS; 451: retried later, then sent.
    assert ("C0001", "email", "failed", 1) in rows and ("C0001", "sms", "sent", 1) in rows
    assert ("C0002", "email", "sent", 2) in rows
