"""Building state rather than reacting: queue (re)configuration and restart restoration.

After a restart the dispatcher replays the database through these (see ``routing.router``), so
offers and assignments come back with their capacity reserved and nothing is re-sent.
"""

from __future__ import annotations

from routing.agents import AgentState
from routing.commands import Command, RevokeOffer
from routing.engine import Engine
from routing.events import AssignmentRestored, OfferRestored
from routing.model import ConfigError, DuplicateWork, QueueConfig, Reason, UnknownAgent, Work
from routing.queues import ASSIGNED, OFFERED, PARKED, WAITING, QueueState, WorkState


def agent_of(c: Engine, agent_id: str) -> AgentState:
    a = c.agents.get(agent_id)
    if a is None:
        raise UnknownAgent(agent_id)
    return a


def new_work(c: Engine, work: Work) -> WorkState:
    """Register a new item (validated first: nothing is half-registered on error)."""
    if work.work_id in c.work:
        raise DuplicateWork(work.work_id)
    c.queue(work.queue_id)
    w = WorkState(work, next(c.seq))
    steps = c.queues[work.queue_id].config.overflow
    w.step = min(w.step, len(steps))
    w.lanes = c.compute_lanes(w)
    c.work[work.work_id] = w
    return w


def configure(c: Engine, cfg: QueueConfig, out: list[Command]) -> None:
    """Add a queue, or replace its config and re-lane its items (which may route some)."""
    pool = c.pool(cfg.skills, cfg.mode)
    q = c.queues.get(cfg.queue_id)
    if q is None:
        c.queues[cfg.queue_id] = QueueState(cfg, pool)
        return
    q.config = cfg
    q.pool = pool
    q.base_lanes.clear()
    for w in [w for w in c.work.values() if w.home == cfg.queue_id]:
        if w.state in (WAITING, PARKED, OFFERED):
            w.step = min(w.step, len(cfg.overflow))
            c.relane(w)
            c.schedule_step(w)
            if w.state == WAITING:
                c.match_work(w, out)


def restore_assignment(c: Engine, e: AssignmentRestored, out: list[Command]) -> None:
    """Restart: re-create an assignment (capacity held, nothing sent)."""
    a = agent_of(c, e.agent_id)
    w = new_work(c, e.work)
    w.state = ASSIGNED
    w.version += 1
    w.agent = a
    w.answered = True
    a.reserve(w.medium)  # restored as it was, even past today's capacity
    a.overfull = a.over_capacity()
    a.work[w.work_id] = w
    c.refresh(a, out)


def restore_offer(c: Engine, e: OfferRestored, out: list[Command]) -> None:
    """Restart: re-create a live offer with its original expiry (not re-sent). An offer that
    expired while the router was down is revoked at once and its work routed again; that is
    not the agent's doing, so it neither counts as missed nor delays a re-offer to them."""
    a = agent_of(c, e.agent_id)
    if a.offer is not None:
        raise ConfigError("agent_id", f"{e.agent_id} already holds live offer "
                          f"{a.offer.offer_id}")
    if e.offer_id in c.offers:
        raise ConfigError("offer_id", f"duplicate live offer {e.offer_id}")
    w = new_work(c, e.work)
    c.queues[w.home].track(w)
    c.schedule_step(w)
    if e.expires_at <= c.now:
        text = f"offer to {e.agent_id} expired at {e.expires_at:.3f} while the router was down"
        out.append(RevokeOffer(e.offer_id, w.work_id, e.agent_id,
                               Reason("expired_while_down", text)))
        c.requeue(w, out)
        return
    c.restore_offer(e.offer_id, w, a, e.expires_at)
