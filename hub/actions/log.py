"""Appending to a conversation's interaction log, the one way every action records what happened."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db.base import utcnow
from hub.db.models import Conversation, Interaction
from hub.domain import ActorType, Direction, InteractionKind
from hub.ids import new_id


async def append(
    session: AsyncSession,
    conversation_id: str,
    *,
    kind: InteractionKind,
    direction: Direction,
    channel: str,
    actor_type: ActorType,
    actor_id: str | None = None,
    text: str = "",
    html: str | None = None,
    subject: str | None = None,
    payload: dict[str, Any] | None = None,
    external_id: str | None = None,
    dedupe_key: str | None = None,
    at: datetime | None = None,
) -> Interaction:
    """Add one entry; ``seq`` comes from an atomic per-conversation counter (row-locked)."""
    seq = (
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(interaction_count=Conversation.interaction_count + 1)
            .returning(Conversation.interaction_count)
        )
    ).scalar_one()
    row = Interaction(
        id=new_id("interaction"),
        seq=seq,
        conversation_id=conversation_id,
        kind=kind.value,
        direction=direction.value,
        channel=channel,
        actor_type=actor_type.value,
        actor_id=actor_id,
        text=text,
        html=html,
        subject=subject,
        payload=payload or {},
        external_id=external_id,
        dedupe_key=dedupe_key,
        created_at=at or utcnow(),
    )
    session.add(row)
    return row


def interaction_dict(row: Interaction) -> dict[str, Any]:
    """The API/socket shape of an interaction."""
    return {
        "id": row.id,
        "seq": row.seq,
        "conversation_id": row.conversation_id,
        "kind": row.kind,
        "direction": row.direction,
        "channel": row.channel,
        "actor": {"type": row.actor_type, "id": row.actor_id},
        "text": row.text,
        "html": row.html,
        "subject": row.subject,
        "payload": row.payload,
        "external_id": row.external_id,
        "created_at": row.created_at.isoformat(),
        "attachments": [
            {
                "id": a.id,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
            }
            for a in (row.attachments if "attachments" in row.__dict__ else [])
        ],
    }
