"""Parsing fetched batches in worker processes, so a backlog's MIME work leaves the event loop.

Why: draining a mailbox is CPU-bound in one process; the profile of a 10,000-message drain
into the hub showed ``parse_email`` as the largest share of the event loop's time (about
0.3 ms per small mail, more than the hub's group-committed write). ``email`` parsing is pure
Python under the GIL, so threads would not help; processes do, on a second core.

One pool per process, shared by every mailbox and started lazily on the first batch big enough
to be worth it (small batches, the IDLE trickle, are parsed in-process: no start-up cost and no
round trip for one mail). Workers are *spawned*, never forked, because the hub process holds
threads (SQLite, executors) that a fork would copy in an undefined state. A failed pool (a
worker killed) is discarded and the batch parsed in-process, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from channels.base import ChannelKind, Inbound, ParseError
from channels.email.parse import ParseOptions, parse_email

log = logging.getLogger(__name__)

MIN_POOL_BATCH = 16  # fewer messages than this are parsed in-process

# An Inbound's field values in declaration order (its metadata as a dict: the read-only mapping
# proxy does not pickle), or [field, message] of a ParseError (exceptions with keyword-only
# arguments do not pickle either). A tuple, not a dict: less to pickle and unpickle, and
# Inbound(*values) is quicker than Inbound(**parts), on the event loop's side too.
Parsed = tuple[Any, ...] | list[str]
_FIELDS = tuple(f.name for f in dataclasses.fields(Inbound))
_METADATA = _FIELDS.index("metadata")

_pool: ProcessPoolExecutor | None = None


def default_workers() -> int:
    """Leave one core to the event loop (IMAP, the hub's writes); at most four workers."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def _get_pool(workers: int) -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    return _pool


def _discard_pool() -> None:
    global _pool
    pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def _ready() -> bool:
    return True


async def start_pool(workers: int | None = None) -> None:
    """Start the workers now (spawning takes about a second) instead of on the first backlog."""
    count = workers if workers is not None else default_workers()
    if count <= 0:
        return
    pool = _get_pool(count)
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(pool, _ready) for _ in range(count)))


def worker_pids() -> list[int]:
    """Process ids of the running workers (for CPU accounting in the benchmark)."""
    processes = getattr(_pool, "_processes", None) or {}
    return sorted(int(pid) for pid in processes)


def shutdown_pool() -> None:
    """Stop the workers (tests, or an orderly process exit; atexit does it otherwise)."""
    _discard_pool()


def parse_chunk(
    raws: Sequence[bytes], channel_id: str, channel: ChannelKind, options: ParseOptions
) -> list[Parsed]:
    """Parse each mail into picklable parts; a :class:`ParseError` comes back as
    ``[field, message]``."""
    out: list[Parsed] = []
    for raw in raws:
        try:
            inbound = parse_email(raw, channel_id=channel_id, channel=channel, options=options)
            values = [getattr(inbound, name) for name in _FIELDS]
            values[_METADATA] = dict(inbound.metadata)
            out.append(tuple(values))
        except ParseError as exc:
            out.append([exc.field or "message", str(exc)])
    return out


async def parse_many(
    raws: Sequence[bytes], channel_id: str, channel: ChannelKind, options: ParseOptions,
    *, workers: int,
) -> list[Inbound | ParseError]:
    """Parse a batch: in the worker pool when it is big enough and ``workers`` > 0."""
    if workers <= 0 or len(raws) < MIN_POOL_BATCH:
        parsed = parse_chunk(raws, channel_id, channel, options)
    else:
        parsed = await _in_pool(raws, channel_id, channel, options, workers)
    return [Inbound(*p) if isinstance(p, tuple) else ParseError(p[1], field=p[0])
            for p in parsed]


async def _in_pool(
    raws: Sequence[bytes], channel_id: str, channel: ChannelKind, options: ParseOptions,
    workers: int,
) -> list[Parsed]:
    loop = asyncio.get_running_loop()
    size = -(-len(raws) // workers)
    chunks = [list(raws[i : i + size]) for i in range(0, len(raws), size)]
    try:
        pool = _get_pool(workers)
        futures = [loop.run_in_executor(pool, parse_chunk, c, channel_id, channel, options)
                   for c in chunks]
        results = await asyncio.gather(*futures)
    except (BrokenProcessPool, OSError, RuntimeError) as exc:
        log.warning("mail parse pool failed (%s); parsing in-process", type(exc).__name__)
        _discard_pool()
        return parse_chunk(raws, channel_id, channel, options)
    return [p for chunk in results for p in chunk]
