"""Events written in batches: an open pixel must not cost one transaction per image.

Handlers call :meth:`EventWriter.record` (or :meth:`EventWriter.record_read`), which only
queues the row. A task writes the queue in one transaction per flush: every
``flush_seconds`` (0.5 s) after the first queued row, or at once when ``max_batch`` (200)
rows wait. Rows are inserted with ``ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL alike)
on ``event.dedupe_key`` and on ``postread (post_id, contact_id)``, so a row queued twice,
or a provider callback delivered twice, is written once. :meth:`EventWriter.stop` writes
what is still queued before returning (the web app's lifespan calls it on shutdown).

What must take effect at once (an unsubscribe, a consent change) does not come through
here: those handlers write in their own transaction with :func:`insert_event` (rows and
consents are written by network_anim/planning/records.py, which the bounces share).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from network_anim.db.models import Event, PostRead
from network_anim.planning.records import event_row, insert_event, insert_ignoring, set_consent

log = logging.getLogger(__name__)

_EVENT_TABLE = Event.__table__  # type: ignore[attr-defined]
_READ_TABLE = PostRead.__table__  # type: ignore[attr-defined]
_RETRY_DELAYS = (0.5, 1.0, 2.0)  # the database went away: retry, then give the batch up

ItemKind = Literal["event", "read"]


@dataclass
class WriterStats:
    flushes: int = 0  # transactions committed
    events: int = 0  # event rows handed to the database (duplicates included)
    reads: int = 0
    dropped: int = 0  # rows given up: queue full, or refused by the database


class EventWriter:
    """Queue of event and post-read rows, written by one asyncio task in batches."""

    def __init__(
        self,
        engine: Engine,
        *,
        flush_seconds: float = 0.5,
        max_batch: int = 200,
        max_queue: int = 100_000,
    ) -> None:
        if flush_seconds <= 0 or max_batch < 1 or max_queue < max_batch:
            raise ValueError("flush_seconds > 0, max_batch >= 1 and max_queue >= max_batch")
        self.engine = engine
        self.flush_seconds = flush_seconds
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.stats = WriterStats()
        self._pending: list[tuple[ItemKind, dict[str, Any]]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id: int | None = None
        self._closing = False
        self._nonempty = asyncio.Event()
        self._urgent = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._closing

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the event writer is already running")
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        self._closing = False
        self._nonempty, self._urgent = asyncio.Event(), asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="netanim-event-writer")

    async def stop(self) -> None:
        """Write everything still queued, then stop; later rows are written one by one."""
        task = self._task
        if task is None:
            return
        self._closing = True
        self._nonempty.set()
        self._urgent.set()
        try:
            await task
        finally:
            self._task = None

    async def __aenter__(self) -> EventWriter:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- recording -----------------------------------------------------------------------

    def record(self, row: dict[str, Any]) -> None:
        """Queue one event row (build it with :func:`event_row`). Safe from any thread."""
        self._submit(("event", row))

    def record_read(self, *, post_id: int, contact_id: int, read_at: datetime) -> None:
        """Queue a post read receipt; the first read of a post by a contact is kept."""
        self._submit(("read", {"post_id": post_id, "contact_id": contact_id, "read_at": read_at}))

    async def flush(self) -> None:
        """Return once every row queued before this call is written."""
        if not self.running:
            return
        assert self._loop is not None
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(waiter)
        self._nonempty.set()
        self._urgent.set()
        await waiter

    def _submit(self, item: tuple[ItemKind, dict[str, Any]]) -> None:
        if not self.running:
            # Before start or after stop (a request finishing during shutdown): write now.
            self._write([item])
            return
        assert self._loop is not None
        if threading.get_ident() == self._thread_id:
            self._append(item)
        else:
            self._loop.call_soon_threadsafe(self._append, item)

    def _append(self, item: tuple[ItemKind, dict[str, Any]]) -> None:
        if len(self._pending) >= self.max_queue:
            self.stats.dropped += 1
            if self.stats.dropped % 1000 == 1:
                log.error(
                    "event queue full (%d rows): the database does not keep up; %d dropped",
                    self.max_queue,
                    self.stats.dropped,
                )
            return
        self._pending.append(item)
        self._nonempty.set()
        if len(self._pending) >= self.max_batch:
            self._urgent.set()

    # -- writing -------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._nonempty.wait()
            if not self._urgent.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.flush_seconds):
                        await self._urgent.wait()
            self._urgent.clear()
            waiters, self._waiters = self._waiters, []
            drain_all = bool(waiters) or self._closing
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                await self._write_with_retries(batch)
                if not drain_all and len(self._pending) < self.max_batch:
                    break  # the rest waits for its own window
            if not self._pending:
                self._nonempty.clear()
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            if self._closing and not self._pending:
                return

    async def _write_with_retries(self, batch: list[tuple[ItemKind, dict[str, Any]]]) -> None:
        for delay in (*_RETRY_DELAYS, None):
            try:
                await asyncio.to_thread(self._write, batch)
                return
            except SQLAlchemyError as exc:
                if delay is None:
                    self.stats.dropped += len(batch)
                    log.error("event batch of %d rows given up: %s", len(batch), exc)
                    return
                log.warning("event batch not written (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    def _write(self, batch: list[tuple[ItemKind, dict[str, Any]]]) -> None:
        """One transaction for the whole batch; a row the database refuses (a foreign key
        gone meanwhile) is written apart so it does not take the others with it."""
        try:
            self._transaction(batch)
        except IntegrityError:
            for item in batch:
                try:
                    self._transaction([item])
                except IntegrityError as exc:
                    self.stats.dropped += 1
                    log.error("event row refused by the database: %s (%s)", item, exc.orig)

    def _transaction(self, batch: list[tuple[ItemKind, dict[str, Any]]]) -> None:
        events = [row for kind, row in batch if kind == "event"]
        reads = [row for kind, row in batch if kind == "read"]
        with self.engine.begin() as connection:
            if events:
                connection.execute(
                    insert_ignoring(connection, _EVENT_TABLE, ["dedupe_key"]), events
                )
            if reads:
                keys = ["post_id", "contact_id"]
                connection.execute(insert_ignoring(connection, _READ_TABLE, keys), reads)
        self.stats.flushes += 1
        self.stats.events += len(events)
        self.stats.reads += len(reads)


__all__ = ["EventWriter", "WriterStats", "event_row", "insert_event", "set_consent"]
