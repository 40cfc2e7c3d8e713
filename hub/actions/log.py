"""Appending to a conversation's interaction log, the one way every action records what happened."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from hub.db.base import utcnow
from hub.db.models import Conversation, Interaction
from hub.domain import ActorType, Direction, InteractionKind
from hub.ids import new_id

# built once: constructing the statement per entry cost more than running it. ORM-enabled, so
# pending changes are flushed first (a conversation added just before its first entry);
# not synchronized: nothing reads a loaded Conversation's interaction_count
_NUMBER = (
    update(Conversation)
    .where(Conversation.id == bindparam("conv_id"))
    .values(interaction_count=Conversation.interaction_count + 1)
    .returning(Conversation.interaction_count)
    .execution_options(synchronize_session=False)
)
_NUMBER_TOUCH = _NUMBER.values(last_message_at=bindparam("at"), updated_at=bindparam("at"))


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
    touch: bool = False,
) -> Interaction:
    """Add one entry; ``seq`` comes from an atomic per-conversation counter (row-locked).

    ``touch``: that same ``UPDATE`` also sets the conversation's ``last_message_at`` and
    ``updated_at`` to the entry's time, instead of a second ``UPDATE`` of the row at flush
    (the caller keeps a loaded ``Conversation`` in step with ``set_committed_value``).
    """
    at = at or utcnow()
    if touch:
        result = await session.execute(_NUMBER_TOUCH, {"conv_id": conversation_id, "at": at})
    else:
        result = await session.execute(_NUMBER, {"conv_id": conversation_id})
    seq = result.scalar_one()
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
        created_at=at,
    )
    session.add(row)
    return row


def interaction_values(
    conversation_id: str,
    seq: int,
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
) -> dict[str, Any]:
    """One entry as column values, for batch writers that allocated ``seq`` themselves (with
    an atomic ``interaction_count`` increment, or 1.. on a conversation they just inserted)."""
    return {
        "id": new_id("interaction"),
        "seq": seq,
        "conversation_id": conversation_id,
        "kind": kind.value,
        "direction": direction.value,
        "channel": channel,
        "actor_type": actor_type.value,
        "actor_id": actor_id,
        "text": text,
        "html": html,
        "subject": subject,
        "payload": payload or {},
        "external_id": external_id,
        "dedupe_key": dedupe_key,
        "created_at": at or utcnow(),
    }


async def insert_interactions(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many entries in one executemany (Core: no unit-of-work bookkeeping per row)."""
    if rows:
        await conn.execute(insert(cast(Table, Interaction.__table__)), list(rows))


def entry_dict(
    values: Mapping[str, Any], attachments: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """The API/socket shape of an interaction given as column values."""
    return {
        "id": values["id"],
        "seq": values["seq"],
        "conversation_id": values["conversation_id"],
        "kind": values["kind"],
        "direction": values["direction"],
        "channel": values["channel"],
        "actor": {"type": values["actor_type"], "id": values["actor_id"]},
        "text": values["text"],
        "html": values["html"],
        "subject": values["subject"],
        "payload": values["payload"],
        "external_id": values["external_id"],
        "created_at": values["created_at"].isoformat(),
        "attachments": [
            {
                "id": a["id"],
                "filename": a["filename"],
                "content_type": a["content_type"],
                "size": a["size"],
                "sha256": a["sha256"],
            }
            for a in attachments
        ],
    }


def interaction_dict(row: Interaction) -> dict[str, Any]:
    """The API/socket shape of an interaction."""
    attachments = row.attachments if "attachments" in row.__dict__ else []
    return entry_dict(
        {c: getattr(row, c) for c in _ENTRY_COLUMNS},
        [{c: getattr(a, c) for c in _ATTACHMENT_COLUMNS} for a in attachments],
    )


_ENTRY_COLUMNS = (
    "id",
    "seq",
    "conversation_id",
    "kind",
    "direction",
    "channel",
    "actor_type",
    "actor_id",
    "text",
    "html",
    "subject",
    "payload",
    "external_id",
    "created_at",
)
_ATTACHMENT_COLUMNS = ("id", "filename", "content_type", "size", "sha256")
