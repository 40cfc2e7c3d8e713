"""Small builders for router event-sequence tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from routing import (
    AgentLoggedIn,
    AgentProfile,
    Capacity,
    Command,
    Medium,
    OfferAccepted,
    Presence,
    QueueConfig,
    Router,
    RouterConfig,
    SendOffer,
    Work,
    WorkQueued,
)

T = TypeVar("T")

VOICE_ONLY = Capacity({Medium.VOICE: 1})


def offers(cmds: Sequence[Command]) -> list[SendOffer]:
    return [c for c in cmds if isinstance(c, SendOffer)]


def only_offer(cmds: Sequence[Command]) -> SendOffer:
    found = offers(cmds)
    assert len(found) == 1, cmds
    return found[0]


def of_type(cmds: Sequence[Command], kind: type[T]) -> list[T]:
    return [c for c in cmds if isinstance(c, kind)]


def router(*queues: QueueConfig, max_missed: int = 3) -> Router:
    return Router(queues or (QueueConfig("q"),), RouterConfig(max_missed=max_missed))


def login(r: Router, agent_id: str, now: float, skills: Mapping[str, int] | None = None,
          capacity: Capacity = VOICE_ONLY, presence: Presence = Presence.READY) -> list[Command]:
    profile = AgentProfile(agent_id, dict(skills or {}), capacity)
    return r.handle(AgentLoggedIn(profile, now, presence))


def queue(r: Router, work_id: str, now: float, queue_id: str = "q",
          medium: Medium = Medium.VOICE, priority: int = 0, **kw: object) -> list[Command]:
    work = Work(work_id, queue_id, medium, now, priority, **kw)  # type: ignore[arg-type]
    return r.handle(WorkQueued(work, now))


def take(r: Router, cmds: Sequence[Command], now: float) -> list[Command]:
    """Accept every offer in ``cmds`` (and any offer that accepting produces)."""
    out: list[Command] = []
    pending = offers(cmds)
    while pending:
        o = pending.pop()
        more = r.handle(OfferAccepted(o.offer_id, now))
        out.extend(more)
        pending.extend(offers(more))
    return out
