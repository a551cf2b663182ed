"""The dispatcher: claim due outbox rows, send them, hand each result to the recorder.

Crash safety (DESIGN.md §2): a claim is committed, with a lease, before any network call;
results are recorded as they come (outbox.recording); a worker that dies leaves rows in
``claimed`` that another takes back (outbox.reclaim). The next batch is claimed while
this one is being sent.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from sqlalchemy import select, update

from network_anim.app import App
from network_anim.channels.contract import Outbound, SendMode, SendResult, Transport
from network_anim.db.models import Delivery
from network_anim.domain import DeliveryStatus, Outcome
from network_anim.errors import UserError
from network_anim.outbox.leases import Claimer
from network_anim.outbox.rate_limit import send_paced
from network_anim.outbox.raw import RawSql
from network_anim.outbox.reclaim import Reclaimer
from network_anim.outbox.recording import Recorder, ResultWriter, log
from network_anim.outbox.sent_journal import journal_folder
from network_anim.outbox.sent_rows import SentRecorder
from network_anim.outbox.stats import DispatchStats, RetryPolicy

if TYPE_CHECKING:
    from network_anim.outbox.pg_async import AsyncPostgres

_RECLAIM_EVERY_SECONDS = 5.0
T = TypeVar("T")

__all__ = ["DispatchStats", "Dispatcher", "RetryPolicy"]


class Dispatcher:
    def __init__(
        self,
        app: App,
        transports: Mapping[str, Transport],
        *,
        worker_id: str,
        lease: timedelta = timedelta(minutes=5),
        batch_size: int = 200,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
        resend_safe: Callable[[str], bool] = lambda channel: False,
        rate_limits: Any = None,
        dead_owners: Callable[[set[str]], set[str]] = lambda owners: set(),
    ) -> None:
        self.app = app
        self.transports = transports
        # Per-channel token buckets (network_anim.outbox.rate_limit.RateLimits), or None.
        self.rate_limits = rate_limits
        self._stack = AsyncExitStack()
        # One thread for every database call of the dispatcher: its connection stays
        # checked out of the pool between calls' transactions, no thread hop per result.
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dispatch-db")
        self._open: dict[str, Transport] = {}
        self._stopping = False
        self.worker_id = worker_id
        self.lease = lease
        self.batch_size = batch_size
        self.retry = retry or RetryPolicy()
        self.rng = rng or random.Random()
        self._sql = RawSql(app.engine)
        self._claimer = Claimer(self._sql, worker_id)
        self._postgres: AsyncPostgres | None = None
        if app.engine.dialect.name == "postgresql":
            from network_anim.outbox.pg_async import AsyncPostgres

            self._postgres = AsyncPostgres(app.engine)
        sent_rows = SentRecorder(self._sql, worker_id)
        folder = journal_folder(app.engine)
        self.recorder = Recorder(
            app,
            worker_id,
            sent_rows,
            retry=self.retry,
            rng=self.rng,
            journal_folder=folder,
            postgres=self._postgres,
            in_db=self._in_db,
        )
        # dead_owners: which lease owners are known dead (their liveness lock is free).
        self.reclaimer = Reclaimer(
            app, sent_rows, folder, resend_safe=resend_safe, dead_owners=dead_owners
        )

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
            self.recorder.close()
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
        own = self.recorder.opened_journal
        if own is not None and own.dirty and own.idle:
            # A recording failed earlier: what it noted is recorded now (not resent).
            replay = self.reclaimer.replay_journals
            stats.recovered += await self._in_db(replay, {self.worker_id}, set())
            own.clear()
        recovered, reclaimed = await self._in_db(self.reclaimer.reclaim_expired)
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
            await self.recorder.record(list(zip(items, failed, strict=True)), stats)
            return
        bucket = (
            self.rate_limits.bucket(channel)
            if self.rate_limits is not None and transport.throttled
            else None
        )
        if transport.mode is SendMode.STREAM:
            await self._stream(transport, items, stats, bucket)
        elif transport.mode is SendMode.PACED and bucket is not None:
            await self._paced(transport, items, stats, bucket)
        else:
            await self._batches(transport, items, stats, bucket)

    async def _paced(
        self, transport: Transport, items: list[Outbound], stats: DispatchStats, bucket: Any
    ) -> None:
        """A provider's API (SMS): one request right after each token (a chunk sent at once
        after n tokens is a burst of n at the provider: bench/sms_rate.py saw 429s at
        50/s); each result is recorded (group commits) before its worker takes the next."""
        writer = ResultWriter(self.recorder, stats)
        try:
            await send_paced(
                items,
                lambda item: _single(transport, item),
                pace=lambda: bucket.acquire(1),
                workers=transport.concurrency or 1,
                on_result=lambda index, result: writer.submit(items[index], result),
            )
        finally:
            await writer.close()

    async def _batches(
        self, transport: Transport, items: list[Outbound], stats: DispatchStats, bucket: Any
    ) -> None:
        """Local transports (portal posts, letters: one document per batch) take chunks
        whole; their channels' rates are far above what one batch holds."""
        size = transport.concurrency or len(items)
        if bucket is not None:
            # A chunk takes its tokens at once: it must fit in half a second's worth.
            size = min(size, max(1, int(bucket.rate // 2)))
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            if bucket is not None:
                await bucket.acquire(len(chunk))
            results = await transport.send_batch(chunk)
            await self.recorder.record(list(zip(chunk, results, strict=True)), stats)

    async def _stream(
        self, transport: Transport, items: list[Outbound], stats: DispatchStats, bucket: Any
    ) -> None:
        """The whole batch to a transport that reports each result as it comes (SMTP):
        its sessions pull messages one by one, paced by the rate limit, and each result
        is recorded in the next group commit."""
        writer = ResultWriter(self.recorder, stats, gather=transport.max_unrecorded)
        pace = (lambda: bucket.acquire(1)) if bucket is not None else None
        try:
            results = await transport.send_stream(
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
            await self.recorder.record(rest, stats)

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


async def _single(transport: Transport, item: Outbound) -> SendResult:
    [result] = await transport.send_batch([item])
    return result
