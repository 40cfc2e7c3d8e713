"""Database rows → the router's values (queues, agent profiles, work items).

The router knows nothing of the DB. Two shell-side conventions live here:
- ``escalate`` to tier N (config) becomes a derived queue ``<queue>#tierN`` with the same skills
  plus ``tier >= N``; every agent profile carries its tier as the pseudo-skill ``tier``.
- ``add_queue`` names a queue; the router wants its id.
A queued conversation's work item comes from its row or from its ``conversation.queued`` event
(:class:`WorkFacts`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.actions.queued import WORK_FIELDS, WORK_KEY
from hub.db.models import Agent, Conversation, Queue
from routing.model import (
    AgentProfile,
    Capacity,
    Medium,
    Mode,
    OverflowAction,
    OverflowStep,
    QueueConfig,
    SkillReq,
    Work,
)

log = logging.getLogger(__name__)

TIER_SKILL = "tier"
MAX_LEVEL = 5


def tier_queue_id(queue_id: str, tier: int) -> str:
    return f"{queue_id}#tier{tier}"


def base_queue_id(router_queue_id: str) -> str:
    return router_queue_id.split("#", 1)[0]


def _skills(queue: Queue) -> list[SkillReq]:
    return [SkillReq(str(r["skill"]), int(r.get("min_level", 1))) for r in queue.required_skills]


def _steps(queue: Queue, ids_by_name: dict[str, str]) -> list[OverflowStep]:
    steps: list[OverflowStep] = []
    for raw in queue.overflow:
        action = str(raw.get("action"))
        after = float(raw.get("after_s", 0))
        if action == "relax_skills":
            steps.append(
                OverflowStep(after, OverflowAction.RELAX, min_level=int(raw.get("min_level") or 1))
            )
        elif action == "add_queue" and raw.get("queue") in ids_by_name:
            steps.append(
                OverflowStep(after, OverflowAction.ADD_QUEUE, queue_id=ids_by_name[raw["queue"]])
            )
        elif action == "escalate" and raw.get("tier"):
            tier = int(raw["tier"])
            steps.append(
                OverflowStep(
                    after,
                    OverflowAction.ESCALATE,
                    queue_id=tier_queue_id(queue.id, tier),
                    tier=tier,
                )
            )
        elif action == "voicemail":
            steps.append(OverflowStep(after, OverflowAction.VOICEMAIL))
        elif action == "callback":
            steps.append(OverflowStep(after, OverflowAction.CALLBACK))
        else:
            log.warning("queue %s: overflow step %r not understood; ignored", queue.name, raw)
    return steps


def queue_configs(queues: list[Queue]) -> list[QueueConfig]:
    """Every queue, plus one derived queue per tier an escalation step targets."""
    ids_by_name = {q.name: q.id for q in queues}
    out: list[QueueConfig] = []
    for q in queues:
        common: dict[str, Any] = {
            "mode": Mode(q.distribution),
            "offer_ttl_s": float(max(1, q.offer_ttl_s)),
            "sl_target_s": float(q.sl_target_s),
            "sl_target_pct": q.sl_target_pct / 100.0,
            "wrap_up_s": float(q.wrap_up_s),
            "keep_on_disconnect": not q.requeue_on_disconnect,
            "disconnect_grace_s": float(q.disconnect_grace_s),
            "preferred_window_s": float(q.preferred_agent_window_s),
        }
        steps = _steps(q, ids_by_name)
        out.append(QueueConfig(q.id, tuple(_skills(q)), overflow=tuple(steps), **common))
        for step in steps:
            if step.action is OverflowAction.ESCALATE and step.tier is not None:
                reqs = (*_skills(q), SkillReq(TIER_SKILL, min(MAX_LEVEL, step.tier)))
                out.append(QueueConfig(tier_queue_id(q.id, step.tier), reqs, **common))
    return out


def agent_profile(agent: Agent) -> AgentProfile:
    skills = {s.skill.name: s.level for s in agent.skills}
    skills[TIER_SKILL] = max(1, min(MAX_LEVEL, agent.tier))
    media = {m.value for m in Medium}
    limits = {Medium(k): int(v) for k, v in agent.capacity.items() if k in media}
    exclusive = frozenset({Medium.VOICE}) if agent.call_blocks_all else frozenset()
    return AgentProfile(agent.id, skills, Capacity(limits=limits, exclusive=exclusive))


@dataclass(frozen=True, slots=True)
class WorkFacts:
    """What the router needs of one conversation: from its row, or from the routing facts its
    ``conversation.queued`` event carries (:mod:`hub.actions.queued`); both give the same
    :class:`Work`."""

    conv_id: str
    queue_id: str
    channel: str
    status: str
    priority: int
    arrival: float  # Unix time
    contact_id: str
    overflow_done: int

    @classmethod
    def of_row(cls, conv: Conversation) -> WorkFacts:
        assert conv.queue_id is not None
        return cls(
            conv.id,
            conv.queue_id,
            conv.channel,
            conv.status,
            conv.priority,
            (conv.queued_at or conv.created_at).timestamp(),
            conv.contact_id,
            int(conv.attributes.get("overflow_done", 0)),
        )

    @classmethod
    def of_event(cls, conv_id: str, data: Mapping[str, Any]) -> WorkFacts | None:
        """The facts in an event's payload, or None when they are missing or malformed (an
        event from before they were carried, or another publisher): then read the row."""
        raw = data.get(WORK_KEY)
        if not isinstance(raw, Mapping) or any(raw.get(k) is None for k in WORK_FIELDS):
            return None
        try:
            queued_at = datetime.fromisoformat(str(raw["queued_at"]))
            facts = cls(
                conv_id,
                str(raw["queue_id"]),
                str(raw["channel"]),
                str(raw["status"]),
                int(raw["priority"]),
                queued_at.timestamp(),
                str(raw["contact_id"]),
                int(raw["overflow_done"]),
            )
        except (TypeError, ValueError):
            return None
        if queued_at.tzinfo is None or facts.channel not in _MEDIA:
            return None
        return facts

    def work(
        self,
        queue_priority: int,
        *,
        preferred_agent: str | None = None,
        router_queue_id: str | None = None,
    ) -> Work:
        return Work(
            work_id=self.conv_id,
            queue_id=router_queue_id or self.queue_id,
            medium=Medium(self.channel),
            arrival=self.arrival,
            priority=self.priority + queue_priority,
            preferred_agent=preferred_agent,
            overflow_done=self.overflow_done,
        )


_MEDIA = frozenset(m.value for m in Medium)


def work_item(
    conv: Conversation,
    queue_priority: int,
    *,
    preferred_agent: str | None = None,
    router_queue_id: str | None = None,
) -> Work:
    return WorkFacts.of_row(conv).work(
        queue_priority, preferred_agent=preferred_agent, router_queue_id=router_queue_id
    )
