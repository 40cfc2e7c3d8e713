"""Work state and the queue index: which waiting item an agent should take next.

A *lane* holds the waiting items that one pool of agents may take for one queue and medium, as a
heap ordered by (-priority, arrival, sequence): priority first, then FIFO. An item sits in one
lane at first and gains lanes as overflow steps widen who may take it. An agent looking for work
peeks the head of each lane its pools feed and takes the best head, so a higher-priority item is
never passed over for a lower one the same agent could take. Like the agent heaps, lanes are
invalidated lazily through the item's ``version``.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Final

from routing.agents import DIG_LIMIT, AgentState, Pool
from routing.model import Medium, QueueConfig, Work

WAITING: Final = 0  # in its lanes, offerable to any eligible agent
PARKED: Final = 1  # reserved for its preferred agent until the window ends
OFFERED: Final = 2  # a live offer is out
ASSIGNED: Final = 3  # an agent accepted it
GONE: Final = 4  # finished, withdrawn, or left routing (voicemail/callback)
PLACING: Final = 5  # transient: being matched before it enters its lanes (see Engine.requeue)

STATUS_NAMES: Final = ("waiting", "parked", "offered", "assigned", "gone", "placing")

LaneEntry = tuple[int, float, int, int, "WorkState"]


class WorkState:
    """Mutable per-item state owned by the router."""

    __slots__ = ("agent", "answered", "excluded", "home", "key", "lanes", "medium", "offer",
                 "seq", "state", "step", "step_token", "version", "work", "work_id")

    def __init__(self, work: Work, seq: int) -> None:
        self.work = work
        self.work_id = work.work_id
        self.medium: Medium = work.medium
        self.home = work.queue_id  # the queue it is in now (changes on escalation)
        self.seq = seq
        self.key = (-work.priority, work.arrival, seq)
        self.state = WAITING
        self.version = 0
        self.lanes: list[Lane] = []
        self.excluded: dict[str, float] = {}  # agent id → not re-offered before this time
        self.offer: OfferState | None = None
        self.agent: AgentState | None = None
        self.step = work.overflow_done  # next overflow step of the home queue's ladder
        self.step_token = 0
        self.answered = False  # counted in the service level already (requeues don't recount)


class OfferState:
    """A live offer."""

    __slots__ = ("agent", "created_at", "expires_at", "offer_id", "work")

    def __init__(self, offer_id: str, work: WorkState, agent: AgentState, created_at: float,
                 expires_at: float) -> None:
        self.offer_id = offer_id
        self.work = work
        self.agent = agent
        self.created_at = created_at
        self.expires_at = expires_at


class Lane:
    """Waiting items of one queue that one pool may take, for one medium: best first."""

    __slots__ = ("heap", "label", "live", "medium", "pool", "queue_id")

    def __init__(self, queue_id: str, pool: Pool, medium: Medium) -> None:
        self.queue_id = queue_id
        self.pool = pool
        self.medium = medium
        self.label = f"{queue_id}/{medium.value}"
        self.heap: list[LaneEntry] = []
        self.live = 0

    def push(self, work: WorkState) -> None:
        k = work.key
        heapq.heappush(self.heap, (k[0], k[1], k[2], work.version, work))
        self.live += 1
        if len(self.heap) > 2 * self.live + 64:
            self.heap[:] = [e for e in self.heap if e[3] == e[4].version and e[4].state == WAITING]
            heapq.heapify(self.heap)

    def head(self, agent_id: str, now: float) -> WorkState | None:
        """The best waiting item ``agent_id`` may be offered (not excluded for them)."""
        heap = self.heap
        while heap:
            entry = heap[0]
            work = entry[4]
            if entry[3] != work.version or work.state != WAITING:
                heapq.heappop(heap)
                continue
            if not work.excluded or work.excluded.get(agent_id, -1.0) <= now:
                return work
            return self._dig(agent_id, now)
        return None

    def _dig(self, agent_id: str, now: float) -> WorkState | None:
        held: list[LaneEntry] = []
        found: WorkState | None = None
        heap = self.heap
        while heap and len(held) < DIG_LIMIT:
            entry = heapq.heappop(heap)
            work = entry[4]
            if entry[3] != work.version or work.state != WAITING:
                continue
            held.append(entry)
            if work.excluded.get(agent_id, -1.0) <= now:
                found = work
                break
        for entry in held:
            heapq.heappush(heap, entry)
        return found


def leave_lanes(work: WorkState) -> None:
    """The item stops waiting (offered, assigned, gone): its lane entries go stale."""
    if work.state == WAITING:
        for lane in work.lanes:
            lane.live -= 1
    work.version += 1


def enter_lanes(work: WorkState) -> None:
    """The item (re)starts waiting in all its lanes."""
    work.version += 1
    work.state = WAITING
    for lane in work.lanes:
        lane.push(work)


@dataclass(slots=True)
class QueueStats:
    """Service-level counters since the last reset."""

    answered: int = 0
    in_target: int = 0
    abandoned: int = 0
    abandoned_in_target: int = 0
    diverted: int = 0  # left routing to voicemail/callback


class QueueState:
    """A queue's config, its base pool, its depth and oldest-item index, and its statistics."""

    __slots__ = ("base_lanes", "config", "depth", "oldest", "pool", "pushes", "stats")

    def __init__(self, config: QueueConfig, pool: Pool) -> None:
        self.config = config
        self.pool = pool
        self.base_lanes: dict[Medium, Lane] = {}  # lanes of items without overrides/overflow
        self.depth = 0  # waiting + parked + offered items whose home is this queue
        self.oldest: list[tuple[float, int, int, WorkState]] = []
        self.stats = QueueStats()
        self.pushes = 0

    def track(self, work: WorkState) -> None:
        """Count an item that entered this queue (new, requeued or escalated here)."""
        self.depth += 1
        self.pushes += 1
        heap = self.oldest
        for _ in range(3):  # sweep items that left off the top, so the heap tracks the depth
            if not heap or self._valid(heap[0][3]):
                break
            heapq.heappop(heap)
        heapq.heappush(heap, (work.work.arrival, work.seq, self.pushes, work))
        if len(heap) > 2 * self.depth + 64:
            heap[:] = [e for e in heap if e[3] is work or self._valid(e[3])]
            heapq.heapify(heap)

    def _valid(self, work: WorkState) -> bool:
        return work.state in (WAITING, PARKED, OFFERED) and work.home == self.config.queue_id

    def oldest_arrival(self) -> float | None:
        heap = self.oldest
        while heap:
            if self._valid(heap[0][3]):
                return heap[0][0]
            heapq.heappop(heap)
        return None
