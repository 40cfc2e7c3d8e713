"""The hand-over of one fetched batch to the hub: one call per batch where the sink allows it."""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from channels.base import Inbound, IngestReceipt, Sink


@runtime_checkable
class BatchSink(Protocol):
    """A sink that also takes a whole batch in one call.

    Why: a 200-mail batch through ``sink(inbound)`` is 200 tasks, each with its own wait and
    wake-up on the event loop, around what the hub writes as one group commit anyway. The
    outcomes come back in order, one per item: its receipt once committed, or the exception
    that kept it from being committed (returned, not raised).
    """

    async def ingest_many(
        self, inbounds: list[Inbound], /
    ) -> list[IngestReceipt | BaseException]: ...


async def submit_batch(sink: Sink, inbounds: list[Inbound]) -> list[object]:
    """Every item of a batch to the sink at once; per item its receipt or its exception."""
    if inbounds and isinstance(sink, BatchSink):
        try:
            outcomes: list[object] = list(await sink.ingest_many(inbounds))
        except Exception as exc:  # as if each item had raised it: the batch stops at the first
            return [exc] * len(inbounds)
        if len(outcomes) != len(inbounds):  # a broken sink: nothing of the batch counts
            error = RuntimeError(f"ingest_many answered {len(outcomes)} of {len(inbounds)}")
            return [error] * len(inbounds)
        return outcomes
    return list(await asyncio.gather(*(sink(inbound) for inbound in inbounds),
                                     return_exceptions=True))
