"""A sliding-window limiter for logins (per client IP and per account).

In-process: with several hub processes each enforces its own window, which still bounds guessing
to ``processes * limit`` per minute; good enough until the Redis-backed version is needed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    def __init__(
        self, limit: int, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str) -> float | None:
        """Record an attempt; return seconds to wait if over the limit, else ``None``."""
        now = self._clock()
        q = self._hits.setdefault(key, deque())
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if len(q) >= self.limit:
            return max(0.0, q[0] + self.window_s - now)
        q.append(now)
        if len(self._hits) > 100_000:  # bound memory under a spray of keys
            self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > now - self.window_s}
        return None
