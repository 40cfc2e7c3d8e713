"""What happens when a deadline fires: offer expiry, wrap-up end, preferred window end, overflow
steps, re-offer delay end, disconnect grace end. Driven by ``Tick`` through :func:`fire_due`."""

from __future__ import annotations

import heapq
from collections.abc import Callable

from routing.agents import AgentState
from routing.commands import Callback, Command, Escalate, Overflow, SetPresence, Voicemail
from routing.engine import (
    EXCLUSION_END,
    EXPIRE,
    GRACE_END,
    PREFERRED_END,
    STEP,
    WRAP_END,
    Engine,
)
from routing.model import Medium, OverflowAction, Presence, Reason
from routing.queues import OFFERED, WAITING, OfferState, WorkState


def fire_due(c: Engine, now: float, out: list[Command]) -> None:
    """Fire every live deadline at or before ``now`` in time order, each at its own time if
    the clock has not passed it yet (so an offer re-made when another expired at t expires at
    t + TTL whatever the tick lag), else at the clock: time never runs backwards."""
    heap = c.deadlines
    while heap and heap[0][0] <= now:
        entry = heapq.heappop(heap)
        if not c.live_deadline(entry):
            continue
        if entry[0] > c.now:
            c.now = entry[0]
        _FIRE[entry[2]](c, entry[3], out)
    if now > c.now:
        c.now = now


def exclude(c: Engine, w: WorkState, agent: AgentState) -> None:
    """The agent declined or missed ``w``: skip them for it during the queue's re-offer delay."""
    until = c.now + c.queues[w.home].config.reoffer_delay_s
    if until > c.now:
        w.excluded[agent.agent_id] = until
        c.at(until, EXCLUSION_END, w, 0)


def _expire(c: Engine, obj: object, out: list[Command]) -> None:
    assert isinstance(obj, OfferState)
    a = obj.agent
    ttl = obj.expires_at - obj.created_at
    w = c.revoke(obj, "expired", f"{a.agent_id} did not answer within {ttl:g}s", out)
    exclude(c, w, a)
    c.requeue(w, out)
    a.missed += 1
    if a.missed >= c.config.max_missed and a.presence is Presence.READY:
        a.presence = Presence.NOT_READY
        a.presence_reason = c.config.missed_reason
        a.wrap_token += 1
        text = f"{a.agent_id} let {a.missed} offers in a row expire"
        out.append(SetPresence(a.agent_id, Presence.NOT_READY, c.config.missed_reason,
                               Reason("missed", text)))
    c.refresh(a, out)


def _wrap_end(c: Engine, obj: object, out: list[Command]) -> None:
    assert isinstance(obj, AgentState)
    obj.presence = Presence.READY
    obj.presence_reason = ""
    obj.idle_since = c.now
    out.append(SetPresence(obj.agent_id, Presence.READY, "wrap_up_end",
                           Reason("wrap_up_end", "wrap-up time is over")))
    c.refresh(obj, out)


def _preferred_end(c: Engine, obj: object, out: list[Command]) -> None:
    assert isinstance(obj, WorkState)
    c.requeue(obj, out)


def _exclusion_end(c: Engine, obj: object, out: list[Command]) -> None:
    assert isinstance(obj, WorkState)
    now = c.now
    obj.excluded = {k: t for k, t in obj.excluded.items() if t > now}
    c.match_work(obj, out)


def _grace_end(c: Engine, obj: object, out: list[Command]) -> None:
    assert isinstance(obj, WorkState) and obj.agent is not None
    text = f"{obj.agent.agent_id} stayed disconnected past the grace period"
    c.unassign(obj, text, out)


def _step(c: Engine, obj: object, out: list[Command]) -> None:
    assert isinstance(obj, WorkState)
    w = obj
    q = c.queues[w.home]
    steps = q.config.overflow
    i = w.step
    if i >= len(steps):
        return
    s = steps[i]
    w.step = i + 1
    act = s.action
    waited = f"waited {c.now - w.work.arrival:.3f}s ≥ {s.after_s:g}s in {q.config.queue_id}"
    if act is OverflowAction.RELAX or act is OverflowAction.ADD_QUEUE:
        lane = c.step_lane(w, c.base_reqs(w), act, s.min_level, s.queue_id)
        if lane is not None:  # None: the other queue is not configured, the step is void
            if lane not in w.lanes:
                w.lanes.append(lane)
                if w.state == WAITING:
                    lane.push(w)
            what = (f"minimum levels relaxed to {s.min_level}" if act is OverflowAction.RELAX
                    else f"agents of {s.queue_id} added")
            out.append(Overflow(w.work_id, i, act, s.queue_id,
                                Reason(act.value, f"{waited}: {what}")))
    elif act is OverflowAction.ESCALATE:
        target = c.queues.get(s.queue_id or "")
        if target is not None and target is not q:
            q.depth -= 1
            w.home = target.config.queue_id
            w.step = 0
            c.relane(w)
            target.track(w)
            out.append(Escalate(w.work_id, i, s.tier, target.config.queue_id,
                                Reason(act.value, f"{waited}: moved to {w.home}")))
    elif w.medium is Medium.VOICE:
        agent = None
        if w.state == OFFERED and w.offer is not None:
            agent = w.offer.agent
            c.revoke(w.offer, act.value, f"{waited}: caller leaves the queue", out)
        origin = c.queues.get(w.work.queue_id)
        if origin is not None:
            origin.stats.diverted += 1
        c.drop(w)
        cmd = Voicemail if act is OverflowAction.VOICEMAIL else Callback
        out.append(cmd(w.work_id, i, Reason(act.value, f"{waited}: {act.value}")))
        if agent is not None:
            c.refresh(agent, out)
        return
    c.schedule_step(w)
    if w.state == WAITING:
        c.match_work(w, out)


_FIRE: dict[int, Callable[[Engine, object, list[Command]], None]] = {
    EXPIRE: _expire, WRAP_END: _wrap_end, PREFERRED_END: _preferred_end, STEP: _step,
    EXCLUSION_END: _exclusion_end, GRACE_END: _grace_end,
}
