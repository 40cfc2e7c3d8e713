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
- **Bursts.** Conversation changes published together (a batch of ingests) are handled together:
  one transaction reads the conversations, the router gets the changes in arrival order, and
  its commands are executed in that same transaction (new offers with a fixed number of
  statements, :func:`hub.dispatch.executor.execute`). Each publisher still returns only after
  its change was routed, executed and the resulting events published.
- **Early offers.** The router's offers are announced to listeners (:mod:`hub.dispatch.early`)
  before their transaction runs, so a phone can ring while the offer is written; each listener
  hears afterwards whether the offer was saved, and undoes its ring when it was not.
- **The DB is the truth.** If executing commands fails, the router is rebuilt from the DB, so the
  two never drift. On start the router is rebuilt the same way: queues, logged-in agents, open
  assignments, live offers (kept with their original expiry, not re-sent), then queued work in
  arrival order. Offers that expired while the hub was down are marked expired and their work is
  queued again, so no contact is lost or offered twice.
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from hub.batching import Batcher
from hub.db.base import utcnow
from hub.db.models import Agent, Assignment, Conversation, Offer, Queue
from hub.dispatch.early import Announced
from hub.dispatch.executor import execute
from hub.dispatch.mapping import agent_profile, queue_configs, work_item
from hub.domain import ConversationStatus, OfferStatus, Presence
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


@dataclass(frozen=True, slots=True)
class _Change:
    name: str
    conv_id: str


def _distinct_runs(changes: list[_Change]) -> list[list[_Change]]:
    """Split so that no run names a conversation twice: within a run the router's view of each
    conversation is the one before the run, as it would be one change at a time."""
    runs: list[list[_Change]] = [[]]
    seen: set[str] = set()
    for c in changes:
        if c.conv_id in seen:
            runs.append([])
            seen.clear()
        runs[-1].append(c)
        seen.add(c.conv_id)
    return runs


def next_midnight(now: float, tz: ZoneInfo) -> float:
    """The Unix time of the next local midnight after ``now`` (correct across DST changes)."""
    local = datetime.fromtimestamp(now, tz)
    tomorrow = (local + timedelta(days=1)).date()
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=tz).timestamp()


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
        feed: list[rev.Event] = []
        async with self.services.sessions() as session, session.begin():
            queues = list((await session.execute(select(Queue))).scalars())
            self._queues = {q.id: q for q in queues}
            self._queue_cfgs = {c.queue_id: c for c in queue_configs(queues)}
            feed += [rev.QueueConfigured(c, now) for c in self._queue_cfgs.values()]
            agents = list(
                (
                    await session.execute(
                        select(Agent).where(Agent.presence != Presence.OFFLINE.value)
                    )
                ).scalars()
            )
            self._profiles = {}
            for a in agents:
                profile = agent_profile(a)
                self._profiles[a.id] = profile
                self._endpoints[a.id] = a.voice_endpoint
                presence = (
                    RPresence.READY
                    if a.presence == Presence.WRAP_UP.value
                    else RPresence(a.presence)
                )
                feed.append(rev.AgentLoggedIn(profile, now, presence, a.presence_reason or ""))
            in_router = set(self._profiles)
            assigned = (
                await session.execute(
                    select(Conversation).where(
                        Conversation.status == ConversationStatus.ASSIGNED.value
                    )
                )
            ).scalars()
            for conv in assigned:
                if conv.assignee_id in in_router and conv.queue_id in self._queues:
                    feed.append(rev.AssignmentRestored(self._work(conv), conv.assignee_id, now))
            restored: set[str] = set()
            offers = (
                await session.execute(
                    select(Offer).where(Offer.status == OfferStatus.PENDING.value)
                )
            ).scalars()
            for offer in offers:
                oconv = await session.get(Conversation, offer.conversation_id)
                live = (
                    offer.expires_at.timestamp() > now
                    and offer.agent_id in in_router
                    and oconv is not None
                    and oconv.queue_id in self._queues
                    and oconv.id not in restored
                )
                if live and oconv is not None:
                    feed.append(
                        rev.OfferRestored(
                            offer.id,
                            self._work(oconv),
                            offer.agent_id,
                            offer.expires_at.timestamp(),
                            now,
                        )
                    )
                    restored.add(oconv.id)
                else:
                    offer.status = OfferStatus.EXPIRED.value
                    offer.decided_at = utcnow()
                    if oconv is not None and oconv.status == ConversationStatus.OFFERED.value:
                        oconv.status = ConversationStatus.QUEUED.value
            waiting = (
                await session.execute(
                    select(Conversation)
                    .where(
                        Conversation.status.in_(
                            [ConversationStatus.QUEUED.value, ConversationStatus.OFFERED.value]
                        )
                    )
                    .order_by(Conversation.queued_at)
                )
            ).scalars()
            for conv in waiting:
                if conv.id not in restored and conv.queue_id in self._queues:
                    if conv.status == ConversationStatus.OFFERED.value:
                        conv.status = ConversationStatus.QUEUED.value
                    feed.append(
                        rev.WorkQueued(await self._work_with_preference(session, conv), now)
                    )
        self._check_connections_at = now + RECONNECT_GRACE_S
        await self._feed_unlocked([*feed, rev.Tick(now)])
        log.info(
            "router rebuilt: %d queues, %d agents, %d items",
            len(self._queue_cfgs),
            len(self._profiles),
            self.router.snapshot().work_in_routing,
        )

    def _work(self, conv: Conversation, preferred: str | None = None) -> Any:
        queue = self._queues[conv.queue_id or ""]
        return work_item(conv, queue.priority, preferred_agent=preferred)

    async def _work_with_preference(self, session: Any, conv: Conversation) -> Any:
        """The contact's last agent gets the first offer when the queue has a window."""
        queue = self._queues[conv.queue_id or ""]
        preferred = None
        if queue.preferred_agent_window_s > 0:
            preferred = (
                await session.execute(
                    select(Assignment.agent_id)
                    .join(Conversation, Conversation.id == Assignment.conversation_id)
                    .where(Conversation.contact_id == conv.contact_id, Conversation.id != conv.id)
                    .order_by(Assignment.started_at.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
        return self._work(conv, preferred)

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
        except Exception:
            announced.settle(None)
            log.exception(
                "executing %d router commands failed; rebuilding from the DB", len(commands)
            )
            await self.rebuild()
            return []
        finally:
            announced.settle(None)  # cancelled: nothing is known to be written
        await self.services.bus.publish(bus_events)
        return rejected

    async def on_event(self, event: Event) -> None:
        """Bus listener: turn committed changes into router events."""
        if event.meta.get("source") == "dispatcher":
            return
        name, data = event.name, event.data
        if name in ("conversation.queued", "conversation.resolved", "conversation.assigned"):
            await self._conversation_changed(name, str(data["id"]))
        elif name == "agent.presence":
            await self._presence_changed(
                str(data["id"]), str(data["presence"]), data.get("presence_reason") or ""
            )

    async def _conversation_changed(self, name: str, conv_id: str) -> None:
        """Handle a committed conversation change (returns once it is routed and executed).

        Changes that arrive together (a batch of ingests publishing at once) are handled
        together (:class:`hub.batching.Batcher`): one read of the conversations, one router
        pass, one transaction for the commands. The router sees the changes in arrival order,
        exactly as if they had come one at a time.
        """
        await self._changes.submit(_Change(name, conv_id))

    async def _handle_changes(self, batch: list[_Change]) -> list[BaseException | None]:
        async with self._lock:
            for run in _distinct_runs(batch):
                await self._apply_changes(run)
        return [None] * len(batch)

    async def _apply_changes(self, changes: list[_Change]) -> None:
        """Read the conversations, feed the router and execute its commands in ONE transaction
        (a burst costs a handful of statements); rebuild from the DB if execution fails."""
        now = self.clock()
        commands: list[Any] = []
        bus_events: list[Event] = []
        announced = Announced()
        try:
            async with self.services.sessions() as session, session.begin():
                feed = await self._change_events(session, changes, now)
                commands = self._decide(feed)
                if commands:
                    announced = Announced.announce(self.services.extras, commands,
                                                   self._endpoints)  # fmt: skip
                    bus_events, _ = await execute(session, commands)
            announced.settle(bus_events)
        except Exception:
            announced.settle(None)
            if not commands:
                raise  # failed before the router decided anything: nothing to undo
            log.exception(
                "executing %d router commands failed; rebuilding from the DB", len(commands)
            )
            await self.rebuild()
            return
        finally:
            announced.settle(None)  # cancelled: nothing is known to be written
        await self.services.bus.publish(bus_events)

    async def _change_events(
        self, session: Any, changes: list[_Change], now: float
    ) -> list[rev.Event]:
        ids = [c.conv_id for c in changes]
        convs = {
            conv.id: conv
            for conv in (
                await session.execute(select(Conversation).where(Conversation.id.in_(ids)))
            ).scalars()
        }
        feed: list[rev.Event] = []
        for change in changes:
            name, conv_id = change.name, change.conv_id
            view = self.router.work(conv_id)
            if view is not None:
                feed.append(
                    rev.WorkFinished(conv_id, now)
                    if view.status == "assigned"
                    else rev.WorkWithdrawn(conv_id, now, reason=name.split(".")[1])
                )
            conv = convs.get(conv_id)
            if conv is None or conv.queue_id not in self._queues:
                continue
            if name == "conversation.queued" and conv.status == ConversationStatus.QUEUED:
                feed.append(rev.WorkQueued(await self._work_with_preference(session, conv), now))
            elif name == "conversation.assigned" and conv.assignee_id in self._profiles:
                feed.append(rev.AssignmentRestored(self._work(conv), conv.assignee_id, now))
        return feed

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
        snap = self.router.snapshot()
        return {
            "at": datetime.fromtimestamp(snap.now, UTC).isoformat() if snap.now else None,
            "agents_logged_in": snap.agents_logged_in,
            "live_offers": snap.live_offers,
            "work_in_routing": snap.work_in_routing,
            "queues": {
                q.queue_id: {
                    "depth": q.depth,
                    "oldest_wait_s": q.oldest_wait_s,
                    "agents_ready": q.agents_ready,
                    "agents_busy": q.agents_busy,
                    "answered": q.answered,
                    "answered_in_target": q.answered_in_target,
                    "abandoned": q.abandoned,
                    "service_level": q.service_level,
                }
                for q in snap.queues
            },
        }

    async def _publish_snapshot(self) -> None:
        snap = self.snapshot()
        comparable = {k: v for k, v in snap.items() if k != "at"}
        if comparable != self._last_snapshot:
            self._last_snapshot = comparable
            await self.services.bus.publish(
                [Event("queues.snapshot", snap, rooms=("staff",), meta={"source": "dispatcher"})]
            )
