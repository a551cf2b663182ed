"""What a drain reports, and how long a deferred row waits before its next attempt."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass
class DispatchStats:
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Fallbacks planned after permanent failures, by channel, and those the router held
    # (a frequency cap, no channel left), by the channel refused: the planning stage
    # fills both (network_anim.planning.fallbacks.drain_with_fallbacks).
    fallbacks: Counter[str] = field(default_factory=Counter)
    fallbacks_held: Counter[str] = field(default_factory=Counter)
    reclaimed: int = 0
    # Sends of dead workers found in their sent journals and recorded as sent.
    recovered: int = 0

    def add(self, other: DispatchStats) -> None:
        self.outcomes.update(other.outcomes)
        self.fallbacks.update(other.fallbacks)
        self.fallbacks_held.update(other.fallbacks_held)
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
