"""Carry out the router's commands: persist them in one transaction, then say what to emit.

Every command is recorded in the conversation's interaction log with the router's reason
(candidates considered, why this agent won), so routing fairness can be audited afterwards.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.actions.log import append
from hub.db.base import utcnow
from hub.db.models import Agent, Assignment, Conversation, Offer
from hub.dispatch.mapping import base_queue_id
from hub.domain import (
    ActorType,
    ConversationStatus,
    Direction,
    InteractionKind,
    OfferStatus,
)
from hub.events import Event
from hub.ids import new_id
from routing.commands import (
    Assign,
    Callback,
    Command,
    Escalate,
    Overflow,
    Rejected,
    Requeue,
    RevokeOffer,
    SendOffer,
    SetPresence,
    Voicemail,
)
from routing.model import Reason

log = logging.getLogger(__name__)

SOURCE = {"source": "dispatcher"}  # events we emit carry this so we never consume our own


def reason_dict(reason: Reason) -> dict[str, Any]:
    return {
        "rule": reason.rule,
        "text": reason.text,
        "considered": reason.considered,
        "candidates": [{"id": c.id, "key": list(c.key), "note": c.note} for c in reason.candidates],
    }


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _conv_event(name: str, conv: Conversation, **extra: Any) -> Event:
    rooms = [f"conversation:{conv.id}", f"queue:{conv.queue_id}"]
    if conv.assignee_id:
        rooms.append(f"agent:{conv.assignee_id}")
    return Event(
        name,
        {
            "id": conv.id,
            "status": conv.status,
            "queue_id": conv.queue_id,
            "assignee_id": conv.assignee_id,
            **extra,
        },
        rooms=tuple(rooms),
        meta=SOURCE,
    )


async def _log(
    session: AsyncSession,
    conv: Conversation,
    kind: InteractionKind,
    payload: dict[str, Any],
    text: str = "",
) -> None:
    await append(
        session,
        conv.id,
        kind=kind,
        direction=Direction.INTERNAL,
        channel=conv.channel,
        actor_type=ActorType.SYSTEM,
        payload=payload,
        text=text,
    )


async def execute(session: AsyncSession, commands: list[Command]) -> tuple[list[Event], list[str]]:
    """Apply ``commands``; return the events to publish after commit and rejected offer ids."""
    events: list[Event] = []
    rejected: list[str] = []
    for cmd in commands:
        if isinstance(cmd, Rejected):
            rejected.append(cmd.offer_id)
            continue
        if isinstance(cmd, SetPresence):
            agent = await session.get(Agent, cmd.agent_id)
            if agent is not None:
                agent.presence = cmd.presence.value
                agent.presence_reason = cmd.presence_reason or None
                agent.presence_since = utcnow()
                events.append(
                    Event(
                        "agent.presence",
                        {
                            "id": agent.id,
                            "presence": agent.presence,
                            "presence_reason": agent.presence_reason,
                            "reason": reason_dict(cmd.reason),
                        },
                        rooms=(f"agent:{agent.id}", "supervisors"),
                        meta=SOURCE,
                    )
                )
            continue
        conv = await session.get(Conversation, cmd.work_id)
        if conv is None:
            log.warning("router command for unknown conversation %s ignored", cmd.work_id)
            continue
        why = reason_dict(cmd.reason)
        if isinstance(cmd, SendOffer):
            session.add(
                Offer(
                    id=cmd.offer_id,
                    conversation_id=conv.id,
                    agent_id=cmd.agent_id,
                    expires_at=_ts(cmd.expires_at),
                    reason=why,
                )
            )
            conv.status = ConversationStatus.OFFERED.value
            await _log(
                session,
                conv,
                InteractionKind.OFFER,
                {"offer_id": cmd.offer_id, "agent_id": cmd.agent_id, "reason": why},
            )
            events.append(
                Event(
                    "offer",
                    {
                        "offer_id": cmd.offer_id,
                        "conversation_id": conv.id,
                        "channel": conv.channel,
                        "queue_id": conv.queue_id,
                        "subject": conv.subject,
                        "priority": conv.priority,
                        "expires_at": _ts(cmd.expires_at).isoformat(),
                        "reason": why,
                    },
                    rooms=(f"agent:{cmd.agent_id}",),
                    meta=SOURCE,
                )
            )
        elif isinstance(cmd, RevokeOffer):
            expired = "expire" in cmd.reason.rule
            await session.execute(
                update(Offer)
                .where(Offer.id == cmd.offer_id, Offer.status == OfferStatus.PENDING.value)
                .values(
                    status=(OfferStatus.EXPIRED if expired else OfferStatus.REVOKED).value,
                    decided_at=utcnow(),
                )
            )
            if conv.status == ConversationStatus.OFFERED.value:
                conv.status = ConversationStatus.QUEUED.value
            await _log(
                session,
                conv,
                InteractionKind.OFFER,
                {
                    "offer_id": cmd.offer_id,
                    "agent_id": cmd.agent_id,
                    "outcome": "expired" if expired else "revoked",
                    "reason": why,
                },
            )
            events.append(
                Event(
                    "offer.revoked",
                    {"offer_id": cmd.offer_id, "conversation_id": conv.id, "reason": why},
                    rooms=(f"agent:{cmd.agent_id}",),
                    meta=SOURCE,
                )
            )
        elif isinstance(cmd, Assign):
            await session.execute(
                update(Offer)
                .where(Offer.id == cmd.offer_id)
                .values(status=OfferStatus.ACCEPTED.value, decided_at=utcnow())
            )
            conv.status = ConversationStatus.ASSIGNED.value
            conv.assignee_id = cmd.agent_id
            session.add(
                Assignment(id=new_id("assignment"), conversation_id=conv.id, agent_id=cmd.agent_id)
            )
            await _log(
                session,
                conv,
                InteractionKind.ASSIGNMENT,
                {
                    "offer_id": cmd.offer_id,
                    "agent_id": cmd.agent_id,
                    "wait_s": round(cmd.wait_s, 3),
                    "reason": why,
                },
            )
            events.append(_conv_event("conversation.assigned", conv, wait_s=cmd.wait_s))
        elif isinstance(cmd, Requeue):
            await session.execute(
                update(Assignment)
                .where(Assignment.conversation_id == conv.id, Assignment.ended_at.is_(None))
                .values(ended_at=utcnow(), end_reason="requeued")
            )
            conv.status = ConversationStatus.QUEUED.value
            conv.assignee_id = None
            await _log(
                session,
                conv,
                InteractionKind.STATUS,
                {"status": "queued", "from_agent": cmd.agent_id, "reason": why},
            )
            events.append(_conv_event("conversation.requeued", conv, from_agent=cmd.agent_id))
        elif isinstance(cmd, Overflow | Escalate):
            attrs = dict(conv.attributes)
            attrs["overflow_done"] = cmd.step + 1
            if isinstance(cmd, Escalate):
                attrs["escalated_to"] = {"queue_id": base_queue_id(cmd.queue_id), "tier": cmd.tier}
            conv.attributes = attrs
            await _log(
                session,
                conv,
                InteractionKind.EVENT,
                {
                    "overflow": {
                        "step": cmd.step,
                        "action": "escalate" if isinstance(cmd, Escalate) else cmd.action.value,
                        "queue_id": cmd.queue_id,
                    },
                    "reason": why,
                },
            )
            events.append(_conv_event("conversation.overflow", conv, step=cmd.step))
        elif isinstance(cmd, Voicemail | Callback):
            what = "voicemail" if isinstance(cmd, Voicemail) else "callback"
            conv.status = ConversationStatus.PENDING.value
            conv.attributes = {**conv.attributes, "left_queue": what}
            await _log(
                session,
                conv,
                InteractionKind.EVENT,
                {"overflow": {"step": cmd.step, "action": what}, "reason": why},
            )
            events.append(_conv_event(f"voice.{what}", conv))
    return events, rejected
