"""Storage on both backends: migrations, UTC times, and claims that never overlap."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlmodel import Session, SQLModel

from network_anim.app import App
from network_anim.channels.contract import SendResult
from network_anim.channels.recording import RecordingTransport
from network_anim.config.settings import Audience
from network_anim.db.migrate import current_revision, head_revision
from network_anim.db.models import Delivery
from network_anim.domain import Level, Urgency
from network_anim.outbox.dispatcher import Dispatcher
from network_anim.planning.planner import MessageRequest, plan_message


def test_migrations_create_exactly_the_models(engine) -> None:
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_datetimes_come_back_aware_utc(network: App) -> None:
    request = _request("t1")
    plan_message(network, request)
    with Session(network.engine) as session:
        row = session.scalars(select(Delivery)).first()
    assert row is not None and row.due_at.tzinfo is UTC
    assert row.due_at == network.clock.now()


def _request(occurrence: str, urgency: Urgency = Urgency.INFO) -> MessageRequest:
    return MessageRequest(
        campaign_key="test",
        campaign_name="Test",
        campaign_kind="broadcast",
        step="welcome",
        occurrence=occurrence,
        audience=Audience(name="all"),
        urgency=urgency,
        template="welcome",
        level=Level.SELLER,
    )


def test_replanning_is_a_no_op(network: App) -> None:
    first = plan_message(network, _request("once"))
    second = plan_message(network, _request("once"))
    assert sum(first.new_rows.values()) == 27
    assert sum(second.new_rows.values()) == 0 and second.already_planned == 27


async def test_concurrent_dispatchers_never_send_a_row_twice(network: App) -> None:
    plan_message(network, _request("c1"))
    transports = [
        {ch: RecordingTransport(delay=0.01) for ch in ("email", "intranet", "print")}
        for _ in range(3)
    ]
    dispatchers = [
        Dispatcher(network, t, worker_id=f"w{i}", batch_size=4) for i, t in enumerate(transports)
    ]
    async with dispatchers[0], dispatchers[1], dispatchers[2]:
        if network.engine.dialect.name == "sqlite":
            # One writer at a time on SQLite: run them one after another.
            for d in dispatchers:
                await d.drain()
        else:
            await asyncio.gather(*(asyncio.to_thread(_drain_sync, d) for d in dispatchers))
    keys = [key for t in transports for tr in t.values() for key in tr.keys]
    assert len(keys) == 27 and len(set(keys)) == 27
    if network.engine.dialect.name == "postgresql":
        # SKIP LOCKED spread the work: more than one worker got rows.
        assert sum(1 for t in transports if any(tr.keys for tr in t.values())) > 1
    with Session(network.engine) as session:
        statuses = set(session.scalars(select(Delivery.status)))
    assert statuses == {"sent"}


def _drain_sync(dispatcher: Dispatcher) -> None:
    asyncio.run(dispatcher.drain())


async def test_expired_lease_is_reclaimed_without_resending_unsafe_channels(
    network: App, clock
) -> None:
    plan_message(network, _request("l1"))
    crashed = Dispatcher(network, {}, worker_id="dead-worker", batch_size=100)
    claimed = crashed._claim(None)  # a worker claims, then dies before sending anything
    assert len(claimed) == 27
    clock.advance(timedelta(minutes=10))
    recorder = {ch: RecordingTransport() for ch in ("email", "intranet", "print")}
    survivor = Dispatcher(
        network, recorder, worker_id="w2", resend_safe=lambda ch: ch in ("intranet", "email")
    )
    async with survivor:
        stats = await survivor.drain()
    assert stats.reclaimed == 27
    with Session(network.engine) as session:
        rows = session.scalars(select(Delivery)).all()
    by_channel = {(d.channel, d.status) for d in rows}
    # Resend-safe channels go out again; the print letters (not safe) wait as unknown.
    assert by_channel == {("intranet", "sent"), ("email", "sent"), ("print", "unknown")}
    assert all("outcome unknown" in d.last_error for d in rows if d.channel == "print")
    assert not recorder["print"].sent


async def test_result_of_a_lost_lease_is_not_recorded_twice(network: App, clock) -> None:
    plan_message(network, _request("l2"))
    slow = Dispatcher(network, {}, worker_id="slow", batch_size=100)
    claimed = slow._claim(None)
    clock.advance(timedelta(minutes=10))
    fast = Dispatcher(
        network,
        {ch: RecordingTransport() for ch in ("email", "intranet", "print")},
        worker_id="fast",
        resend_safe=lambda ch: True,
    )
    async with fast:
        await fast.drain()
    from network_anim.outbox.stats import DispatchStats

    stats = DispatchStats()
    async with slow:
        await slow.recorder.record([(item, SendResult.sent("late")) for item in claimed], stats)
    assert stats.total == 0  # the slow worker's lease was gone: it records nothing
    with Session(network.engine) as session:
        assert "late" not in set(session.scalars(select(Delivery.provider_id)))


async def test_the_loop_does_not_wait_for_another_sqlite_writer(network: App) -> None:
    """Claims and records run in the event loop on SQLite, but never wait there: while
    another process holds the write lock they go to the database thread and the loop
    keeps turning (the daemon's timers, other channels, signals)."""
    if network.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's single writer lock")
    import sqlite3

    plan_message(network, _request("busy"))
    other = sqlite3.connect(str(network.engine.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer (an import, the portal) holds the lock
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0.01)
            turns += 1

    recorder = {ch: RecordingTransport() for ch in ("email", "intranet", "print")}
    counter = asyncio.create_task(count_turns())
    async with Dispatcher(network, recorder, worker_id="w") as dispatcher:
        draining = asyncio.create_task(dispatcher.drain())
        await asyncio.sleep(0.5)
        assert not draining.done()  # waiting for the lock...
        assert turns >= 10  # ...without blocking the loop
        other.execute("COMMIT")
        stats = await draining
    counter.cancel()
    other.close()
    assert stats.total == 27
    with Session(network.engine) as session:
        assert set(session.scalars(select(Delivery.status))) == {"sent"}


async def test_async_postgres_connection_comes_back_after_a_loss(network: App) -> None:
    if network.engine.dialect.name != "postgresql":
        pytest.skip("the asyncio-native PostgreSQL connection")
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from network_anim.outbox.pg_async import AsyncPostgres

    postgres = AsyncPostgres(network.engine)
    [(pid,)] = await postgres.fetch("SELECT pg_backend_pid()", ())
    with network.engine.begin() as conn:  # the server restarts, a proxy drops the link...
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    with pytest.raises(DBAPIError) as lost:
        await postgres.fetch("SELECT 1", ())
    assert lost.value.connection_invalidated
    assert await postgres.fetch("SELECT %s::int + 1", (1,)) == [(2,)]  # a new connection
    await postgres.aclose()


@pytest.mark.parametrize("bad", [datetime(2026, 1, 1)])
def test_naive_datetimes_are_refused(network: App, bad: datetime) -> None:
    from sqlalchemy.exc import StatementError

    with Session(network.engine) as session, pytest.raises(StatementError, match="naive datetime"):
        session.execute(select(Delivery).where(Delivery.due_at < bad)).all()


def test_a_sender_s_rows_are_taken_back_only_once_it_is_dead(engine) -> None:
    """Every sender, daemon or CLI, holds its liveness lock while it may claim: a daemon
    must leave alone the rows of a ``netanim broadcast`` sending beside it."""
    from network_anim.outbox.liveness import liveness_for

    broadcast, daemon = liveness_for(engine, "host:1:cli"), liveness_for(engine, "host:2:d")
    assert broadcast is not None and daemon is not None
    broadcast.start()
    daemon.start()
    try:
        assert daemon.dead({"host:1:cli", "host:3:gone", "host:2:d"}) == {"host:3:gone"}
        broadcast.stop()  # it ended (or died: the lock goes with the process)
        assert daemon.dead({"host:1:cli"}) == {"host:1:cli"}
    finally:
        broadcast.stop()
        daemon.stop()


async def test_a_daemon_leaves_alone_the_rows_a_live_broadcast_is_sending(network: App) -> None:
    """A ``netanim broadcast`` has claimed rows and is sending them; the daemon's drain
    beside it must not take them back (it would send them a second time)."""
    from network_anim.outbox.liveness import liveness_for

    plan_message(network, _request("beside"))
    broadcast = liveness_for(network.engine, "host:1:cli")
    daemon = liveness_for(network.engine, "host:2:daemon")
    assert broadcast is not None and daemon is not None
    broadcast.start()
    daemon.start()
    try:
        sending = Dispatcher(network, {}, worker_id="host:1:cli", batch_size=100)._claim(None)
        recorder = {ch: RecordingTransport() for ch in ("email", "intranet", "print")}
        async with Dispatcher(
            network,
            recorder,
            worker_id="host:2:daemon",
            resend_safe=lambda ch: True,
            dead_owners=daemon.dead,
        ) as beside:
            stats = await beside.drain()
        assert stats.reclaimed == 0 and stats.total == 0
        assert not any(t.sent for t in recorder.values())
        with Session(network.engine) as session:
            owners = set(session.scalars(select(Delivery.lease_owner)))
        assert owners == {"host:1:cli"} and len(sending) == 27
    finally:
        broadcast.stop()
        daemon.stop()
