"""The per-channel token bucket (network_anim.outbox.rate_limit), on simulated time.

``SimTime`` is a small discrete-event clock: ``sleep`` registers a timer (optionally late by
a given overshoot, like a real event loop) and ``run``/``run_until`` play the timers in
order, so every test below is deterministic. One test uses the real clock, with bounds
that the bucket guarantees rather than timings it merely hopes for.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from network_anim.app import App
from network_anim.channels.contract import Transport
from network_anim.channels.email_file import FileEmailTransport
from network_anim.channels.recording import RecordingTransport
from network_anim.outbox.dispatcher import Dispatcher
from network_anim.outbox.rate_limit import (
    DEFAULT_JITTER,
    DEFAULT_SLACK,
    RateLimits,
    TokenBucket,
    chunks,
    send_paced,
)
from network_anim.planning.planner import plan_message
from tests.test_storage import _request


class SimTime:
    def __init__(self, overshoots: Sequence[float] = ()) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._overshoots = list(overshoots)
        self._sleeps = 0

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        late = self._overshoots[self._sleeps % len(self._overshoots)] if self._overshoots else 0.0
        self._sleeps += 1
        timer = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(0.0, delay) + late, next(self._seq), timer))
        await timer

    @staticmethod
    async def settle() -> None:
        """Let every task run until it waits on a timer or a turn."""
        for _ in range(10):
            await asyncio.sleep(0)

    def _next_timer(self) -> tuple[float, asyncio.Future[None]] | None:
        while self._timers and self._timers[0][2].done():  # a cancelled sleeper
            heapq.heappop(self._timers)
        return (self._timers[0][0], self._timers[0][2]) if self._timers else None

    def _fire(self, when: float, timer: asyncio.Future[None]) -> None:
        heapq.heappop(self._timers)
        self.now = max(self.now, when)
        timer.set_result(None)

    async def run_until(self, moment: float) -> None:
        while True:
            await self.settle()
            nxt = self._next_timer()
            if nxt is None or nxt[0] > moment:
                break
            self._fire(*nxt)
        self.now = max(self.now, moment)
        await self.settle()

    async def run(self, *coros: Awaitable[Any]) -> list[Any]:
        tasks = [asyncio.ensure_future(c) for c in coros]
        while True:
            await self.settle()
            if all(t.done() for t in tasks):
                return [t.result() for t in tasks]
            nxt = self._next_timer()
            if nxt is None:
                raise AssertionError("deadlock: tasks wait but no timer is pending")
            self._fire(*nxt)


def sim_bucket(
    rate: float, burst: float | None = None, overshoots: Sequence[float] = (), **kw: Any
) -> tuple[SimTime, TokenBucket]:
    sim = SimTime(overshoots)
    return sim, TokenBucket(rate, burst, clock=sim.clock, sleep=sim.sleep, **kw)


async def grant_times(sim: SimTime, bucket: TokenBucket, sizes: Sequence[int]) -> list[float]:
    times: list[float] = []

    async def client() -> None:
        for n in sizes:
            await bucket.acquire(n)
            times.append(sim.now)

    await sim.run(client())
    return times


# -- defaults and validation ---------------------------------------------------------------


def test_default_burst_is_one_token_and_the_window_limit_is_the_rate() -> None:
    assert TokenBucket(10).burst == 1
    assert (TokenBucket(10).jitter, TokenBucket(10).slack) == (DEFAULT_JITTER, DEFAULT_SLACK)
    assert [TokenBucket(r).window_limit for r in (10, 50, 200, 0.5, 10.5)] == [10, 50, 200, 1, 11]
    # A token bucket admits burst + rate - 1 grants in one second.
    assert TokenBucket(50, burst=5).window_limit == 54
    assert TokenBucket(10, burst=2.5).window_limit == 12


@pytest.mark.parametrize("rate", [0, -1, math.inf, math.nan])
def test_rate_must_be_positive_and_finite(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate)


@pytest.mark.parametrize("burst", [0, 0.5, math.inf, math.nan])
def test_burst_must_be_at_least_one(burst: float) -> None:
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(10, burst)


@pytest.mark.parametrize("option", ["jitter", "slack", "spin"])
@pytest.mark.parametrize("value", [-0.001, math.inf, math.nan])
def test_jitter_slack_and_spin_must_be_finite_and_not_negative(option: str, value: float) -> None:
    with pytest.raises(ValueError, match=option):
        TokenBucket(10, **{option: value})


@pytest.mark.parametrize("n", [-1, 1.5, True])
def test_token_counts_are_non_negative_integers(n: Any) -> None:
    bucket = TokenBucket(10)
    with pytest.raises(ValueError, match="integer"):
        bucket.try_acquire(n)
    with pytest.raises(ValueError, match="integer"):
        asyncio.run(bucket.acquire(n))


# -- timing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "burst"), [(10, None), (50, 5), (200, 1), (2.5, 3.5), (0.5, 1)])
async def test_the_burst_is_immediate_then_one_token_every_interval(
    rate: float, burst: float | None
) -> None:
    sim, bucket = sim_bucket(rate, burst, jitter=0)  # the bucket alone
    times = await grant_times(sim, bucket, [1] * 15)
    upfront = math.floor(bucket.burst)
    assert times[:upfront] == [0.0] * upfront
    # Then each token as it is earned: the burst's fraction counts towards the next one.
    expected = [(k + 1 - bucket.burst) / rate for k in range(upfront, 15)]
    assert times[upfront:] == pytest.approx(expected, abs=1e-9)


async def test_a_fresh_bucket_gives_the_burst_and_no_more() -> None:
    sim, bucket = sim_bucket(8, burst=3)
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert bucket.available() == 0
    await sim.run_until(1 / 8)
    assert bucket.available() == 1
    assert [bucket.try_acquire(), bucket.try_acquire()] == [True, False]
    await sim.run_until(10)
    assert bucket.available() == 3  # refills up to the burst, not beyond
    assert bucket.try_acquire(3)
    assert not bucket.try_acquire()


def test_try_acquire_edge_cases() -> None:
    _, bucket = sim_bucket(10, burst=2)
    assert bucket.try_acquire(0)
    assert not bucket.try_acquire(3)  # more than the burst can never be had without waiting
    assert bucket.try_acquire(2)


async def test_a_request_above_the_burst_waits_for_its_tokens_then_leaves_no_debt() -> None:
    sim, bucket = sim_bucket(10)  # burst 1
    # 1 token in the full bucket + 4 earned over 0.4 s; then the bucket is empty, not negative.
    assert await grant_times(sim, bucket, [5, 1, 1]) == pytest.approx([0.4, 0.5, 0.6])


async def test_a_request_above_the_window_limit_is_granted_alone_in_its_window() -> None:
    sim, bucket = sim_bucket(2, jitter=0.25)  # burst 1, at most 2 tokens in 1.25 s
    times = await grant_times(sim, bucket, [5, 1, 1])
    # 5 tokens once earned (at 2.0 s); the next token is due at 2.5 by the bucket but the
    # window starting at 2.0 already holds 5: it waits until 2.0 + 1 s + the jitter.
    assert times == pytest.approx([2.0, 3.25, 3.75])


async def test_batches_keep_the_provider_window_even_when_larger_than_the_burst() -> None:
    # Twilio at 10/s with 8 concurrent sends: the bucket alone would give 8 every 0.8 s,
    # i.e. 16 within one second. The window rule spaces the batches a second (and the
    # jitter) apart.
    sim, bucket = sim_bucket(10)
    times = await grant_times(sim, bucket, [8, 8, 8, 2])
    assert times == pytest.approx([0.7, 1.725, 2.75, 2.95])


async def test_grants_a_second_apart_are_held_back_by_the_jitter() -> None:
    # 4/s, binary fractions: the bucket alone would grant at 0, 0.25, ..., 1.0 (5 grants
    # in 1 s + 25 ms); the fifth waits until the first has left the longer window.
    sim, bucket = sim_bucket(4)
    times = await grant_times(sim, bucket, [1] * 9)
    j = DEFAULT_JITTER
    assert times == pytest.approx(
        [0, 0.25, 0.5, 0.75, 1 + j, 1.25 + j, 1.5 + j, 1.75 + j, 2 + 2 * j]
    )


async def test_a_wake_up_late_by_a_few_milliseconds_is_caught_up() -> None:
    interval, late = 2**-6, 2**-7  # 64/s; one wake-up 7.8 ms late, within the 10 ms slack
    sim, bucket = sim_bucket(64, overshoots=[0, 0, late, *[0] * 20])
    times = await grant_times(sim, bucket, [1] * 7)
    # The late grant does not push the following ones: the fifth comes 7.8 ms after it.
    assert times == [
        0,
        interval,
        2 * interval,
        3 * interval + late,
        *(k * interval for k in (4, 5, 6)),
    ]
    # Later than the slack: the schedule moves by what exceeds the slack.
    later = 2**-6 + 2**-8  # 19.5 ms
    sim, bucket = sim_bucket(64, overshoots=[0, 0, later, *[0] * 20])
    times = await grant_times(sim, bucket, [1] * 5)
    moved = later - DEFAULT_SLACK
    expected = [0, interval, 2 * interval, 3 * interval + later, 4 * interval + moved]
    assert times == pytest.approx(expected, abs=1e-12)


async def test_late_wake_ups_within_the_slack_cost_once_per_window_not_once_per_grant() -> None:
    late = 2**-10  # every timer fires ~1 ms late; binary fractions keep the sums exact
    sim, bucket = sim_bucket(8, overshoots=[late], jitter=0)
    times = await grant_times(sim, bucket, [1] * 25)
    # Each grant is charged as if on time, so the lateness does not add up from one grant
    # to the next; only the window rule (never 9 tokens within 1 s) passes it on, once a
    # window: the 9th token must wait for the late 1st one to leave the window.
    assert times == [0.0] + [k / 8 + late * (1 + (k - 1) // 8) for k in range(1, 25)]
    # Without the slack every late wake-up delays all the following grants.
    sim, bucket = sim_bucket(8, overshoots=[late], slack=0, jitter=0)
    times = await grant_times(sim, bucket, [1] * 25)
    assert times == [0.0] + [k * (1 / 8 + late) for k in range(1, 25)]


# -- queueing and cancellation ----------------------------------------------------------------


async def test_waiters_are_served_in_arrival_order_and_large_requests_are_not_starved() -> None:
    sim, bucket = sim_bucket(1, jitter=0)  # the queue alone: no window pause
    assert bucket.try_acquire()
    served: list[tuple[str, float]] = []

    async def client(name: str, n: int) -> None:
        await bucket.acquire(n)
        served.append((name, sim.now))

    tasks = [asyncio.create_task(client(name, n)) for name, n in [("a", 1), ("big", 3), ("c", 1)]]
    await sim.settle()
    late = asyncio.create_task(client("d", 1))
    await sim.run_until(2.5)
    # The bucket is full (1 token) but "big" waits at the head for 3: nobody jumps it.
    assert bucket.available() == 1
    assert bucket.waiting == 3
    assert not bucket.try_acquire()
    await sim.run_until(10)
    assert all(t.done() for t in [*tasks, late])
    assert served == [("a", 1.0), ("big", 4.0), ("c", 5.0), ("d", 6.0)]
    assert bucket.waiting == 0


async def test_cancelling_the_waiter_at_the_head_takes_no_tokens_and_frees_the_queue() -> None:
    sim, bucket = sim_bucket(1, jitter=0)  # the queue alone: no window pause
    assert bucket.try_acquire()
    head = asyncio.create_task(bucket.acquire())
    await sim.settle()
    nxt = asyncio.create_task(bucket.acquire())
    await sim.run_until(0.5)
    head.cancel()
    await sim.run_until(1.0)
    assert head.cancelled()
    assert nxt.done()  # the token the head was waiting for, due at 1.0
    assert bucket.waiting == 0
    assert await grant_times(sim, bucket, [1]) == [2.0]


async def test_cancelling_a_queued_waiter_leaves_the_others_their_turn() -> None:
    sim, bucket = sim_bucket(1, jitter=0)  # the queue alone: no window pause
    assert bucket.try_acquire()
    first, second, third = (asyncio.create_task(bucket.acquire(n)) for n in (1, 3, 1))
    await sim.run_until(0.5)
    second.cancel()
    await sim.run_until(1.0)
    assert first.done() and second.cancelled() and not third.done()
    await sim.run_until(2.0)
    assert third.done()
    assert bucket.waiting == 0


async def test_a_waiter_cancelled_just_as_its_turn_comes_hands_the_turn_on() -> None:
    sim, bucket = sim_bucket(1, jitter=0)  # the queue alone: no window pause
    assert bucket.try_acquire()

    async def first_then_cancel_second() -> None:
        await bucket.acquire()
        # The turn has just passed to the second waiter, which has not run yet.
        second.cancel()

    first = asyncio.create_task(first_then_cancel_second())
    second, third = (asyncio.create_task(bucket.acquire()) for _ in range(2))
    await sim.run_until(1.0)
    assert first.done() and second.cancelled() and not third.done()
    await sim.run_until(2.0)
    assert third.done()
    assert bucket.waiting == 0


async def test_cancelling_a_large_request_while_it_accumulates_gives_nothing_away() -> None:
    sim, bucket = sim_bucket(10, burst=2)
    big = asyncio.create_task(bucket.acquire(20))
    await sim.run_until(1.0)
    big.cancel()
    await sim.settle()
    assert big.cancelled()
    assert bucket.available() == 2  # full again, as if the request had never been made
    assert [bucket.try_acquire(2), bucket.try_acquire()] == [True, False]


# -- the guarantees, for any rate and request pattern ------------------------------------------

requests = st.lists(
    st.tuples(
        st.one_of(st.just(0.0), st.floats(0, 2.0)),  # idle time before the request
        st.one_of(st.just(1), st.integers(1, 12)),  # tokens requested
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(
    rate=st.floats(0.5, 500),
    burst=st.none() | st.floats(1, 8),
    clients=st.lists(requests, min_size=1, max_size=3),
    overshoots=st.lists(st.one_of(st.just(0.0), st.floats(0, 0.03)), max_size=5),
    delays=st.lists(st.floats(0, 1), min_size=1, max_size=7),
)
def test_no_window_and_no_stretch_of_time_gets_more_than_its_share(
    rate: float,
    burst: float | None,
    clients: list[list[tuple[float, int]]],
    overshoots: list[float],
    delays: list[float],
) -> None:
    sim, bucket = sim_bucket(rate, burst, overshoots)
    calls: list[float] = []
    grants: list[tuple[float, int]] = []

    async def client(pattern: list[tuple[float, int]]) -> None:
        for idle, n in pattern:
            if idle:
                await sim.sleep(idle)
            calls.append(sim.now)
            await bucket.acquire(n)
            grants.append((sim.now, n))

    asyncio.run(sim.run(*(client(p) for p in clients)))
    assert len(grants) == sum(map(len, clients))
    times = [t for t, _ in grants]
    sizes = [n for _, n in grants]
    assert times == sorted(times)
    b, slack = bucket.burst, bucket.slack

    # 1. Any window of one second and the jitter holds fewer than rate + burst tokens (at
    #    most the rate for a whole rate and the default burst), or else a single request.
    assert_windows(times, sizes, 1.0 + bucket.jitter, bucket.window_limit, rate + b - 1e-9)

    # 1b. The provider's view: each request reaches it some time after its grant, the
    #     times differing by up to the jitter. Its one-second windows keep the limit too.
    arrivals = sorted(
        (t + bucket.jitter * delays[k % len(delays)], n)
        for k, (t, n) in enumerate(zip(times, sizes, strict=True))
    )
    arrived = [t for t, _ in arrivals]
    assert_windows(arrived, [n for _, n in arrivals], 1.0, bucket.window_limit, rate + b - 1e-9)

    # 2. Never more than the burst plus what was earned since the first request.
    done = itertools.accumulate(sizes)
    for t, total in zip(times, done, strict=True):
        assert total <= b + rate * (t - calls[0]) + 1e-6

    # 3. From any grant on, no more than that grant (or the burst) plus what is earned,
    #    give or take the slack credited to late wake-ups.
    prefix = [0, *itertools.accumulate(sizes)]
    for i in range(len(times)):
        allowance = max(b, sizes[i]) + rate * slack + 1e-6
        for j in range(i, len(times)):
            assert prefix[j + 1] - prefix[i] <= rate * (times[j] - times[i]) + allowance


def assert_windows(
    times: Sequence[float], sizes: Sequence[int], span: float, limit: int, bound: float
) -> None:
    """Every half-open window of ``span`` holds at most ``limit`` tokens (and fewer than
    ``bound``), or a single request."""
    end = 0
    for i, start in enumerate(times):
        while end < len(times) and times[end] < start + span - 1e-9:
            end += 1
        total = sum(sizes[i:end])
        assert total <= limit or end - i == 1, (i, times[i:end], sizes[i:end])
        assert total < bound + 2e-9 or end - i == 1


# -- registry and helpers -------------------------------------------------------------------


def test_rate_limits_give_one_bucket_per_limited_channel() -> None:
    limits = RateLimits({"sms": 10.0, "email": 50.0, "print": None, "flash": math.inf}, {"sms": 2})
    sms = limits.bucket("sms")
    assert sms is not None and sms is limits.bucket("sms")
    assert (sms.rate, sms.burst) == (10.0, 2.0)
    email = limits.bucket("email")
    assert email is not None and email is not sms
    assert (email.rate, email.burst, email.window_limit) == (50.0, 1.0, 50)
    assert limits.bucket("print") is None
    assert limits.bucket("flash") is None
    assert limits.bucket("intranet") is None


def test_rate_limits_reject_a_burst_without_a_rate_and_bad_rates() -> None:
    with pytest.raises(ValueError, match="intranet"):
        RateLimits({"sms": 10.0}, {"intranet": 5})
    with pytest.raises(ValueError, match="rate"):
        RateLimits({"sms": 0.0})


async def test_rate_limits_meter_limited_channels_only() -> None:
    sim = SimTime()
    limits = RateLimits({"sms": 4.0}, clock=sim.clock, sleep=sim.sleep)

    async def send(channel: str, count: int) -> float:
        for _ in range(count):
            await limits.acquire(channel)
        return sim.now

    # 4/s: the fifth token is due at 1.0, held back by the jitter (window rule).
    assert await sim.run(send("sms", 5), send("email", 100)) == [1 + DEFAULT_JITTER, 0.0]


async def test_send_paced_sends_one_request_per_token_and_never_more_than_the_workers() -> None:
    sim, bucket = sim_bucket(8, jitter=0)  # a token every 0.125 s
    started: list[tuple[float, str]] = []
    in_flight, most = 0, 0

    async def send(item: str) -> str:
        nonlocal in_flight, most
        started.append((sim.now, item))
        in_flight += 1
        most = max(most, in_flight)
        await sim.sleep(0.5)  # each answer takes four token intervals
        in_flight -= 1
        return item.upper()

    items = list("abcdefg")
    [results] = await sim.run(send_paced(items, send, pace=bucket.acquire, workers=3))
    assert results == list("ABCDEFG")  # in the items' order
    assert most == 3
    # Three requests a token apart; the fourth waits for a free worker (0.5), then takes
    # its token at once (the bucket had one): requests never leave two on one token.
    assert [t for t, _ in started] == [0, 0.125, 0.25, 0.5, 0.625, 0.75, 1.0]
    assert sorted(item for _, item in started) == items


async def test_send_paced_waits_for_each_recording_before_the_next_item() -> None:
    sim, bucket = sim_bucket(1000)
    unrecorded, most = 0, 0
    recorded: list[int] = []

    async def send(item: int) -> int:
        nonlocal unrecorded, most
        await sim.sleep(0.01)
        unrecorded += 1
        most = max(most, unrecorded)
        return item * 10

    async def on_result(index: int, result: int) -> None:
        nonlocal unrecorded
        await sim.sleep(0.05)  # a slow database
        recorded.append(result)
        unrecorded -= 1

    items = list(range(10))
    [results] = await sim.run(
        send_paced(items, send, pace=bucket.acquire, workers=2, on_result=on_result)
    )
    assert results == [i * 10 for i in items]
    assert sorted(recorded) == results
    assert most == 2  # sent but not yet recorded: never more than the workers


async def test_send_paced_edge_cases() -> None:
    async def pace() -> None:
        return None

    async def send(item: int) -> int:
        if item == 3:
            raise RuntimeError("transport bug")
        return item

    assert await send_paced([], send, pace=pace, workers=4) == []
    assert await send_paced([1, 2], send, pace=pace, workers=5) == [1, 2]
    with pytest.raises(ValueError, match="workers"):
        await send_paced([1], send, pace=pace, workers=0)
    with pytest.raises(ExceptionGroup) as raised:
        await send_paced([1, 2, 3, 4], send, pace=pace, workers=2)
    assert raised.group_contains(RuntimeError, match="transport bug")


def test_chunks() -> None:
    assert chunks(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert chunks("abcd", 2) == [["a", "b"], ["c", "d"]]
    assert chunks([], 4) == []
    with pytest.raises(ValueError, match="at least 1"):
        chunks([1], 0)


# -- real time --------------------------------------------------------------------------------


async def test_on_the_real_clock_tokens_are_never_early() -> None:
    bucket = TokenBucket(200)  # real monotonic clock and asyncio.sleep
    times: list[float] = []

    async def client() -> None:
        for _ in range(10):
            await bucket.acquire()
            times.append(time.monotonic())

    started = time.monotonic()
    # A bucket that lost a waiter would hang: fail instead.
    await asyncio.wait_for(asyncio.gather(*(client() for _ in range(5))), timeout=30)
    elapsed = time.monotonic() - started
    assert len(times) == 50
    # 1 token at once, then one every 5 ms: 49 intervals, whatever the machine's load.
    assert elapsed >= 49 / 200 - 1e-3
    assert all(t - times[0] >= k / 200 - 1e-3 for k, t in enumerate(times))
    assert elapsed < 5  # only a sanity bound: a stalled machine is not a failure of the bucket


# -- who keeps a pace -----------------------------------------------------------------------


async def waits_for_email(network: App, transport: Transport, occurrence: str) -> list[float]:
    """The seconds a 1 message/s email bucket made the dispatcher wait for one broadcast."""
    plan_message(network, _request(occurrence))
    now, waits = [0.0], []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    limits = RateLimits({"email": 1.0}, clock=lambda: now[0], sleep=sleep)
    others = {"intranet": RecordingTransport(), "print": RecordingTransport()}
    async with Dispatcher(
        network, {"email": transport, **others}, worker_id=occurrence, rate_limits=limits
    ) as dispatcher:
        stats = await dispatcher.drain()
    assert stats.outcomes[("email", "sent")] >= 3
    return waits


async def test_file_transports_are_not_held_to_the_channel_rate(
    network: App, tmp_path: Path
) -> None:
    """The email channel's rate is the relay's pace: the file writer of the embedded
    default ignores it, while a throttled transport on the same channel waits for it."""
    folder = FileEmailTransport(tmp_path, sender="a@example.com", clock=network.clock)
    assert await waits_for_email(network, folder, "pace-file") == []
    relay_waits = await waits_for_email(network, RecordingTransport(), "pace-relay")
    assert sum(relay_waits) >= 2  # about a second per message after the first
