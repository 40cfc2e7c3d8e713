"""Fire-and-forget tasks that are still owned: kept referenced, logged on failure, cancelled
together at shutdown.

The voice wiring starts many small flows from event handlers (ring an agent, dial a callback,
ring a transfer target) that must not block the event bus; a bare ``create_task`` would let a
task be garbage-collected mid-flight and swallow its exception.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Background:
    def __init__(self, what: str) -> None:
        self._what = what  # for the log line, e.g. "voice orchestration step"
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(self._guard(coro), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except Exception:
            log.exception("%s failed", self._what)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def __len__(self) -> int:
        return len(self._tasks)
