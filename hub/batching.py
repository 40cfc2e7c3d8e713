"""Group commit: concurrent callers' items are handled together, each caller waits for its own.

A database round trip and a commit cost far more than the row work of one inbound message, so
when many items arrive at once (a burst of chats, a gateway flushing SMS) handling them one by
one wastes most of the time on overhead. :class:`Batcher` lets every caller ``submit`` its item
and wait; a worker task takes *everything* pending, hands it to the handler as one batch (one
transaction), then wakes each caller with its own outcome. Items that arrive while a batch is
being written form the next batch, so batches grow with load and a lone item is not delayed.

All callers of a batch are woken in the same event-loop step, so whatever they do next (publish
events, which the dispatcher then batches the same way) also happens together.

Linger (optional, like PostgreSQL's ``commit_delay``): when the previous batch held several
items and finished only moments ago (``busy_s``), callers are arriving concurrently and steadily,
and a batch taken at once would hold just the one or two that came in since. Waiting
``linger_s`` for more first makes batches several times larger, and a batch's fixed cost (its
transaction, a handful of statements) is most of its price when it is small. An item on an idle
hub is never delayed (no batch finished recently), nor is a caller that sends one item at a time
and waits for each (its batches hold one item: nobody would join).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# The handler gets the batch in arrival order and returns, per item, None or its own error.
Handler = Callable[[list[T]], Awaitable[list[BaseException | None]]]


class Batcher(Generic[T]):
    def __init__(
        self,
        handle: Handler[T],
        *,
        max_batch: int = 256,
        linger_s: float = 0.0,
        busy_s: float = 0.05,
        linger_below: int = 16,
        may_linger: Callable[[T], bool] | None = None,
    ) -> None:
        """``linger_s`` > 0: wait that long before taking a batch of fewer than
        ``linger_below`` items if the previous batch held more than one item and finished less
        than ``busy_s`` ago (see the
        module docstring), unless an item says it may not wait (``may_linger``; such an item
        also ends a linger in progress, as does reaching ``linger_below``); a large submission
        (a fetched batch of mails) never waits."""
        self._handle = handle
        self._max = max_batch
        self._linger = linger_s
        self._busy = busy_s
        self._linger_below = min(linger_below, max_batch)
        self._may_linger = may_linger
        self._lingering: asyncio.Future[None] | None = None  # set while a linger is waiting
        self._finished = float("-inf")  # monotonic time the last batch was handled
        self._shared = False  # whether that batch held more than one item
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        """Return once ``item``'s batch is handled; raise the item's error if it had one."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        self._cut_linger([item])
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        await fut  # cancelling the caller does not unwrite an item already in a batch

    async def submit_many(self, items: list[T]) -> list[BaseException | None]:
        """Submit ``items`` together and wait for all; per item None or its own error.

        One call for a fetched batch instead of a task per item: the items still join
        whatever batch is forming, in order, and each gets its own outcome.
        """
        loop = asyncio.get_running_loop()
        futs: list[asyncio.Future[None]] = [loop.create_future() for _ in items]
        self._pending.extend(zip(items, futs, strict=True))
        self._cut_linger(items)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        await asyncio.wait(futs)
        return [asyncio.CancelledError() if f.cancelled() else f.exception() for f in futs]

    async def _drain(self) -> None:
        try:
            await self._drain_all()
        finally:  # cancelled (shutdown): nobody may wait for ever
            for _, fut in self._pending:
                if not fut.done():
                    fut.cancel()

    def _cut_linger(self, items: list[T]) -> None:
        """End a linger in progress early when an item may not wait, or enough are waiting."""
        waiting = self._lingering
        if waiting is None or waiting.done():
            return
        may = self._may_linger
        if len(self._pending) >= self._linger_below or (
            may is not None and not all(may(item) for item in items)
        ):
            waiting.set_result(None)

    async def _linger_for_more(self) -> None:
        loop = asyncio.get_running_loop()
        self._lingering = waiting = loop.create_future()
        timer = loop.call_later(self._linger, _settle, waiting)
        try:
            await waiting
        finally:
            timer.cancel()
            self._lingering = None

    def _lingers(self) -> bool:
        if self._linger <= 0 or len(self._pending) >= self._linger_below:
            return False
        if not self._shared or time.monotonic() - self._finished >= self._busy:
            return False
        may = self._may_linger
        return may is None or all(may(item) for item, _ in self._pending)

    async def _drain_all(self) -> None:
        while self._pending:
            if self._lingers():
                await self._linger_for_more()  # busy: let the next few items join
            batch, self._pending = self._pending[: self._max], self._pending[self._max :]
            try:
                errors = await self._handle([item for item, _ in batch])
                if len(errors) != len(batch):
                    raise RuntimeError(f"batch handler answered {len(errors)} of {len(batch)}")
            except Exception as exc:  # the handler failed as a whole: everyone hears it
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            except BaseException:
                self._pending[:0] = batch  # not handled: cancelled with the rest below
                raise
            finally:
                self._finished, self._shared = time.monotonic(), len(batch) > 1
            for (_, fut), error in zip(batch, errors, strict=True):
                if fut.done():
                    continue
                if error is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(error)


def _settle(waiting: asyncio.Future[None]) -> None:
    if not waiting.done():
        waiting.set_result(None)
