"""Read-only views of the router for ``GET /api/queues``, the ``/agent`` namespace and tests.

Building a snapshot walks the queues and each queue's pool members (O(queues x pool size)); it
is meant for a dashboard refresh, not for every event.
"""

from __future__ import annotations

from dataclasses import dataclass

from routing.agents import MEDIA, AgentState
from routing.engine import Engine
from routing.model import Medium, Presence
from routing.queues import STATUS_NAMES, WorkState


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """One queue right now. ``depth`` counts waiting + parked + offered items; ``agents_ready``
    are eligible agents who could take an offer now (ready, connected, free capacity, no live
    offer); ``agents_busy`` are eligible logged-in agents holding work or an offer (an agent with
    2 of 3 chats is both). ``service_level`` = answered within target / answered since the
    last reset (None before the first answer); abandoned and diverted are reported apart."""

    queue_id: str
    depth: int
    oldest_wait_s: float | None
    agents_ready: int
    agents_busy: int
    answered: int
    answered_in_target: int
    abandoned: int
    abandoned_in_target: int
    diverted: int
    service_level: float | None
    sl_target_s: float
    sl_target_pct: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    now: float
    queues: tuple[QueueSnapshot, ...]
    agents_logged_in: int
    live_offers: int
    work_in_routing: int  # every item the router holds (queued, offered, assigned)


@dataclass(frozen=True, slots=True)
class AgentView:
    agent_id: str
    presence: Presence
    presence_reason: str
    logged_in: bool
    connected: bool
    held: tuple[tuple[Medium, int], ...]  # per medium, offers in flight included
    offer_id: str | None
    work_ids: tuple[str, ...]
    missed: int


@dataclass(frozen=True, slots=True)
class WorkView:
    work_id: str
    status: str  # waiting / parked / offered / assigned
    queue_id: str  # current queue (differs from the original after an escalation)
    agent_id: str | None  # assignee, or the agent holding the live offer
    offer_id: str | None
    overflow_done: int  # steps applied in the current queue (persist it for restore)


def agent_view(a: AgentState) -> AgentView:
    return AgentView(a.agent_id, a.presence, a.presence_reason, a.logged_in, a.connected,
                     tuple(sorted((m, n) for m, n in a.used.items() if n)),
                     a.offer.offer_id if a.offer else None, tuple(sorted(a.work)), a.missed)


def work_view(w: WorkState) -> WorkView:
    agent = w.offer.agent if w.offer is not None else w.agent
    return WorkView(w.work_id, STATUS_NAMES[w.state], w.home,
                    agent.agent_id if agent is not None else None,
                    w.offer.offer_id if w.offer is not None else None, w.step)


def _ready(a: AgentState) -> bool:
    return a.can_offer() and any(a.fits(m) for m in MEDIA)


def snapshot(c: Engine) -> Snapshot:
    out = []
    for q in c.queues.values():
        oldest = q.oldest_arrival()
        ready = busy = 0
        for a in q.pool.members.values():
            if not a.logged_in:
                continue
            if a.total:
                busy += 1
            if _ready(a):
                ready += 1
        st = q.stats
        cfg = q.config
        out.append(QueueSnapshot(
            cfg.queue_id, q.depth, None if oldest is None else max(0.0, c.now - oldest),
            ready, busy, st.answered, st.in_target, st.abandoned, st.abandoned_in_target,
            st.diverted, st.in_target / st.answered if st.answered else None,
            cfg.sl_target_s, cfg.sl_target_pct))
    logged = sum(1 for a in c.agents.values() if a.logged_in)
    return Snapshot(c.now, tuple(out), logged, len(c.offers), len(c.work))
