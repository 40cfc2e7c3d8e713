"""The unified router: one pure state machine that matches work of every channel to agents.

Theory of operation
-------------------
``Router.handle(event) -> list[Command]`` is the only way state changes. Events describe what
happened (work queued, agent ready, offer declined, ``Tick(now)``...); commands say what the
dispatcher must do (send/revoke an offer, assign, requeue, overflow, set presence...). The router
does no I/O and reads no clock: every event carries ``now``, and deadlines (offer TTL, wrap-up,
overflow steps, preferred-agent windows, re-offer delays, disconnect grace) fire only when the
shell sends ``Tick`` at or after :meth:`Router.next_deadline`. The same events in the same order
always produce the same commands, which is what makes the rules testable and restarts safe.

Matching. Agents meeting a requirement set under a distribution mode form a *pool*; per medium a
pool keeps a heap of its agents that could take one more item now, keyed by the mode (longest
idle, round robin, least busy, skill level first). Waiting items sit in *lanes* (queue x pool x
medium) ordered by priority then arrival. After every event the router is quiescent: any item
that became waiting is matched against its lanes' agent heaps (``match_work``), any agent that
became available takes the best head of the lanes it feeds (``match_agent``). Both are heap look-
ups with lazy invalidation, so a decision costs O(pools of the agent + log n), not O(agents).

Rules. An agent holds at most one live offer; an offer reserves capacity, so capacity is never
exceeded even if everything is accepted. A declined or expired offer goes to the next agent; its
agent is skipped for that item for the queue's ``reoffer_delay_s``; ``max_missed`` consecutive
expiries set the agent not-ready ("missed"). Finishing work starts the queue's wrap-up. A
disconnected agent's offer is revoked at once and their digital work requeued after the queue's
grace (voice stays: the call is physically theirs). Overflow steps, by waiting time, relax the
minimum levels, add another queue's agents, escalate to another queue, or (voice) leave to
voicemail/callback. Every command carries a :class:`~routing.model.Reason`.

Restart. Replay, in this order: ``QueueConfigured`` (or constructor), ``AgentLoggedIn`` for each
logged-in agent (presence as stored), ``AssignmentRestored`` for open assignments,
``OfferRestored`` for live offers (kept with their original expiry, not re-sent), then
``WorkQueued`` for the rest (original ``arrival``, ``overflow_done``). Then ``Tick(now)``.

Time. Only ``Tick`` fires deadlines; other events just move the clock forward (it never goes
back). So an accept that reaches the router after ``expires_at`` but before the ``Tick`` that
expires the offer is honoured, and the shell decides how prompt expiry is by how soon after
``next_deadline()`` it ticks. Decisions made while firing a deadline use the deadline's own time.

Cost. ``handle`` is O(pools and lanes of the agents and items involved), independent of the
number of agents and queued items (see bench/routing.py). ``snapshot`` walks queues and pool
members and is meant for dashboards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from routing.agents import AgentState, withdraw
from routing.commands import Assign, Command, Rejected, SetPresence
from routing.engine import GRACE_END, PREFERRED_END, WRAP_END, Engine
from routing.events import (
    AgentDisconnected,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentReconnected,
    AssignmentRestored,
    CapacityChanged,
    Event,
    OfferAccepted,
    OfferDeclined,
    OfferRestored,
    PresenceChanged,
    QueueConfigured,
    ServiceLevelReset,
    SkillsChanged,
    Tick,
    WorkFinished,
    WorkQueued,
    WorkWithdrawn,
)
from routing.model import (
    ConfigError,
    Medium,
    Presence,
    QueueConfig,
    Reason,
    RouterConfig,
    UnknownAgent,
    UnknownWork,
)
from routing.queues import (
    ASSIGNED,
    OFFERED,
    PARKED,
    QueueStats,
    WorkState,
)
from routing.setup import configure, new_work, restore_assignment, restore_offer
from routing.snapshot import AgentView, Snapshot, WorkView, agent_view, snapshot, work_view
from routing.timers import exclude, fire_due


class Router:
    """The pure router. Build it with the queues, feed it events, execute its commands."""

    def __init__(self, queues: Iterable[QueueConfig] = (), config: RouterConfig | None = None,
                 new_offer_id: Callable[[], str] | None = None) -> None:
        """``new_offer_id`` makes offer ids (default ``offer-1``, ``offer-2``...); the
        dispatcher passes one that cannot collide with ids restored from the database."""
        self._c = Engine(config or RouterConfig(), new_offer_id)
        for q in queues:
            configure(self._c, q, [])
        self._handlers: dict[type[Any], Callable[[Any, list[Command]], None]] = {
            WorkQueued: self._work_queued, WorkWithdrawn: self._withdrawn,
            WorkFinished: self._finished, AgentLoggedIn: self._logged_in,
            AgentLoggedOut: self._logged_out, PresenceChanged: self._presence,
            SkillsChanged: self._skills, CapacityChanged: self._capacity,
            OfferAccepted: self._accepted, OfferDeclined: self._declined,
            AgentDisconnected: self._disconnected, AgentReconnected: self._reconnected,
            Tick: self._tick, QueueConfigured: self._queue_configured,
            ServiceLevelReset: self._sl_reset, AssignmentRestored: self._assignment_restored,
            OfferRestored: self._offer_restored,
        }

    # --- public API ------------------------------------------------------------------------

    def handle(self, event: Event) -> list[Command]:
        """Apply one event; return the commands to execute, in order. Raises a
        :class:`~routing.model.RoutingError` (having changed nothing but the clock) for an
        event naming an unknown agent/queue/work or a duplicate work id. Accept/decline of an
        offer that is no longer live is a normal race and yields
        :class:`~routing.commands.Rejected`."""
        handler = self._handlers.get(type(event))
        if handler is None:
            raise ConfigError("event", f"not a routing event: {type(event).__name__}")
        c = self._c
        if not isinstance(event, Tick) and event.now > c.now:
            c.now = event.now
        out: list[Command] = []
        handler(event, out)
        return out

    def next_deadline(self) -> float | None:
        """When the shell must send the next ``Tick`` (None: nothing pending)."""
        return self._c.next_deadline()

    def snapshot(self) -> Snapshot:
        """Live queue state: depth, oldest wait, agents ready/busy, service level so far."""
        return snapshot(self._c)

    def agent(self, agent_id: str) -> AgentView | None:
        a = self._c.agents.get(agent_id)
        return None if a is None else agent_view(a)

    def work(self, work_id: str) -> WorkView | None:
        w = self._c.work.get(work_id)
        return None if w is None else work_view(w)

    def offers(self) -> dict[str, tuple[str, str, float]]:
        """Live offers: offer id → (work id, agent id, expires at)."""
        return {k: (o.work.work_id, o.agent.agent_id, o.expires_at)
                for k, o in self._c.offers.items()}

    # --- work ------------------------------------------------------------------------------

    def _work_queued(self, e: WorkQueued, out: list[Command]) -> None:
        c = self._c
        w = new_work(c, e.work)
        work = e.work
        q = c.queues[work.queue_id]
        q.track(w)
        c.schedule_step(w)
        pa = work.preferred_agent
        window = work.preferred_window_s
        if window is None:
            window = q.config.preferred_window_s
        if pa is not None and work.arrival + window > c.now:
            w.state = PARKED
            agent = c.agents.get(pa)
            if agent is not None and agent.can_offer() and agent.fits(w.medium):
                text = f"preferred_agent: {pa} is the contact's preferred agent and available"
                c.offer(w, agent, Reason("preferred_agent", text, 1), out)
                return
            c.parked.setdefault(pa, []).append(w)
            c.at(work.arrival + window, PREFERRED_END, w, 0)
            return
        c.requeue(w, out)

    def _withdrawn(self, e: WorkWithdrawn, out: list[Command]) -> None:
        c = self._c
        w = c.work.get(e.work_id)
        if w is None:
            raise UnknownWork(e.work_id)
        self._remove(w, e.reason, out)

    def _remove(self, w: WorkState, why: str, out: list[Command]) -> None:
        c = self._c
        if w.state == ASSIGNED:
            agent = w.agent
            assert agent is not None
            agent.release(w.medium)
            agent.work.pop(w.work_id, None)
            c.drop(w)
            c.refresh(agent, out)
            return
        if not w.answered:
            origin = c.queues.get(w.work.queue_id)
            if origin is not None:
                origin.stats.abandoned += 1
                if c.now - w.work.arrival <= origin.config.sl_target_s:
                    origin.stats.abandoned_in_target += 1
        o = w.offer
        if w.state == OFFERED and o is not None:
            c.revoke(o, "withdrawn", f"work withdrawn: {why}", out)
            c.drop(w)
            c.refresh(o.agent, out)
            return
        c.drop(w)

    def _finished(self, e: WorkFinished, out: list[Command]) -> None:
        c = self._c
        w = c.work.get(e.work_id)
        if w is None:
            raise UnknownWork(e.work_id)
        agent = w.agent
        if w.state != ASSIGNED or agent is None:
            self._remove(w, "finished before it was assigned", out)
            return
        agent.release(w.medium)
        agent.work.pop(w.work_id, None)
        c.drop(w)
        agent.idle_since = c.now
        q = c.queues.get(w.home)
        wrap = q.config.wrap_up_s if q is not None else 0.0
        if wrap > 0 and agent.presence is Presence.READY and agent.logged_in:
            self._start_wrap_up(agent, wrap, w.work_id, out)
        c.refresh(agent, out)

    def _start_wrap_up(self, agent: AgentState, wrap: float, work_id: str,
                       out: list[Command]) -> None:
        c = self._c
        agent.presence = Presence.WRAP_UP
        agent.presence_reason = "wrap_up"
        agent.wrap_token += 1
        c.at(c.now + wrap, WRAP_END, agent, agent.wrap_token)
        text = f"wrap_up: {wrap:g}s after finishing {work_id}"
        out.append(SetPresence(agent.agent_id, Presence.WRAP_UP, "wrap_up",
                               Reason("wrap_up", text)))

    # --- agents ----------------------------------------------------------------------------

    def _agent(self, agent_id: str) -> AgentState:
        a = self._c.agents.get(agent_id)
        if a is None:
            raise UnknownAgent(agent_id)
        return a

    def _logged_in(self, e: AgentLoggedIn, out: list[Command]) -> None:
        c = self._c
        p = e.agent
        a = c.agents.get(p.agent_id)
        if a is None:
            a = c.agents[p.agent_id] = AgentState(p, c.now)
        else:
            a.skills = dict(p.skills)
            a.set_capacity(p.capacity)
        a.logged_in = True
        a.connected = True
        a.disconnect_epoch += 1
        c.join_pools(a)
        self._set_presence(a, Presence(e.presence), e.reason, out)

    def _logged_out(self, e: AgentLoggedOut, out: list[Command]) -> None:
        self._log_out(self._agent(e.agent_id), out)

    def _presence(self, e: PresenceChanged, out: list[Command]) -> None:
        self._set_presence(self._agent(e.agent_id), Presence(e.presence), e.reason, out)

    def _set_presence(self, a: AgentState, presence: Presence, reason: str,
                      out: list[Command]) -> None:
        c = self._c
        if presence is Presence.OFFLINE:
            self._log_out(a, out)
            return
        old = a.presence
        a.presence = presence
        a.presence_reason = reason
        a.wrap_token += 1  # a manual change ends any running wrap-up timer
        withdraw(a)
        if presence is not Presence.READY and a.offer is not None:
            w = c.revoke(a.offer, "presence", f"{a.agent_id} went {presence.value}", out)
            c.requeue(w, out)
        if presence is Presence.READY and old is not Presence.READY:
            a.idle_since = c.now
            a.missed = 0
        c.refresh(a, out)

    def _log_out(self, a: AgentState, out: list[Command]) -> None:
        c = self._c
        a.presence = Presence.OFFLINE
        a.presence_reason = ""
        a.logged_in = False
        a.wrap_token += 1
        withdraw(a)
        if a.offer is not None:
            w = c.revoke(a.offer, "logged_out", f"{a.agent_id} logged out", out)
            c.requeue(w, out)
        for w in list(a.work.values()):
            q = c.queues.get(w.home)
            if w.medium is Medium.VOICE or (q is not None and q.config.keep_on_disconnect):
                continue
            c.unassign(w, f"{a.agent_id} logged out holding {w.work_id}", out)

    def _disconnected(self, e: AgentDisconnected, out: list[Command]) -> None:
        c = self._c
        a = self._agent(e.agent_id)
        a.connected = False
        a.disconnect_epoch += 1
        withdraw(a)
        if a.offer is not None:
            w = c.revoke(a.offer, "disconnected", f"{a.agent_id} disconnected", out)
            c.requeue(w, out)
        for w in a.work.values():
            q = c.queues.get(w.home)
            if w.medium is Medium.VOICE or q is None or q.config.keep_on_disconnect:
                continue
            c.at(c.now + q.config.disconnect_grace_s, GRACE_END, w, a.disconnect_epoch)

    def _reconnected(self, e: AgentReconnected, out: list[Command]) -> None:
        a = self._agent(e.agent_id)
        a.connected = True
        a.disconnect_epoch += 1  # cancels pending grace deadlines
        self._c.refresh(a, out)

    def _skills(self, e: SkillsChanged, out: list[Command]) -> None:
        a = self._agent(e.agent_id)
        for s, lvl in e.skills.items():
            if not 1 <= lvl <= 5:
                raise ConfigError(f"skills.{s}", f"level {lvl} outside 1..5")
        a.skills = dict(e.skills)
        self._c.join_pools(a)
        self._c.refresh(a, out)

    def _capacity(self, e: CapacityChanged, out: list[Command]) -> None:
        c = self._c
        a = self._agent(e.agent_id)
        a.set_capacity(e.capacity)
        withdraw(a)
        if a.offer is not None and a.over_capacity():
            w = c.revoke(a.offer, "capacity", f"{a.agent_id}'s capacity shrank", out)
            c.requeue(w, out)
        c.refresh(a, out)

    # --- offers ----------------------------------------------------------------------------

    def _accepted(self, e: OfferAccepted, out: list[Command]) -> None:
        c = self._c
        o = c.offers.get(e.offer_id)
        if o is None:
            out.append(Rejected(e.offer_id, Reason("not_live", "offer is no longer live")))
            return
        w, a = o.work, o.agent
        del c.offers[o.offer_id]
        a.offer = None
        a.missed = 0
        w.offer = None
        w.state = ASSIGNED
        w.agent = a
        a.work[w.work_id] = w
        c.queues[w.home].depth -= 1
        wait = c.now - w.work.arrival
        origin = c.queues.get(w.work.queue_id) or c.queues[w.home]
        if not w.answered:
            w.answered = True
            origin.stats.answered += 1
            if wait <= origin.config.sl_target_s:
                origin.stats.in_target += 1
        text = (f"{a.agent_id} accepted after {c.now - o.created_at:.3f}s; "
                f"the contact waited {wait:.3f}s")
        out.append(Assign(o.offer_id, w.work_id, a.agent_id, wait, Reason("accepted", text)))
        c.refresh(a, out)

    def _declined(self, e: OfferDeclined, out: list[Command]) -> None:
        c = self._c
        o = c.offers.get(e.offer_id)
        if o is None:
            out.append(Rejected(e.offer_id, Reason("not_live", "offer is no longer live")))
            return
        c.close_offer(o)
        w, a = o.work, o.agent
        a.missed = 0
        exclude(c, w, a)
        c.requeue(w, out)
        c.refresh(a, out)

    def _tick(self, e: Tick, out: list[Command]) -> None:
        fire_due(self._c, e.now, out)

    # --- configuration, statistics, restore --------------------------------------------------

    def _queue_configured(self, e: QueueConfigured, out: list[Command]) -> None:
        configure(self._c, e.config, out)

    def _sl_reset(self, e: ServiceLevelReset, out: list[Command]) -> None:
        for q in self._c.queues.values():
            q.stats = QueueStats()

    def _assignment_restored(self, e: AssignmentRestored, out: list[Command]) -> None:
        restore_assignment(self._c, e, out)

    def _offer_restored(self, e: OfferRestored, out: list[Command]) -> None:
        restore_offer(self._c, e, out)
