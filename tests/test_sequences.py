"""Nurturing sequences on a simulated clock, sending through the real SMTP test server
and the Twilio stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select, update
from sqlmodel import Session

from network_anim.app import App, open_app
from network_anim.campaigns import sequences
from network_anim.campaigns.sequences import enrol, enrol_by_triggers, tick
from network_anim.clock import SimulatedClock
from network_anim.db.models import Contact, Delivery, Enrolment, Event, Message, Sale
from network_anim.engine.simulation import simulate
from network_anim.network.importer import import_network
from network_anim.network.network_csv import ImportDefaults, read_network_csv
from network_anim.outbox.transports import ConfiguredTransports
from network_anim.planning.planner import plan_in_session
from tests.conftest import SAMPLE_NETWORK, use_smtp, use_twilio, write_config
from tests.peers.smtp_server import Fault, SmtpPeer
from tests.peers.twilio_standin import TwilioStandin

PARIS = ZoneInfo("Europe/Paris")
FRIDAY_EVENING = datetime(2026, 12, 18, 17, 0, tzinfo=PARIS)
MONDAY_MORNING = datetime(2026, 12, 21, 9, 0, tzinfo=PARIS)  # s1's window opens

FOUR_STEPS = """
[[campaigns]]
id = "seq"
name = "Four steps"
kind = "nurture"
audience = "all"
enrol = { on = ["manual"] }
exit_on = ["converted", "replied", "unsubscribed", "left_audience"]

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


# -- the tick in batches ---------------------------------------------------------------------


def _enrolments(app: App) -> dict[str, Enrolment]:
    with Session(app.engine) as session:
        rows = session.execute(
            select(Contact.external_id, Enrolment).join(Contact, Contact.id == Enrolment.contact_id)
        ).all()
    return {external_id: enrolment for external_id, enrolment in rows}


def test_a_tick_works_through_several_batches(sequence_app: App) -> None:
    app = sequence_app
    _enrol(app, "C0001", "C0002", "C0006", "C0007", "C0014")
    app.clock.set(MONDAY_MORNING)  # type: ignore[attr-defined]
    stats = tick(app, batch=2)
    assert stats.steps == {"seq:s1": 5}
    enrolments = _enrolments(app)
    assert {e.status for e in enrolments.values()} == {"active"}
    assert {e.step_index for e in enrolments.values()} == {1}
    # s2 is 4 business days after s1 was due (Friday 25 is Christmas).
    assert {e.next_due_at for e in enrolments.values()} == {
        datetime(2026, 12, 28, 9, 0, tzinfo=PARIS)
    }
    with Session(app.engine) as session:
        planned = session.scalars(select(Delivery.contact_id).distinct()).all()
    assert len(planned) == 5
    assert tick(app, batch=2).steps == {}  # nothing left due


def test_exits_count_company_sales_replies_and_leaving_the_audience(sequence_app: App) -> None:
    app = sequence_app
    _enrol(app, "C0002", "C0006", "C0007", "C0014", "C0015")
    now = app.clock.now()
    with Session(app.engine) as session, session.begin():
        contacts = {c.external_id: c for c in session.scalars(select(Contact))}
        # A sale of C0006 and C0007's company that names no one: both converted.
        session.add(
            Sale(
                company_id=contacts["C0006"].company_id,
                invoice_ref="F-2",
                amount=800.0,
                sold_at=now,
                created_at=now,
            )
        )
        # C0015's company sold long before the enrolment: no exit.
        session.add(
            Sale(
                company_id=contacts["C0015"].company_id,
                invoice_ref="F-3",
                amount=800.0,
                sold_at=now - timedelta(days=365),
                created_at=now,
            )
        )
        session.add(
            Event(occurred_at=now, type="replied", channel="sms", contact_id=contacts["C0014"].id)
        )
        contacts["C0002"].active = False
    app.clock.set(MONDAY_MORNING)  # type: ignore[attr-defined]
    stats = tick(app)
    assert stats.exited == {"converted": 2, "replied": 1, "left_audience": 1}
    assert stats.steps == {"seq:s1": 1}
    assert {k: (e.status, e.exit_reason) for k, e in _enrolments(app).items()} == {
        "C0002": ("exited", "left_audience"),
        "C0006": ("exited", "converted"),
        "C0007": ("exited", "converted"),
        "C0014": ("exited", "replied"),
        "C0015": ("active", ""),
    }


def test_enrolling_again_after_the_end_starts_a_new_cycle(sequence_app: App) -> None:
    app = sequence_app
    _enrol(app, "C0001")
    with Session(app.engine) as session, session.begin():
        session.execute(update(Enrolment).values(status="completed", step_index=3))
    app.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    campaign = app.config.campaign("seq")
    assert campaign is not None
    with Session(app.engine) as session, session.begin():
        helene = session.scalars(select(Contact).where(Contact.external_id == "C0001")).one()
        # The same contact twice in one call is enrolled once.
        assert enrol(app, session, campaign, [helene, helene], trigger="manual") == 1
    enrolment = _enrolments(app)["C0001"]
    assert (enrolment.status, enrolment.cycle, enrolment.step_index) == ("active", 1, 0)
    assert enrolment.enrolled_at == app.clock.now()
    # Monday 17:00 is past s1's window (09:00-12:00): Tuesday 09:00.
    assert enrolment.next_due_at == datetime(2026, 12, 22, 9, 0, tzinfo=PARIS)


def _due_at_the_branching_step(app: App) -> None:
    """Every enrolment still at its first step jumps to s3 (the step with an unopened
    branch, which looks up the previous email), due now."""
    with Session(app.engine) as session, session.begin():
        session.execute(
            update(Enrolment)
            .where(Enrolment.step_index == 0)
            .values(step_index=2, next_due_at=app.clock.now())
        )


def _statements_of_a_tick(app: App, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What a tick sends itself (the planner's statements are the planner's business)."""
    sent: list[str] = []
    planning = False

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if not planning:
            sent.append(" ".join(statement.split()))

    def plan(*args: Any, **kwargs: Any) -> Any:
        nonlocal planning
        planning = True
        try:
            return plan_in_session(*args, **kwargs)
        finally:
            planning = False

    monkeypatch.setattr(sequences, "plan_in_session", plan)
    event.listen(app.engine, "before_cursor_execute", record)
    try:
        tick(app)
    finally:
        event.remove(app.engine, "before_cursor_execute", record)
        monkeypatch.undo()
    return sent


def test_a_tick_sends_as_many_statements_for_five_due_steps_as_for_one(
    sequence_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = sequence_app
    app.clock.set(MONDAY_MORNING)  # type: ignore[attr-defined]
    _enrol(app, "C0001")
    _due_at_the_branching_step(app)
    one = _statements_of_a_tick(app, monkeypatch)
    _enrol(app, "C0002", "C0006", "C0007", "C0014")
    _due_at_the_branching_step(app)
    five = _statements_of_a_tick(app, monkeypatch)
    assert [e.step_index for e in _enrolments(app).values()] == [3] * 5
    # Per batch, not per contact: the claim, the exit checks, the branch lookups (last
    # email, opens) and one write-back.
    assert len(five) == len(one)


def test_the_imported_trigger_enrols_the_audience_a_batch_at_a_time(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    imported = FOUR_STEPS.replace('enrol = { on = ["manual"] }', 'enrol = { on = ["imported"] }')
    config = write_config(tmp_path, database_url, imported, example_campaigns=False)
    app = open_app(config, clock=SimulatedClock(FRIDAY_EVENING))
    try:
        import_network(
            app.engine,
            read_network_csv(SAMPLE_NETWORK, ImportDefaults()),
            now=FRIDAY_EVENING - timedelta(days=30),
            source="test",
        )
        with Session(app.engine) as session:
            active = session.scalars(select(Contact.external_id).where(Contact.active)).all()
        assert enrol_by_triggers(app, batch=4).enrolled == {"seq": len(active)}
        assert set(_enrolments(app)) == set(active)
        assert enrol_by_triggers(app, batch=4).enrolled == {}
    finally:
        app.close()
