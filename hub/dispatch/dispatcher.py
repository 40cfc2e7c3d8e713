"""The dispatcher: feeds the pure router, executes its commands, keeps its clock.

Theory of operation
-------------------
The router (``routing/``) holds who is ready, what waits and which offers are live, and decides;
it does no I/O and reads no clock. This shell gives it events and time, and makes its decisions
real:

- **Inputs.** Bus events published after a commit (``conversation.queued`` from ingest, reopen or
  a transfer to a queue; ``conversation.resolved``; ``conversation.assigned`` by a supervisor's
  transfer; ``agent.presence``), agents' accept/decline calls, socket connects/disconnects, and
  ``Tick(now)`` when :meth:`Router.next_deadline` passes. Unix time is the router's clock so
  arrival times survive restarts.
- **Serial.** Every input goes through one lock: the router sees one event at a time, and the
  commands of one input are executed in one DB transaction, then their events are published.
  Commands carry the router's reasons, which are written to the conversation's log.
- **Bursts.** Conversation changes published together (a batch of ingests) are handled together
  (:mod:`hub.dispatch.changes`): the router gets the changes in arrival order, and its commands
  are executed in one transaction (new offers with a fixed number of statements,
  :func:`hub.dispatch.executor.execute`). Each publisher still returns only after its change
  was routed, executed and the resulting events published.
- **Routed from the event.** ``conversation.queued`` carries the conversation's routing facts
  (:mod:`hub.actions.queued`), so new work reaches the router without reading its row back;
  the row is read when they are missing. The executor only offers conversations the DB still
  has waiting; anything else (an event the DB has overtaken) rolls back and rebuilds.
- **Early offers.** The router's offers are announced to listeners (:mod:`hub.dispatch.early`)
  before their transaction runs, so a phone can ring while the offer is written; each listener
  hears afterwards whether the offer was saved, and undoes its ring when it was not.
- **The DB is the truth.** If executing commands fails, the router is rebuilt from the DB, so the
  two never drift. On start the router is rebuilt the same way (:mod:`hub.dispatch.rebuild`):
  queues, logged-in agents, open assignments, live offers (kept with their original expiry, not
  re-sent), then queued work in arrival order. Offers that expired while the hub was down are
  marked expired and their work is queued again, so no contact is lost or offered twice.
- **Config changes** made by ``contacthub apply`` (another process) are picked up by a periodic
  refresh that diffs queues and agent profiles and tells the router.

One process runs the dispatcher (the embedded default has one process anyway). Scale-out with a
PostgreSQL advisory-lock leader is future work, noted in the README.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from hub.batching import Batcher
from hub.db.models import Agent, Offer, Queue
from hub.dispatch.changes import NAMES, Change, change_events, change_of, distinct_runs
from hub.dispatch.early import Announced
from hub.dispatch.executor import StaleWork, execute
from hub.dispatch.mapping import agent_profile, queue_configs
from hub.dispatch.rebuild import read_state
from hub.dispatch.snapshot import next_midnight, snapshot_dict
from hub.domain import OfferStatus, Presence
from hub.errors import Conflict, NotFound
from hub.events import Event
from hub.ids import new_id
from hub.services import Services
from routing import Router
from routing import events as rev
from routing.model import AgentProfile, QueueConfig, RoutingError
from routing.model import Presence as RPresence

log = logging.getLogger(__name__)

CONFIG_REFRESH_S = 10.0
SNAPSHOT_EVERY_S = 2.0
RECONNECT_GRACE_S = 30.0


__all__ = ["Dispatcher", "next_midnight"]


class Dispatcher:
    def __init__(self, services: Services, clock: Callable[[], float] = time.time) -> None:
        self.services = services
        self.clock = clock
        self.router = Router(new_offer_id=lambda: new_id("offer"))
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._queues: dict[str, Queue] = {}
        self._queue_cfgs: dict[str, QueueConfig] = {}
        self._profiles: dict[str, AgentProfile] = {}
        self._endpoints: dict[str, str | None] = {}  # agent id -> voice endpoint (early offers)
        self._sockets: dict[str, int] = {}
        self._check_connections_at: float | None = None
        self._last_snapshot: Any = None
        self._changes = Batcher(self._handle_changes)

    # ---- rebuilding ----------------------------------------------------------------------

    async def rebuild(self) -> None:
        """Build a fresh router from the database (start, and after any execution failure)."""
        now = self.clock()
        self.router = Router(new_offer_id=lambda: new_id("offer"))
        async with self.services.sessions() as session, session.begin():
            state = await read_state(session, now)
        self._queues, self._queue_cfgs = state.queues, state.queue_cfgs
        self._profiles = state.profiles
        self._endpoints.update(state.endpoints)
        self._check_connections_at = now + RECONNECT_GRACE_S
        await self._feed_unlocked([*state.feed, rev.Tick(now)])
        log.info(
            "router rebuilt: %d queues, %d agents, %d items",
            len(self._queue_cfgs),
            len(self._profiles),
            self.router.snapshot().work_in_routing,
        )

    # ---- feeding the router --------------------------------------------------------------

    async def feed(self, events: list[rev.Event]) -> list[str]:
        async with self._lock:
            return await self._feed_unlocked(events)

    def _decide(self, events: list[rev.Event]) -> list[Any]:
        commands = []
        for ev in events:
            try:
                commands += self.router.handle(ev)
            except RoutingError as exc:
                log.warning("router refused %s: %s", type(ev).__name__, exc)
        self._wake.set()
        return commands

    async def _feed_unlocked(self, events: list[rev.Event]) -> list[str]:
        commands = self._decide(events)
        if not commands:
            return []
        announced = Announced.announce(self.services.extras, commands, self._endpoints)
        try:
            async with self.services.sessions() as session, session.begin():
                bus_events, rejected = await execute(session, commands)
            announced.settle(bus_events)
        except Exception as exc:
            announced.settle(None)
            await self._recover(exc, commands)
            return []
        finally:
            announced.settle(None)  # cancelled: nothing is known to be written
        await self.services.bus.publish(bus_events)
        return rejected

    async def _recover(self, exc: Exception, commands: list[Any]) -> None:
        """The commands were not written: the DB is the truth, so rebuild the router from it."""
        if isinstance(exc, StaleWork):  # routed from an event the DB has since overtaken
            log.info("%s; rebuilding the router from the DB", exc)
        else:
            log.error("executing %d router commands failed; rebuilding from the DB",
                      len(commands), exc_info=exc)  # fmt: skip
        await self.rebuild()

    async def on_event(self, event: Event) -> None:
        """Bus listener: turn committed changes into router events."""
        if event.meta.get("source") == "dispatcher":
            return
        name, data = event.name, event.data
        if name in NAMES:
            await self._conversation_changed(change_of(name, data))
        elif name == "agent.presence":
            await self._presence_changed(
                str(data["id"]), str(data["presence"]), data.get("presence_reason") or ""
            )

    async def _conversation_changed(self, change: Change) -> None:
        """Handle a committed conversation change (returns once it is routed and executed).

        Changes that arrive together (a batch of ingests publishing at once) are handled
        together (:class:`hub.batching.Batcher`): at most one read of the conversations (none
        when queued events carry their routing facts), one router pass, one transaction for the
        commands. The router sees the changes in arrival order, exactly as if they had come one
        at a time.
        """
        await self._changes.submit(change)

    async def _handle_changes(self, batch: list[Change]) -> list[BaseException | None]:
        async with self._lock:
            for run in distinct_runs(batch):
                await self._apply_changes(run)
        return [None] * len(batch)

    async def _apply_changes(self, changes: list[Change]) -> None:
        """Read the conversations, feed the router and execute its commands in ONE transaction
        (a burst costs a handful of statements); rebuild from the DB if execution fails."""
        now = self.clock()
        commands: list[Any] = []
        bus_events: list[Event] = []
        announced = Announced()
        try:
            async with self.services.sessions() as session, session.begin():
                feed = await change_events(session, self.router, changes, now, self._queues,
                                           self._profiles)  # fmt: skip
                commands = self._decide(feed)
                if commands:
                    announced = Announced.announce(self.services.extras, commands,
                                                   self._endpoints)  # fmt: skip
                    bus_events, _ = await execute(session, commands)
            announced.settle(bus_events)
        except Exception as exc:
            announced.settle(None)
            if not commands:
                raise  # failed before the router decided anything: nothing to undo
            await self._recover(exc, commands)
            return
        finally:
            announced.settle(None)  # cancelled: nothing is known to be written
        await self.services.bus.publish(bus_events)

    async def _presence_changed(self, agent_id: str, presence: str, reason: str) -> None:
        async with self._lock:
            now = self.clock()
            view = self.router.agent(agent_id)
            if presence == Presence.OFFLINE.value:
                if view is not None and view.logged_in:
                    await self._feed_unlocked([rev.AgentLoggedOut(agent_id, now)])
                return
            if view is None or not view.logged_in:
                async with self.services.sessions() as session:
                    agent = await session.get(Agent, agent_id)
                    if agent is None:
                        return
                    profile = agent_profile(agent)
                    self._endpoints[agent_id] = agent.voice_endpoint
                self._profiles[agent_id] = profile
                await self._feed_unlocked(
                    [rev.AgentLoggedIn(profile, now, RPresence(presence), reason)]
                )
                return
            await self._feed_unlocked(
                [rev.PresenceChanged(agent_id, RPresence(presence), now, reason)]
            )

    # ---- agents' calls -------------------------------------------------------------------

    async def decide(self, agent_id: str | None, offer_id: str, accept: bool) -> None:
        """Accept or decline ``offer_id`` for ``agent_id``; Conflict when it is no longer live."""
        async with self.services.sessions() as session:
            offer = await session.get(Offer, offer_id)
        if offer is None or offer.agent_id != agent_id:
            raise NotFound(f"offer {offer_id} not found")
        if offer.status != OfferStatus.PENDING.value:
            raise Conflict(
                f"offer {offer_id} is {offer.status}",
                code="offer_not_live",
                data={"status": offer.status},
            )
        now = self.clock()
        event: rev.Event = (
            rev.OfferAccepted(offer_id, now) if accept else rev.OfferDeclined(offer_id, now)
        )
        rejected = await self.feed([event])
        if offer_id in rejected:
            raise Conflict(f"offer {offer_id} is no longer live", code="offer_not_live")

    async def connected(self, agent_id: str) -> None:
        self._sockets[agent_id] = self._sockets.get(agent_id, 0) + 1
        view = self.router.agent(agent_id)
        if self._sockets[agent_id] == 1 and view is not None and not view.connected:
            await self.feed([rev.AgentReconnected(agent_id, self.clock())])

    async def disconnected(self, agent_id: str) -> None:
        self._sockets[agent_id] = max(0, self._sockets.get(agent_id, 0) - 1)
        view = self.router.agent(agent_id)
        if self._sockets[agent_id] == 0 and view is not None and view.logged_in:
            await self.feed([rev.AgentDisconnected(agent_id, self.clock())])

    # ---- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        await self.rebuild()
        tz = ZoneInfo(self.services.settings.timezone)
        next_refresh = self.clock() + CONFIG_REFRESH_S
        next_snapshot = self.clock()
        next_reset = next_midnight(self.clock(), tz)
        while True:
            now = self.clock()
            deadline = self.router.next_deadline()
            wake_at = min(
                x
                for x in (
                    deadline,
                    next_refresh,
                    next_snapshot,
                    next_reset,
                    self._check_connections_at,
                )
                if x is not None
            )
            self._wake.clear()
            if wake_at > now:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wake_at - now)
            now = self.clock()
            deadline = self.router.next_deadline()
            if deadline is not None and deadline <= now:
                await self.feed([rev.Tick(now)])
            if self._check_connections_at is not None and now >= self._check_connections_at:
                self._check_connections_at = None
                await self._disconnect_absent(now)
            if now >= next_refresh:
                next_refresh = now + CONFIG_REFRESH_S
                await self.refresh_config()
            if now >= next_reset:  # "service level today" starts again
                next_reset = next_midnight(now, tz)
                await self.feed([rev.ServiceLevelReset(now)])
            if now >= next_snapshot:
                next_snapshot = now + SNAPSHOT_EVERY_S
                await self._publish_snapshot()

    async def _disconnect_absent(self, now: float) -> None:
        """After a restart, agents whose browser did not reconnect count as disconnected."""
        events: list[rev.Event] = [
            rev.AgentDisconnected(a, now)
            for a in self._profiles
            if self._sockets.get(a, 0) == 0
            and (v := self.router.agent(a)) is not None
            and v.connected
        ]
        if events:
            await self.feed(events)

    async def refresh_config(self) -> None:
        """Tell the router about queue and agent changes made elsewhere (e.g. ``apply``)."""
        async with self.services.sessions() as session:
            queues = list((await session.execute(select(Queue))).scalars())
            agents = {a.id: a for a in (await session.execute(select(Agent))).scalars()}
        cfgs = {c.queue_id: c for c in queue_configs(queues)}
        now = self.clock()
        feed: list[rev.Event] = [
            rev.QueueConfigured(c, now) for qid, c in cfgs.items() if self._queue_cfgs.get(qid) != c
        ]
        for agent_id, old in list(self._profiles.items()):
            agent = agents.get(agent_id)
            if agent is None:
                continue
            self._endpoints[agent_id] = agent.voice_endpoint
            new = agent_profile(agent)
            if new.skills != old.skills:
                feed.append(rev.SkillsChanged(agent_id, new.skills, now))
            if new.capacity != old.capacity:
                feed.append(rev.CapacityChanged(agent_id, new.capacity, now))
            self._profiles[agent_id] = new
        self._queues = {q.id: q for q in queues}
        self._queue_cfgs = cfgs
        if feed:
            await self.feed(feed)

    def snapshot(self) -> dict[str, Any]:
        return snapshot_dict(self.router)

    async def _publish_snapshot(self) -> None:
        snap = self.snapshot()
        comparable = {k: v for k, v in snap.items() if k != "at"}
        if comparable != self._last_snapshot:
            self._last_snapshot = comparable
            await self.services.bus.publish(
                [Event("queues.snapshot", snap, rooms=("staff",), meta={"source": "dispatcher"})]
            )
