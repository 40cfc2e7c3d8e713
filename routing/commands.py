"""Outputs of :meth:`routing.Router.handle`: what the dispatcher must do, each with its reason.

Commands are returned in the order they must be executed. Every command carries a
:class:`~routing.model.Reason` so the dispatcher can record each decision for audit unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from routing.model import OverflowAction, Presence, Reason


@dataclass(frozen=True, slots=True)
class SendOffer:
    """Offer ``work_id`` to ``agent_id`` until ``expires_at`` (then the router revokes it)."""

    offer_id: str
    work_id: str
    agent_id: str
    expires_at: float
    reason: Reason


@dataclass(frozen=True, slots=True)
class RevokeOffer:
    """Withdraw a live offer (expired, agent left, work withdrawn). The work is back in the
    queue unless a later command in the same batch says otherwise."""

    offer_id: str
    work_id: str
    agent_id: str
    reason: Reason


@dataclass(frozen=True, slots=True)
class Assign:
    """The agent accepted: the work is theirs. ``wait_s`` is arrival → accept."""

    offer_id: str
    work_id: str
    agent_id: str
    wait_s: float
    reason: Reason


@dataclass(frozen=True, slots=True)
class Requeue:
    """Assigned work goes back to its queue (agent gone past the grace period / logged out)."""

    work_id: str
    agent_id: str
    reason: Reason


@dataclass(frozen=True, slots=True)
class Overflow:
    """An overflow step widened who may take the work (relaxed levels or an added queue).
    Persist ``overflow_done = step + 1`` so a restart does not apply it twice."""

    work_id: str
    step: int
    action: OverflowAction
    queue_id: str | None
    reason: Reason


@dataclass(frozen=True, slots=True)
class Escalate:
    """The work moved to another (higher-tier) queue: persist ``queue_id`` as the work's queue
    and ``overflow_done = 0`` (the new queue's ladder starts over, timed from arrival)."""

    work_id: str
    step: int
    tier: int | None
    queue_id: str
    reason: Reason


@dataclass(frozen=True, slots=True)
class Voicemail:
    """Voice work waited too long: it left routing; send the caller to voicemail."""

    work_id: str
    step: int
    reason: Reason


@dataclass(frozen=True, slots=True)
class Callback:
    """Voice work waited too long: it left routing; offer the caller a callback."""

    work_id: str
    step: int
    reason: Reason


@dataclass(frozen=True, slots=True)
class SetPresence:
    """The router changed an agent's presence (wrap-up start/end, not-ready "missed")."""

    agent_id: str
    presence: Presence
    presence_reason: str
    reason: Reason


@dataclass(frozen=True, slots=True)
class Rejected:
    """An accept/decline named an offer that is no longer live (expired, revoked, unknown):
    tell the agent it is too late. Nothing changed."""

    offer_id: str
    reason: Reason


Command = (SendOffer | RevokeOffer | Assign | Requeue | Overflow | Escalate | Voicemail
           | Callback | SetPresence | Rejected)
