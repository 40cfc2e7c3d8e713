"""Token buckets keyed by visitor or IP, with bounded memory.

Per process: behind several hub processes each enforces its own share, which is the usual
trade-off for abuse limits (cheap, no shared round trip per message). Time is passed in so the
buckets are testable without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from channels.base import ChannelError
from channels.webchat.config import Limits


class RateLimited(ChannelError):
    """Over a limit; ``retry_after`` seconds until the next token (sent to the client)."""

    code = "rate_limited"

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many requests, retry in {retry_after:.1f}s")
        self.retry_after = retry_after


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Allows ``burst`` events at once and ``per_minute`` sustained, per key."""

    def __init__(self, *, burst: int, per_minute: int, max_keys: int = 100_000) -> None:
        if burst < 1 or per_minute < 1:
            raise ValueError("burst and per_minute must be at least 1")
        self.burst = float(burst)
        self.rate = per_minute / 60.0
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def hit(self, key: str, now: float) -> float:
        """Take one token; return 0.0 if allowed, else the seconds to wait before retrying."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._evict(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _evict(self, now: float) -> None:
        """Drop buckets that have refilled (they hold no information); else the oldest half."""
        full = [
            k
            for k, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self.rate >= self.burst
        ]
        if not full:
            by_age = sorted(self._buckets, key=lambda k: self._buckets[k].updated)
            full = by_age[: len(by_age) // 2 or 1]
        for key in full:
            del self._buckets[key]


class SiteLimiters:
    """The buckets of one site: connections per IP, messages per visitor and per IP, signals
    (typing, receipts, history) per visitor. Rebuilt when the site's limits change."""

    def __init__(self, limits: Limits, clock: Callable[[], float]) -> None:
        self.limits, self.clock = limits, clock
        self.connects = RateLimiter(
            burst=limits.connect_burst, per_minute=limits.connect_per_minute
        )
        self.visitors = RateLimiter(
            burst=limits.visitor_burst, per_minute=limits.visitor_per_minute
        )
        self.ips = RateLimiter(burst=limits.ip_burst, per_minute=limits.ip_per_minute)
        self.signals = RateLimiter(burst=30, per_minute=240)

    def connect(self, ip: str) -> None:
        self._check(self.connects.hit(ip, self.clock()))

    def message(self, visitor_id: str, ip: str) -> None:
        """Per visitor first, so a visitor over its own limit does not use up its IP's share."""
        now = self.clock()
        self._check(self.visitors.hit(visitor_id, now) or self.ips.hit(ip, now))

    def signal(self, visitor_id: str) -> None:
        self._check(self.signals.hit(visitor_id, self.clock()))

    @staticmethod
    def _check(wait: float) -> None:
        if wait:
            raise RateLimited(wait)
