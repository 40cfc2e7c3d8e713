"""Group commit: concurrent callers' items are handled together, each caller waits for its own.

A database round trip and a commit cost far more than the row work of one inbound message, so
when many items arrive at once (a burst of chats, a gateway flushing SMS) handling them one by
one wastes most of the time on overhead. :class:`Batcher` lets every caller ``submit`` its item
and wait; a worker task takes *everything* pending, hands it to the handler as one batch (one
transaction), then wakes each caller with its own outcome. Items that arrive while a batch is
being written form the next batch, so batches grow with load and a lone item is not delayed.

All callers of a batch are woken in the same event-loop step, so whatever they do next (publish
events, which the dispatcher then batches the same way) also happens together.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# The handler gets the batch in arrival order and returns, per item, None or its own error.
Handler = Callable[[list[T]], Awaitable[list[BaseException | None]]]


class Batcher(Generic[T]):
    def __init__(self, handle: Handler[T], *, max_batch: int = 256) -> None:
        self._handle = handle
        self._max = max_batch
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        """Return once ``item``'s batch is handled; raise the item's error if it had one."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
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

    async def _drain_all(self) -> None:
        while self._pending:
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
            for (_, fut), error in zip(batch, errors, strict=True):
                if fut.done():
                    continue
                if error is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(error)
