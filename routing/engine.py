"""The router's state and its matching primitives (see ``routing.router`` for the big picture).

Two searches keep the system *quiescent* after every event, i.e. no waiting item and available
agent that could be matched are left apart (except for re-offer delays and preferred windows):

- ``match_work``: an item became waiting → the best available agent of its lanes' pools.
- ``match_agent``: an agent became available → the best waiting item among the heads of the
  lanes its pools feed (plus items parked for it as preferred agent).

Both are index look-ups, never scans. Deadlines live in one heap of (time, seq, kind, object,
token) entries; an entry whose token no longer matches its object is stale and skipped.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Final

from routing.agents import AgentState, Pool, index, withdraw
from routing.commands import Command, Requeue, RevokeOffer, SendOffer
from routing.model import (
    Candidate,
    Medium,
    Mode,
    OverflowAction,
    Reason,
    Requirements,
    RouterConfig,
    UnknownQueue,
)
from routing.policies import eligible, relax
from routing.queues import (
    ASSIGNED,
    GONE,
    OFFERED,
    PARKED,
    PLACING,
    WAITING,
    Lane,
    OfferState,
    QueueState,
    WorkState,
    enter_lanes,
    leave_lanes,
)

EXPIRE: Final = 0  # offer TTL ended
WRAP_END: Final = 1  # wrap-up ended
PREFERRED_END: Final = 2  # preferred-agent window ended
STEP: Final = 3  # next overflow step due
EXCLUSION_END: Final = 4  # an agent's re-offer delay for an item ended
GRACE_END: Final = 5  # a disconnected agent's grace period ended for one item

Deadline = tuple[float, int, int, object, int]


class Engine:
    """All mutable router state plus the primitives the event handlers compose."""

    def __init__(self, config: RouterConfig, new_offer_id: Callable[[], str] | None) -> None:
        self.config = config
        self.now = float("-inf")
        self.queues: dict[str, QueueState] = {}
        self.agents: dict[str, AgentState] = {}
        self.work: dict[str, WorkState] = {}
        self.offers: dict[str, OfferState] = {}
        self.pools: dict[tuple[Requirements, Mode], Pool] = {}
        self.lanes: dict[tuple[str, Requirements, Mode, Medium], Lane] = {}
        self.parked: dict[str, list[WorkState]] = {}
        self.deadlines: list[Deadline] = []
        self.seq = itertools.count(1)
        counter = itertools.count(1)
        self.new_offer_id = new_offer_id or (lambda: f"offer-{next(counter)}")

    # --- structure -------------------------------------------------------------------------

    def pool(self, reqs: Requirements, mode: Mode) -> Pool:
        """The pool for (reqs, mode), created on first use with every known eligible agent."""
        key = (reqs, mode)
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = Pool(reqs, mode)
            for agent in self.agents.values():
                if eligible(agent.skills, reqs):
                    pool.members[agent.agent_id] = agent
                    agent.pools.append(pool)
                    if agent.can_offer():  # available right now: index it here too
                        withdraw(agent)
                        index(agent, next(self.seq))
        return pool

    def lane(self, queue_id: str, pool: Pool, medium: Medium) -> Lane:
        key = (queue_id, pool.reqs, pool.mode, medium)
        lane = self.lanes.get(key)
        if lane is None:
            lane = self.lanes[key] = Lane(queue_id, pool, medium)
            pool.lanes.setdefault(medium, []).append(lane)
            for agent in pool.members.values():  # members feed it from now on
                agent.lane_cache.setdefault(medium, []).append(lane)
        return lane

    def join_pools(self, agent: AgentState) -> None:
        """Recompute which pools an agent belongs to (login, skills changed)."""
        withdraw(agent)
        for pool in agent.pools:
            pool.members.pop(agent.agent_id, None)
        agent.pools = [p for p in self.pools.values() if p.admits(agent)]
        agent.lane_cache = {}
        for pool in agent.pools:
            for medium, lanes in pool.lanes.items():
                agent.lane_cache.setdefault(medium, []).extend(lanes)
        for pool in agent.pools:
            pool.members[agent.agent_id] = agent

    def queue(self, queue_id: str) -> QueueState:
        q = self.queues.get(queue_id)
        if q is None:
            raise UnknownQueue(queue_id)
        return q

    def base_reqs(self, w: WorkState) -> Requirements:
        q = self.queue(w.home)
        if w.work.skills is not None and w.home == w.work.queue_id:
            return w.work.skills
        return q.config.skills

    def compute_lanes(self, w: WorkState) -> list[Lane]:
        """The item's lanes: its queue's base lane plus one per lane-adding overflow step
        already applied (``w.step`` of them)."""
        q = self.queue(w.home)
        if w.step == 0 and (w.work.skills is None or w.home != w.work.queue_id):
            base = q.base_lanes.get(w.medium)  # the common case, cached per queue
            if base is None:
                base = q.base_lanes[w.medium] = self.lane(w.home, q.pool, w.medium)
            return [base]
        reqs = self.base_reqs(w)
        lanes = [self.lane(w.home, self.pool(reqs, q.config.mode), w.medium)]
        for step in q.config.overflow[: w.step]:
            lane = self.step_lane(w, reqs, step.action, step.min_level, step.queue_id)
            if lane is not None and lane not in lanes:
                lanes.append(lane)
        return lanes

    def step_lane(self, w: WorkState, reqs: Requirements, action: OverflowAction,
                  min_level: int, queue_id: str | None) -> Lane | None:
        q = self.queue(w.home)
        if action is OverflowAction.RELAX:
            return self.lane(w.home, self.pool(relax(reqs, min_level), q.config.mode), w.medium)
        if action is OverflowAction.ADD_QUEUE and queue_id in self.queues:
            other = self.queues[queue_id].config
            return self.lane(other.queue_id, self.pool(other.skills, other.mode), w.medium)
        return None

    def relane(self, w: WorkState) -> None:
        """Recompute an item's lanes (queue reconfigured, escalated); re-enter if waiting."""
        waiting = w.state == WAITING
        leave_lanes(w)
        w.lanes = self.compute_lanes(w)
        if waiting:
            enter_lanes(w)

    # --- matching --------------------------------------------------------------------------

    def refresh(self, agent: AgentState, out: list[Command]) -> None:
        """Something about the agent changed: re-index it, offering it work if it can take some."""
        withdraw(agent)
        if agent.can_offer() and not self.match_agent(agent, out):
            index(agent, next(self.seq))

    def match_work(self, w: WorkState, out: list[Command]) -> bool:
        """Offer a waiting item to the best available agent of its lanes (base lane first)."""
        now = self.now
        for i, lane in enumerate(w.lanes):
            pool = lane.pool
            heap = pool.heaps.get(w.medium)
            if heap is None or not heap.heap:
                continue
            live = heap.live
            found = heap.best(w.excluded, now)
            if found is None:
                continue
            agent, key, skipped = found
            cands: tuple[Candidate, ...] = (Candidate(agent.agent_id, key, "chosen"),)
            if skipped:
                cands += tuple(Candidate(s.agent_id, (), "skipped: declined or missed it "
                                         "recently") for s in skipped)
            text = (f"{agent.agent_id} comes first by {pool.mode_name} among {live} available "
                    f"eligible agents in lane {lane.label}{' (overflow)' if i else ''}")
            self.offer(w, agent, Reason(pool.mode_name, text, live, cands), out)
            return True
        return False

    def match_agent(self, agent: AgentState, out: list[Command]) -> bool:
        """Offer an available agent the best item it may take: priority first, then FIFO.
        Only the head of each lane it feeds is looked at (plus items parked for it)."""
        now = self.now
        agent_id = agent.agent_id
        best: WorkState | None = None
        second: WorkState | None = None
        best_lane: Lane | None = None
        heads = 0
        if agent.exclusive_used:
            return False  # a call in progress blocks everything else
        used, cap, total = agent.used, agent.capacity, agent.total
        limits, exclusive, budget = cap.limits, cap.exclusive, cap.budget
        for medium, lanes in agent.lane_cache.items():
            # inlined AgentState.fits: this loop is the hot path of every agent-side decision
            if used.get(medium, 0) >= limits.get(medium, 0) or (total and medium in exclusive):
                continue
            if budget is not None and agent.cost_used + cap.cost(medium) > budget:
                continue
            for lane in lanes:
                if not lane.live:
                    continue
                entry = lane.heap[0]
                w = entry[4]
                if entry[3] != w.version or w.state != WAITING or w.excluded:
                    found = lane.head(agent_id, now)
                    if found is None:
                        continue
                    w = found
                heads += 1
                if best is None or w.key < best.key:
                    second, best, best_lane = best, w, lane
                elif second is None or w.key < second.key:
                    second = w
        parked = self.parked.get(agent_id)
        if parked:
            parked[:] = [w for w in parked if w.state == PARKED]
            for w in parked:
                if agent.fits(w.medium):
                    heads += 1
                    if best is None or w.key < best.key:
                        second, best = best, w
                    elif second is None or w.key < second.key:
                        second = w
        if best is None:
            return False
        if best_lane is not None and best_lane.heap[0][4] is best and best.state == WAITING:
            heapq.heappop(best_lane.heap)  # spent: don't leave a stale head for the next agent
        rule = "preferred_agent" if best.state == PARKED else "priority_fifo"
        text = (f"{best.work_id} has the best (priority, arrival) of the {heads} queue heads "
                f"{agent_id} may take")
        chosen = Candidate(best.work_id, (float(best.key[0]), best.key[1]), "chosen")
        cands = (chosen,) if second is None else (
            chosen, Candidate(second.work_id, (float(second.key[0]), second.key[1]),
                              "runner-up"))
        self.offer(best, agent, Reason(rule, text, heads, cands), out)
        return True

    def offer(self, w: WorkState, agent: AgentState, reason: Reason, out: list[Command]) -> None:
        """Send one offer: the item stops waiting, the agent's capacity is reserved."""
        now = self.now
        ttl = self.queues[w.home].config.offer_ttl_s
        offer_id = self.new_offer_id()
        o = OfferState(offer_id, w, agent, now, now + ttl)
        leave_lanes(w)
        w.state = OFFERED
        w.offer = o
        withdraw(agent)
        agent.offer = o
        agent.reserve(w.medium)
        agent.last_offer = next(self.seq)
        self.offers[offer_id] = o
        self.at(o.expires_at, EXPIRE, o, 0)
        out.append(SendOffer(offer_id, w.work_id, agent.agent_id, o.expires_at, reason))

    def restore_offer(self, offer_id: str, w: WorkState, agent: AgentState,
                      expires_at: float) -> None:
        o = OfferState(offer_id, w, agent, self.now, expires_at)
        w.state = OFFERED
        w.offer = o
        withdraw(agent)
        agent.offer = o
        agent.reserve(w.medium)
        agent.overfull = agent.over_capacity()
        self.offers[offer_id] = o
        self.at(expires_at, EXPIRE, o, 0)

    def close_offer(self, o: OfferState) -> None:
        """End a live offer without assigning: release the reservation; the caller decides
        where the work goes."""
        del self.offers[o.offer_id]
        agent = o.agent
        agent.offer = None
        agent.release(o.work.medium)
        o.work.offer = None

    def revoke(self, o: OfferState, rule: str, text: str, out: list[Command]) -> WorkState:
        """Revoke a live offer (the caller requeues or drops the work, refreshes the agent)."""
        self.close_offer(o)
        w = o.work
        out.append(RevokeOffer(o.offer_id, w.work_id, o.agent.agent_id, Reason(rule, text)))
        return w

    def drop(self, w: WorkState) -> None:
        """The item leaves routing for good (finished, withdrawn, voicemail)."""
        if w.state in (WAITING, PARKED, OFFERED):
            q = self.queues.get(w.home)
            if q is not None:
                q.depth -= 1
        leave_lanes(w)
        w.state = GONE
        self.work.pop(w.work_id, None)

    def unassign(self, w: WorkState, text: str, out: list[Command]) -> None:
        """Take assigned work back from its agent and put it back in its queue (same arrival
        and priority, so it keeps its place in line)."""
        agent = w.agent
        assert agent is not None
        agent.release(w.medium)
        agent.work.pop(w.work_id, None)
        w.agent = None
        self.queue(w.home).track(w)
        out.append(Requeue(w.work_id, agent.agent_id, Reason("requeue", text)))
        self.schedule_step(w)
        self.requeue(w, out)

    def requeue(self, w: WorkState, out: list[Command]) -> None:
        """Offer an item that (re)became routable to the best available agent; if there is
        none it waits in its lanes. Matching first keeps items taken at once out of the lane
        heaps altogether (no push, no stale entry to pop later)."""
        w.state = PLACING
        if not self.match_work(w, out):
            enter_lanes(w)

    # --- deadlines -------------------------------------------------------------------------

    def at(self, when: float, kind: int, obj: object, token: int) -> None:
        heapq.heappush(self.deadlines, (when, next(self.seq), kind, obj, token))

    def live_deadline(self, entry: Deadline) -> bool:
        kind, obj, token = entry[2], entry[3], entry[4]
        if kind == EXPIRE:
            assert isinstance(obj, OfferState)
            return self.offers.get(obj.offer_id) is obj
        if kind == WRAP_END:
            assert isinstance(obj, AgentState)
            return obj.wrap_token == token
        assert isinstance(obj, WorkState)
        if kind == PREFERRED_END:
            return obj.state == PARKED
        if kind == STEP:
            return obj.step_token == token and obj.state in (WAITING, PARKED, OFFERED)
        if kind == EXCLUSION_END:
            return obj.state == WAITING
        agent = obj.agent
        return (agent is not None and obj.state == ASSIGNED and not agent.connected
                and agent.disconnect_epoch == token and obj.work_id in agent.work)

    def next_deadline(self) -> float | None:
        heap = self.deadlines
        while heap and not self.live_deadline(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def schedule_step(self, w: WorkState) -> None:
        """Arm the deadline of the item's next overflow step, if its queue has one left."""
        steps = self.queues[w.home].config.overflow
        w.step_token += 1
        if w.step < len(steps):
            self.at(w.work.arrival + steps[w.step].after_s, STEP, w, w.step_token)
