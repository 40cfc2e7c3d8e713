"""Inputs to :meth:`routing.Router.handle`: everything that happens, each stamped with ``now``.

Time is an input: ``now`` is seconds on any monotonic-enough clock the shell chooses (the
dispatcher uses Unix time so arrival times survive restarts). The router never reads a clock.
Deadlines (offer expiry, wrap-up end, overflow, preferred window, disconnect grace, re-offer
delay) fire only on :class:`Tick`; call it when :meth:`Router.next_deadline` has passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from routing.model import AgentProfile, Capacity, Presence, QueueConfig, Work


@dataclass(frozen=True, slots=True)
class WorkQueued:
    """New (or restored) work entered a queue; it is offered at once if an agent can take it."""

    work: Work
    now: float


@dataclass(frozen=True, slots=True)
class WorkWithdrawn:
    """Work left routing before being answered (caller hung up, chat closed, resolved by rule).
    A live offer for it is revoked; counted as abandoned in the queue's service level."""

    work_id: str
    now: float
    reason: str = "withdrawn"


@dataclass(frozen=True, slots=True)
class WorkFinished:
    """Assigned work ended: frees the agent's capacity and starts the queue's wrap-up."""

    work_id: str
    now: float


@dataclass(frozen=True, slots=True)
class AgentLoggedIn:
    """An agent logged in (or their profile is restored after a restart)."""

    agent: AgentProfile
    now: float
    presence: Presence = Presence.NOT_READY
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AgentLoggedOut:
    """An agent logged out: offers revoked, open digital work requeued at once unless the queue
    keeps it; voice work stays until it finishes."""

    agent_id: str
    now: float


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """The agent set their presence. Leaving READY revokes a live offer; OFFLINE = log out."""

    agent_id: str
    presence: Presence
    now: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SkillsChanged:
    agent_id: str
    skills: Mapping[str, int]
    now: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "skills", MappingProxyType(dict(self.skills)))


@dataclass(frozen=True, slots=True)
class CapacityChanged:
    """New capacity; a live offer that no longer fits is revoked (assigned work is kept)."""

    agent_id: str
    capacity: Capacity
    now: float


@dataclass(frozen=True, slots=True)
class OfferAccepted:
    offer_id: str
    now: float


@dataclass(frozen=True, slots=True)
class OfferDeclined:
    offer_id: str
    now: float
    reason: str = "declined"


@dataclass(frozen=True, slots=True)
class AgentDisconnected:
    """The agent's socket dropped: offers revoked at once; after each queue's grace period
    their open digital work is requeued unless the queue keeps it."""

    agent_id: str
    now: float


@dataclass(frozen=True, slots=True)
class AgentReconnected:
    """The agent is back before the grace period ended: nothing is requeued."""

    agent_id: str
    now: float


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: fire every deadline at or before ``now``."""

    now: float


@dataclass(frozen=True, slots=True)
class QueueConfigured:
    """Add a queue or replace its configuration (waiting items are re-laned)."""

    config: QueueConfig
    now: float


@dataclass(frozen=True, slots=True)
class ServiceLevelReset:
    """Start a new service-level period (e.g. at midnight: "service level today")."""

    now: float


@dataclass(frozen=True, slots=True)
class AssignmentRestored:
    """Restart: ``work`` is already assigned to ``agent_id``. Reserves capacity, sends nothing.
    The agent must be logged in first."""

    work: Work
    agent_id: str
    now: float


@dataclass(frozen=True, slots=True)
class OfferRestored:
    """Restart: a live offer already sent before the restart. Reserves capacity and restarts its
    expiry clock at ``expires_at`` without re-sending it. The agent must be logged in first.
    If ``expires_at`` has already passed, the router answers RevokeOffer (rule
    ``expired_while_down``) and routes the work again, without holding it against the agent."""

    offer_id: str
    work: Work
    agent_id: str
    expires_at: float
    now: float


Event = (WorkQueued | WorkWithdrawn | WorkFinished | AgentLoggedIn | AgentLoggedOut
         | PresenceChanged | SkillsChanged | CapacityChanged | OfferAccepted | OfferDeclined
         | AgentDisconnected | AgentReconnected | Tick | QueueConfigured | ServiceLevelReset
         | AssignmentRestored | OfferRestored)

__all__ = [
    "AgentDisconnected", "AgentLoggedIn", "AgentLoggedOut", "AgentReconnected",
    "AssignmentRestored", "CapacityChanged", "Event", "OfferAccepted", "OfferDeclined",
    "OfferRestored", "PresenceChanged", "QueueConfigured", "ServiceLevelReset", "SkillsChanged",
    "Tick", "WorkFinished", "WorkQueued", "WorkWithdrawn",
]
