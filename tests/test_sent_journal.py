"""The sent journal (SQLite): accepted emails noted in a file before their group commit,
recorded after a crash instead of being sent again."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from network_anim.app import App, open_app
from network_anim.channels.contract import SendResult
from network_anim.channels.email_mime import message_id_for
from network_anim.channels.recording import RecordingTransport
from network_anim.config.settings import Audience
from network_anim.db.engine import make_engine
from network_anim.db.models import Delivery, Event
from network_anim.demo.network import generate_network_csv
from network_anim.domain import Level, MessageKind, Urgency
from network_anim.outbox import sent_journal
from network_anim.outbox.dispatcher import Dispatcher
from network_anim.outbox.liveness import SqliteLiveness
from network_anim.outbox.sent_journal import SentJournal, journal_folder
from network_anim.outbox.sent_rows import SentRecorder
from network_anim.outbox.transports import ConfiguredTransports
from network_anim.planning.planner import MessageRequest, plan_message
from tests.conftest import REPO, SAMPLE_NETWORK, WELCOME, run_at, use_smtp, write_config
from tests.peers.smtp_server import SmtpPeer
from tests.test_storage import _request

NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_notes_read_back_and_a_torn_last_line_is_no_note(tmp_path: Path) -> None:
    owner = "host:42:ab/cd"  # worker ids hold ':' and may hold '/'
    journal = SentJournal(tmp_path, owner)
    journal.note(7, NOON, SendResult.sent(provider_id="<x@y>", detail="250 queued", cost=0.1))
    journal.note(8, NOON + timedelta(seconds=1), SendResult.sent(detail="250 ok"))
    with journal.path.open("ab") as raw:
        raw.write(b'[9, "2026-11-26T12:00:02+00:00", nu')  # killed in the middle of a write
    assert sent_journal.owners(tmp_path) == {owner}
    noted = sent_journal.read(tmp_path, owner)
    assert [(n.delivery_id, n.at) for n in noted] == [(7, NOON), (8, NOON + timedelta(seconds=1))]
    assert noted[0].result == SendResult.sent(provider_id="<x@y>", detail="250 queued", cost=0.1)
    journal.close()
    assert journal.path.exists()  # not empty: kept for the next reclaim


def test_the_journal_is_emptied_when_its_last_writer_has_committed(tmp_path: Path) -> None:
    journal = SentJournal(tmp_path, "w")
    journal.enter()
    journal.enter()
    journal.note(1, NOON, SendResult.sent())
    journal.leave(committed=True)
    assert sent_journal.read(tmp_path, "w")  # another writer is still sending
    journal.leave(committed=True)
    assert sent_journal.read(tmp_path, "w") == []
    journal.enter()
    journal.note(2, NOON, SendResult.sent())
    journal.leave(committed=False)  # its recording failed: the notes stay...
    journal.enter()
    journal.leave(committed=True)  # ...whatever comes after, until they are recorded
    assert journal.dirty and [n.delivery_id for n in sent_journal.read(tmp_path, "w")] == [2]
    journal.clear()
    assert not journal.dirty and sent_journal.read(tmp_path, "w") == []
    journal.close()
    assert not journal.path.exists()  # empty at the end: removed


def test_only_sqlite_files_have_a_journal(tmp_path: Path) -> None:
    assert journal_folder(make_engine(f"sqlite:///{tmp_path / 'x.db'}")) == tmp_path / (
        "x.db-sent-journal"
    )
    assert journal_folder(make_engine("sqlite://")) is None
    assert journal_folder(make_engine("postgresql+psycopg://u@127.0.0.1:5432/d")) is None


def _sqlite_only(app: App) -> Path:
    folder = journal_folder(app.engine)
    if folder is None:
        pytest.skip("the sent journal is SQLite's")
    return folder


async def test_a_dead_worker_s_journal_is_recorded_before_its_rows_are_taken_back(
    network: App,
) -> None:
    folder = _sqlite_only(network)
    plan_message(network, _request("j1"))
    dead = "host:1:dead"
    claimed = Dispatcher(network, {}, worker_id=dead, batch_size=100)._claim(None)
    emails = [item for item in claimed if item.channel == "email"]
    noted, unnoted = emails[:2], emails[2:]
    journal = SentJournal(folder, dead)
    for item in noted + noted[:1]:  # a note written twice changes nothing
        journal.note(item.delivery_id, NOON, SendResult.sent(provider_id=f"<{item.delivery_id}>"))
    journal.close()
    recorder = {ch: RecordingTransport() for ch in ("email", "intranet", "print")}
    survivor = Dispatcher(
        network,
        recorder,
        worker_id="w2",
        resend_safe=lambda ch: ch == "email",
        dead_owners=SqliteLiveness(Path(str(network.engine.url.database)), "w2").dead,
    )
    async with survivor:
        stats = await survivor.drain()
    assert stats.recovered == 2
    assert sorted(recorder["email"].keys) == sorted(i.idempotency_key for i in unnoted)
    with Session(network.engine) as session:
        for item in noted:
            row = session.get(Delivery, item.delivery_id)
            assert row is not None and row.status == "sent" and row.attempts == 1
            assert row.sent_at == NOON and row.provider_id == f"<{item.delivery_id}>"
            events = session.scalars(
                select(Event.type).where(Event.delivery_id == item.delivery_id)
            ).all()
            assert events == ["sent"]
    assert sent_journal.owners(folder) == set()  # the dead worker's journal is gone


async def test_a_late_worker_s_journal_is_read_and_kept(network: App, clock) -> None:
    folder = _sqlite_only(network)
    plan_message(network, _request("j2"))
    late = "host:2:late"
    claimed = Dispatcher(network, {}, worker_id=late, batch_size=100)._claim(None)
    first = next(item for item in claimed if item.channel == "email")
    journal = SentJournal(folder, late)
    journal.note(first.delivery_id, clock.now(), SendResult.sent())
    clock.advance(timedelta(minutes=10))  # its lease ran out; nobody knows it is dead
    survivor = Dispatcher(
        network,
        {ch: RecordingTransport() for ch in ("email", "intranet", "print")},
        worker_id="w2",
        resend_safe=lambda ch: True,
    )
    async with survivor:
        stats = await survivor.drain()
    assert stats.recovered == 1
    assert first.idempotency_key not in survivor.transports["email"].keys  # type: ignore[attr-defined]
    assert sent_journal.owners(folder) == {late}  # it may still be writing
    journal.close()


_KILLED_AT_SECOND_COMMIT = """
import asyncio, os, signal, sys
from pathlib import Path
from network_anim.app import open_app
from network_anim.outbox.sending import send_due
from network_anim.outbox.sent_rows import SentRecorder

commits = 0
record = SentRecorder.record

def record_then_die(self, *args, **kwargs):
    global commits
    commits += 1
    if commits == 2:  # the sends since the first group commit are only in the journal
        os.kill(os.getpid(), signal.SIGKILL)
    return record(self, *args, **kwargs)

SentRecorder.record = record_then_die
asyncio.run(send_due(open_app(Path(sys.argv[1]))))
"""


def test_emails_of_a_killed_sender_are_recorded_from_its_journal_not_resent(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real SIGKILL between two group commits (default max_unrecorded = 1): what the
    journal holds is recorded as sent by the next worker, the rest is sent again, and
    no message reaches the SMTP server more than once plus the one the permit allows."""
    with SmtpPeer() as peer:
        config = _smtp_config(tmp_path, cli, monkeypatch, peer)
        app = open_app(config)
        try:
            expected = _plan_emails(app, "kill")
            assert len(expected) >= 50
            child = tmp_path / "child.py"
            child.write_text(_KILLED_AT_SECOND_COMMIT, encoding="utf-8")
            killed = subprocess.run(
                [sys.executable, str(child), str(config)],
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                capture_output=True,
                timeout=60,
            )
            assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
            folder = journal_folder(app.engine)
            assert folder is not None
            (dead,) = sent_journal.owners(folder)
            with Session(app.engine) as session:
                committed = set(
                    session.scalars(select(Delivery.id).where(Delivery.status == "sent"))
                )
            # The journal keeps the first group (committed) until its writer is done.
            noted = {n.delivery_id for n in sent_journal.read(folder, dead)} - committed
            assert noted
            stats = asyncio.run(_survive(app))
            assert stats.recovered == len(noted)
            statuses, events = outbox_and_sent_events(app)
        finally:
            app.close()
        received = received_ids(peer)
    assert statuses == {"sent": len(expected)} and events == len(expected)
    assert set(received) == set(expected.values())  # nothing lost
    assert sum(received.values()) - len(expected) <= 1  # at most the one unnoted send
    assert all(received[expected[delivery_id]] == 1 for delivery_id in noted)
    assert sent_journal.owners(folder) == set()


async def test_sends_noted_before_a_failed_commit_are_recorded_by_the_next_drain(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses a group commit mid-batch: the drain fails, but what the relay
    accepted is in the journal, and the next drain records it: nothing is sent twice."""
    commits = 0
    record = SentRecorder.record

    def refuse_the_second(self: SentRecorder, *args: Any, **kwargs: Any) -> set[int]:
        nonlocal commits
        commits += 1
        if commits == 2:
            raise OperationalError(
                "UPDATE delivery", {}, sqlite3.OperationalError("disk I/O error")
            )
        return record(self, *args, **kwargs)

    with SmtpPeer() as peer:
        app = open_app(_smtp_config(tmp_path, cli, monkeypatch, peer))
        try:
            expected = _plan_emails(app, "refused")
            monkeypatch.setattr(SentRecorder, "record", refuse_the_second)
            transports = ConfiguredTransports(app)
            async with Dispatcher(
                app, transports, worker_id="w", resend_safe=transports.resend_safe
            ) as dispatcher:
                with pytest.raises(OperationalError):
                    await dispatcher.drain()
                stats = await dispatcher.drain()
            statuses, events = outbox_and_sent_events(app)
        finally:
            app.close()
        received = received_ids(peer)
    assert stats.recovered > 0
    assert statuses == {"sent": len(expected)} and events == len(expected)
    assert received == Counter(expected.values())  # each exactly once


def outbox_and_sent_events(app: App) -> tuple[Counter[str], int]:
    """Outbox rows per status, and the number of ``sent`` events."""
    with Session(app.engine) as session:
        statuses = Counter(session.scalars(select(Delivery.status)))
        events = session.scalar(select(func.count()).select_from(Event).where(Event.type == "sent"))
    return statuses, int(events or 0)


def received_ids(peer: SmtpPeer) -> Counter[str]:
    """How many times the SMTP peer received each Message-ID."""
    return Counter(str(r.message()["Message-ID"]) for r in peer.messages)


def _smtp_config(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch, peer: SmtpPeer) -> Path:  # type: ignore[no-untyped-def]
    """A SQLite database with a generated network, email through ``peer``."""
    monkeypatch.setenv("NETANIM_SECRET_KEY", "k" * 40)
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'sends.db'}", example_campaigns=False)
    network = tmp_path / "network.csv"
    network.write_text(generate_network_csv(companies=12, contacts=150, seed=7), encoding="utf-8")
    use_smtp(config, peer)
    assert cli("init", "-c", str(config)).code == 0
    assert cli("import", "network", str(network), "-c", str(config)).code == 0
    return config


def _plan_emails(app: App, occurrence: str) -> dict[int, str]:
    """One operational email per reachable contact; the Message-ID each row must carry."""
    request = MessageRequest(
        campaign_key="broadcast",
        campaign_name="One-off broadcasts",
        campaign_kind="broadcast",
        step="welcome",
        occurrence=occurrence,
        audience=Audience(name="all"),
        urgency=Urgency.REMINDER,
        template="welcome",
        kind=MessageKind.OPERATIONAL,
        level=Level.SELLER,
    )
    plan_message(app, request)
    sender = app.config.channels.email.sender
    with Session(app.engine) as session:
        session.execute(  # only the emails matter here: the rest is not this test's
            Delivery.__table__.delete().where(Delivery.channel != "email")  # type: ignore[attr-defined]
        )
        session.commit()
        rows = session.execute(select(Delivery.id, Delivery.idempotency_key)).all()
    return {row.id: message_id_for(row.idempotency_key, sender=sender) for row in rows}


async def _survive(app: App) -> object:
    transports = ConfiguredTransports(app)
    async with Dispatcher(
        app,
        transports,
        worker_id="survivor",
        resend_safe=transports.resend_safe,
        dead_owners=SqliteLiveness(Path(str(app.engine.url.database)), "survivor").dead,
    ) as dispatcher:
        return await dispatcher.drain()


def test_a_journal_that_cannot_be_written_costs_a_commit_per_send_not_a_send(
    app: App, cli, config_path: Path, clock, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    _sqlite_only(app)

    def disk_full(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(SentJournal, "note", disk_full)
    caplog.set_level(logging.WARNING, logger="netanim.dispatch")
    with SmtpPeer() as peer:
        use_smtp(config_path, peer)
        assert cli("import", "network", str(SAMPLE_NETWORK), "-c", str(config_path)).code == 0
        result = run_at(cli, config_path, clock.now(), *WELCOME, "--id", "full", "--json")
        assert result.code == 0, result
        received = len(peer.messages)
    with Session(app.engine) as session:
        emails = Counter(
            session.scalars(select(Delivery.status).where(Delivery.channel == "email"))
        )
    assert emails == {"sent": received} and received > 0
    assert "No space left on device; waiting for the commit" in caplog.text
