"""The dispatcher: claim due outbox rows, send them, record what happened.

Crash safety (DESIGN.md §2): a claim is committed, with a lease, before any network call;
results are recorded as they come. A worker that dies leaves rows in ``claimed``; they are
taken back once its lease expires, or at once when the worker is known dead. Rows of
transports that may resend go back to ``pending`` (email: at least once, and the SMTP
transport lets at most one accepted message wait for its recording at any moment); the
others (SMS, letters: they cannot be taken back) become ``unknown`` for an operator.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from sqlalchemy import and_, func, or_, select, update
from sqlmodel import Session

from network_anim.app import App
from network_anim.channels.base import Outbound, SendResult, Transport
from network_anim.compose.composer import message_context
from network_anim.db.models import Campaign, Company, Consent, Contact, Delivery, Event, Message
from network_anim.domain import DeliveryStatus, LawfulBasis, Outcome
from network_anim.errors import UserError
from network_anim.outbox import sent_journal
from network_anim.outbox.leases import Claimer
from network_anim.outbox.rate_limit import send_paced
from network_anim.outbox.raw import Busy, RawSql
from network_anim.outbox.sent_journal import SentJournal, journal_folder
from network_anim.outbox.sent_rows import SentRecorder
from network_anim.planning.planner import make_composer

if TYPE_CHECKING:
    from network_anim.outbox.pg_async import AsyncPostgres

log = logging.getLogger("netanim.dispatch")
_RECLAIM_EVERY_SECONDS = 5.0
_GATHER_SECONDS = 0.01
# Results per group commit when a sent journal holds them meanwhile (see sent_journal).
_JOURNALED_GROUP = 64
T = TypeVar("T")


@dataclass
class DispatchStats:
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    fallbacks: Counter[str] = field(default_factory=Counter)
    reclaimed: int = 0
    # Sends of dead workers found in their sent journals and recorded as sent.
    recovered: int = 0

    def add(self, other: DispatchStats) -> None:
        self.outcomes.update(other.outcomes)
        self.fallbacks.update(other.fallbacks)
        self.reclaimed += other.reclaimed
        self.recovered += other.recovered

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: timedelta = timedelta(minutes=1)
    max_delay: timedelta = timedelta(hours=6)

    def delay(self, attempts: int, rng: random.Random, asked: float | None = None) -> timedelta:
        exponential = min(self.max_delay, self.base_delay * (2 ** max(0, attempts - 1)))
        # Full jitter around the exponential step spreads retries of a whole batch.
        jittered = exponential * rng.uniform(0.5, 1.5)
        if asked is not None:
            jittered = max(jittered, timedelta(seconds=asked))
        return jittered


class Dispatcher:
    def __init__(
        self,
        app: App,
        transports: Mapping[str, Transport],
        *,
        worker_id: str,
        lease: timedelta = timedelta(minutes=5),
        batch_size: int = 200,
        retry: RetryPolicy = RetryPolicy(),
        rng: random.Random | None = None,
        resend_safe: Callable[[str], bool] = lambda channel: False,
        rate_limits: Any = None,
        dead_owners: Callable[[set[str]], set[str]] = lambda owners: set(),
    ) -> None:
        self.app = app
        self.transports = transports
        self.resend_safe = resend_safe
        # Per-channel token buckets (network_anim.outbox.rate_limit.RateLimits), or None.
        self.rate_limits = rate_limits
        # Which lease owners are known dead (a daemon's liveness lock), for a quick reclaim.
        self.dead_owners = dead_owners
        self._stack = AsyncExitStack()
        # One thread for every database call of the dispatcher: its connection stays
        # checked out of the pool between calls' transactions, no thread hop per result.
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dispatch-db")
        self._open: dict[str, Transport] = {}
        self._stopping = False
        self.worker_id = worker_id
        self.lease = lease
        self.batch_size = batch_size
        self.retry = retry
        self.rng = rng or random.Random()
        self._sql = RawSql(app.engine)
        self._sent_rows = SentRecorder(self._sql, worker_id)
        self._claimer = Claimer(self._sql, worker_id)
        self._journal_folder = journal_folder(app.engine)
        self._journal: SentJournal | None = None
        self._postgres: AsyncPostgres | None = None
        if app.engine.dialect.name == "postgresql":
            from network_anim.outbox.pg_async import AsyncPostgres

            self._postgres = AsyncPostgres(app.engine)

    async def __aenter__(self) -> Self:
        await self._stack.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._stack.__aexit__(exc_type, exc, tb)
        finally:
            self._open.clear()
            self._db_thread.shutdown(wait=False)
            self._sql.close()
            if self._journal is not None:
                self._journal.close()
                self._journal = None
            if self._postgres is not None:
                await self._postgres.aclose()

    async def _transport(self, channel: str) -> Transport | None:
        """Open a channel's transport on first use; it stays open (connections reused)."""
        if channel not in self._open:
            transport = self.transports.get(channel)
            if transport is None:
                return None
            self._open[channel] = await self._stack.enter_async_context(transport)  # type: ignore[arg-type]
        return self._open[channel]

    async def drain(
        self, *, message_id: int | None = None, on_progress: Any = None
    ) -> DispatchStats:
        """Send every row due now (optionally of one message), batch after batch."""
        stats = DispatchStats()
        await self._reclaim(stats)
        # Open what the due rows need before claiming any: a missing credential is then
        # reported up front instead of leaving claimed rows behind.
        for channel in sorted(self.due_channels(message_id)):
            await self._transport(channel)
        loop = asyncio.get_running_loop()
        reclaimed_at = loop.time()
        # The next batch is claimed while this one is being sent, so the sessions never
        # wait for a claim; what is claimed but not sent when we stop is handed back.
        upcoming: asyncio.Future[list[Outbound]] | None = None
        try:
            upcoming = asyncio.ensure_future(self._claim_next(message_id))
            while not self._stopping:
                claimed = await upcoming
                upcoming = None
                if not claimed:
                    return stats
                if loop.time() - reclaimed_at > _RECLAIM_EVERY_SECONDS:
                    # A long backlog must not keep a dead worker's rows waiting until it ends.
                    await self._reclaim(stats)
                    reclaimed_at = loop.time()
                if len(claimed) == self.batch_size:
                    upcoming = asyncio.ensure_future(self._claim_next(message_id))
                batch = await self._send_claimed(claimed)
                stats.add(batch)
                if on_progress is not None:
                    on_progress(batch.total)
                if upcoming is None:
                    upcoming = asyncio.ensure_future(self._claim_next(message_id))
            return stats
        finally:
            if upcoming is not None:
                await self._hand_back(upcoming)

    async def _reclaim(self, stats: DispatchStats) -> None:
        # On the database thread: another writer may hold SQLite's lock.
        own = self._journal
        if own is not None and own.dirty and own.idle:
            # A recording failed earlier: what it noted is recorded now (not resent).
            stats.recovered += await self._in_db(self._replay_journals, {self.worker_id}, set())
            own.clear()
        recovered, reclaimed = await self._in_db(self.reclaim_expired)
        if recovered or reclaimed:
            # Logged now: a drain that is killed never reports its stats.
            log.info(
                "stopped workers' rows: %d recorded sent from their journals, %d taken back",
                recovered,
                reclaimed,
            )
        stats.recovered += recovered
        stats.reclaimed += reclaimed

    async def _hand_back(self, upcoming: asyncio.Future[list[Outbound]]) -> None:
        """Rows claimed ahead and never sent go back to pending, as if never claimed."""
        try:
            claimed = await asyncio.shield(upcoming)
        except Exception:
            return  # the claim failed: nothing was taken
        if claimed:
            await self._in_db(self._release, [item.delivery_id for item in claimed])

    def _release(self, ids: list[int]) -> None:
        with self.app.engine.begin() as conn:
            conn.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_(ids),  # type: ignore[union-attr]
                    Delivery.status == DeliveryStatus.CLAIMED.value,
                    Delivery.lease_owner == self.worker_id,
                )
                .values(
                    status=DeliveryStatus.PENDING.value,
                    lease_owner=None,
                    lease_until=None,
                    attempts=Delivery.attempts - 1,
                )
            )

    def stop_claiming(self) -> None:
        """Finish the batch in hand, claim nothing more (graceful shutdown)."""
        self._stopping = True

    async def run_once(self, *, message_id: int | None = None) -> DispatchStats:
        """Claim one batch and send it."""
        return await self._send_claimed(await self._claim_next(message_id))

    async def _send_claimed(self, claimed: list[Outbound]) -> DispatchStats:
        """Send claimed rows, channels side by side. Results are recorded as they come
        (streaming transports) or chunk by chunk (a chunk is what a transport sends at
        once), so a worker killed mid-batch leaves only what is in flight unrecorded."""
        stats = DispatchStats()
        if not claimed:
            return stats
        by_channel: dict[str, list[Outbound]] = defaultdict(list)
        for item in claimed:
            by_channel[item.channel].append(item)
        await asyncio.gather(
            *(self._send_channel(channel, items, stats) for channel, items in by_channel.items())
        )
        return stats

    async def _send_channel(
        self, channel: str, items: list[Outbound], stats: DispatchStats
    ) -> None:
        try:
            transport = await self._transport(channel)
        except UserError as exc:  # a fallback channel whose settings are incomplete
            transport, problem = None, exc.render()
        else:
            problem = f"no transport for {channel}"
        if transport is None:
            failed = [SendResult(Outcome.DEFERRED, detail=problem)] * len(items)
            await self._record(list(zip(items, failed, strict=True)), stats)
            return
        bucket = self.rate_limits.bucket(channel) if self.rate_limits is not None else None
        if getattr(transport, "streams_results", False):
            await self._stream(transport, items, stats, bucket)
            return
        concurrency = getattr(transport, "concurrency", None)
        if bucket is not None and concurrency:
            # A provider's API (SMS): one request right after each token (a chunk sent at once after n tokens is a
            # burst of n at the provider: bench/sms_rate.py saw 429s at 50/s); each result
            # is recorded (group commits) before its worker takes the next message.
            writer = _ResultWriter(self, stats)
            try:
                await send_paced(
                    items,
                    lambda item: _single(transport, item),
                    pace=lambda: bucket.acquire(1),
                    workers=concurrency,
                    on_result=lambda index, result: writer.submit(items[index], result),
                )
            finally:
                await writer.close()
            return
        # Local transports (portal posts, letters: one document per batch) take the batch
        # whole; their channels' rates are far above what one batch holds.
        size = concurrency or len(items)
        if bucket is not None:
            # A chunk takes its tokens at once: it must fit in half a second's worth.
            size = min(size, max(1, int(bucket.rate // 2)))
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            if bucket is not None:
                await bucket.acquire(len(chunk))
            results = await transport.send_batch(chunk)
            await self._record(list(zip(chunk, results, strict=True)), stats)

    async def _stream(
        self, transport: Transport, items: list[Outbound], stats: DispatchStats, bucket: Any
    ) -> None:
        """The whole batch to a transport that reports each result as it comes (SMTP):
        its sessions pull messages one by one, paced by the rate limit, and each result
        is recorded in the next group commit."""
        writer = _ResultWriter(self, stats, gather=getattr(transport, "max_unrecorded", 1))
        pace = (lambda: bucket.acquire(1)) if bucket is not None else None
        try:
            results = await transport.send_batch(  # type: ignore[call-arg]
                items,
                on_result=lambda index, result: writer.submit(items[index], result),
                pace=pace,
            )
        finally:
            await writer.close()
        # What was never attempted (a session failed before it) is recorded now.
        rest = [(item, result) for item, result in zip(items, results, strict=True)
                if item.delivery_id not in writer.submitted]  # fmt: skip
        if rest:
            await self._record(rest, stats)

    async def _in_db(self, function: Callable[..., T], *args: Any) -> T:
        """Run a blocking database call on the dispatcher's database thread."""
        return await asyncio.get_running_loop().run_in_executor(self._db_thread, function, *args)

    async def _claim_next(self, message_id: int | None) -> list[Outbound]:
        if self._postgres is not None:
            statement = self._claimer.postgres_claim(
                now=self.app.clock.now(),
                lease=self.lease,
                limit=self.batch_size,
                message_id=message_id,
            )
            return self._claimer.joined_outbound(await self._postgres.fetch(*statement))
        # On the database thread: one claim per batch, and SQLite's work on its 200 rows
        # (about 10 ms) then overlaps the sending of the batch before (no GIL held).
        return await self._in_db(self._claim, message_id)

    async def _record_sent(
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

    def due_channels(self, message_id: int | None = None) -> set[str]:
        query = (
            select(Delivery.channel)
            .distinct()
            .where(Delivery.status == DeliveryStatus.PENDING.value)
            .where(Delivery.due_at <= self.app.clock.now())
        )
        if message_id is not None:
            query = query.where(Delivery.message_id == message_id)
        with self.app.engine.connect() as conn:
            return set(conn.scalars(query))

    # -- claiming ---------------------------------------------------------------------

    def _claim(self, message_id: int | None, nowait: bool = False) -> list[Outbound]:
        return self._claimer.claim(
            now=self.app.clock.now(),
            lease=self.lease,
            limit=self.batch_size,
            message_id=message_id,
            nowait=nowait,
        )

    def reclaim_expired(self) -> tuple[int, int]:
        """Take back rows of workers that died: those whose lease ran out, and at once
        those of owners that ``dead_owners`` knows to be gone. What their sent journals
        hold is recorded as sent first; then rows of transports that may resend go back
        to pending (at least once), the others become unknown. Returns (rows recorded
        from journals, rows taken back)."""
        now = self.app.clock.now()
        expired = and_(Delivery.status == DeliveryStatus.CLAIMED.value, Delivery.lease_until < now)  # type: ignore[operator]
        with self.app.engine.connect() as conn:
            # Each owner of claimed rows, with its oldest lease: lapsed if before now.
            leases = dict(
                conn.execute(
                    select(Delivery.lease_owner, func.min(Delivery.lease_until))
                    .where(Delivery.status == DeliveryStatus.CLAIMED.value)
                    .where(Delivery.lease_owner.is_not(None))  # type: ignore[union-attr]
                    .group_by(Delivery.lease_owner)
                ).all()
            )
        owners = set(leases)
        lapsed = {owner for owner, until in leases.items() if until is not None and until < now}
        journaled = set()
        if self._journal_folder is not None:
            journaled = sent_journal.owners(self._journal_folder)
        candidates = owners | journaled
        dead = self.dead_owners(candidates) if candidates else set()
        recovered = self._replay_journals(journaled & (dead | lapsed), dead)
        if dead:
            expired = or_(
                expired,
                and_(
                    Delivery.status == DeliveryStatus.CLAIMED.value,
                    Delivery.lease_owner.in_(sorted(dead)),  # type: ignore[union-attr]
                ),
            )
        safe = [ch for ch in self.app.definitions if self.resend_safe(ch)]
        with self.app.engine.begin() as conn:
            requeued = conn.execute(
                update(Delivery)
                .where(expired, Delivery.channel.in_(safe))  # type: ignore[attr-defined]
                .values(
                    status=DeliveryStatus.PENDING.value,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
            ).rowcount
            unknown = conn.execute(
                update(Delivery)
                .where(expired, Delivery.channel.not_in(safe))  # type: ignore[attr-defined]
                .values(
                    status=DeliveryStatus.UNKNOWN.value,
                    last_error="the worker stopped while sending: outcome unknown, check first",
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
            ).rowcount
        return recovered, int(requeued or 0) + int(unknown or 0)

    def _replay_journals(self, owners: set[str], dead: set[str]) -> int:
        """Record what these workers noted as sent and did not commit (a journal of a
        worker that is only late is read, and kept)."""
        folder = self._journal_folder
        recovered = 0
        for owner in sorted(owners) if folder is not None else ():
            for noted in sent_journal.read(folder, owner):
                mine = self._sent_rows.record(
                    [(noted.delivery_id, noted.result)], noted.at, owner=owner
                )
                recovered += len(mine)
            if owner in dead:
                sent_journal.discard(folder, owner)
        return recovered

    # -- recording --------------------------------------------------------------------

    async def _record(
        self, results: Sequence[tuple[Outbound, SendResult]], stats: DispatchStats
    ) -> None:
        """Record results: sent rows in one bulk transaction (the common case, kept
        cheap), the others through the ORM (retries, fallbacks, opt-outs)."""
        now = self.app.clock.now()
        sent = [(i, r) for i, r in results if r.outcome == Outcome.SENT]
        others = [(i, r) for i, r in results if r.outcome != Outcome.SENT]
        if sent:
            mine = await self._record_sent(sent, now)
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
                self._fall_back(session, delivery, result, now, stats)
                return "opted_out"
            case Outcome.FAILED:
                delivery.status = DeliveryStatus.FAILED.value
                self._fall_back(session, delivery, result, now, stats)
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

    def _fall_back(
        self,
        session: Session,
        delivery: Delivery,
        result: SendResult,
        now: datetime,
        stats: DispatchStats,
    ) -> None:
        channel = plan_fallback(self.app, session, delivery, result.detail, now)
        if channel is not None:
            stats.fallbacks[channel] += 1


async def _single(transport: Transport, item: Outbound) -> SendResult:
    [result] = await transport.send_batch([item])
    return result


class _ResultWriter:
    """Group commit of streamed results: whatever arrived while the previous transaction
    ran goes into the next one. Each result's future is done once it is durably noted
    (the transport holds a sent message's "unrecorded" permit until then): once its
    transaction committed, or at once for a sent result written to the worker's sent
    journal (SQLite, see network_anim.outbox.sent_journal)."""

    def __init__(self, dispatcher: Dispatcher, stats: DispatchStats, gather: int = 1) -> None:
        self._dispatcher = dispatcher
        self._stats = stats
        self._journal = dispatcher.sent_journal()
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
            self._journal.note(item.delivery_id, self._dispatcher.app.clock.now(), result)
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
                await self._dispatcher._record([(i, r) for i, r, _ in batch], self._stats)
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


def plan_fallback(
    app: App, session: Session, delivery: Delivery, detail: str, now: datetime
) -> str | None:
    """Move a message that failed for good on its channel to the router's next channel,
    composed for that channel; returns that channel, or None if there is none (or it
    cannot carry the message, which is then noted on the failed row)."""
    if not delivery.fallback:
        return None
    channel, rest = delivery.fallback[0], list(delivery.fallback[1:])
    message = session.get(Message, delivery.message_id)
    contact = session.get(Contact, delivery.contact_id)
    assert message is not None and contact is not None
    company = session.get(Company, contact.company_id)
    campaign = session.get(Campaign, message.campaign_id)
    assert company is not None and campaign is not None
    key = f"{delivery.idempotency_key}>{channel}"
    try:
        composed = make_composer(app).compose(
            channel=channel,
            message=message,
            base_context={
                **message_context(app.config, campaign, message, now.date()),
                **delivery.extra.get("vars", {}),
            },
            contact=contact,
            company=company,
            post_id=int(delivery.extra.get("post_id", 0)),
            delivery_key=key,
        )
    except (UserError, ValueError) as exc:
        delivery.last_error = f"{delivery.last_error}; fallback to {channel} impossible: {exc}"[
            :1000
        ]
        return None
    extra = dict(composed.extra)
    if composed.headers:
        extra["headers"] = composed.headers
    session.add(
        Delivery(
            idempotency_key=key,
            message_id=delivery.message_id,
            contact_id=delivery.contact_id,
            channel=channel,
            status=DeliveryStatus.PENDING.value,
            marketing=delivery.marketing,
            due_at=now,
            reason=f"fallback: {delivery.channel} failed ({detail})"[:500],
            fallback=rest,
            parent_id=delivery.id,
            subject=composed.rendered.subject[:300],
            body_text=composed.rendered.text,
            body_html=composed.rendered.html,
            extra=extra,
            cost_estimate=composed.cost_estimate,
            created_at=now,
            updated_at=now,
        )
    )
    return channel
