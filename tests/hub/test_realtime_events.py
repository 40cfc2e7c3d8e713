"""The event bus's ``post``: the poster returns at once, the events follow in the same loop tick,
in order, after anything posted before them; a publication that has to wait (the dispatcher's
listener) neither holds up the next ones nor loses its own order, results or cancellation."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hub.events import Event, EventBus


def ev(name: str) -> Event:
    return Event(name, {"n": name})


class Heard:
    """A listener recording (event name, the task it ran in)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.tasks: set[asyncio.Task[object] | None] = set()

    async def __call__(self, event: Event) -> None:
        self.names.append(event.name)
        self.tasks.add(asyncio.current_task())


async def test_posted_events_follow_in_one_pass_after_the_poster_returned() -> None:
    bus, heard = EventBus(), Heard()
    bus.subscribe(heard)
    bus.post([ev("a1"), ev("a2")])
    bus.post([])
    bus.post([ev("b1")])
    assert heard.names == []  # the posters did not wait for any listener
    await asyncio.sleep(0)  # the rest of this tick
    assert heard.names == ["a1", "a2", "b1"]
    assert len(heard.tasks) == 1 and asyncio.current_task() not in heard.tasks  # one pass
    await bus.drain()
    assert heard.names == ["a1", "a2", "b1"]  # nothing twice


async def test_publish_leaves_posted_events_to_their_flush() -> None:
    """The dispatcher publishes from inside its own batch worker: were ``publish`` to take the
    posted events with it, the dispatcher's listener would wait for that very worker."""
    bus, heard = EventBus(), Heard()
    bus.subscribe(heard)
    bus.post([ev("posted")])
    await bus.publish([ev("published")])
    assert heard.names == ["published"]
    await bus.drain()
    assert heard.names == ["published", "posted"]


async def test_a_listener_publishing_from_its_own_worker_gets_no_posted_events() -> None:
    """Like the dispatcher: its listener waits until a worker has routed the change, and the
    worker publishes the outcome. A change posted meanwhile must not reach the listener from
    inside the worker's own publish (it would wait for itself)."""
    loop = asyncio.get_running_loop()
    bus = EventBus()
    done: list[str] = []
    pending: list[asyncio.Future[None]] = []
    workers: list[asyncio.Task[None]] = []

    async def work() -> None:
        while pending:
            batch = pending[:]
            del pending[:]
            await bus.publish([ev("offer")])
            for fut in batch:
                fut.set_result(None)

    async def dispatcher(event: Event) -> None:
        if not event.name.startswith("queued"):
            return
        fut = loop.create_future()
        pending.append(fut)
        if not workers or workers[-1].done():
            workers.append(loop.create_task(work()))
        await fut
        done.append(event.name)

    bus.subscribe(dispatcher)
    bus.post([ev("queued-1")])
    await asyncio.sleep(0)  # the worker is started, not yet run
    bus.post([ev("queued-2")])
    await asyncio.wait_for(bus.drain(), 5)
    assert done == ["queued-1", "queued-2"]


async def test_a_waiting_publication_does_not_hold_up_the_next_and_keeps_its_order() -> None:
    bus = EventBus()
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    order: list[str] = []

    async def slow(event: Event) -> None:  # like the dispatcher: waits for "routed"
        if event.name == "a1":
            order.append("a1 waits")
            order.append(f"a1 got {await gate}")
        else:
            order.append(event.name)

    async def after(event: Event) -> None:
        order.append(f"after {event.name}")

    bus.subscribe(slow)
    bus.subscribe(after)
    bus.post([ev("a1"), ev("a2")])
    bus.post([ev("b1")])
    await asyncio.sleep(0)
    assert order == ["a1 waits", "b1", "after b1"]  # b went on while a waited
    gate.set_result("routed")
    await bus.drain()
    assert order == ["a1 waits", "b1", "after b1", "a1 got routed", "after a1", "a2", "after a2"]


async def test_errors_reach_the_waiting_listener_and_failures_stay_with_their_listener(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def waits(event: Event) -> None:
        try:
            await gate
        except LookupError as exc:
            seen.append(f"caught {exc}")
            raise RuntimeError("listener broke after waiting") from None

    async def breaks(event: Event) -> None:
        raise ValueError("listener broke at once")

    async def records(event: Event) -> None:
        seen.append(event.name)

    for listener in (waits, breaks, records):
        bus.subscribe(listener)
    with caplog.at_level(logging.ERROR, logger="hub.events"):
        bus.post([ev("x")])
        await asyncio.sleep(0)
        gate.set_exception(LookupError("gone"))
        await bus.drain()
    assert seen == ["caught gone", "x"]  # the error went in at the await; the rest still ran
    assert caplog.text.count("event listener failed for x") == 2
    assert "During handling" not in caplog.text  # each failure logged as its own


@pytest.mark.parametrize("started", [True, False])
async def test_cancelling_a_waiting_publication_cancels_its_listener(started: bool) -> None:
    """As a task would: what the listener awaits is cancelled and the listener sees it, also
    when the task is cancelled before its first step (shutdown)."""
    bus = EventBus()
    state: list[str] = []
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def waits(event: Event) -> None:
        try:
            await never
        except asyncio.CancelledError:
            state.append("cancelled")
            raise

    bus.subscribe(waits)
    bus.post([ev("x")])
    await asyncio.sleep(0)
    (task,) = bus._waiting
    if started:
        await asyncio.sleep(0)
    task.cancel()
    await bus.drain()
    assert state == ["cancelled"] and task.cancelled() and never.cancelled()
