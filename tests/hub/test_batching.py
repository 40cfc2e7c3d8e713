"""The group-commit primitive on its own: grouping, per-item errors, whole-batch failure."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub.batching import Batcher


async def test_concurrent_submits_form_one_batch_and_a_late_one_the_next() -> None:
    seen: list[list[int]] = []
    gate = asyncio.Event()

    async def handle(items: list[int]) -> list[BaseException | None]:
        seen.append(items)
        await gate.wait()
        return [None] * len(items)

    batcher: Batcher[int] = Batcher(handle)
    first = [asyncio.create_task(batcher.submit(n)) for n in range(5)]
    await asyncio.sleep(0.01)  # the first batch is being handled now
    late = asyncio.create_task(batcher.submit(99))
    await asyncio.sleep(0.01)
    assert seen == [[0, 1, 2, 3, 4]] and not late.done()
    gate.set()
    await asyncio.gather(*first, late)
    assert seen == [[0, 1, 2, 3, 4], [99]]


async def test_each_caller_gets_only_its_own_error() -> None:
    async def handle(items: list[int]) -> list[BaseException | None]:
        return [ValueError(n) if n % 2 else None for n in items]

    batcher: Batcher[int] = Batcher(handle)
    results = await asyncio.gather(*(batcher.submit(n) for n in range(4)), return_exceptions=True)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError) and isinstance(results[3], ValueError)


async def test_a_failing_handler_fails_its_batch_and_the_next_batch_still_runs() -> None:
    calls = 0

    async def handle(items: list[int]) -> list[BaseException | None]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("db down")
        return [None] * len(items)

    batcher: Batcher[int] = Batcher(handle)
    with pytest.raises(RuntimeError):
        await asyncio.gather(batcher.submit(1), batcher.submit(2))
    await batcher.submit(3)  # a new worker picks up later work
    assert calls == 2


async def test_max_batch_splits_a_large_burst() -> None:
    sizes: list[int] = []

    async def handle(items: list[int]) -> list[BaseException | None]:
        sizes.append(len(items))
        return [None] * len(items)

    batcher: Batcher[int] = Batcher(handle, max_batch=4)
    await asyncio.gather(*(batcher.submit(n) for n in range(10)))
    assert sizes == [4, 4, 2]


async def _handled_in(batcher_kw: dict[str, Any], gap_s: float) -> list[list[int]]:
    """Item 1 right after a batch of two, item 2 ``gap_s`` later: the batches they land in."""
    seen: list[list[int]] = []

    async def handle(items: list[int]) -> list[BaseException | None]:
        seen.append(items)
        return [None] * len(items)

    batcher: Batcher[int] = Batcher(handle, **batcher_kw)
    await batcher.submit_many([0, 10])  # a batch of two just finished: the batcher is busy
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(gap_s)
    await asyncio.gather(first, batcher.submit(2))
    return seen


async def test_a_busy_batcher_lingers_so_the_next_items_join_one_batch() -> None:
    assert await _handled_in({"linger_s": 0.5, "busy_s": 5.0}, 0.02) == [[0, 10], [1, 2]]
    assert await _handled_in({}, 0.02) == [[0, 10], [1], [2]]  # default: no linger


async def test_an_item_that_may_not_wait_is_written_at_once() -> None:
    kw = {"linger_s": 0.5, "busy_s": 5.0, "may_linger": lambda n: n != 1}
    assert await _handled_in(kw, 0.02) == [[0, 10], [1], [2]]


async def test_an_idle_batcher_does_not_linger_and_a_big_submission_never_does() -> None:
    seen: list[int] = []

    async def handle(items: list[int]) -> list[BaseException | None]:
        seen.append(len(items))
        return [None] * len(items)

    batcher: Batcher[int] = Batcher(handle, linger_s=30.0, busy_s=5.0, linger_below=8)
    await asyncio.wait_for(batcher.submit_many([1, 2]), 5)  # nothing finished lately: at once
    errors = await asyncio.wait_for(batcher.submit_many(list(range(8))), 5)  # 8 waiting: no wait
    assert errors == [None] * 8 and seen == [2, 8]


async def test_a_caller_sending_one_item_at_a_time_never_waits() -> None:
    seen: list[int] = []

    async def handle(items: list[int]) -> list[BaseException | None]:
        seen.append(len(items))
        return [None] * len(items)

    batcher: Batcher[int] = Batcher(handle, linger_s=30.0, busy_s=5.0)
    for n in range(3):  # each batch holds one item: nobody would join, so no linger
        await asyncio.wait_for(batcher.submit(n), 5)
    assert seen == [1, 1, 1]


async def test_an_item_that_may_not_wait_ends_a_linger_in_progress() -> None:
    seen: list[list[int]] = []

    async def handle(items: list[int]) -> list[BaseException | None]:
        seen.append(items)
        return [None] * len(items)

    batcher: Batcher[int] = Batcher(handle, linger_s=30.0, busy_s=5.0, may_linger=lambda n: n >= 0)
    await batcher.submit_many([0, 10])  # busy from now on
    lingering = asyncio.create_task(batcher.submit(1))  # waits up to 30 s for company
    await asyncio.sleep(0.05)
    assert seen == [[0, 10]] and not lingering.done()
    await asyncio.wait_for(batcher.submit(-1), 5)  # a call's item: written now, with item 1
    await lingering
    assert seen == [[0, 10], [1, -1]]
