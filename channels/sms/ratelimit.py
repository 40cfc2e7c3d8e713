"""Outbound rate limit per destination number: a token bucket.

Why: carriers flag and filter numbers that burst many messages at one handset, and an agent
double-clicking "send" should not spam a customer. Each destination gets ``burst`` tokens that
refill at ``rate`` per second; a send with no token left is refused with the time until one is
available, which the hub surfaces as a transient error with a retry-after. Time is an input
(``now``), so the limiter is deterministic in tests. One process holds the buckets in memory;
behind several hub processes the same Protocol can be backed by Redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class RateLimiter(Protocol):
    def acquire(self, key: str, now: float) -> float:
        """Take one token; return 0.0 on success, else seconds until a token is available."""
        ...


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """In-memory token buckets keyed by destination; idle buckets are pruned."""

    def __init__(self, rate: float, burst: int, *, max_keys: int = 100_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _prune(self, now: float) -> None:
        """Drop buckets that have refilled completely (they hold no information)."""
        full_after = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.updated >= full_after]:
            del self._buckets[key]
