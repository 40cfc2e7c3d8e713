"""Agent state and the agent index: who can take work of a given kind right now, best first.

An agent *pool* is the set of agents meeting one requirement set under one distribution mode
(queues with equal requirements and mode share a pool; each overflow relaxation has its own).
Per medium, a pool keeps a heap of the agents that could take one more item of that medium now,
ordered by the mode's key. Entries are never removed eagerly: every change to an agent bumps its
``version`` and stale entries are dropped when they surface (lazy invalidation), and a heap that
grows past twice its live size is compacted. So finding the best agent for an item is O(log n)
amortized instead of a scan over thousands of agents.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from routing.model import AgentProfile, Capacity, Medium, Mode, Presence, Requirements
from routing.policies import agent_key, eligible, skill_score

if TYPE_CHECKING:
    from routing.queues import Lane, OfferState, WorkState

DIG_LIMIT = 32  # how many excluded agents to step over before giving up on a heap
MEDIA = tuple(Medium)


class AgentState:
    """Mutable per-agent state owned by the router."""

    __slots__ = ("agent_id", "capacity", "connected", "cost_used", "disconnect_epoch",
                 "exclusive_used", "idle_since", "indexed", "lane_cache", "last_offer",
                 "logged_in", "missed", "offer", "overfull", "pools", "presence",
                 "presence_reason", "skills", "total", "used", "version", "work", "wrap_token")

    def __init__(self, profile: AgentProfile, now: float) -> None:
        self.agent_id = profile.agent_id
        self.skills = dict(profile.skills)
        self.capacity = profile.capacity
        self.presence = Presence.OFFLINE
        self.presence_reason = ""
        self.logged_in = False
        self.connected = True
        self.disconnect_epoch = 0
        self.used: dict[Medium, int] = {}
        self.total = 0
        self.exclusive_used = 0
        self.cost_used = 0
        self.offer: OfferState | None = None
        self.work: dict[str, WorkState] = {}
        self.idle_since = now
        self.last_offer = 0
        self.missed = 0
        self.version = 0
        self.pools: list[Pool] = []
        self.indexed: list[AgentHeap] = []
        self.wrap_token = 0
        self.overfull = False  # holds more than its (shrunk) capacity: no offers until it drains
        self.lane_cache: dict[Medium, list[Lane]] = {}  # lanes this agent's pools feed

    def can_offer(self) -> bool:
        """Ready, connected, logged in and not already holding a live offer."""
        return (self.presence is Presence.READY and self.logged_in and self.connected
                and self.offer is None and not self.overfull)

    def fits(self, medium: Medium) -> bool:
        """Whether one more ``medium`` item fits (see :func:`routing.policies.fits`)."""
        cap = self.capacity
        if self.exclusive_used or self.used.get(medium, 0) >= cap.limits.get(medium, 0):
            return False
        if self.total and medium in cap.exclusive:
            return False
        return cap.budget is None or self.cost_used + cap.cost(medium) <= cap.budget

    def over_capacity(self) -> bool:
        """Whether what is held (offers included) breaks the current capacity."""
        cap = self.capacity
        if any(n > cap.limits.get(m, 0) for m, n in self.used.items()):
            return True
        if self.exclusive_used and self.total > 1:
            return True
        return cap.budget is not None and self.cost_used > cap.budget

    def reserve(self, medium: Medium) -> None:
        self.used[medium] = self.used.get(medium, 0) + 1
        self.total += 1
        self.cost_used += self.capacity.cost(medium)
        if medium in self.capacity.exclusive:
            self.exclusive_used += 1

    def release(self, medium: Medium) -> None:
        self.used[medium] -= 1
        self.total -= 1
        self.cost_used -= self.capacity.cost(medium)
        if medium in self.capacity.exclusive:
            self.exclusive_used -= 1
        if self.overfull:
            self.overfull = self.over_capacity()

    def set_capacity(self, capacity: Capacity) -> None:
        """Swap capacity, recomputing the derived counters under the new costs/exclusivity."""
        self.capacity = capacity
        self.cost_used = sum(capacity.cost(m) * n for m, n in self.used.items())
        self.exclusive_used = sum(n for m, n in self.used.items() if m in capacity.exclusive)
        self.overfull = self.over_capacity()


AgentEntry = tuple[float, float, int, int, AgentState]


class AgentHeap:
    """The agents of one pool that could take one more item of one medium now, best first."""

    __slots__ = ("heap", "live")

    def __init__(self) -> None:
        self.heap: list[AgentEntry] = []
        self.live = 0  # entries whose agent is still indexed here (the rest is garbage)

    def push(self, entry: AgentEntry) -> None:
        heap = self.heap
        heapq.heappush(heap, entry)
        self.live += 1
        for _ in range(3):  # sweep a little garbage off the top so queries never pop bursts
            top = heap[0]
            if top[3] == top[4].version:
                break
            heapq.heappop(heap)
        if len(heap) > 2 * self.live + 64:
            heap[:] = [e for e in heap if e[3] == e[4].version]
            heapq.heapify(heap)

    def best(self, excluded: dict[str, float] | None,
             now: float) -> tuple[AgentState, tuple[float, float], list[AgentState]] | None:
        """The best agent, skipping ``excluded`` agents (id → until) whose exclusion has not
        ended; also returns the agents stepped over. The winner's entry is consumed: the
        caller offers it work, which withdraws it anyway."""
        heap = self.heap
        while heap:  # fast path: the top is current and nobody is excluded
            entry = heap[0]
            agent = entry[4]
            if entry[3] != agent.version:
                heapq.heappop(heap)
                continue
            if excluded and agent.agent_id in excluded:
                break
            heapq.heappop(heap)
            return agent, (entry[0], entry[1]), []
        skipped: list[AgentState] = []
        held: list[AgentEntry] = []
        found: tuple[AgentState, tuple[float, float], list[AgentState]] | None = None
        while heap:
            entry = heap[0]
            agent = entry[4]
            if entry[3] != agent.version:
                heapq.heappop(heap)
                continue
            if excluded and excluded.get(agent.agent_id, -1.0) > now:
                held.append(heapq.heappop(heap))
                skipped.append(agent)
                if len(held) >= DIG_LIMIT:
                    break
                continue
            found = (agent, (entry[0], entry[1]), skipped)
            heapq.heappop(heap)
            break
        for entry in held:
            heapq.heappush(heap, entry)
        return found


class Pool:
    """The agents eligible under one (requirements, mode), indexed per medium by the mode key."""

    __slots__ = ("heaps", "lanes", "members", "mode", "mode_name", "reqs")

    def __init__(self, reqs: Requirements, mode: Mode) -> None:
        self.reqs = reqs
        self.mode = mode
        self.mode_name = mode.value
        self.members: dict[str, AgentState] = {}
        self.heaps: dict[Medium, AgentHeap] = {}
        self.lanes: dict[Medium, list[Lane]] = {}

    def admits(self, agent: AgentState) -> bool:
        return eligible(agent.skills, self.reqs)

    def key(self, agent: AgentState) -> tuple[float, float]:
        score = skill_score(agent.skills, self.reqs) if self.mode is Mode.SKILL_LEVEL else 0
        return agent_key(self.mode, agent.idle_since, agent.last_offer, agent.total, score)

    def heap(self, medium: Medium) -> AgentHeap:
        h = self.heaps.get(medium)
        if h is None:
            h = self.heaps[medium] = AgentHeap()
        return h


def withdraw(agent: AgentState) -> None:
    """Take the agent out of every heap (lazily: bump the version, fix live counts)."""
    agent.version += 1
    if agent.indexed:
        for h in agent.indexed:
            h.live -= 1
        agent.indexed.clear()


def index(agent: AgentState, seq: int) -> None:
    """Put an available agent into the heap of every pool/medium it could take now."""
    if agent.indexed or not agent.can_offer():
        return
    fitting = [m for m in MEDIA if agent.fits(m)]
    version = agent.version
    indexed = agent.indexed
    for pool in agent.pools:
        k0, k1 = pool.key(agent)
        entry = (k0, k1, seq, version, agent)
        for medium in fitting:
            h = pool.heap(medium)
            h.push(entry)
            indexed.append(h)
