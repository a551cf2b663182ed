"""Per-channel send-rate limiting: an asyncio token bucket and a registry of buckets.

Providers count requests per second (Twilio answers 429 above a sender's rate), so the
dispatcher meters each channel through a :class:`TokenBucket` before it sends.

The bucket holds at most ``burst`` tokens, earns ``rate`` tokens per second and starts
full. Two rules decide when a request for ``n`` tokens is granted, and both must agree:

* **The bucket** (kept as a GCRA "full at" time rather than a float balance that drifts):
  with ``n <= burst`` the request waits until the bucket holds ``n`` tokens. A request
  for more than ``burst`` tokens is allowed: it keeps its place at the head of the queue
  and waits until ``n`` tokens have been earned from the moment it reached the head (as
  if taking burst-sized pieces one after the other). It is granted with the bucket empty
  afterwards: there is never a negative balance, and never a grant of tokens not yet
  earned. In particular a fresh (or long idle) bucket gives at most ``burst`` tokens at
  once, and over any stretch of activity the tokens granted never exceed
  ``burst + rate * elapsed``.
* **The window**: over any ``window + jitter`` (1 s + 25 ms) the grants never total
  more than ``window_limit = ceil(rate * window + burst) - 1`` tokens (that is ``rate``
  for the default burst of 1 and a whole rate). A request for more than
  ``window_limit`` tokens is granted alone, into a window holding nothing else. The
  window rule keeps the limit when requests of ``n > burst`` tokens follow each other,
  and it is what makes the lateness credit below safe.

**Jitter.** The provider counts requests when they reach it, not when we grant them:
each one arrives some time after its grant (building the request, the event loop busy
elsewhere, the network), and that time varies. Requests granted within ``window +
jitter`` can arrive within one ``window`` when the first is delayed ``jitter`` more than
the last, so counting grants over ``window + jitter`` keeps the provider's count at
``window_limit`` as long as the delays vary by at most ``jitter``. Measured against a
stand-in of Twilio (bench/sms_rate.py), a one-second window without this margin took
51 requests at 50/s (the first request of a run left late). The cost is a pause of
``jitter`` once a window while the bucket is saturated: ``window_limit`` grants per
``window + jitter``, 97.6 % of a whole rate with the default 25 ms.

**Default burst: 1 token.** A token bucket admits ``burst + rate - 1`` single-token grants
within one second (a full bucket emptied at once, then one token every ``1/rate``), so 1
is the only burst that keeps a one-second window at ``rate`` for the providers that
count per second. It costs no throughput: when there is enough work the grants come
every ``1/rate``. A larger burst only absorbs idle gaps; ``rate / 10`` would let 54 messages through in the first second at 50/s.

**Timers.** The event loop wakes a sleeper a little late (the selector rounds timeouts up
to the millisecond). Two small measures keep the achieved rate and the spacing close to
the ideal, neither of which can ever grant a token early:

* ``spin``: the last ``spin`` seconds of a wait are spent yielding to the loop
  (``sleep(0)``) instead of in a timed sleep, for sub-millisecond spacing. This uses
  CPU, about ``spin * rate`` of one core while the bucket is saturated (some 5 % at
  50/s), so it is on by default only with the real ``asyncio.sleep`` and can be set to 0.
* ``slack``: a waiter that wakes up to ``slack`` seconds (10 ms) after its tokens were
  due is charged as if woken on time, so a late wake-up does not shift every following
  grant: the grants that follow catch up with the schedule, never get ahead of it (no
  token is granted before it is earned). A busy dispatcher (recording results, parsing
  answers) wakes late by several milliseconds at a time: at 200/s the bench achieved
  164-179 msg/s with the credit capped at half an interval (2.5 ms), 191-195 with 10 ms.
  The window rule bounds what this credit can do.

Requests are served first come, first served: one waiter at a time (the head of the
queue) waits for its tokens, so a large request is never overtaken by small ones, and
``try_acquire`` fails while anyone waits. A waiter cancelled at any point takes no
tokens and leaves the queue to the next one.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

WINDOW = 1.0
"""Seconds over which providers count requests (Twilio: messages per second)."""
DEFAULT_SLACK = 0.010
DEFAULT_SPIN = 0.0015
DEFAULT_JITTER = 0.025
"""Seconds by which the delays from grant to provider may differ (see the module doc)."""


class TokenBucket:
    """A FIFO, cancellation-safe asyncio token bucket (see the module documentation).

    ``clock`` and ``sleep`` are injectable so tests can run on simulated time; ``spin``
    defaults to :data:`DEFAULT_SPIN` with the real ``asyncio.sleep`` and to 0 otherwise
    (a simulated ``sleep(0)`` would not move the simulated time).
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        window: float = WINDOW,
        jitter: float = DEFAULT_JITTER,
        slack: float = DEFAULT_SLACK,
        spin: float | None = None,
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive number of tokens per second, not {rate!r}")
        if burst is None:
            burst = 1.0
        if not (math.isfinite(burst) and burst >= 1):
            raise ValueError(f"burst must be at least 1 token, not {burst!r}")
        if not (math.isfinite(window) and window > 0):
            raise ValueError(f"window must be a positive number of seconds, not {window!r}")
        if spin is None:
            spin = DEFAULT_SPIN if sleep is asyncio.sleep else 0.0
        if not all(math.isfinite(x) and x >= 0 for x in (jitter, slack, spin)):
            raise ValueError("jitter, slack and spin must be finite, not negative seconds")
        self.rate = float(rate)
        self.burst = float(burst)
        self.window = float(window)
        self.jitter = float(jitter)
        # Grants within a half-open window of length w: fewer than rate * w + burst.
        self.window_limit = max(1, math.ceil(self.rate * self.window + self.burst - 1e-9) - 1)
        self.slack = float(slack)
        # Spinning for longer than half a token interval would only burn CPU.
        self._spin = min(float(spin), 0.5 / self.rate)
        self._clock = clock
        self._sleep = sleep
        self._full_at = -math.inf  # when the bucket is (or was last) full
        self._granted: deque[tuple[float, int]] = deque()  # (when, n) within the window
        self._in_window = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate:g}, burst={self.burst:g})"

    @property
    def waiting(self) -> int:
        """How many ``acquire`` calls are queued (the head included)."""
        return len(self._waiters)

    def available(self) -> float:
        """Tokens in the bucket now (ignores the window rule and the queue)."""
        behind = max(0.0, self._full_at - self._clock())
        return max(0.0, self.burst - self.rate * behind)

    def try_acquire(self, n: int = 1) -> bool:
        """Take ``n`` tokens if they can be granted now and nobody is waiting.

        Never succeeds for ``n > burst`` (those have to wait for tokens to accumulate).
        """
        _check(n)
        if n == 0:
            return True
        if self._waiters:
            return False
        now = self._clock()
        if now < self._ready_at(n, now, now):
            return False
        self._take(n, now, now, now)
        return True

    async def acquire(self, n: int = 1) -> None:
        """Wait, in arrival order, until ``n`` tokens can be granted, then take them."""
        _check(n)
        if n == 0:
            return
        if self.try_acquire(n):
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        try:
            if self._waiters[0] is not turn:
                await turn  # set by the previous head when it leaves the queue
            start = due = self._clock()  # reached the head; due: when the grant is expected
            while True:
                now = self._clock()
                ready = self._ready_at(n, now, start)
                if now >= ready:
                    self._take(n, now, start, due)
                    return
                due, delay = ready, ready - now
                await self._sleep(delay - self._spin if delay > self._spin else 0.0)
        finally:
            # Whether granted, cancelled or failed: leave the queue, hand over the turn.
            head = self._waiters[0] is turn
            self._waiters.remove(turn)
            if head and self._waiters and not self._waiters[0].done():
                self._waiters[0].set_result(None)

    # -- the two rules ----------------------------------------------------------------

    def _bucket_ready(self, n: int, start: float) -> float:
        """When the bucket can give ``n`` tokens to a waiter at the head since ``start``."""
        # n <= burst: when the level reaches n. n > burst: n - burst tokens after the
        # bucket is full, counting only from when the waiter reached the head.
        return max(self._full_at, start) - (self.burst - n) / self.rate

    def _window_ready(self, n: int, now: float) -> float:
        """When the grants in the window leave room for ``n`` more tokens."""
        span = self.window + self.jitter
        while self._granted and self._granted[0][0] + span <= now:
            self._in_window -= self._granted.popleft()[1]
        if self._in_window == 0 or self._in_window + n <= self.window_limit:
            return -math.inf
        remaining = self._in_window
        for when, count in self._granted:
            remaining -= count
            if remaining == 0 or remaining + n <= self.window_limit:
                return when + span
        raise AssertionError("unreachable: the window empties")

    def _ready_at(self, n: int, now: float, start: float) -> float:
        return max(self._bucket_ready(n, start), self._window_ready(n, now))

    def _take(self, n: int, now: float, start: float, due: float) -> None:
        # A waiter that woke late, by no more than the slack, is charged as if granted when
        # it was due, so that the lateness is not passed on to every following grant.
        charged = max(now - self.slack, due, self._bucket_ready(n, start))
        self._full_at = max(self._full_at + n / self.rate, charged + min(n, self.burst) / self.rate)
        self._granted.append((now, n))
        self._in_window += n


class RateLimits:
    """One :class:`TokenBucket` per rate-limited channel.

    ``rates`` maps a channel to its tokens (messages) per second; a channel that is absent,
    or mapped to ``None`` or infinity, is not limited. ``burst`` optionally overrides the
    default burst (1) per channel; ``clock``, ``sleep`` and ``spin`` go to every bucket.
    """

    def __init__(
        self,
        rates: Mapping[str, float | None],
        burst: Mapping[str, float] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        spin: float | None = None,
    ) -> None:
        bursts = dict(burst or {})
        limited = {ch: r for ch, r in rates.items() if r is not None and r != math.inf}
        unknown = sorted(set(bursts) - set(limited))
        if unknown:
            raise ValueError(f"burst given for channels without a rate: {', '.join(unknown)}")
        self._buckets = {
            ch: TokenBucket(rate, bursts.get(ch), clock=clock, sleep=sleep, spin=spin)
            for ch, rate in limited.items()
        }

    def bucket(self, channel: str) -> TokenBucket | None:
        """The channel's bucket, the same object on every call; None if not limited."""
        return self._buckets.get(channel)

    async def acquire(self, channel: str, n: int = 1) -> None:
        """Wait for ``n`` tokens of the channel's bucket; returns at once if not limited."""
        bucket = self._buckets.get(channel)
        if bucket is not None:
            await bucket.acquire(n)

    def __repr__(self) -> str:
        inner = ", ".join(f"{ch}={b.rate:g}/s" for ch, b in sorted(self._buckets.items()))
        return f"RateLimits({inner})"


async def send_paced(
    items: Sequence[T],
    send: Callable[[T], Awaitable[R]],
    *,
    pace: Callable[[], Awaitable[object]],
    workers: int,
    on_result: Callable[[int, R], Awaitable[object]] | None = None,
) -> list[R]:
    """``send`` every item, ``workers`` at a time, each request right after its own token.

    What a rate-limited channel needs from the dispatcher: taking ``n`` tokens for a
    chunk and then sending the chunk at once puts ``n`` requests on the provider within
    a millisecond (bench/sms_rate.py measured bursts of 8 and 429s at 50/s); here each
    worker pulls the next item, awaits ``pace()`` (``bucket.acquire(1)``) and sends it at
    once, so the requests leave one by one at the bucket's rate. The token is taken only
    once a worker is free: a token never waits for a slot, to be spent in a burst later.

    ``on_result(index, result)``, when given, is awaited before the worker takes its next
    item (the dispatcher records there): at most ``workers`` results are unrecorded at
    any moment, as with chunks of ``workers``. Results come back in the items' order.
    ``send`` is expected not to raise (transports turn failures into results); if it
    does, the other workers are cancelled and the exception propagates.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers!r}")
    results: list[R | None] = [None] * len(items)
    pending = iter(enumerate(items))  # shared: each worker takes the next item when free

    async def work() -> None:
        for index, item in pending:
            await pace()
            result = results[index] = await send(item)
            if on_result is not None:
                await on_result(index, result)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(workers, len(items))):
            group.create_task(work())
    return results  # type: ignore[return-value]  # every index was filled


def chunks(items: Sequence[T], size: int) -> list[list[T]]:
    """``items`` cut in order into lists of at most ``size`` (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size!r}")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _check(n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"the number of tokens must be a non-negative integer, not {n!r}")
