"""In-process event bus: actions publish *after commit*, the realtime layer and dispatcher listen.

Publishing after commit means no listener ever sees a change that was rolled back. Across hub
processes, socket.io's Redis manager fans emits out, and the dispatcher re-reads the database,
so this bus only needs to be in-process.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
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

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def publish(self, events: list[Event]) -> None:
        """Deliver to every listener; one failing listener never stops the others."""
        for ev in events:
            for listener in list(self._listeners):
                try:
                    await listener(ev)
                except Exception:
                    log.exception("event listener failed for %s", ev.name)
