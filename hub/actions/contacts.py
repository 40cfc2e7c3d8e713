"""Contacts: the screen-pop view across channels, edits, and merging duplicates."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.actions.log import append
from hub.auth.sessions import Principal
from hub.db.models import Contact, ContactAddress, Conversation
from hub.domain import ActorType, Direction, InteractionKind
from hub.errors import Conflict, NotFound
from hub.events import Event


def contact_dict(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "name": contact.name,
        "attributes": contact.attributes,
        "addresses": [{"kind": a.kind, "value": a.value} for a in contact.addresses],
        "created_at": contact.created_at.isoformat(),
        "merged_into_id": contact.merged_into_id,
    }


async def load_contact(session: AsyncSession, contact_id: str) -> Contact:
    contact = await session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id} not found")
    return contact


async def history(session: AsyncSession, contact_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The contact's conversations on every channel, newest first."""
    rows = (
        (
            await session.execute(
                select(Conversation)
                .where(Conversation.contact_id == contact_id)
                .order_by(Conversation.last_message_at.desc())
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )
    return [
        {
            "id": c.id,
            "channel": c.channel,
            "status": c.status,
            "subject": c.subject,
            "queue_id": c.queue_id,
            "assignee_id": c.assignee_id,
            "created_at": c.created_at.isoformat(),
            "last_message_at": c.last_message_at.isoformat(),
        }
        for c in rows
    ]


async def do_update(
    session: AsyncSession, contact: Contact, *, name: str | None, attributes: dict[str, Any] | None
) -> list[Event]:
    if name is not None:
        contact.name = name
    if attributes is not None:
        merged = dict(contact.attributes)
        for key, value in attributes.items():
            if value is None:
                merged.pop(key, None)  # null removes an attribute
            else:
                merged[key] = value
        contact.attributes = merged
    return [Event("contact.updated", {"id": contact.id})]


async def do_merge(
    session: AsyncSession, who: Principal, keep: Contact, other: Contact
) -> list[Event]:
    """Move ``other``'s addresses and conversations to ``keep``; ``other`` then points at it."""
    if keep.id == other.id:
        raise Conflict("cannot merge a contact into itself", code="invalid_merge")
    if other.merged_into_id is not None:
        raise Conflict(f"contact {other.id} was already merged", code="invalid_merge")
    conv_ids = (
        (await session.execute(select(Conversation.id).where(Conversation.contact_id == other.id)))
        .scalars()
        .all()
    )
    await session.execute(
        update(ContactAddress)
        .where(ContactAddress.contact_id == other.id)
        .values(contact_id=keep.id)
    )
    await session.execute(
        update(Conversation).where(Conversation.contact_id == other.id).values(contact_id=keep.id)
    )
    keep.attributes = {**other.attributes, **keep.attributes}
    if not keep.name:
        keep.name = other.name
    other.merged_into_id = keep.id
    for conv_id in conv_ids:
        await append(
            session,
            conv_id,
            kind=InteractionKind.MERGE,
            direction=Direction.INTERNAL,
            channel="system",
            actor_type=ActorType.AGENT,
            actor_id=who.user_id,
            payload={"from_contact": other.id, "into_contact": keep.id},
        )
    await session.flush()
    session.expire(keep, ["addresses"])
    return [Event("contact.merged", {"id": keep.id, "merged": other.id})]
