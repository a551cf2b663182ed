"""POST due webhook rows: claimed under a lease, signed per attempt, results recorded.

As in the message outbox (outbox/leases.py): a claim is committed with a lease before
any request leaves; a worker that dies leaves rows ``claimed`` that the next pass takes
back once the lease runs out. Resending is safe here: a receiver drops a second delivery
by its ``webhook-id`` (at least once). A 2xx answer is sent; any other answer, a timeout
or a connection error is retried with exponential backoff and jitter (outbox.stats
RetryPolicy) on the engine clock, and the row is dead after the subscriber's
``max_attempts``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp
from sqlalchemy import select, update

from network_anim.app import App
from network_anim.config.settings import WebhookSubscriber
from network_anim.db.models import WebhookDelivery
from network_anim.errors import UserError
from network_anim.outbox.stats import RetryPolicy
from network_anim.webhooks.signing import signed_headers, subscriber_key

log = logging.getLogger("network_anim.webhooks")

W = WebhookDelivery
_CONCURRENCY = 8
# At least 30 s between two attempts, at most 6 h: a receiver down for a night is
# caught up with in the morning, within the default 8 attempts (about 2 hours of them).
_BASE_DELAY = timedelta(seconds=30)
_MAX_DELAY = timedelta(hours=6)


@dataclass
class SendStats:
    outcomes: Counter[str] = field(default_factory=Counter)  # sent | retry | dead
    reclaimed: int = 0
    # Subscribers skipped this pass (their secret is missing or malformed): the messages.
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    event_key: str
    subscriber: str
    body: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Answer:
    ok: bool
    detail: str  # "HTTP 200", "HTTP 503: ...", "ClientConnectorError: ..."


class WebhookSender:
    def __init__(
        self,
        app: App,
        *,
        worker_id: str,
        lease: timedelta = timedelta(minutes=2),
        batch_size: int = 100,
        rng: random.Random | None = None,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.app = app
        self.worker_id = worker_id
        self.lease = lease
        self.batch_size = batch_size
        self.rng = rng or random.Random()
        self.stopping = stopping

    async def send_due(self) -> SendStats:
        """Send every due row of the configured subscribers, batch after batch."""
        stats = SendStats()
        keys: dict[str, bytes] = {}
        subscribers = {s.name: s for s in self.app.config.webhooks}
        for subscriber in subscribers.values():
            try:
                keys[subscriber.name] = subscriber_key(subscriber)
            except UserError as exc:
                stats.problems.append(exc.render())
        if not keys:
            return stats
        stats.reclaimed = await asyncio.to_thread(self._reclaim)
        gate = asyncio.Semaphore(_CONCURRENCY)
        async with aiohttp.ClientSession() as session:
            while not self.stopping():
                claimed = await asyncio.to_thread(self._claim, sorted(keys))
                if not claimed:
                    break
                answers = await asyncio.gather(
                    *(self._attempt(session, gate, subscribers, keys, item) for item in claimed)
                )
                await asyncio.to_thread(self._record, claimed, answers, subscribers, stats)
        return stats

    async def _attempt(
        self,
        session: aiohttp.ClientSession,
        gate: asyncio.Semaphore,
        subscribers: dict[str, WebhookSubscriber],
        keys: dict[str, bytes],
        item: Claimed,
    ) -> Answer:
        async with gate:
            # Signed now, not when queued: the receiver checks the timestamp is recent.
            headers = signed_headers(
                keys[item.subscriber], item.event_key, self.app.clock.now(), item.body
            )
            return await post(session, subscribers[item.subscriber], headers, item.body)

    def _claim(self, names: list[str]) -> list[Claimed]:
        now = self.app.clock.now()
        pick = (
            select(W.id)
            .where(W.status == "pending", W.due_at <= now, W.subscriber.in_(names))  # type: ignore[arg-type,attr-defined,operator]
            .order_by(W.due_at, W.id)
            .limit(self.batch_size)
        )
        if self.app.engine.dialect.name == "postgresql":
            # Several daemons claim side by side, never the same row.
            pick = pick.with_for_update(skip_locked=True)
        with self.app.engine.begin() as conn:
            rows = conn.execute(
                update(W)
                .where(W.id.in_(pick.scalar_subquery()))  # type: ignore[union-attr]
                .values(
                    status="claimed",
                    lease_owner=self.worker_id,
                    lease_until=now + self.lease,
                    attempts=W.attempts + 1,
                    updated_at=now,
                )
                .returning(W.id, W.event_key, W.subscriber, W.body, W.attempts)
            ).all()
        return sorted((Claimed(*row) for row in rows), key=lambda item: item.id)

    def _record(
        self,
        claimed: list[Claimed],
        answers: list[Answer],
        subscribers: dict[str, WebhookSubscriber],
        stats: SendStats,
    ) -> None:
        now = self.app.clock.now()
        with self.app.engine.begin() as conn:
            for item, answer in zip(claimed, answers, strict=True):
                values = self._outcome(item, answer, subscribers[item.subscriber], now)
                done = conn.execute(
                    update(W)
                    .where(
                        W.id == item.id,  # type: ignore[arg-type]
                        W.status == "claimed",  # type: ignore[arg-type]
                        W.lease_owner == self.worker_id,  # type: ignore[arg-type]
                    )
                    .values(lease_owner=None, lease_until=None, updated_at=now, **values)
                    .returning(W.status)
                ).scalar()
                if done is None:
                    continue  # our lease ran out and another worker took the row
                stats.outcomes["retry" if done == "pending" else done] += 1
                if done == "dead":
                    log.warning("webhook %s to %s dead: %s", item.event_key, item.subscriber,
                                values["last_error"])  # fmt: skip

    def _outcome(
        self, item: Claimed, answer: Answer, subscriber: WebhookSubscriber, now: datetime
    ) -> dict[str, object]:
        if answer.ok:
            return {"status": "sent", "sent_at": now, "last_error": ""}
        if item.attempts >= subscriber.max_attempts:
            error = f"gave up after {item.attempts} attempts: {answer.detail}"
            return {"status": "dead", "last_error": error[:1000]}
        policy = RetryPolicy(subscriber.max_attempts, _BASE_DELAY, _MAX_DELAY)
        due = now + policy.delay(item.attempts, self.rng)
        return {"status": "pending", "due_at": due, "last_error": answer.detail[:1000]}

    def _reclaim(self) -> int:
        """Rows of a worker that stopped mid-send go back to pending (resent: at least once)."""
        now = self.app.clock.now()
        with self.app.engine.begin() as conn:
            return conn.execute(
                update(W)
                .where(W.status == "claimed", W.lease_until < now)  # type: ignore[arg-type,operator]
                .values(status="pending", lease_owner=None, lease_until=None, updated_at=now)
            ).rowcount


async def post(
    session: aiohttp.ClientSession,
    subscriber: WebhookSubscriber,
    headers: dict[str, str],
    body: str,
) -> Answer:
    """One attempt. Redirects are not followed: a 3xx is an answer to retry, not a new URL."""
    try:
        async with session.post(
            subscriber.url,
            data=body.encode(),
            headers={"user-agent": "netanim-webhooks/1", **headers},
            timeout=aiohttp.ClientTimeout(total=subscriber.timeout),
            allow_redirects=False,
        ) as response:
            if 200 <= response.status < 300:
                return Answer(True, f"HTTP {response.status}")
            said = (await response.text(errors="replace")).strip()[:200]
            return Answer(False, f"HTTP {response.status}" + (f": {said}" if said else ""))
    except TimeoutError:
        return Answer(False, f"no answer within {subscriber.timeout:g} s")
    except aiohttp.ClientError as exc:
        return Answer(False, f"{type(exc).__name__}: {exc}")
