"""The database side of voice orchestration: which call a conversation is, and its call facts.

A voice conversation knows its call through the ``CALL`` interaction ingest stored: its
``external_id`` is the caller channel's unique id in Asterisk. Ring attempts, hold and hang-up
requests are appended as ``event`` interactions (payload ``{"call": {...}}``) so the timeline
tells the whole call; the end of a call resolves the conversation with the outcome and the
caller's wait.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.actions.conversations import conversation_event, conversation_rooms
from hub.actions.log import append, interaction_dict
from hub.db.base import utcnow
from hub.db.models import Assignment, Conversation, Interaction
from hub.domain import ActorType, ConversationStatus, Direction, InteractionKind
from hub.events import Event


async def call_id_of(session: AsyncSession, conversation_id: str) -> str | None:
    """The Asterisk channel id of the conversation's latest call (None: not a call)."""
    return (
        await session.execute(
            select(Interaction.external_id)
            .where(
                Interaction.conversation_id == conversation_id,
                Interaction.kind == InteractionKind.CALL.value,
            )
            .order_by(Interaction.seq.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def record_call_event(
    session: AsyncSession,
    conv: Conversation,
    call: dict[str, Any],
    *,
    actor_type: ActorType = ActorType.SYSTEM,
    actor_id: str | None = None,
) -> Event:
    """Append one call fact (ring outcome, hold, hang-up request) to the timeline."""
    row = await append(
        session,
        conv.id,
        kind=InteractionKind.EVENT,
        direction=Direction.INTERNAL,
        channel=conv.channel,
        actor_type=actor_type,
        actor_id=actor_id,
        payload={"call": call},
    )
    await session.flush()
    return Event("interaction.created", interaction_dict(row), rooms=conversation_rooms(conv))


async def resolve_ended_call(
    session: AsyncSession, conv: Conversation, *, outcome: str, end: dict[str, Any]
) -> list[Event]:
    """Resolve ``conv`` because its call is over; ``outcome`` is ``abandoned`` (the caller left
    before an agent answered) or ``completed``. No-op for an already resolved conversation."""
    if conv.status == ConversationStatus.RESOLVED.value:
        return []
    previous = conv.assignee_id
    conv.status = ConversationStatus.RESOLVED.value
    conv.resolved_at = utcnow()
    facts = {
        "outcome": outcome,
        "end_reason": end.get("reason"),
        "wait_s": end.get("wait_s"),
        "queue": end.get("queue"),
    }
    conv.attributes = {**conv.attributes, "call": facts}
    await session.execute(
        update(Assignment)
        .where(Assignment.conversation_id == conv.id, Assignment.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=f"call_{outcome}")
    )
    row = await append(
        session,
        conv.id,
        kind=InteractionKind.STATUS,
        direction=Direction.INTERNAL,
        channel=conv.channel,
        actor_type=ActorType.SYSTEM,
        payload={"status": ConversationStatus.RESOLVED.value, "reason": outcome, **facts},
    )
    await session.flush()
    return [
        Event("interaction.created", interaction_dict(row), rooms=conversation_rooms(conv)),
        conversation_event("conversation.resolved", conv, previous_assignee=previous),
    ]
