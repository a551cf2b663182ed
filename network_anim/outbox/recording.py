"""Recording what each send did: sent rows on the hot path (raw SQL, group commits, the
sent journal on SQLite), the other outcomes through the ORM (retries with backoff, dead
rows, provider opt-outs, failures marked for the planner to plan their fallback).

A result is recorded only while this worker still holds the row's lease: once another
worker took the row over, the outcome is theirs to record.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.channels.contract import Outbound, SendResult
from network_anim.db.models import Consent, Delivery, Event
from network_anim.domain import DeliveryStatus, LawfulBasis, Outcome
from network_anim.outbox.raw import Busy
from network_anim.outbox.sent_journal import SentJournal
from network_anim.outbox.sent_rows import SentRecorder
from network_anim.outbox.stats import DispatchStats, RetryPolicy

if TYPE_CHECKING:
    from network_anim.outbox.pg_async import AsyncPostgres

log = logging.getLogger("netanim.dispatch")
_GATHER_SECONDS = 0.01
# Results per group commit when a sent journal holds them meanwhile (see sent_journal).
_JOURNALED_GROUP = 64
T = TypeVar("T")


class Recorder:
    def __init__(
        self,
        app: App,
        worker_id: str,
        sent_rows: SentRecorder,
        *,
        retry: RetryPolicy,
        rng: random.Random,
        journal_folder: Path | None,
        postgres: AsyncPostgres | None,
        in_db: Callable[..., Awaitable[Any]],
    ) -> None:
        self.app = app
        self.worker_id = worker_id
        self.retry = retry
        self.rng = rng
        self._sent_rows = sent_rows
        self._journal_folder = journal_folder
        self._journal: SentJournal | None = None
        self._postgres = postgres
        # The dispatcher's database thread (one connection, no hop per call).
        self._in_db = in_db

    @property
    def opened_journal(self) -> SentJournal | None:
        """The sent journal if this worker has written to it (never opens one)."""
        return self._journal

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    async def record(
        self, results: Sequence[tuple[Outbound, SendResult]], stats: DispatchStats
    ) -> None:
        """Record results: sent rows in one bulk transaction (the common case, kept
        cheap), the others through the ORM (retries, fallbacks, opt-outs)."""
        now = self.app.clock.now()
        sent = [(i, r) for i, r in results if r.outcome == Outcome.SENT]
        others = [(i, r) for i, r in results if r.outcome != Outcome.SENT]
        if sent:
            mine = await self.record_sent(sent, now)
            stats.outcomes.update((i.channel, "sent") for i, _ in sent if i.delivery_id in mine)
        if others:
            await self._in_db(self._record_others, others, stats, now)

    def _record_others(
        self, others: Sequence[tuple[Outbound, SendResult]], stats: DispatchStats, now: datetime
    ) -> None:
        with Session(self.app.engine) as session, session.begin():
            rows = {
                d.id: d
                for d in session.scalars(
                    select(Delivery).where(Delivery.id.in_([i.delivery_id for i, _ in others]))  # type: ignore[union-attr]
                )
            }
            for item, result in others:
                delivery = rows[item.delivery_id]
                if (
                    delivery.lease_owner != self.worker_id
                    or delivery.status != DeliveryStatus.CLAIMED
                ):
                    continue  # our lease expired and another worker took over: theirs
                outcome = self._apply(session, delivery, result, now, stats)
                stats.outcomes[(delivery.channel, outcome)] += 1
                session.add(_event(outcome, item, result, now, delivery.contact_id))

    def _apply(
        self,
        session: Session,
        delivery: Delivery,
        result: SendResult,
        now: datetime,
        stats: DispatchStats,
    ) -> str:
        delivery.lease_owner, delivery.lease_until, delivery.updated_at = None, None, now
        delivery.last_error = "" if result.outcome == Outcome.SENT else result.detail[:1000]
        if result.provider_id:
            delivery.provider_id = result.provider_id[:300]
        match result.outcome:
            case Outcome.SENT:
                delivery.status, delivery.sent_at = DeliveryStatus.SENT.value, now
                delivery.cost = result.cost if result.cost is not None else delivery.cost_estimate
                return "sent"
            case Outcome.DEFERRED:
                if delivery.attempts >= self.retry.max_attempts:
                    delivery.status = DeliveryStatus.DEAD.value
                    delivery.last_error = (
                        f"gave up after {delivery.attempts} attempts: {result.detail}"[:1000]
                    )
                    return "dead"
                delivery.status = DeliveryStatus.PENDING.value
                delivery.due_at = now + self.retry.delay(
                    delivery.attempts, self.rng, result.retry_after
                )
                return "deferred"
            case Outcome.UNKNOWN:
                delivery.status = DeliveryStatus.UNKNOWN.value
                return "unknown"
            case Outcome.OPTED_OUT:
                delivery.status = DeliveryStatus.OPTED_OUT.value
                self._opt_out(session, delivery, now)
                _mark_fallback(delivery)
                return "opted_out"
            case Outcome.FAILED:
                delivery.status = DeliveryStatus.FAILED.value
                _mark_fallback(delivery)
                return "failed"
        raise AssertionError(result.outcome)

    def _opt_out(self, session: Session, delivery: Delivery, now: datetime) -> None:
        consent = session.scalars(
            select(Consent).where(
                Consent.contact_id == delivery.contact_id, Consent.channel == delivery.channel
            )
        ).first()
        if consent is None:
            consent = Consent(
                contact_id=delivery.contact_id, channel=delivery.channel, basis="", updated_at=now
            )
            session.add(consent)
        consent.basis, consent.source, consent.updated_at = (
            LawfulBasis.OPTED_OUT.value,
            "provider",
            now,
        )

    async def record_sent(
        self, sent: Sequence[tuple[Outbound, SendResult]], now: datetime
    ) -> set[int]:
        if self._postgres is not None:
            statement = self._sent_rows.postgres_statement(sent, now)
            return {row[0] for row in await self._postgres.fetch(*statement)}
        ids = [(item.delivery_id, result) for item, result in sent]
        return await self._on_sqlite(self._sent_rows.record, ids, now)

    def sent_journal(self) -> SentJournal | None:
        """This worker's sent journal (SQLite files only), opened on first use."""
        if self._journal is None and self._journal_folder is not None:
            self._journal = SentJournal(self._journal_folder, self.worker_id)
        return self._journal

    async def _on_sqlite(self, function: Callable[..., T], *args: Any) -> T:
        """A hot-path call (claim, record sent rows) on SQLite: in the event loop itself,
        unless another writer holds the lock (then on the database thread, which may
        wait for it). A thread hop per call cost more than the work: with the default
        ``max_unrecorded = 1``, where each result is committed on its own, handing the
        GIL between the two threads halved the throughput (10,000 emails: 27 s vs 13 s).
        Commits in WAL mode are local and short. (PostgreSQL's hot path is asyncio-native,
        see db.pg_async.)"""
        try:
            return function(*args, nowait=True)
        except Busy:
            return await self._in_db(function, *args)


class ResultWriter:
    """Group commit of streamed results: whatever arrived while the previous transaction
    ran goes into the next one. Each result's future is done once it is durably noted
    (the transport holds a sent message's "unrecorded" permit until then): once its
    transaction committed, or at once for a sent result written to the worker's sent
    journal (SQLite, see network_anim.outbox.sent_journal)."""

    def __init__(self, recorder: Recorder, stats: DispatchStats, gather: int = 1) -> None:
        self._recorder = recorder
        self._stats = stats
        self._journal = recorder.sent_journal()
        if self._journal is not None:
            self._journal.enter()
            gather = max(gather, _JOURNALED_GROUP)
        # How many results may wait together (the transport's max_unrecorded, or more
        # when a journal holds them). Below that, a result waits up to _GATHER_SECONDS
        # for others to join its commit: a commit for every two answers cost a third of
        # the CPU (10,000 emails: 4,452 commits, 8.8 s; 1,340 commits, 6.6 s). With
        # max_unrecorded = 1 and no journal nothing waits.
        self._gather = gather
        self._timer: asyncio.TimerHandle | None = None
        # The future is None for a noted result: its sender already has a done one.
        self._waiting: list[tuple[Outbound, SendResult, asyncio.Future[None] | None]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._failure: BaseException | None = None
        self.submitted: set[int] = set()
        self._task = asyncio.create_task(self._run())

    def submit(self, item: Outbound, result: SendResult) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        self.submitted.add(item.delivery_id)
        # Noted even after a failed commit: the dispatcher records the notes later.
        noted = result.outcome == Outcome.SENT and self._note(item, result)
        future: asyncio.Future[None] = loop.create_future()
        if noted:
            future.set_result(None)
        elif self._failure is not None:
            future.set_exception(self._failure)
        if self._failure is None:
            self._waiting.append((item, result, None if noted else future))
            if len(self._waiting) >= self._gather or (self._journal is not None and not noted):
                self._wake.set()  # what is not journaled waits for its commit: now
            elif self._timer is None:
                self._timer = loop.call_later(_GATHER_SECONDS, self._wake.set)
        return future

    def _note(self, item: Outbound, result: SendResult) -> bool:
        if self._journal is None:
            return False
        try:
            self._journal.note(item.delivery_id, self._recorder.app.clock.now(), result)
        except OSError as exc:  # a full disk: the database may still take it
            log.warning("sent journal %s: %s; waiting for the commit", self._journal.path, exc)
            return False
        return True

    async def _run(self) -> None:
        while True:
            if not self._closing:  # closing: what is left is recorded without waiting
                await self._wake.wait()
            self._wake.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not self._waiting:
                if self._closing:
                    return
                continue
            batch, self._waiting = self._waiting, []
            try:
                await self._recorder.record([(i, r) for i, r, _ in batch], self._stats)
            except Exception as exc:  # the database refused: every waiting result fails
                self._failure = exc
                for *_, recorded in batch + self._waiting:
                    if recorded is not None:
                        recorded.set_exception(exc)
                self._waiting = []
                return
            for *_, recorded in batch:
                if recorded is not None:
                    recorded.set_result(None)

    async def close(self) -> None:
        """Record what is still waiting, then stop. A failed recording is raised here
        when the journal had already freed its results' senders (the journal then keeps
        them for the next reclaim)."""
        self._closing = True
        self._wake.set()
        try:
            await asyncio.shield(self._task)
        finally:
            if self._journal is not None:
                self._journal.leave(committed=self._failure is None and self._task.done())
        if self._failure is not None and self._journal is not None:
            raise self._failure


def _mark_fallback(delivery: Delivery) -> None:
    """A permanent failure with channels left: the planner plans the next one (consent,
    legal window, quiet hours, caps; network_anim.planning.fallbacks). Only marked here,
    in the transaction that records the failure, so a crash in between loses nothing."""
    if delivery.fallback:
        delivery.fallback_due = True


def _event(
    outcome: str, item: Outbound, result: SendResult, now: datetime, contact_id: int
) -> Event:
    return Event(
        occurred_at=now,
        type=outcome,
        channel=item.channel,
        contact_id=contact_id,
        delivery_id=item.delivery_id,
        message_id=item.message_id,
        data={"detail": result.detail[:500], "provider_id": result.provider_id},
    )
