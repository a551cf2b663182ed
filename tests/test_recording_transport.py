"""The recording transport that ships for tests: what the dispatcher hands it, and how the
outcome it is told to answer is recorded, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.channels.contract import SendMode
from network_anim.channels.recording import RecordingTransport
from network_anim.db.models import Contact, Delivery
from network_anim.domain import Outcome
from network_anim.outbox.dispatcher import Dispatcher
from network_anim.planning.planner import plan_message
from tests.test_storage import _request


async def test_it_records_every_message_and_answers_the_outcome_it_is_given(network: App) -> None:
    plan_message(network, _request("rec"))
    bounced = RecordingTransport(Outcome.FAILED, detail="550 5.1.1 no such user")
    paced = RecordingTransport(mode=SendMode.PACED, concurrency=2)
    transports = {"email": bounced, "intranet": paced, "print": RecordingTransport()}
    async with Dispatcher(network, transports, worker_id="t") as dispatcher:
        await dispatcher.drain()
    with Session(network.engine) as session:
        rows = session.execute(
            select(Delivery.channel, Delivery.status, Delivery.last_error, Contact.email)
            .join(Contact)
            .where(Delivery.parent_id.is_(None))  # type: ignore[union-attr]
        ).all()
    emails = [row for row in rows if row.channel == "email"]
    assert emails and all(row.status == "failed" for row in emails)
    assert all("550 5.1.1 no such user" in (row.last_error or "") for row in emails)
    # It was given one message per email row, addressed as the contact's email says.
    assert sorted(item.recipient.email for item in bounced.sent) == sorted(r.email for r in emails)
    assert len(paced.keys) == sum(row.channel == "intranet" for row in rows)
    assert {row.status for row in rows if row.channel == "intranet"} == {"sent"}
