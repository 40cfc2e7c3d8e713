"""Offers announced the moment the router decides, before their write commits.

Why: a phone call is answered by a person whose phone must ring first, and every millisecond
between the router's decision and the ring is the caller's (the ring time). Writing the offer
(offer row, timeline entry, commit) does not change *who* rings, so a listener (the voice wiring)
may start ringing while the write is in flight, instead of after it.

The contract that keeps the database the truth:

- a listener is called synchronously from inside the dispatcher (it must only start work,
  e.g. spawn a task, and never raise or block);
- nothing about the offer may be *recorded* or *decided* (accept, decline, a timeline entry)
  before :attr:`EarlyOffer.saved` resolved: ``True`` once the offer's transaction committed (the
  ``offer`` event is published right after, and the listener should ignore it), ``False`` when
  it was never written (the transaction failed and the router is rebuilt from the database):
  the listener then undoes what it started (hangs the agent's phone up);
- after a crash between the ring and the commit, nothing was written: the work is still queued
  in the database and is offered again after the restart (a caller still in Asterisk's app is
  adopted back into the queue: :mod:`channels.voice.reconcile`).

Listeners register in the shared ``extras`` under :data:`EARLY_OFFERS_KEY` (the voice wiring is
built before the dispatcher, so neither holds the other).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, cast

from hub.events import Event
from routing.commands import SendOffer

log = logging.getLogger(__name__)

EARLY_OFFERS_KEY = "dispatch.early_offers"


@dataclass(frozen=True, slots=True)
class EarlyOffer:
    offer_id: str
    agent_id: str
    conversation_id: str
    expires_at: float  # Unix time
    voice_endpoint: str | None  # the agent's phone as the dispatcher last read it
    saved: asyncio.Future[bool]  # see the module docstring


EarlyListener = Callable[[EarlyOffer], None]


def early_listeners(extras: MutableMapping[str, Any]) -> list[EarlyListener]:
    """The (shared, mutable) list of listeners; append to subscribe."""
    found = extras.get(EARLY_OFFERS_KEY)
    if not isinstance(found, list):
        found = extras[EARLY_OFFERS_KEY] = []
    return cast(list[EarlyListener], found)


class Announced:
    """The early offers of one execution of router commands, settled once it ended."""

    def __init__(self) -> None:
        self._pending: list[tuple[str, asyncio.Future[bool]]] = []

    @classmethod
    def announce(cls, extras: MutableMapping[str, Any], commands: list[Any],
                 endpoints: dict[str, str | None]) -> Announced:  # fmt: skip
        """Tell the listeners about every offer in ``commands`` (before they are written)."""
        out = cls()
        listeners = extras.get(EARLY_OFFERS_KEY)
        if not listeners:
            return out
        loop = asyncio.get_running_loop()
        for cmd in commands:
            if not isinstance(cmd, SendOffer):
                continue
            saved: asyncio.Future[bool] = loop.create_future()
            offer = EarlyOffer(cmd.offer_id, cmd.agent_id, cmd.work_id, cmd.expires_at,
                               endpoints.get(cmd.agent_id), saved)  # fmt: skip
            out._pending.append((cmd.offer_id, saved))
            for listener in list(listeners):
                try:
                    listener(offer)
                except Exception:
                    log.exception("early offer listener failed for %s", cmd.offer_id)
        return out

    def settle(self, published: list[Event] | None) -> None:
        """The transaction ended: committed with ``published`` events, or failed (None). An
        offer is saved when its ``offer`` event is among them (the executor skips an offer whose
        conversation vanished)."""
        written = {str(e.data.get("offer_id")) for e in published or () if e.name == "offer"}
        for offer_id, saved in self._pending:
            if not saved.done():
                saved.set_result(offer_id in written)
        self._pending.clear()
