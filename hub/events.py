"""In-process event bus: actions publish *after commit*, the realtime layer and dispatcher listen.

Publishing after commit means no listener ever sees a change that was rolled back. Across hub
processes, socket.io's Redis manager fans emits out, and the dispatcher re-reads the database,
so this bus only needs to be in-process.

Two ways in. :meth:`EventBus.publish` returns once every listener has run. :meth:`EventBus.post`
returns at once, so a caller that answers someone (the chat widget's ack) does not wait for the
fan-out: one task publishes everything posted in the same event-loop tick, in order, each
caller's events as its own :meth:`~EventBus.publish`, started eagerly. A publication that has
to wait (the dispatcher's listener returns only once the change is routed and written) goes on
in a task of its own while the next one starts, exactly as when each caller published in its
own task, so the dispatcher still gets a burst's changes together. Only publications that wait
cost a task.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened; ``rooms`` says who may see it (``agent:<id>``, ``queue:<id>``)."""

    name: str
    data: dict[str, Any]
    rooms: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[Event], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._posted: list[list[Event]] = []  # per post() call, in order, not yet published
        self._flusher: asyncio.Task[None] | None = None
        self._waiting: set[asyncio.Task[None]] = set()  # posted publications that had to wait

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def publish(self, events: list[Event]) -> None:
        """Deliver to every listener; one failing listener never stops the others.

        Events posted and not yet out are left to their flush: taking them here would hand the
        dispatcher, which publishes from inside its own batch worker, changes that wait for
        that very worker (a deadlock). Both come from commits of the same tick, so which goes
        first is no promise either way.
        """
        listeners = list(self._listeners)
        for ev in events:
            for listener in listeners:
                try:
                    await listener(ev)
                except Exception:
                    log.exception("event listener failed for %s", ev.name)

    def post(self, events: list[Event]) -> None:
        """Publish ``events`` soon, in order, without waiting (see the module docstring).

        Must be called from the event loop.
        """
        if not events:
            return
        self._posted.append(events)
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._posted:
                groups, self._posted = self._posted, []
                for group in groups:
                    coro = self.publish(group)
                    try:
                        waiting_on = coro.send(None)  # eagerly, up to its first wait
                    except StopIteration:
                        continue  # done without waiting: the usual case
                    except Exception:
                        log.exception("publishing %d posted events failed", len(group))
                        continue
                    task = loop.create_task(_Rest(coro, waiting_on).run())
                    self._waiting.add(task)
                    task.add_done_callback(self._waiting.discard)
                    task.add_done_callback(functools.partial(_cancel_abandoned, coro, waiting_on))
        finally:
            self._flusher = None

    async def drain(self) -> None:
        """Wait until everything posted so far was published (tests, orderly shutdown)."""
        while self._flusher is not None or self._waiting:
            await asyncio.wait([t for t in (self._flusher, *self._waiting) if t is not None])


class _Rest:
    """The rest of a coroutine that was started by hand and is waiting on ``waiting_on``.

    Awaited in a task, it hands the coroutine's waits to that task (what the coroutine yields
    is yielded again; results, errors and cancellation go back into it), so the coroutine
    finishes exactly as if it had been a task from the start. Python 3.12's
    ``asyncio.Task(..., eager_start=True)`` does the same.
    """

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        self._coro, self._first = coro, waiting_on

    def __await__(self) -> Generator[Any, Any, None]:
        coro, waiting_on = self._coro, self._first
        while True:
            error: BaseException | None = None
            try:
                yield waiting_on  # the task waits for what the coroutine waits for
            except BaseException as exc:  # the awaited future's error, or a cancellation
                error = exc  # thrown in below, outside this handler (no false __context__)
            try:
                waiting_on = coro.send(None) if error is None else coro.throw(error)
            except StopIteration:
                return

    async def run(self) -> None:
        try:
            await self
        except Exception:
            log.exception("publishing posted events failed")


def _cancel_abandoned(
    coro: Coroutine[Any, Any, None], waiting_on: Any, _task: asyncio.Task[None]
) -> None:
    """A task cancelled before its first step (shutdown) never resumed ``coro``: cancel it and
    what it waits for, as the task would have, so its handlers and ``finally`` blocks run."""
    if inspect.getcoroutinestate(coro) != inspect.CORO_SUSPENDED:
        return
    if isinstance(waiting_on, asyncio.Future):
        waiting_on.cancel()
    try:
        coro.throw(asyncio.CancelledError())
    except (StopIteration, asyncio.CancelledError):
        return
    except Exception:
        log.exception("publishing posted events failed")
        return
    coro.close()  # it went on waiting after the cancellation: nobody would resume it
